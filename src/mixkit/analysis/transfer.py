"""Transfer of a trained backbone to another dataset (the AdAutoMix paper's transfer evaluation): a linear
probe on frozen features and a fine-tune of the whole network. See docs/analysis/transfer.md.

* **Features**: the input of the model's last ``nn.Linear`` (the classifier head), taken by a forward hook,
  in eval mode: for the bench's ResNets, the globally pooled last stage.
* **Linear probe**: multinomial logistic regression (scikit-learn's ``LogisticRegression``, L2, ``C``) on
  the standardised features of the new training set; its top-1 on the new test set.
* **Fine-tune**: the head replaced by a new ``nn.Linear`` for the new classes, every weight trained with SGD
  (momentum 0.9, cosine learning rate) and cross-entropy; top-1 on the new test set.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..bench.models import build_model

__all__ = ["load_bench_model", "features", "linear_probe", "fine_tune"]

Split = Tuple[Tensor, Tensor]


def load_bench_model(checkpoint: Union[str, Path], map_location: str = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """The trained network of a ``mixkit bench`` run checkpoint (``OUT/state/<method>-s<seed>.pt``) and what
    the run says about it: ``{"method", "seed", "epoch", "config", "setup"}``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (a bench run keeps them in OUT/state/)")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "model" not in state or not state.get("records"):
        raise ValueError(f"checkpoint {str(path)!r} is not a mixkit bench checkpoint (no model and records)")
    rec = state["records"][-1]
    cfg, setup = rec.get("config", {}), rec.get("setup", {})
    shape = setup.get("input_shape")
    if not shape or "num_classes" not in setup:
        raise ValueError(f"checkpoint {str(path)!r} was written before the runs recorded their input shape; "
                         "build the model with mixkit.bench.models.build_model and load state['model'] yourself")
    model = build_model(cfg["model"], setup["num_classes"], in_channels=shape[0], spatial_dims=len(shape) - 1,
                        width=cfg.get("width", 1))
    model.load_state_dict(state["model"])
    model.eval()
    info = {"method": rec.get("method"), "seed": rec.get("seed"), "epoch": state.get("epoch"), "config": cfg,
            "setup": setup}
    return model, info


def _head(model: nn.Module) -> Tuple[str, nn.Linear]:
    heads = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise ValueError(f"model {type(model).__name__} has no nn.Linear head to take features from or replace")
    return heads[-1]


@torch.no_grad()
def features(model: nn.Module, x: Tensor, *, batch_size: int = 256) -> Tensor:
    """``(N, D)`` float32: the input of the model's last ``nn.Linear`` for every row of ``x``, in eval mode
    (the model's train/eval flags are restored)."""
    if not isinstance(x, Tensor) or x.dim() < 3:
        raise ValueError(f"x must be a (N, C, *spatial) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    _, head = _head(model)
    dev = next(model.parameters()).device
    grabbed = []
    hook = head.register_forward_hook(lambda m, inp, out: grabbed.append(inp[0].detach().flatten(1).float().cpu()))
    was = model.training
    model.eval()
    try:
        for i in range(0, x.shape[0], batch_size):
            model(x[i:i + batch_size].to(dev))
    finally:
        hook.remove()
        model.train(was)
    return torch.cat(grabbed)


def linear_probe(model: nn.Module, train: Split, test: Split, *, C: float = 1.0, max_iter: int = 1000,
                 batch_size: int = 256) -> Dict[str, float]:
    """Top-1 of a logistic-regression probe on frozen features: fit on ``train = (x, y)``, score on ``test``.
    Returns ``{"top1", "train_top1", "n_train", "n_test", "dim"}``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr), (xte, yte) = _check_split(train, "train"), _check_split(test, "test")
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C!r}")
    ftr, fte = features(model, xtr, batch_size=batch_size).numpy(), features(model, xte, batch_size=batch_size).numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    clf.fit(ftr, ytr.numpy())
    return {"top1": float(clf.score(fte, yte.numpy())), "train_top1": float(clf.score(ftr, ytr.numpy())),
            "n_train": int(xtr.shape[0]), "n_test": int(xte.shape[0]), "dim": int(ftr.shape[1])}


def fine_tune(model: nn.Module, train: Split, test: Split, *, num_classes: Optional[int] = None, epochs: int = 10,
              lr: float = 0.01, weight_decay: float = 5e-4, batch_size: int = 64,
              generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    """Fine-tune a copy of ``model`` (the original is untouched) with a new head for ``num_classes`` (default:
    ``max(label) + 1`` over both splits). Returns ``{"top1", "train_loss" (per epoch), "model"}``."""
    (xtr, ytr), (xte, yte) = _check_split(train, "train"), _check_split(test, "test")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    k = int(num_classes) if num_classes is not None else int(max(ytr.max(), yte.max())) + 1
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    net = copy.deepcopy(model)
    name, old = _head(net)
    head = nn.Linear(old.in_features, k)
    with torch.no_grad():  # nn.Linear's own initialisation, drawn from the generator
        nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=g)
        nn.init.uniform_(head.bias, -1 / math.sqrt(old.in_features), 1 / math.sqrt(old.in_features), generator=g)
    dev = old.weight.device
    _set_module(net, name, head.to(dev))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = epochs * math.ceil(xtr.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(epochs):
        net.train()
        perm, total = torch.randperm(xtr.shape[0], generator=g), 0.0
        for i in range(0, xtr.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.cross_entropy(net(xtr[idx].to(dev)), ytr[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * idx.numel()
        losses.append(total / xtr.shape[0])
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xte[i:i + 256].to(dev)).argmax(1).cpu() for i in range(0, xte.shape[0], 256)])
    return {"top1": float((pred == yte).float().mean()), "train_loss": losses, "model": net}


def _check_split(split: Any, name: str) -> Split:
    if not (isinstance(split, (tuple, list)) and len(split) == 2 and all(isinstance(t, Tensor) for t in split)):
        raise TypeError(f"{name} must be a pair (x, y) of tensors")
    x, y = split
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.dtype.is_floating_point:
        raise ValueError(f"{name}: y must be (N,) class ids matching x's N={x.shape[0]}, got {tuple(y.shape)} {y.dtype}")
    return x, y.long()


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)

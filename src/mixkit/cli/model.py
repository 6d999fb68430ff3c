"""The model that ``mixkit show`` hands to model-aware methods: the benchmark's small network, trained
for a few seconds on the shown dataset, without changing anything global; and the learner (AutoMix,
AdAutoMix) that it trains briefly around that network (:func:`show_learner`)."""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

import torch

from .data import ShowData
from .errors import CLIError

__all__ = ["SHOW_TRAIN_STEPS", "SHOW_LEARNER_STEPS", "show_model", "show_learner"]

#: benchmark model per number of spatial dims (:func:`mixkit.bench.models.build_model`)
_SHOW_MODELS = {2: "resnet8", 1: "cnn1d"}
#: default training budget of :func:`show_model` (optimiser steps of batch 64) per dataset
SHOW_TRAIN_STEPS = {"digits": 60, "fashion-mnist": 250, "synthetic": 60, "mnist1d": 250, "synthetic1d": 60}
#: default training budget of :func:`show_learner` (SGD steps of batch 64) per dataset: 10-20 s on a CPU
SHOW_LEARNER_STEPS = {"digits": 200, "fashion-mnist": 100, "synthetic": 100, "mnist1d": 200, "synthetic1d": 100}
#: trained weights, kept in this process only (``show all`` and the docs script train once per dataset)
_MODEL_MEMO: Dict[tuple, Dict[str, torch.Tensor]] = {}


class _ShowThreads:
    """Limit torch's intra-op threads (never raising them) and restore the count on exit."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.old > self.n:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


def show_model(data: ShowData, seed: int = 0, *, train: bool = True, steps: Optional[int] = None,
               batch_size: int = 64, lr: float = 3e-3, threads: int = 1, verbose: bool = True) -> torch.nn.Module:
    """The classifier that ``mixkit show`` hands to model-aware methods, in eval mode.

    The benchmark's ``resnet8`` (``cnn1d`` for sequences, :func:`mixkit.bench.models.build_model`) fed the
    dataset's images in ``[0, 1]`` (no normalisation), trained briefly with Adam (``lr``) on random
    batches of ``data.x`` so that its input-gradient saliency and hidden features mean something:
    ``steps`` optimiser steps of ``batch_size`` (default :data:`SHOW_TRAIN_STEPS`: about 3 epochs of
    digits, a few seconds on 2 cores). ``train=False`` returns the initialised model (``--untrained``).

    Seeded: initialisation and batches come from ``seed``, drawn inside ``torch.random.fork_rng`` so
    the global RNG is left as it was. At most ``threads`` intra-op threads are used during training
    (default 1: these small models gain nothing from more, and on busy cores several OpenMP threads
    can run a hundred times slower); the thread count and grad mode are restored.

    The trained weights are kept in memory for this process only (nothing is written to disk); every
    call returns a fresh copy, so a mixer that changes the model (Co-Mixup's clean-loss gradient,
    BatchNorm statistics) does not affect the next.
    """
    from ..bench.models import build_model

    dims = data.spatial_dims
    if dims not in _SHOW_MODELS:
        raise CLIError(f"no model for {dims}-D data (`mixkit show` builds models for 1-D and 2-D datasets)")
    arch = _SHOW_MODELS[dims]
    k = len(data.class_names) if data.class_names else int(data.y.max()) + 1
    steps = SHOW_TRAIN_STEPS.get(data.name, 100) if steps is None else int(steps)
    if steps < 0:
        raise CLIError(f"--train-steps must be >= 0, got {steps}")
    key = (data.name, tuple(data.x.shape), float(data.x[:64].sum()), arch, k, seed, steps, batch_size, lr)

    def fresh() -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(arch, k, in_channels=data.x.shape[1], spatial_dims=dims)

    model = fresh()
    if train and steps > 0:
        if key not in _MODEL_MEMO:
            import time

            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(seed + 1)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            model.train()
            hits = seen = 0
            with _ShowThreads(threads), torch.enable_grad():
                for step in range(steps):
                    idx = torch.randint(data.x.shape[0], (batch_size,), generator=g)
                    xb, yb = data.x[idx].float(), data.y[idx]
                    logits = model(xb)
                    loss = torch.nn.functional.cross_entropy(logits, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if step >= steps - 10:
                        hits += int((logits.detach().argmax(1) == yb).sum())
                        seen += yb.numel()
            _MODEL_MEMO[key] = {n: t.detach().clone() for n, t in model.state_dict().items()}
            if verbose:
                print(f"mixkit: trained {arch} on {data.name} for {steps} steps of {batch_size} "
                      f"({time.perf_counter() - t0:.1f} s; accuracy {hits / max(seen, 1):.0%} on the last "
                      f"{min(10, steps)} batches); --untrained skips this", file=sys.stderr)
        model.load_state_dict(_MODEL_MEMO[key])
    model.eval()
    model.zero_grad(set_to_none=True)
    return model


def show_learner(name: str, data: ShowData, seed: int = 0, *, steps: Optional[int] = None,
                 params: Optional[Mapping[str, Any]] = None, snapshot_steps: Iterable[int] = (),
                 on_snapshot: Optional[Callable[[int, torch.nn.Module], None]] = None, batch_size: int = 64,
                 lr: float = 0.1, mix_block_lr: Optional[float] = 0.02, threads: int = 1,
                 verbose: bool = True) -> torch.nn.Module:
    """The learner ``name`` (AutoMix, AdAutoMix) around the show model, trained briefly; in eval mode.

    The model is :func:`show_model`'s network, initialised (``train=False``): the learner trains it with
    its generator, as in the benchmark. The feature layer is the model's second-to-last stage
    (``mixkit.hooks.stage_names(model)[-2]``) unless ``params`` sets ``feature_layer``; ``params`` are
    the learner's constructor arguments, ``total_steps`` is ``steps``. Training: ``steps`` (default
    :data:`SHOW_LEARNER_STEPS`) SGD steps (momentum 0.9, weight decay 5e-4, the learner's
    ``param_groups``: the model at ``lr``, the generator at ``mix_block_lr``; None = ``lr``, as
    ``mixkit bench``; the default 0.02 keeps AutoMix's masks from saturating to one source within a few
    hundred steps, which they do at 0.1) on random batches of ``batch_size``, each
    followed by ``update_teacher()``.
    ``on_snapshot(step, learner)`` is called after ``step`` optimiser steps for every ``step`` in
    ``snapshot_steps`` (0: before the first).

    Seeded from ``seed`` (the model, the generator's initialisation, the batches and the learner's draws),
    inside ``torch.random.fork_rng`` with at most ``threads`` intra-op threads, as :func:`show_model`:
    the global RNG, the thread count and the grad mode are left as they were.
    """
    from .. import registry
    from ..hooks import stage_names

    steps = SHOW_LEARNER_STEPS.get(data.name, 100) if steps is None else int(steps)
    if steps < 0:
        raise CLIError(f"--train-steps must be >= 0, got {steps}")
    model = show_model(data, seed, train=False, verbose=False)
    kw: Dict[str, Any] = dict(params or {})
    kw.setdefault("feature_layer", stage_names(model)[-2])
    kw.setdefault("num_classes", len(data.class_names) if data.class_names else int(data.y.max()) + 1)
    kw["total_steps"] = max(steps, 1)
    snap = set(int(s) for s in snapshot_steps)
    with torch.random.fork_rng(devices=[]), _ShowThreads(threads), torch.enable_grad():
        torch.manual_seed(seed)
        try:
            learner = registry.create(name, model=model, **kw)
        except (TypeError, ValueError) as e:
            raise CLIError(f"cannot create {name!r} with {kw}: {e}") from e
        import time

        t0 = time.perf_counter()
        opt = torch.optim.SGD(learner.param_groups(lr=lr, mix_block_lr=mix_block_lr), lr=lr, momentum=0.9,
                              weight_decay=5e-4)
        g_batch = torch.Generator().manual_seed(seed + 1)
        g_mix = torch.Generator().manual_seed(seed + 2)
        for step in range(steps + 1):
            if step in snap and on_snapshot is not None:
                on_snapshot(step, learner)
            if step == steps:
                break
            learner.train()
            idx = torch.randint(data.x.shape[0], (batch_size,), generator=g_batch)
            out = learner(data.x[idx].float(), data.y[idx], generator=g_mix)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            learner.update_teacher()
        learner.eval()
        for p in learner.parameters():
            p.grad = None
    if verbose and steps:
        print(f"mixkit: trained {name} ({_SHOW_MODELS[data.spatial_dims]}, feature layer {kw['feature_layer']!r}) on "
              f"{data.name} for {steps} steps of {batch_size} ({time.perf_counter() - t0:.1f} s); "
              "--train-steps changes it", file=sys.stderr)
    return learner

"""The parts of one benchmark run and its training step, shared by the trainer and the throughput pass.

:func:`build_parts` makes what a (method, seed) run trains with: the model (seeded), the optimiser
and its schedule, the mixer (registry), the normalisation and the settings the config resolves to on
the device (:func:`mixkit.bench.config.effective_settings`). :func:`train_step` is one optimiser step
on a batch: augment, normalise, mix, forward, loss, backward, update. The trainer loops over it; the
throughput pass (:mod:`mixkit.bench.throughput`) times it, so the step that is timed is the step that
is trained.
"""
from __future__ import annotations

import inspect
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import nn

from .. import registry
from ..hooks import stage_names
from ..losses import bce_on_softmax, soft_cross_entropy
from ..mixers.compose import Alternate
from ..sampling import derive_seed
from ..targets import one_hot, soft_targets
from .config import BenchConfig, effective_settings
from .data import DataSplit, random_crop_flip
from .models import build_model

__all__ = ["derive_seed", "make_generator", "resolve_device", "DistInfo", "method_params", "build_mixer",
           "RunParts", "build_parts", "train_step", "count_parameters", "compile_mixer"]


def make_generator(*parts: Any, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r} (--device auto, cpu or cuda)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available; use --device cpu")
    return dev


class DistInfo:
    """Rank and world size (1 process when not launched by torchrun)."""

    def __init__(self) -> None:
        self.enabled = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.enabled else 0
        self.world = dist.get_world_size() if self.enabled else 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def method_parts(method: str) -> List[str]:
    """The methods a bench method name is made of: ``"mixup+fmix"`` alternates MixUp and FMix batch by batch
    (the FMix repository's ``alt_mixup_fmix``), a plain name is itself."""
    return method.split("+") if "+" in method else [method]


def needs_model(method: str) -> bool:
    """Whether the method (or a part of an alternation) takes the model."""
    return any(registry.spec(p).needs_model for p in method_parts(method))


def method_params(cfg: BenchConfig, method: str) -> Dict[str, Any]:
    """The method's effective hyper-parameters: registry defaults overridden by the config (for an
    alternation, each part's, keyed ``part.name``)."""
    if method == "vanilla":
        return {}
    if "+" in method:
        return {f"{p}.{k}": v for p in method_parts(method) for k, v in method_params(cfg, p).items()}
    params = dict(registry.describe(method).get("defaults", {}))
    params.update(cfg.params_for(method))
    return params


def build_mixer(cfg: BenchConfig, method: str, num_classes: int, model: Optional[nn.Module] = None,
                mean=None, std=None):
    """The mixer for ``method`` (``None`` for vanilla), with the config's mode and explicit params.

    ``mean``/``std`` (the dataset's normalisation) go to methods that take them, e.g. PuzzleMix, whose
    smoothness term and adversarial step work on de-normalised pixels."""
    if method == "vanilla":
        return None
    if "+" in method:  # an alternation: one part per batch, in order (driven by the global step, see train_step)
        parts = method_parts(method)
        for p in parts:
            if p == "vanilla" or registry.is_learned(p) or registry.spec(p).needs_model:
                raise ValueError("an alternation takes hand-crafted methods (not vanilla, model-aware or "
                                 f"learned ones), got {p!r}")
        return Alternate([build_mixer(cfg, p, num_classes, model, mean, std) for p in parts], num_classes=num_classes)
    kw = method_params(cfg, method)
    if registry.is_learned(method):  # AutoMix / AdAutoMix: the generator reads the second-to-last stage
        if "feature_layer" not in cfg.params_for(method):
            kw["feature_layer"] = stage_names(model)[-2]
    else:
        kw.setdefault("mode", cfg.mode)
    kw["num_classes"] = num_classes
    if registry.spec(method).needs_model:
        kw["model"] = model
    accepted = inspect.signature(registry.get_class(method).__init__).parameters
    for name, value in (("mean", mean), ("std", std)):
        if value is not None and name in accepted and name not in kw:
            kw[name] = tuple(value)
    return registry.create(method, **kw)


def compile_mixer(mixer: nn.Module) -> nn.Module:
    """``torch.compile`` the tensor work of a mixer in place: its ``_apply`` (the blend or paste after the
    draws; the draws stay eager, on their generator), for each part of an alternation; a learner (AutoMix,
    AdAutoMix) is compiled whole (``nn.Module.compile``). Shapes are marked dynamic, because a box's size
    changes from batch to batch. Returns ``mixer``."""
    if getattr(mixer, "learned", False):
        mixer.compile()
        return mixer
    for part in getattr(mixer, "mixers", None) or [mixer]:
        object.__setattr__(part, "_apply", torch.compile(part._apply, dynamic=True))
    return mixer


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _lr_lambda(cfg: BenchConfig, steps_per_epoch: int) -> Callable[[int], float]:
    total = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch
    bounds = [round(m * cfg.epochs) * steps_per_epoch for m in cfg.milestones]

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            t = (step - warm) / max(1, total - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        return cfg.gamma ** sum(step >= b for b in bounds)

    return f


def _pad_for(ds: DataSplit, cfg: BenchConfig) -> int:
    if cfg.pad is not None:
        return cfg.pad
    size = ds.x_train.shape[-1]
    return max(1, round(4 * size / 32))


@dataclass
class RunParts:
    """What one (method, seed) run trains with (see :func:`build_parts`)."""

    cfg: BenchConfig
    device: torch.device
    model: nn.Module             # the module whose weights are saved
    net: nn.Module               # what the step calls: the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: Any
    mixer: Any                   # None for vanilla
    params: Dict[str, Any]       # the method's effective hyper-parameters
    num_classes: int
    mean: torch.Tensor
    std: torch.Tensor
    pad: int
    settings: Dict[str, Any]     # effective_settings: amp, channels_last, threads
    steps_per_epoch: int

    @property
    def learner(self):
        """The mixer when it is a learner (AutoMix, AdAutoMix: it returns the step's loss), else None."""
        return self.mixer if getattr(self.mixer, "learned", False) else None

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def build_parts(cfg: BenchConfig, ds: DataSplit, method: str, seed: int, device: torch.device,
                ddp: bool = False) -> RunParts:
    """Model (initialised from ``seed``), optimiser, schedule and mixer of a run, on ``device``; with
    ``ddp``, the step calls the model through ``DistributedDataParallel`` (the process group must exist)."""
    settings = effective_settings(cfg.to_dict(), device.type, ds.spatial_dims)
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(cfg.model, ds.num_classes, ds.in_channels, ds.spatial_dims, cfg.width).to(device)
    if settings["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile in ("model", "all"):  # in place: every caller (the step, a saliency pass, a learner) and the
        model.compile()                  # state dict see the same module
    net: nn.Module = model
    if ddp:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    steps_per_epoch = math.ceil(ds.x_train.shape[0] / cfg.batch_size)
    mixer = build_mixer(cfg, method, ds.num_classes, model, ds.mean, ds.std)
    if cfg.compile in ("mixer", "all") and mixer is not None:
        compile_mixer(mixer)
    trained = model.parameters()
    if getattr(mixer, "learned", False):  # a learner trains its mask generator with the model: one optimiser
        if ddp:
            raise ValueError(f"{method}: learned mixing under torchrun is not supported yet; run it in one process")
        mixer.to(device).set_total_steps(cfg.epochs * steps_per_epoch)
        trained = mixer.param_groups(lr=cfg.lr)
    opt = torch.optim.SGD(trained, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps_per_epoch))
    shape = (1, -1, *([1] * ds.spatial_dims))
    return RunParts(cfg=cfg, device=device, model=model, net=net, opt=opt, sched=sched, mixer=mixer,
                    params=method_params(cfg, method), num_classes=ds.num_classes,
                    mean=torch.tensor(ds.mean, device=device).view(shape),
                    std=torch.tensor(ds.std, device=device).view(shape),
                    pad=_pad_for(ds, cfg), settings=settings, steps_per_epoch=steps_per_epoch)


def train_step(parts: RunParts, xb: torch.Tensor, yb: torch.Tensor, g_aug: torch.Generator,
               g_mix: torch.Generator, timing: Optional[Dict[str, float]] = None) -> torch.Tensor:
    """One optimiser step on the raw batch ``xb`` (pixels in [0, 1], on the device), ``yb`` class ids;
    returns the loss (detached). With ``timing``, the seconds spent mixing are added to ``timing["mix"]``
    (the device is synchronised around the mixing call, so keep it for timed passes only)."""
    cfg, K = parts.cfg, parts.num_classes
    if cfg.augment:
        xb = random_crop_flip(xb, pad=parts.pad, generator=g_aug)
    xb = parts.norm(xb)
    if parts.settings["channels_last"]:
        xb = xb.contiguous(memory_format=torch.channels_last)
    # zero before mixing: saliency methods with clean_lam > 0 leave the clean-loss gradient in
    # .grad on purpose, to be added to the mixed loss's gradient (PuzzleMix / Co-Mixup)
    parts.opt.zero_grad(set_to_none=True)
    logits = None
    learner = parts.learner
    with torch.autocast("cuda", dtype=torch.bfloat16) if parts.settings["amp"] else nullcontext():
        if learner is not None:  # the learner's own loss: classifier terms + generator terms
            t0 = device_clock(parts.device) if timing is not None else 0.0
            loss = learner(xb, yb, generator=g_mix).loss
            if timing is not None:
                timing["mix"] = timing.get("mix", 0.0) + device_clock(parts.device) - t0
        elif parts.mixer is None:
            inputs, target = xb, one_hot(yb, K, cfg.smoothing)
        else:
            t0 = device_clock(parts.device) if timing is not None else 0.0
            opts = {"forward": parts.net} if parts.mixer.runs_model else {}
            if isinstance(parts.mixer, Alternate):  # the part of this batch from the global step (resumes exactly)
                opts["step"] = parts.sched.last_epoch
            res = parts.mixer.mix(xb, yb, generator=g_mix, **opts)
            inputs, target, logits = res.inputs, soft_targets(yb, res, K, cfg.smoothing), res.outputs
            if timing is not None:
                timing["mix"] = timing.get("mix", 0.0) + device_clock(parts.device) - t0
        if learner is None and logits is None:
            logits = parts.net(inputs)
    if learner is None:
        loss = soft_cross_entropy(logits, target) if cfg.loss == "soft_ce" else bce_on_softmax(logits, target)
    loss.backward()
    parts.opt.step()
    if learner is not None:
        learner.update_teacher()  # the EMA teacher, after the optimiser step
    parts.sched.step()
    return loss.detach()


def device_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work (CUDA is asynchronous): the clock
    of a timed region of a run."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()

"""Training one (method, seed) run under the shared benchmark protocol.

Determinism and resume: every random stream (weight init, epoch order, augmentation, mixing) comes from
a generator seeded by a hash of ``(seed, stream, epoch, rank)``. A checkpoint (model, optimiser,
scheduler, records) is written atomically after every epoch, so a run killed mid-epoch restarts that
epoch from the checkpoint and ends with exactly the numbers of an uninterrupted run.

Distributed data parallel: started under ``torchrun``, each rank takes its share of every global batch,
mixes it with its own rank-specific generator, and gradients are averaged by DDP (gloo on CPU, nccl on
GPU). Rank 0 evaluates and writes files.
"""
from __future__ import annotations

import inspect
import math
import os
import statistics
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import nn

from .. import registry
from ..hooks import stage_names
from ..losses import bce_on_softmax, soft_cross_entropy
from ..sampling import derive_seed
from ..targets import one_hot, soft_targets
from .config import BenchConfig
from .data import DataSplit, random_crop_flip
from .io import atomic_torch_save, atomic_write_jsonl, env_info, read_jsonl
from .models import build_model

__all__ = ["derive_seed", "make_generator", "resolve_device", "build_mixer", "method_params", "train_run", "DistInfo"]


#: evaluation batch size: on CPU, 256 runs small CNNs about 2.5x faster than 1024 (cache-resident activations)
EVAL_BATCH = 256


def make_generator(*parts: Any, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
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


def method_params(cfg: BenchConfig, method: str) -> Dict[str, Any]:
    """The method's effective hyper-parameters: registry defaults overridden by the config."""
    if method == "vanilla":
        return {}
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


def _quick_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm, device, bs: int = EVAL_BATCH):
    was = model.training
    model.eval()
    correct, nll_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            logits = model(norm(x[i:i + bs].to(device))).float()
            yb = y[i:i + bs].to(device)
            correct += int((logits.argmax(1) == yb).sum())
            nll_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
    model.train(was)
    return correct / x.shape[0], nll_sum / x.shape[0]


def _param_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum() for p in model.parameters()))


def train_run(cfg: BenchConfig, ds: DataSplit, method: str, seed: int, run_dir: Path, *,
              on_epoch: Optional[Callable[[List[dict]], None]] = None, resume: bool = True,
              stop_after_steps: Optional[int] = None) -> List[dict]:
    """Train and evaluate one (method, seed) run; returns its records (one per epoch, the last final).

    ``on_epoch(records)`` is called on rank 0 after every epoch (the runner rewrites results.jsonl).
    ``stop_after_steps`` raises ``KeyboardInterrupt`` after that many optimiser steps (for tests of resume).
    """
    from . import eval as metrics  # lazy: matplotlib-free, but keeps `import mixkit.bench.trainer` light

    di = DistInfo()
    device = resolve_device(cfg.device)
    if di.enabled and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", di.rank)))
        torch.cuda.set_device(device)
    run_dir = Path(run_dir)
    state_dir = run_dir / "state"
    tag = f"{method}-s{seed}"
    ckpt_path = state_dir / f"{tag}.pt"
    records_path = state_dir / f"{tag}.jsonl"

    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(cfg.model, ds.num_classes, ds.in_channels, ds.spatial_dims, cfg.width).to(device)
    use_cl = cfg.channels_last and device.type == "cuda" and ds.spatial_dims == 2
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    net: nn.Module = model
    if di.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    n = ds.x_train.shape[0]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    mixer = build_mixer(cfg, method, ds.num_classes, model, ds.mean, ds.std)
    # a learner (AutoMix, AdAutoMix) trains its mask generator with the model: one optimiser for both
    learner = mixer if method != "vanilla" and registry.is_learned(method) else None
    if learner is not None:
        if di.enabled:
            raise ValueError(f"{method}: learned mixing under torchrun is not supported yet; run it in one process")
        learner.to(device).set_total_steps(cfg.epochs * steps_per_epoch)
    trained = learner.param_groups(lr=cfg.lr) if learner is not None else model.parameters()
    opt = torch.optim.SGD(trained, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps_per_epoch))
    params = method_params(cfg, method)
    K = ds.num_classes
    mean = torch.tensor(ds.mean, device=device).view(1, -1, *([1] * ds.spatial_dims))
    std = torch.tensor(ds.std, device=device).view(1, -1, *([1] * ds.spatial_dims))
    norm = lambda x: (x - mean) / std  # noqa: E731
    amp = cfg.amp and device.type == "cuda"
    pad = _pad_for(ds, cfg)

    records: List[dict] = []
    start = 0
    key = cfg.run_key()
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck.get("key") == key:
            model.load_state_dict(ck["model"])
            if learner is not None:
                learner.load_state_dict(ck["learner"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            records = ck["records"]
            start = ck["epoch"] + 1
    if start >= cfg.epochs and records and records[-1].get("final"):
        return records

    env = env_info(device, di.world)
    conf = cfg.to_dict()
    x_train, y_train = ds.x_train, ds.y_train
    steps_done = 0
    for epoch in range(start, cfg.epochs):
        net.train()
        perm = torch.randperm(n, generator=make_generator(seed, "order", epoch))
        g_aug = make_generator(seed, "augment", epoch, di.rank)
        g_mix = make_generator(seed, "mix", epoch, di.rank)
        loss_sum, seen, t_train = 0.0, 0, 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if di.world > 1:
                idx = idx[di.rank::di.world]
                if idx.numel() == 0:
                    idx = perm[:1]
            t0 = time.perf_counter()
            xb, yb = x_train[idx].to(device, non_blocking=True), y_train[idx].to(device, non_blocking=True)
            if cfg.augment:
                xb = random_crop_flip(xb, pad=pad, generator=g_aug)
            xb = norm(xb)
            if use_cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            # zero before mixing: saliency methods with clean_lam > 0 leave the clean-loss gradient in
            # .grad on purpose, to be added to the mixed loss's gradient (PuzzleMix / Co-Mixup)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
                if learner is not None:  # the learner's own loss: classifier terms + generator terms
                    loss = learner(xb, yb, generator=g_mix).loss
                else:
                    loss = _mixed_step_loss(cfg, net, mixer, xb, yb, K, g_mix)
            loss.backward()
            opt.step()
            if learner is not None:
                learner.update_teacher()
            sched.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_train += time.perf_counter() - t0
            loss_sum += float(loss.detach()) * idx.numel()
            seen += idx.numel()
            steps_done += 1
            if stop_after_steps is not None and steps_done >= stop_after_steps:
                raise KeyboardInterrupt(f"stopped after {steps_done} steps (test hook)")
        images_per_s = seen * di.world / t_train if t_train > 0 else float("nan")
        rec: Dict[str, Any] = {"method": method, "seed": seed, "epoch": epoch, "epochs": cfg.epochs,
                               "final": epoch == cfg.epochs - 1, "train_loss": loss_sum / max(1, seen),
                               "train_time_s": t_train, "images_per_s": images_per_s,
                               "lr": opt.param_groups[0]["lr"]}
        if di.main:
            top1, nll_v = _quick_eval(model, ds.x_test, ds.y_test, norm, device)
            rec.update(test_top1=top1, test_nll=nll_v)
        if rec["final"]:
            checks = [_param_checksum(model)]
            if di.enabled:
                gathered = [None] * di.world
                dist.all_gather_object(gathered, checks[0])
                checks = gathered
            rec["replica_checksums"] = checks
        if rec["final"] and di.main:
            rec["metrics"] = _final_metrics(cfg, ds, model, norm, device, seed, records + [rec], metrics)
            if learner is not None:  # the papers evaluate the classifier; the EMA teacher's numbers beside it
                rec["metrics"]["teacher_top1"], rec["metrics"]["teacher_nll"] = _quick_eval(
                    learner.teacher, ds.x_test, ds.y_test, norm, device)
        rec.update(params=params, run_key=key, config=conf, env=env, time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        records.append(rec)
        if di.main:
            state = {"key": key, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "records": records}
            if learner is not None:
                state["learner"] = learner.state_dict()  # teacher, generator, step counter, schedule
            atomic_torch_save(state, ckpt_path)
            atomic_write_jsonl(records_path, records)
            if on_epoch is not None:
                on_epoch(records)
        di.barrier()
    return records


def _mixed_step_loss(cfg: BenchConfig, net: nn.Module, mixer, xb, yb, K: int, g_mix) -> torch.Tensor:
    """The loss of one step of vanilla training (``mixer`` None) or of a mixer: mix, forward, soft targets."""
    logits = None
    if mixer is None:
        inputs, target = xb, one_hot(yb, K, cfg.smoothing)
    else:
        res = mixer.mix(xb, yb, generator=g_mix, **({"forward": net} if mixer.runs_model else {}))
        inputs, target, logits = res.inputs, soft_targets(yb, res, K, cfg.smoothing), res.outputs
    if logits is None:
        logits = net(inputs)
    return soft_cross_entropy(logits, target) if cfg.loss == "soft_ce" else bce_on_softmax(logits, target)


def _final_metrics(cfg, ds, model, norm, device, seed, records, metrics) -> Dict[str, Any]:
    out = metrics.evaluate(
        model, ds.x_test, ds.y_test, norm, generator=make_generator(seed, "eval"),
        corruptions=cfg.eval_corruptions, fgsm_eps=cfg.fgsm_eps if cfg.eval_fgsm else None,
        occlusion=cfg.eval_occlusion, max_eval=cfg.max_eval, device=device, batch_size=EVAL_BATCH)
    last = [r["test_top1"] for r in records[-cfg.median_last:]]
    out["median_top1"] = statistics.median(last)
    out["median_last"] = len(last)
    return out


def load_run_records(run_dir: Path, method: str, seed: int) -> List[dict]:
    return read_jsonl(Path(run_dir) / "state" / f"{method}-s{seed}.jsonl")

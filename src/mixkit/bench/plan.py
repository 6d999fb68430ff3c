"""Checking a whole benchmark plan before its first training step.

Everything a run would fail on later is tried once up front, so a typo never costs the runs trained
before it: every method is known, available and fits the data; the device exists; the model builds;
every mixer builds with its hyper-parameters (unknown names such as ``mixup.alpah``, invalid values such
as ``mixup.alpha=-1``); every checkpoint that would be resumed can be read. The data itself is loaded
before (a missing dataset fails there, with the way to get it). All problems are reported together, in
one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Tuple

from .. import registry
from .config import BenchConfig
from .data import DataSplit
from .io import CheckpointError, load_checkpoint
from .models import build_model
from .step import build_mixer, method_parts, needs_model, resolve_device

__all__ = ["PlanError", "check_methods", "check_plan", "check_checkpoints"]


class PlanError(ValueError):
    """A benchmark plan that cannot run; the message lists every problem and its fix."""


def _method_problems(cfg: BenchConfig, ds: DataSplit) -> Tuple[List[str], List[str]]:
    """The problems of the method list, and the methods that passed (vanilla excluded)."""
    problems, ok = [], []
    for m in cfg.methods:
        if m == "vanilla":
            continue
        found = []
        for part in method_parts(m):  # an alternation "a+b": every part must run
            try:
                registry.spec(part)
            except ValueError as e:
                found.append(f"{e} (see `mixkit list`)")
                continue
            if not registry.is_available(part):
                found.append(f"{part}: not available ({registry.describe(part).get('error', 'import failed')})")
                continue
            dims = registry.spatial_dims(part)
            if ds.spatial_dims not in dims:
                found.append(f"{part}: supports {dims}-D data, dataset {ds.name!r} is {ds.spatial_dims}-D")
        problems += found
        if not found:
            ok.append(m)
    return problems, ok


def _raise(problems: List[str], what: str) -> None:
    if problems:
        raise PlanError(f"cannot run {what}: " + "; ".join(" ".join(p.split()) for p in problems))


def check_methods(cfg: BenchConfig, ds: DataSplit) -> None:
    """Fail early, with one clear message, on unknown / unavailable / incompatible methods."""
    _raise(_method_problems(cfg, ds)[0], "these methods")


def check_plan(cfg: BenchConfig, ds: DataSplit) -> None:
    """Raise :class:`PlanError` unless every run of ``cfg`` on ``ds`` can start: the methods, the device,
    the model, and every mixer built once with the model."""
    problems, methods = _method_problems(cfg, ds)
    try:
        resolve_device(cfg.device)
    except ValueError as e:
        problems.append(f"--device: {e}")
    try:
        model = build_model(cfg.model, ds.num_classes, ds.in_channels, ds.spatial_dims, cfg.width)
    except (TypeError, ValueError) as e:
        problems.append(f"--model: {e}")
        model = None
    for m in methods:
        if model is None and needs_model(m):
            continue
        try:
            build_mixer(cfg, m, ds.num_classes, model, ds.mean, ds.std)
        except (TypeError, ValueError) as e:
            given = ", ".join(f"--param {m}.{k}={v!r}" for k, v in cfg.params_for(m).items())
            problems.append(f"{m}: {e}" + (f" (given: {given})" if given else ""))
    _raise(problems, "this benchmark")


def check_checkpoints(out, runs: Iterable[Tuple[str, int]]) -> None:
    """Raise :class:`PlanError` when a checkpoint that a run of ``runs`` would resume from
    (``out/state/<method>-s<seed>.pt``) cannot be read; the message names each and the fix."""
    problems = []
    for method, seed in runs:
        path = Path(out) / "state" / f"{method}-s{seed}.pt"
        if path.exists():
            try:
                load_checkpoint(path)
            except CheckpointError as e:
                problems.append(str(e))
    _raise(problems, "this benchmark")

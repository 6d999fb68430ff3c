"""Throughput measured like with like: one timed pass, every method under the same load.

Images/s taken from the training runs compare runs that shared the CPU cores with other runs
(``--jobs``) against runs that trained alone, so a method can look faster than vanilla. This pass
times instead every method's real training step (:func:`mixkit.bench.step.train_step`: augment, mix,
forward, backward, update) in one process, with the benchmark's thread count, on the same batch, in
interleaved rounds (``round r`` times every method in turn, the order rotated from round to round), so
a change of load during the pass touches every method alike. The time inside the mixer is taken
apart too. The result is written to ``throughput.json`` and the report uses it for images/s and the
overhead against vanilla.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from .config import BenchConfig
from .data import DataSplit
from .io import atomic_write_text
from .step import build_parts, device_clock, make_generator, train_step

__all__ = ["ROUNDS", "WARMUP_STEPS", "time_methods", "throughput_is_current", "write_throughput"]

#: interleaved rounds of the timed pass, and untimed steps per method before them
ROUNDS = 3
WARMUP_STEPS = 1


def time_methods(cfg: BenchConfig, ds: DataSplit, methods: Sequence[str], device: torch.device,
                 steps: Optional[int] = None) -> Dict[str, Any]:
    """Time ``steps`` (default ``cfg.throughput_steps``) training steps of each method, spread over
    :data:`ROUNDS` interleaved rounds after :data:`WARMUP_STEPS` warm-up steps; returns the dict written
    to ``throughput.json``."""
    steps = cfg.throughput_steps if steps is None else steps
    per_round = max(1, math.ceil(steps / ROUNDS))
    parts = {m: build_parts(cfg, ds, m, 0, device) for m in methods}
    idx = torch.randperm(ds.n_train, generator=make_generator(0, "throughput"))[:cfg.batch_size]
    xb, yb = ds.x_train[idx].to(device), ds.y_train[idx].to(device)
    gens = {m: (make_generator(0, "throughput-augment", m), make_generator(0, "throughput-mix", m)) for m in methods}
    for m in methods:
        parts[m].net.train()
        for _ in range(WARMUP_STEPS):
            train_step(parts[m], xb, yb, *gens[m])
    seconds: Dict[str, list] = {m: [] for m in methods}
    mixing: Dict[str, float] = {m: 0.0 for m in methods}
    for r in range(ROUNDS):
        order = list(methods[r % len(methods):]) + list(methods[:r % len(methods)])
        for m in order:
            timing: Dict[str, float] = {}
            t0 = device_clock(device)
            for _ in range(per_round):
                train_step(parts[m], xb, yb, *gens[m], timing=timing)
            seconds[m].append(device_clock(device) - t0)
            mixing[m] += timing.get("mix", 0.0)
    n = xb.shape[0]
    return {
        "run_key": cfg.run_key(), "device": str(device), "threads": torch.get_num_threads(),
        "batch_size": int(n), "rounds": ROUNDS, "steps_per_round": per_round, "warmup_steps": WARMUP_STEPS,
        "methods": {m: {"images_per_s": [per_round * n / s for s in seconds[m]],
                        "step_ms": 1000 * statistics.median(seconds[m]) / per_round,
                        "mix_ms": 1000 * mixing[m] / (ROUNDS * per_round)} for m in methods},
    }


def write_throughput(path, result: Dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n")


def throughput_is_current(path, cfg: BenchConfig, methods: Sequence[str]) -> bool:
    """Whether ``path`` already holds a pass of this protocol and thread count for all of ``methods``."""
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(old, dict) and old.get("run_key") == cfg.run_key()
            and set(methods) <= set(old.get("methods") or {}))

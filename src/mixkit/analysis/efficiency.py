"""Efficiency against accuracy (the AdAutoMix paper's fig. 9): one point per method of a ``mixkit bench``
run, training time per epoch against final top-1.

The time is read two ways, both from the run folder: the wall time of each training epoch as the runs
logged it (``train_time_s`` of every epoch record, which depends on what else ran at the same time), and,
when the run has one, the timed throughput pass (``throughput.json``: every method's step timed alike in
one process, the like-with-like figure; see docs/design.md, the benchmark pipeline). See
docs/analysis/efficiency.md.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..bench.io import atomic_path
from ..bench.report import load_results, summarize

__all__ = ["efficiency_points", "plot_efficiency"]

PathLike = Union[str, Path]


def efficiency_points(run_dir: PathLike) -> List[Dict[str, Any]]:
    """One dict per method of the run in ``run_dir`` (its ``results.jsonl``, and ``throughput.json`` if any).

    Keys: ``method``; ``top1_mean``, ``top1_std`` (over the finished seeds, as the report), ``n_seeds``;
    ``epoch_s`` (the median over seeds and epochs of the logged training time of one epoch);
    ``step_ms`` and ``mix_ms`` (the timed pass, ``None`` without one); ``epoch_s_timed`` (``step_ms`` times
    the steps of one epoch, ``None`` without the timed pass or the training-set size); ``time_ratio``
    (``epoch_s`` over vanilla's, ``None`` without vanilla).
    """
    run_dir = Path(run_dir)
    results = run_dir / "results.jsonl"
    if not results.is_file():
        raise FileNotFoundError(f"run_dir {str(run_dir)!r} holds no results.jsonl (a `mixkit bench --out` folder)")
    records = load_results(results)
    throughput = _read_json(run_dir / "throughput.json")
    summary = summarize(records, throughput)
    epoch_times = _epoch_times(records)
    steps = _steps_per_epoch(summary.setup, summary.config)
    points = []
    for row in summary:
        top1 = row.stats.get("top1")
        timing = row.timing or {}
        step_ms = timing.get("step_ms")
        times = epoch_times.get(row.method, [])
        points.append({
            "method": row.method,
            "top1_mean": None if top1 is None else top1.mean,
            "top1_std": None if top1 is None else top1.std,
            "n_seeds": row.n,
            "epoch_s": statistics.median(times) if times else None,
            "step_ms": step_ms,
            "mix_ms": timing.get("mix_ms"),
            "epoch_s_timed": None if step_ms is None or steps is None else step_ms * steps / 1000.0,
        })
    ref = next((p["epoch_s"] for p in points if p["method"] == "vanilla"), None)
    for p in points:
        p["time_ratio"] = None if ref is None or p["epoch_s"] is None else p["epoch_s"] / ref
    return points


def plot_efficiency(points: Sequence[Mapping[str, Any]], path: PathLike, *, time: str = "epoch_s",
                    title: Optional[str] = None) -> Path:
    """Save the accuracy-against-time scatter of :func:`efficiency_points` to ``path`` (PNG).

    ``time`` is the x-axis: ``"epoch_s"`` (logged epoch time) or ``"epoch_s_timed"`` (the timed pass).
    Error bars are the standard deviation of top-1 over seeds.
    """
    if time not in ("epoch_s", "epoch_s_timed"):
        raise ValueError(f"time must be 'epoch_s' or 'epoch_s_timed', got {time!r}")
    pts = [p for p in points if p.get(time) is not None and p.get("top1_mean") is not None]
    if not pts:
        raise ValueError(f"no point has both {time!r} and a top-1 (is the run finished? timed pass present?)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    for p in pts:
        err = 100 * p["top1_std"] if p.get("top1_std") is not None and not math.isnan(p["top1_std"]) else None
        ax.errorbar(p[time], 100 * p["top1_mean"], yerr=err, fmt="o", capsize=3)
        ax.annotate(p["method"], (p[time], 100 * p["top1_mean"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    ax.set_xlabel("training time per epoch (s)" + (", timed pass" if time == "epoch_s_timed" else ", as logged"))
    ax.set_ylabel("final top-1 (%)")
    ax.set_title(title or "accuracy against training time", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _epoch_times(records: Sequence[Mapping[str, Any]]) -> Dict[str, List[float]]:
    """The logged training time of every epoch, per method (each epoch once, the last record kept)."""
    seen: Dict[tuple, float] = {}
    for r in records:
        t = r.get("train_time_s")
        if isinstance(t, (int, float)) and r.get("method") is not None:
            seen[(r["method"], r.get("seed"), r.get("epoch"))] = float(t)
    out: Dict[str, List[float]] = {}
    for (method, _, _), t in seen.items():
        out.setdefault(method, []).append(t)
    return out


def _steps_per_epoch(setup: Mapping[str, Any], config: Mapping[str, Any]) -> Optional[int]:
    n, b = setup.get("n_train"), config.get("batch_size")
    if not isinstance(n, int) or not isinstance(b, int) or b < 1:
        return None
    return math.ceil(n / b)

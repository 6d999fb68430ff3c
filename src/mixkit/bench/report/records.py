"""Reading ``results.jsonl`` and grouping its lines into runs, one per (method, seed).

The trainer appends one JSON line per (method, seed, epoch); the last epoch of each (method, seed)
carries ``"final": true`` and the ``"metrics"`` dict of :func:`mixkit.bench.eval.evaluate` (plus
``median_top1``). A (method, seed, epoch) logged twice (a resumed run) keeps its last line; a
(method, seed) without a final line counts in the learning curves only.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..io import parse_json_lines
from .values import _dict, _first, _num, _seed_key


def load_results(path) -> List[Dict[str, Any]]:
    """The records of a ``results.jsonl`` file, in file order.

    Blank lines are skipped. A line that is not a JSON object (typically a truncated last line left
    by a killed run) is skipped with a :class:`RuntimeWarning` naming the line; the file is never
    modified. Raises ``FileNotFoundError`` when ``path`` does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file {str(p)!r} not found (expected the results.jsonl of a `mixkit bench` run)")
    text = p.read_text(encoding="utf-8", errors="replace")
    return parse_json_lines(text, source=str(p), objects_only=True, stacklevel=2)


@dataclass
class _Run:
    """All lines of one (method, seed): epoch lines keyed by epoch, and the final line."""

    epochs: Dict[int, Dict[str, Any]] = field(default_factory=dict)
    final: Optional[Dict[str, Any]] = None


def _group(records: Sequence[Mapping[str, Any]]) -> Tuple[Dict[str, Dict[Any, _Run]], List[str]]:
    """``{method: {seed: _Run}}`` in order of first appearance; later lines of an epoch replace earlier ones."""
    runs: Dict[str, Dict[Any, _Run]] = {}
    notes: List[str] = []
    skipped = 0
    for rec in records:
        method, seed = rec.get("method"), rec.get("seed")
        if not isinstance(method, str) or seed is None:
            skipped += 1
            continue
        seed = _seed_key(seed)
        run = runs.setdefault(method, {}).setdefault(seed, _Run())
        ep = rec.get("epoch")
        ep = int(ep) if _num(ep) is not None else len(run.epochs)
        run.epochs[ep] = dict(rec)
    if skipped:
        notes.append(f"{skipped} record(s) without a method name or a seed were ignored.")
    for per_seed in runs.values():
        for run in per_seed.values():
            # the final line is the last epoch logged, and only if it says so
            last = run.epochs[max(run.epochs)]
            run.final = last if last.get("final") else None
    return runs, notes


def _median_last(run: _Run, k: int) -> Optional[float]:
    vals = [_num(run.epochs[e].get("test_top1")) for e in sorted(run.epochs)[-k:]]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _final_values(run: _Run, k: int) -> Dict[str, Optional[float]]:
    """The scalar metrics of one finished (method, seed) run; evaluate()'s key names first."""
    rec = run.final or {}
    m = _dict(rec.get("metrics"))
    cor, occ, rel = m.get("corruption"), m.get("occlusion"), _dict(m.get("reliability"))
    ips = [_num(r.get("images_per_s")) for r in run.epochs.values()]
    ips = [v for v in ips if v is not None]
    walls = [_num(r.get("wall_time_s")) for r in run.epochs.values()]
    median = _num(m.get("median_top1"))
    if median is None:
        median = _median_last(run, int(_num(m.get("median_last")) or k))
    return {
        "top1": _first(m.get("top1"), rec.get("test_top1")),
        "median_top1": median,
        "nll": _first(m.get("nll"), rec.get("test_nll")),
        "ece": _first(m.get("ece"), rel.get("ece")),
        "brier": _num(m.get("brier")),
        "corruption": _first(m.get("mean_corruption_acc"), _dict(cor).get("mean"), cor),
        "fgsm": _first(m.get("fgsm_acc"), m.get("fgsm")),
        "occlusion_auc": _first(m.get("occlusion_auc"), _dict(occ).get("auc")),
        "robust_top1": _first(m.get("robust_top1")),
        "images_per_s": statistics.fmean(ips) if ips else None,
        "teacher_top1": _num(m.get("teacher_top1")),
        # the run's wall-clock: every epoch's (only when each epoch recorded it)
        "wall_time_s": sum(walls) if walls and None not in walls else None,
    }

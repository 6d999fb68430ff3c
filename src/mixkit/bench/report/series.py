"""The data behind the report's plots, taken from the grouped runs (plain numbers, no matplotlib):
learning curves, pooled reliability bins, corruption accuracies and occlusion curves.

The ``*_by_method`` functions gather, per row of a :class:`~.summary.Summary`, the numbers of the
method's finished seeds; a method without the data is left out.
"""
from __future__ import annotations

import statistics
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .records import _Run
from .stats import _mean_std
from .summary import MethodSummary, Summary
from .values import _dict, _first, _num

_Runs = Dict[str, Dict[Any, _Run]]


def _learning_curves(runs: _Runs, method: str) -> List[Tuple[int, float, float]]:
    """``[(epoch, mean, std)]`` of the test top-1 over all of ``method``'s seeds, finished or not."""
    by_epoch: Dict[int, List[float]] = {}
    for run in runs.get(method, {}).values():
        for ep, rec in run.epochs.items():
            v = _num(rec.get("test_top1"))
            if v is not None:
                by_epoch.setdefault(ep, []).append(v)
    return [(ep, *_mean_std(vals)) for ep, vals in sorted(by_epoch.items())]


def _pooled_reliability(rels: Sequence[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """Pool reliability data of several seeds: counts summed, acc/conf count-weighted."""
    rels = [r for r in rels if isinstance(r, Mapping) and r.get("bin_count") and r.get("bin_edges")]
    if not rels:
        return None
    edges = [float(e) for e in rels[0]["bin_edges"]]
    nb = len(edges) - 1
    count = [0.0] * nb
    s_acc = [0.0] * nb
    s_conf = [0.0] * nb
    used = 0
    for r in rels:
        c, a, f = r.get("bin_count"), r.get("bin_acc"), r.get("bin_conf")
        if not (isinstance(a, list) and isinstance(f, list) and len(c) == len(a) == len(f) == nb):
            continue
        used += 1
        for b in range(nb):
            cb = _num(c[b]) or 0.0
            count[b] += cb
            s_acc[b] += cb * (_num(a[b]) or 0.0)
            s_conf[b] += cb * (_num(f[b]) or 0.0)
    total = sum(count)
    if not used or total <= 0:
        return None
    return {
        "bin_edges": edges,
        "bin_count": count,
        "bin_acc": [s_acc[b] / count[b] if count[b] else 0.0 for b in range(nb)],
        "bin_conf": [s_conf[b] / count[b] if count[b] else 0.0 for b in range(nb)],
        "ece": sum(abs(s_acc[b] - s_conf[b]) for b in range(nb)) / total,
        "n": total,
        "n_seeds": used,
    }


def _corruption_tables(cor: Any) -> Tuple[Dict[int, float], Dict[str, float]]:
    """``({severity: mean acc over corruptions}, {corruption: mean acc over severities})``."""
    per = _dict(_dict(cor).get("per"))
    by_sev: Dict[int, List[float]] = {}
    by_name: Dict[str, float] = {}
    for name, sevs in per.items():
        accs = []
        for sev, acc in _dict(sevs).items():
            a = _num(acc)
            try:
                s = int(float(sev))
            except (TypeError, ValueError):
                continue
            if a is not None:
                by_sev.setdefault(s, []).append(a)
                accs.append(a)
        if accs:
            by_name[str(name)] = statistics.fmean(accs)
    if not by_name:
        for name, acc in _dict(_dict(cor).get("per_corruption")).items():
            if _num(acc) is not None:
                by_name[str(name)] = _num(acc)
    return {s: statistics.fmean(v) for s, v in sorted(by_sev.items())}, by_name


def _occlusion_points(occ: Any) -> List[Tuple[float, float]]:
    """``[(fraction, accuracy)]`` from evaluate()'s ``{"curve": {f: acc}}`` or ``{"fractions", "acc"}``."""
    occ = _dict(occ)
    pts: List[Tuple[float, float]] = []
    curve = occ.get("curve")
    if isinstance(curve, dict):
        for f, a in curve.items():
            try:
                f = float(f)
            except (TypeError, ValueError):
                continue
            if _num(a) is not None:
                pts.append((f, _num(a)))
    elif isinstance(curve, list):
        pts = [(float(p[0]), _num(p[1])) for p in curve if isinstance(p, (list, tuple)) and len(p) == 2 and _num(p[1]) is not None]
    else:
        fr = occ.get("fractions")
        acc = next((occ[k] for k in ("acc", "accs", "accuracy") if isinstance(occ.get(k), list)), None)
        if isinstance(fr, list) and acc is not None:
            pts = [(float(f), _num(a)) for f, a in zip(fr, acc) if _num(f) is not None and _num(a) is not None]
    return sorted(pts)


def _seed_metrics(runs: _Runs, row: MethodSummary) -> List[Dict[str, Any]]:
    """The ``metrics`` dicts of the final lines of ``row``'s finished seeds (``{}`` where missing)."""
    return [_dict(runs[row.method][s].final.get("metrics")) for s in row.seeds]


def _reliability_by_method(summary: Summary, runs: _Runs) -> List[Tuple[str, Dict[str, Any]]]:
    """``[(method, reliability pooled over its seeds)]`` (see :func:`_pooled_reliability`)."""
    pooled = []
    for r in summary.rows:
        rel = _pooled_reliability([m.get("reliability") for m in _seed_metrics(runs, r)])
        if rel is not None:
            pooled.append((r.method, rel))
    return pooled


def _corruption_by_method(summary: Summary,
                          runs: _Runs) -> Dict[str, Tuple[Dict[int, List[float]], Dict[str, List[float]]]]:
    """``{method: ({severity: [acc per seed]}, {corruption: [acc per seed]})}``; severity 0 is the clean
    accuracy of the same test subset (``robust_top1``, else ``top1``)."""
    data = {}
    for r in summary.rows:
        sev_vals: Dict[int, List[float]] = {}
        name_vals: Dict[str, List[float]] = {}
        for m in _seed_metrics(runs, r):
            by_sev, by_name = _corruption_tables(m.get("corruption"))
            if not by_sev and not by_name:
                continue
            clean = _first(m.get("robust_top1"), m.get("top1"))
            if clean is not None and by_sev:
                by_sev = {0: clean, **by_sev}
            for sev, a in by_sev.items():
                sev_vals.setdefault(sev, []).append(a)
            for name, a in by_name.items():
                name_vals.setdefault(name, []).append(a)
        if sev_vals or name_vals:
            data[r.method] = (sev_vals, name_vals)
    return data


def _occlusion_by_method(summary: Summary, runs: _Runs) -> Dict[str, List[Tuple[float, float, float]]]:
    """``{method: [(occluded fraction, mean acc, std acc)]}`` over the method's seeds."""
    curves = {}
    for r in summary.rows:
        by_f: Dict[float, List[float]] = {}
        for m in _seed_metrics(runs, r):
            for f, a in _occlusion_points(m.get("occlusion")):
                by_f.setdefault(round(f, 6), []).append(a)
        if by_f:
            curves[r.method] = sorted((f, *_mean_std(v)) for f, v in by_f.items())
    return curves

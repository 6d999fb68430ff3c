"""The summary of a benchmark: per method, every metric over its finished seeds, and the paired
differences to vanilla (see :mod:`.stats` for the statistics).

* ``top1`` is the last epoch's accuracy (no test-set epoch picking); ``median_top1`` is the median
  of the test top-1 over the last ``k = config.median_last`` epochs (the OpenMixup convention).
* ``images/s`` is the mean over epochs of the training throughput; ``overhead`` is vanilla's
  images/s divided by the method's (``1.25`` = the method trains 25% slower than vanilla).
* Metrics that are missing or ``null`` (corruptions, FGSM or occlusion switched off) have no
  :class:`~.stats.Stat` (``None``).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .records import _final_values, _group
from .stats import Delta, Stat, paired_difference
from .values import _dict, _num, _sort_seeds

#: the method every other method is compared with
REFERENCE = "vanilla"

#: metrics summarised per method: key -> (label, kind); kind "acc" is shown in %, "ratio" in % too (ECE)
METRICS: Dict[str, Tuple[str, str]] = {
    "top1": ("top-1 final", "acc"),
    "median_top1": ("top-1 median last k", "acc"),
    "nll": ("NLL", "nll"),
    "ece": ("ECE", "acc"),
    "brier": ("Brier", "nll"),
    "corruption": ("corruption acc", "acc"),
    "fgsm": ("FGSM acc", "acc"),
    "occlusion_auc": ("occlusion AUC", "acc"),
    "robust_top1": ("clean top-1 (robustness subset)", "acc"),
    "images_per_s": ("images/s", "speed"),
    "teacher_top1": ("EMA teacher top-1 final", "acc"),
}

#: metrics with a paired difference to vanilla
DELTA_METRICS = ("top1", "median_top1", "nll", "ece", "brier", "corruption", "fgsm", "occlusion_auc")

# config keys that may differ between records of one comparable benchmark
_VOLATILE_CONFIG = {"methods", "seeds", "method_params", "out", "progress", "threads", "command", "device"}


@dataclass
class MethodSummary:
    """One row of the report: a method's metrics over its finished seeds.

    Attributes:
        method: the method name.
        seeds: seeds with a final line (only those enter ``stats``).
        incomplete_seeds: seeds logged without a final line (still running or killed).
        epochs_logged: number of epoch lines per seed (all seeds).
        params: the method's hyper-parameters (from the final lines; see ``params_by_seed``).
        stats: ``{metric: Stat or None}`` for the keys of :data:`METRICS`.
        delta: ``{metric: Delta or None}`` against vanilla (empty when vanilla is absent; ``None``
            for vanilla itself).
        overhead: vanilla's mean images/s divided by this method's (``None`` without vanilla).
        per_seed: ``{metric: {seed: value}}`` (the raw numbers behind ``stats``).
    """

    method: str
    seeds: List[Any]
    incomplete_seeds: List[Any]
    epochs_logged: Dict[Any, int]
    params: Dict[str, Any]
    params_by_seed: Dict[Any, Dict[str, Any]]
    stats: Dict[str, Optional[Stat]]
    delta: Dict[str, Optional[Delta]]
    overhead: Optional[float]
    per_seed: Dict[str, Dict[Any, float]]

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class Summary:
    """What :func:`summarize` returns: one :class:`MethodSummary` per method, in report order.

    Index it by position or by method name (``summary["mixup"].stats["top1"].mean``); iterating
    yields the rows.
    """

    rows: List[MethodSummary]
    config: Dict[str, Any]
    env: Dict[str, Any]
    median_k: int
    reference: Optional[str]
    missing_methods: List[str]
    notes: List[str]
    n_records: int
    run_key: Optional[str] = None

    def __iter__(self) -> Iterator[MethodSummary]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> MethodSummary:
        if isinstance(key, str):
            for row in self.rows:
                if row.method == key:
                    return row
            raise KeyError(f"no results for method {key!r}; methods: {[r.method for r in self.rows]}")
        return self.rows[key]

    @property
    def methods(self) -> List[str]:
        return [r.method for r in self.rows]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-friendly dict of the summary (seeds become strings only where JSON forces it)."""
        return asdict(self)


def _last_dict(records: Sequence[Mapping[str, Any]], key: str) -> Dict[str, Any]:
    """A copy of the last record's ``key`` that is a dict (``"config"``, ``"env"``), or ``{}``."""
    for rec in reversed(records):
        if isinstance(rec.get(key), dict):
            return dict(rec[key])
    return {}


def summarize(records: Sequence[Mapping[str, Any]]) -> Summary:
    """Per-method mean ± std over seeds and paired differences to vanilla.

    Args:
        records: the dicts of ``results.jsonl`` (see :func:`load_results`), in any order.

    Returns:
        A :class:`Summary` whose rows follow ``config.methods`` (methods found in the records but not
        in the config come after, in order of appearance). Each row holds a :class:`Stat` (mean,
        sample std with ``ddof=1``, ``n``) for every metric of :data:`METRICS` (``None`` when no seed
        has it), the paired :class:`Delta` to vanilla for :data:`DELTA_METRICS` when ``"vanilla"``
        was run, and the throughput overhead ``vanilla images/s / method images/s``.
    """
    records = [r for r in records if isinstance(r, Mapping)]
    runs, notes = _group(records)
    config = _last_dict(records, "config")
    env = _last_dict(records, "env")
    k = int(_num(config.get("median_last")) or 5)

    order = [m for m in (config.get("methods") or []) if isinstance(m, str)]
    methods = [m for m in order if m in runs] + [m for m in runs if m not in order]
    missing = [m for m in order if m not in runs]

    # distinct configurations / environments are a comparability warning
    run_keys = {str(r["run_key"]) for r in records if r.get("run_key") is not None}
    keys = run_keys or {json.dumps({k_: v for k_, v in _dict(r.get("config")).items() if k_ not in _VOLATILE_CONFIG},
                                   sort_keys=True, default=str) for r in records if isinstance(r.get("config"), dict)}
    if len(keys) > 1:
        notes.append(f"the records come from {len(keys)} different configurations: numbers may not be comparable.")
    for key in ("mixkit", "git", "torch", "device", "threads", "world_size"):
        vals = sorted({str(_dict(r.get("env")).get(key)) for r in records if key in _dict(r.get("env"))})
        if len(vals) > 1:
            notes.append(f"env {key} differs between records ({', '.join(vals)})"
                         + ("; throughput numbers may not be comparable." if key in ("device", "threads", "world_size")
                            else "; the code or library changed during the run."))

    per_method: Dict[str, Dict[str, Dict[Any, float]]] = {}
    for m in methods:
        per_seed: Dict[str, Dict[Any, float]] = {key: {} for key in METRICS}
        for seed in _sort_seeds(runs[m]):
            run = runs[m][seed]
            if run.final is None:
                continue
            for key, v in _final_values(run, k).items():
                if v is not None:
                    per_seed[key][seed] = v
        per_method[m] = per_seed

    reference = REFERENCE if REFERENCE in runs else None
    ref_ips = None
    if reference is not None and per_method[reference]["images_per_s"]:
        ref_ips = statistics.fmean(per_method[reference]["images_per_s"].values())

    rows: List[MethodSummary] = []
    for m in methods:
        seeds_all = _sort_seeds(runs[m])
        finished = [s for s in seeds_all if runs[m][s].final is not None]
        incomplete = [s for s in seeds_all if runs[m][s].final is None]
        params_by_seed = {s: _dict(runs[m][s].final.get("params")) for s in finished}
        if not params_by_seed:  # nothing finished yet: show what the epoch lines say
            params_by_seed = {s: _dict(next(iter(runs[m][s].epochs.values())).get("params")) for s in seeds_all}
        params = next(iter(params_by_seed.values()), {})
        per_seed = per_method[m]
        stats = {key: Stat.of([(s, v) for s, v in per_seed[key].items()]) for key in METRICS}
        delta: Dict[str, Optional[Delta]] = {}
        if reference is not None and m != reference:
            delta = {key: paired_difference(per_seed[key], per_method[reference][key]) for key in DELTA_METRICS}
        overhead = None
        if ref_ips is not None and stats["images_per_s"] is not None and stats["images_per_s"].mean > 0:
            overhead = ref_ips / stats["images_per_s"].mean
        if incomplete:
            notes.append(f"{m}: seed(s) {', '.join(map(str, incomplete))} have no final line yet "
                         "(still running or killed); they count only in the learning curves.")
        rows.append(MethodSummary(m, finished, incomplete, {s: len(runs[m][s].epochs) for s in seeds_all},
                                  params, params_by_seed, stats, delta, overhead, per_seed))
    if missing:
        notes.append(f"no results yet for: {', '.join(missing)}.")
    run_key = next((str(r["run_key"]) for r in reversed(records) if r.get("run_key") is not None), None)
    return Summary(rows, config, env, k, reference, missing, notes, len(records), run_key)

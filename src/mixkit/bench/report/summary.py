"""The summary of a benchmark: per method, every metric over its finished seeds, and the paired
differences to vanilla (see :mod:`.stats` for the statistics).

* ``top1`` is the last epoch's accuracy (no test-set epoch picking); ``median_top1`` is the median
  of the test top-1 over the last ``k = config.median_last`` epochs (the OpenMixup convention).
  ``k`` is the number of epochs that median really covers (fewer than ``median_last`` in a short run).
* ``images/s`` comes from the timed throughput pass when there is one (``throughput.json``: every
  method's training step in one process, under the same load; mean ± std over its rounds), else from
  the training runs (mean over epochs, then over seeds; runs that shared the CPU with parallel jobs are
  not comparable then). ``overhead`` is vanilla's images/s divided by the method's (``1.25`` = the
  method trains 25% slower than vanilla).
* ``wall_time_s`` is the wall-clock time of a run (training, evaluation and checkpoints, summed over
  its epochs); ``rel_mce`` the corruption error relative to vanilla (Hendrycks & Dietterich's mCE with
  vanilla as the baseline, paired by seed: below 1 = more robust than vanilla).
* Only one configuration is summarised (:mod:`.compare`): runs of other configurations are left out
  and named in ``warnings``, as are differences of environment and setup.
* Metrics that are missing or ``null`` (corruptions, FGSM or occlusion switched off) have no
  :class:`~.stats.Stat` (``None``).
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..config import effective_settings
from ..eval.corruptions import CORRUPTIONS, corruption_error
from .compare import difference_warnings, one_configuration
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
    "wall_time_s": ("wall-clock per run (s)", "speed"),
    "rel_mce": ("corruption error vs vanilla (mCE)", "acc"),
    "teacher_top1": ("EMA teacher top-1 final", "acc"),
}

#: metrics with a paired difference to vanilla
DELTA_METRICS = ("top1", "median_top1", "nll", "ece", "brier", "corruption", "fgsm", "occlusion_auc")

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
        timing: the method's entry of the timed throughput pass (``images_per_s`` per round,
            ``step_ms``, ``mix_ms``), or None when images/s come from the training runs.
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
    timing: Optional[Dict[str, Any]] = None

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class Summary:
    """What :func:`summarize` returns: one :class:`MethodSummary` per method, in report order.

    Index it by position or by method name (``summary["mixup"].stats["top1"].mean``); iterating
    yields the rows. ``warnings`` (also in ``notes``) are what may make the numbers incomparable: other
    configurations left out (``excluded``), differing environments or setups. ``setup`` is the realised
    setup of the runs (data sizes, parameter count, effective amp / channels-last / threads);
    ``corruptions`` the corruptions that ran and those that did not, with why; ``throughput`` how
    images/s were measured (the timed pass's settings, or ``None``: from the training runs).
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
    warnings: List[str] = field(default_factory=list)
    excluded: List[Dict[str, Any]] = field(default_factory=list)
    setup: Dict[str, Any] = field(default_factory=dict)
    corruptions: Dict[str, Any] = field(default_factory=dict)
    throughput: Optional[Dict[str, Any]] = None

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


def summarize(records: Sequence[Mapping[str, Any]], throughput: Optional[Mapping[str, Any]] = None) -> Summary:
    """Per-method mean ± std over seeds and paired differences to vanilla.

    Args:
        records: the dicts of ``results.jsonl`` (see :func:`load_results`), in any order.
        throughput: the timed throughput pass (``throughput.json``); used for images/s and the overhead
            when it was taken under the reported configuration and covers every method.

    Returns:
        A :class:`Summary` whose rows follow ``config.methods`` (methods found in the records but not
        in the config come after, in order of appearance). Each row holds a :class:`Stat` (mean,
        sample std with ``ddof=1``, ``n``) for every metric of :data:`METRICS` (``None`` when no seed
        has it), the paired :class:`Delta` to vanilla for :data:`DELTA_METRICS` when ``"vanilla"``
        was run, and the throughput overhead ``vanilla images/s / method images/s``.
    """
    all_records = [r for r in records if isinstance(r, Mapping)]
    records, warnings, excluded = one_configuration(all_records)
    runs, notes = _group(records)
    config = _last_dict(records, "config")
    env = _last_dict(records, "env")
    warnings += difference_warnings(records)

    order = [m for m in (config.get("methods") or []) if isinstance(m, str)]
    methods = [m for m in order if m in runs] + [m for m in runs if m not in order]
    missing = [m for m in order if m not in runs]
    k = _median_k(runs, config, notes)

    per_method: Dict[str, Dict[str, Dict[Any, float]]] = {}
    corruption: Dict[str, Dict[Any, Any]] = {}  # method -> seed -> evaluate()'s corruption dict
    for m in methods:
        per_seed: Dict[str, Dict[Any, float]] = {key: {} for key in METRICS}
        for seed in _sort_seeds(runs[m]):
            run = runs[m][seed]
            if run.final is None:
                continue
            for key, v in _final_values(run, k).items():
                if v is not None:
                    per_seed[key][seed] = v
            cor = _dict(run.final.get("metrics")).get("corruption")
            if isinstance(cor, dict) and isinstance(cor.get("per"), dict):
                corruption.setdefault(m, {})[seed] = cor
        per_method[m] = per_seed

    reference = REFERENCE if REFERENCE in runs else None
    if reference is not None:
        for m in methods:
            for seed, cor in corruption.get(m, {}).items():
                base = corruption.get(reference, {}).get(seed)
                if base is not None:
                    per_method[m]["rel_mce"][seed] = corruption_error(cor, base)["mce"]
    timed = _timed(throughput, records, methods)
    ref_ips = None
    if reference is not None:
        ref_vals = timed[reference]["images_per_s"] if timed else list(per_method[reference]["images_per_s"].values())
        ref_ips = statistics.fmean(ref_vals) if ref_vals else None

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
        if timed:  # images/s of the timed pass: one value per round
            stats["images_per_s"] = Stat.of([(f"round {i}", v) for i, v in enumerate(timed[m]["images_per_s"])])
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
                                  params, params_by_seed, stats, delta, overhead, per_seed,
                                  dict(timed[m]) if timed else None))
    if missing:
        notes.append(f"no results yet for: {', '.join(missing)}.")
    run_key = next((str(r["run_key"]) for r in reversed(records) if r.get("run_key") is not None), None)
    meta = {k_: v for k_, v in throughput.items() if k_ != "methods"} if timed and throughput else None
    setup = _setup(records, config, env)
    return Summary(rows, config, env, k, reference, missing, warnings + notes, len(all_records), run_key,
                   warnings=warnings, excluded=excluded, setup=setup, corruptions=_corruptions_ran(corruption, setup),
                   throughput=meta)


def _median_k(runs, config: Mapping[str, Any], notes: List[str]) -> int:
    """The number of epochs "median last k" really covers: the trainer records it per final line
    (``metrics.median_last``); else ``config.median_last`` capped by the epochs logged."""
    asked = int(_num(config.get("median_last")) or 5)
    ks = set()
    for per_seed in runs.values():
        for run in per_seed.values():
            if run.final is None:
                continue
            got = _num(_dict(run.final.get("metrics")).get("median_last"))
            ks.add(int(got) if got is not None else min(asked, len(run.epochs)))
    if len(ks) > 1:
        notes.append(f"the median of the last k epochs covers different k between runs ({', '.join(map(str, sorted(ks)))}).")
    return max(ks) if ks else asked


def _timed(throughput: Optional[Mapping[str, Any]], records, methods) -> Optional[Dict[str, Dict[str, Any]]]:
    """The timed pass's entries per method, when the pass matches the records' config and has every method."""
    if not isinstance(throughput, Mapping) or not methods:
        return None
    per = _dict(throughput.get("methods"))
    keys = {str(r["run_key"]) for r in records if r.get("run_key") is not None}
    if (keys and throughput.get("run_key") not in keys) or not all(
            m in per and isinstance(_dict(per[m]).get("images_per_s"), list) and per[m]["images_per_s"] for m in methods):
        return None
    return {m: dict(per[m]) for m in methods}


def _setup(records, config: Mapping[str, Any], env: Mapping[str, Any]) -> Dict[str, Any]:
    """The realised setup of the runs (the last record's ``setup``); for records written before the
    trainer recorded it, the effective settings derived from the config and the device."""
    setup = _last_dict(records, "setup")
    if not setup and config:
        device = str(env.get("device") or config.get("device") or "cpu")
        setup = effective_settings(config, device.split(":")[0].split(" ")[0], None)
        setup.pop("channels_last")  # needs the data's dimensionality, which such records do not hold
        if env.get("threads") is not None:  # what torch really used (older runs did not fix it)
            setup["threads"] = env["threads"]
    return setup


def _corruptions_ran(corruption: Mapping[str, Mapping[Any, Any]], setup: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"ran": [...], "not_run": {name: why}}`` over every final line's corruption results."""
    ran: List[str] = []
    for per_seed in corruption.values():
        for cor in per_seed.values():
            for name in cor.get("names") or list(_dict(cor.get("per"))):
                if name not in ran:
                    ran.append(name)
    if not ran:
        return {}
    shape = setup.get("input_shape")
    not_run = {}
    for name, c in CORRUPTIONS.items():
        if name in ran:
            continue
        if c.channels is not None and shape and shape[0] != c.channels:
            not_run[name] = f"needs {c.channels} channels, the data have {shape[0]}"
        elif shape and len(shape) - 1 not in c.dims:
            not_run[name] = f"supports {'/'.join(map(str, sorted(c.dims)))}-D inputs, the data are {len(shape) - 1}-D"
        else:
            not_run[name] = "not selected"
    return {"ran": ran, "not_run": not_run}

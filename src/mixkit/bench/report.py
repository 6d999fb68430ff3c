"""The report of ``mixkit bench``: tables and plots rebuilt from ``results.jsonl``.

The trainer appends one JSON line per (method, seed, epoch) to ``results.jsonl``; the last epoch of
each (method, seed) carries ``"final": true`` and the ``"metrics"`` dict of
:func:`mixkit.bench.metrics.evaluate` (plus ``median_top1``). This module reads those lines and writes

* ``report.md``: the command, the setup, the environment, the main table (mean ± std over seeds), the
  paired differences to vanilla with 95% t intervals, the per-method hyper-parameters and the plots;
* ``accuracy.png``, ``reliability.png``, ``corruption.png``, ``occlusion.png`` and
  ``calibration_robustness.png`` (each only when its data exist).

Statistics
----------
* Every metric is summarised over seeds as the mean and the *sample* standard deviation
  (``ddof=1``); with one seed the spread is unknown and shown as ``–``.
* ``top1`` is the last epoch's accuracy (no test-set epoch picking); ``median_top1`` is the median of
  the test top-1 over the last ``k = config.median_last`` epochs (the OpenMixup convention).
* The difference to ``vanilla`` is computed from **paired** seeds (seed ``s`` of the method against
  seed ``s`` of vanilla, which share the weight initialisation and the data order): the mean of the
  ``n`` differences ± ``t_{0.975, n-1} * sd / sqrt(n)``. An interval that excludes 0 is marked ``*``.
  With ``n = 1`` no interval is given.
* ``images/s`` is the mean over epochs of the training throughput; ``overhead ×`` is vanilla's
  images/s divided by the method's (``1.25×`` = the method trains 25% slower than vanilla).

Robustness to partial files: blank lines are skipped; a line that is not valid JSON (a writer killed
mid-line) is skipped with a :class:`RuntimeWarning`; a (method, seed, epoch) logged twice (a resumed
run) keeps its last line; a (method, seed) without a final line counts in the learning curves only;
metrics that are missing or ``null`` (corruptions, FGSM or occlusion switched off) are shown as
``n/a`` and their plots are left out.

matplotlib is imported only inside the plotting functions and draws on the Agg canvas without pyplot,
so a report can be rebuilt on a headless machine and nothing is left open in pyplot's global state.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

__all__ = [
    "REFERENCE",
    "Stat",
    "Delta",
    "MethodSummary",
    "Summary",
    "load_results",
    "summarize",
    "paired_difference",
    "t_quantile_975",
    "write_report",
    "write_plots",
    "add_report_parser",
    "report_command",
]

#: the method every other method is compared with
REFERENCE = "vanilla"

#: resolution of the saved PNGs
DPI = 110

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
}

#: metrics with a paired difference to vanilla
DELTA_METRICS = ("top1", "median_top1", "nll", "ece", "brier", "corruption", "fgsm", "occlusion_auc")

# two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (used when scipy is not installed)
_T975 = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252,
    2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688,
    2.131449546, 2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845,
    2.073873068, 2.068657610, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142,
    2.045229642, 2.042272456,
)

# config keys that may differ between records of one comparable benchmark
_VOLATILE_CONFIG = {"methods", "seeds", "method_params", "out", "progress", "threads", "command", "device"}


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def _num(v: Any) -> Optional[float]:
    """``v`` as a finite float, or None (None, NaN, inf, bools, strings and containers are 'missing')."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _dict(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _first(*vals: Any) -> Optional[float]:
    for v in vals:
        n = _num(v)
        if n is not None:
            return n
    return None


def _seed_key(seed: Any) -> Any:
    """Seeds are ints in the trainer's records; anything else is kept as given (sorted as text)."""
    if isinstance(seed, bool):
        return str(seed)
    if isinstance(seed, float) and seed.is_integer():
        return int(seed)
    return seed


def _sort_seeds(seeds) -> List[Any]:
    return sorted(seeds, key=lambda s: (not isinstance(s, int), s if isinstance(s, int) else str(s)))


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------
def t_quantile_975(df: int) -> float:
    """``t_{0.975, df}``: the quantile of Student's t for a two-sided 95% interval.

    Uses :func:`scipy.special.stdtrit` (the inverse CDF behind ``scipy.stats.t.ppf``, without the
    slow ``scipy.stats`` import) when scipy is installed, else a built-in table for ``df <= 30`` and
    the 4-term Cornish–Fisher expansion beyond (error < 1e-7 for ``df > 30``). ``t_quantile_975(2)``
    is 4.302653.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be a positive int, got {df!r}")
    try:
        from scipy.special import stdtrit  # optional
    except ImportError:  # pragma: no cover - the fallback is tested through _t_quantile_975_builtin
        return _t_quantile_975_builtin(df)
    return float(stdtrit(df, 0.975))


def _t_quantile_975_builtin(df: int) -> float:
    if df <= len(_T975):
        return _T975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass
class Stat:
    """Mean and sample standard deviation (``ddof=1``; ``None`` for one value) over seeds."""

    mean: float
    std: Optional[float]
    n: int
    values: List[float]
    seeds: List[Any]

    @classmethod
    def of(cls, pairs: Sequence[Tuple[Any, float]]) -> Optional["Stat"]:
        if not pairs:
            return None
        vals = [v for _, v in pairs]
        std = statistics.stdev(vals) if len(vals) > 1 else None
        return cls(statistics.fmean(vals), std, len(vals), vals, [s for s, _ in pairs])


@dataclass
class Delta:
    """Paired difference ``method - reference`` over the seeds both have, with a 95% t interval.

    ``lo``/``hi``/``half_width`` are ``None`` when only one seed is paired.
    """

    mean: float
    lo: Optional[float]
    hi: Optional[float]
    half_width: Optional[float]
    n: int
    seeds: List[Any]
    diffs: List[float]

    @property
    def excludes_zero(self) -> bool:
        """True when the 95% interval lies entirely above or below 0 (never for ``n = 1``)."""
        return self.lo is not None and (self.lo > 0 or self.hi < 0)


def paired_difference(method: Mapping[Any, float], reference: Mapping[Any, float]) -> Optional[Delta]:
    """Paired difference of two ``{seed: value}`` maps over their common seeds.

    Returns the mean of the differences ``method[s] - reference[s]`` and, for ``n >= 2`` common
    seeds, the interval ``mean ± t_{0.975, n-1} * sd / sqrt(n)`` (``sd`` with ``ddof=1``);
    ``None`` when no seed is shared.
    """
    seeds = _sort_seeds(set(method) & set(reference))
    if not seeds:
        return None
    diffs = [method[s] - reference[s] for s in seeds]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n == 1:
        return Delta(mean, None, None, None, 1, seeds, diffs)
    half = t_quantile_975(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return Delta(mean, mean - half, mean + half, half, n, seeds, diffs)


# ------------------------------------------------------------------------------------------------
# reading results.jsonl
# ------------------------------------------------------------------------------------------------
def load_results(path) -> List[Dict[str, Any]]:
    """The records of a ``results.jsonl`` file, in file order.

    Blank lines are skipped. A line that is not a JSON object (typically a truncated last line left
    by a killed run) is skipped with a :class:`RuntimeWarning` naming the line; the file is never
    modified. Raises ``FileNotFoundError`` when ``path`` does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file {str(p)!r} not found (expected the results.jsonl of a `mixkit bench` run)")
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    out: List[Dict[str, Any]] = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            where = "last line" if i == last else "line"
            hint = "a run killed while writing" if i == last else "an interrupted run that was resumed"
            warnings.warn(f"{p}: skipping malformed {where} {i + 1} ({e.msg}; probably {hint})", RuntimeWarning, stacklevel=2)
            continue
        if not isinstance(rec, dict):
            warnings.warn(f"{p}: skipping line {i + 1}: a JSON {type(rec).__name__}, not an object", RuntimeWarning, stacklevel=2)
            continue
        out.append(rec)
    return out


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
    }


# ------------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------------
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
        import dataclasses

        return dataclasses.asdict(self)


def _config_of(records: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    for rec in reversed(records):
        if isinstance(rec.get("config"), dict):
            return dict(rec["config"])
    return {}


def _env_of(records: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    for rec in reversed(records):
        if isinstance(rec.get("env"), dict):
            return dict(rec["env"])
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
    config = _config_of(records)
    env = _env_of(records)
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


# ------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------
_NA = "n/a"
_NO_STD = "–"


def _fmt_value(v: float, kind: str) -> str:
    if kind == "acc":
        return f"{100 * v:.2f}"
    if kind == "nll":
        return f"{v:.3f}"
    if kind == "speed":
        return f"{v:.1f}"
    if kind == "speed_int":
        return f"{v:.0f}"
    return f"{v:.3g}"


def _fmt_stat(st: Optional[Stat], kind: str) -> str:
    if st is None:
        return _NA
    if kind == "speed":  # same decimals for the mean and the std
        kind = "speed_int" if st.mean >= 100 else "speed"
    std = _NO_STD if st.std is None else _fmt_value(st.std, kind)
    return f"{_fmt_value(st.mean, kind)} ± {std}"


def _fmt_signed(v: float, kind: str) -> str:
    s = _fmt_value(abs(v), kind)
    if float(s) == 0:
        return s
    return ("+" if v > 0 else "−") + s


def _fmt_delta(d: Optional[Delta], kind: str) -> str:
    if d is None:
        return _NA
    if d.lo is None:
        return f"{_fmt_signed(d.mean, kind)} (n=1, no CI)"
    mark = " *" if d.excludes_zero else ""
    return f"{_fmt_signed(d.mean, kind)} [{_fmt_signed(d.lo, kind)}, {_fmt_signed(d.hi, kind)}]{mark}"


def _fmt_params(params: Mapping[str, Any]) -> str:
    if not params:
        return "(none)"
    return ", ".join(f"{k}={v if isinstance(v, str) else repr(v)}" for k, v in params.items())


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Optional[Sequence[str]] = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(summary: Summary) -> str:
    """The main Markdown table of the report (rows = methods, see the module docstring)."""
    k = summary.median_k
    ref = summary.reference is not None
    header = ["method", "top-1 final (%)", f"top-1 median last {k} (%)"]
    if ref:
        header.append("Δ top-1 vs vanilla [95% CI] (pp)")
    header += ["NLL", "ECE (%)", "corruption acc (%)", "FGSM acc (%)", "occlusion AUC (%)", "images/s"]
    if ref:
        header.append("overhead ×")
    ns = {r.n for r in summary.rows}
    rows = []
    for r in summary.rows:
        name = r.method if len(ns) == 1 else f"{r.method} (n={r.n})"
        cells = [name, _fmt_stat(r.stats["top1"], "acc"), _fmt_stat(r.stats["median_top1"], "acc")]
        if ref:
            cells.append("(reference)" if r.method == summary.reference else _fmt_delta(r.delta.get("top1"), "acc"))
        cells += [
            _fmt_stat(r.stats["nll"], "nll"),
            _fmt_stat(r.stats["ece"], "acc"),
            _fmt_stat(r.stats["corruption"], "acc"),
            _fmt_stat(r.stats["fgsm"], "acc"),
            _fmt_stat(r.stats["occlusion_auc"], "acc"),
            _fmt_stat(r.stats["images_per_s"], "speed"),
        ]
        if ref:
            cells.append(_NA if r.overhead is None else f"{r.overhead:.2f}×")
        rows.append(cells)
    return _md_table(header, rows)


def delta_table(summary: Summary) -> Optional[str]:
    """Paired differences to vanilla for every metric of :data:`DELTA_METRICS` (None without vanilla)."""
    if summary.reference is None or len(summary.rows) < 2:
        return None
    keys = [key for key in DELTA_METRICS if any(r.delta.get(key) is not None for r in summary.rows)]
    header = ["method"] + [METRICS[key][0].replace("last k", f"last {summary.median_k}")
                           + (" (pp)" if METRICS[key][1] == "acc" else "") for key in keys]
    rows = []
    for r in summary.rows:
        if r.method == summary.reference:
            continue
        rows.append([r.method] + [_fmt_delta(r.delta.get(key), METRICS[key][1]) for key in keys])
    return _md_table(header, rows)


def _per_seed_table(summary: Summary) -> Optional[str]:
    seeds = _sort_seeds({s for r in summary.rows for s in r.per_seed["top1"]})
    if not seeds:
        return None
    rows = [[r.method] + [_fmt_value(r.per_seed["top1"][s], "acc") if s in r.per_seed["top1"] else _NA for s in seeds]
            for r in summary.rows]
    return _md_table(["method"] + [f"seed {s}" for s in seeds], rows)


def _params_table(summary: Summary) -> str:
    rows = []
    for r in summary.rows:
        distinct: Dict[str, List[Any]] = {}
        for s, p in r.params_by_seed.items():
            distinct.setdefault(json.dumps(p, sort_keys=True, default=str), []).append(s)
        if len(distinct) <= 1:
            rows.append([r.method, _fmt_params(r.params)])
        else:  # should not happen within one benchmark; show it rather than hide it
            for key, seeds in distinct.items():
                rows.append([f"{r.method} (seeds {', '.join(map(str, seeds))})", _fmt_params(json.loads(key))])
    return _md_table(["method", "hyper-parameters"], rows, ["l", "l"])


_SETUP_FIELDS = (
    ("dataset", "dataset"), ("n_train", "train samples"), ("n_test", "test samples"), ("model", "model"),
    ("width", "width"), ("epochs", "epochs"), ("batch_size", "batch size"), ("seeds", "seeds"),
    ("mode", "mixing mode"), ("preset", "preset"),
)
_RECIPE_FIELDS = ("lr", "momentum", "weight_decay", "nesterov", "schedule", "milestones", "gamma", "warmup_epochs",
                  "loss", "smoothing", "augment", "pad", "amp", "channels_last")
_EVAL_FIELDS = ("median_last", "eval_corruptions", "eval_fgsm", "fgsm_eps", "eval_occlusion", "max_eval")


def _kv(cfg: Mapping[str, Any], keys: Sequence[str]) -> str:
    parts = []
    for key in keys:
        if key not in cfg:
            continue
        v = cfg[key]
        if key == "milestones" and cfg.get("schedule") != "step":
            continue
        if key in ("gamma",) and cfg.get("schedule") != "step":
            continue
        if isinstance(v, float) and not v.is_integer():
            v = f"{v:.4g}"
        parts.append(f"{key}={v}")
    return ", ".join(parts)


def _setup_section(summary: Summary) -> List[str]:
    cfg = summary.config
    out = ["## Setup", ""]
    if not cfg:
        return out + ["No configuration was recorded in the results.", ""]
    for key, label in _SETUP_FIELDS:
        if key in cfg and cfg[key] is not None:
            v = cfg[key]
            if isinstance(v, (list, tuple)):
                v = ", ".join(map(str, v)) + f" ({len(cfg[key])})"
            out.append(f"- **{label}**: {v}")
    recipe = _kv(cfg, _RECIPE_FIELDS)
    if recipe:
        out.append(f"- **recipe** (shared by every method): {recipe}")
    ev = _kv(cfg, _EVAL_FIELDS)
    if ev:
        out.append(f"- **evaluation**: {ev}")
    if cfg.get("methods"):
        out.append(f"- **methods**: {', '.join(map(str, cfg['methods']))}")
    if summary.run_key:
        out.append(f"- **config hash** (run key): `{summary.run_key}`")
    out += ["", "<details><summary>full configuration</summary>", "", "```json",
            json.dumps(cfg, indent=2, sort_keys=True, default=str), "```", "", "</details>", ""]
    return out


def _env_section(summary: Summary) -> List[str]:
    env = summary.env
    out = ["## Environment", ""]
    if not env:
        return out + ["No environment was recorded in the results.", ""]
    for key in ("mixkit", "git", "torch", "python", "device", "cpu", "threads", "world_size"):
        if key in env:
            v = env[key]
            out.append(f"- **{key}**: {'not recorded' if v is None else v}")
    return out + [""]


# ------------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------------
def _new_figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return _atomic_write_bytes(path, buf.getvalue())


def _colors(methods: Sequence[str]) -> Dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _mean_std(vals: Sequence[float]) -> Tuple[float, float]:
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _learning_curves(runs: Dict[str, Dict[Any, _Run]], method: str) -> List[Tuple[int, float, float]]:
    by_epoch: Dict[int, List[float]] = {}
    for run in runs.get(method, {}).values():
        for ep, rec in run.epochs.items():
            v = _num(rec.get("test_top1"))
            if v is not None:
                by_epoch.setdefault(ep, []).append(v)
    return [(ep, *_mean_std(vals)) for ep, vals in sorted(by_epoch.items())]


def _plot_accuracy(summary: Summary, runs, colors, path: Path) -> Optional[Path]:
    rows = [r for r in summary.rows if r.stats["top1"] is not None]
    curves = {r.method: _learning_curves(runs, r.method) for r in summary.rows}
    if not rows and not any(curves.values()):
        return None
    fig = _new_figure(12, 4.4)
    ax_bar, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    k = summary.median_k
    lows, highs = [], []
    width = 0.38
    for i, r in enumerate(rows):
        for j, (key, label, hatch) in enumerate((("top1", "final", None), ("median_top1", f"median last {k}", "//"))):
            st = r.stats[key]
            if st is None:
                continue
            x = i + (j - 0.5) * width
            mean, std = 100 * st.mean, 100 * (st.std or 0.0)
            ax_bar.bar(x, mean, width, yerr=std if st.std is not None else None, capsize=4, color=colors[r.method],
                       alpha=1.0 if j == 0 else 0.55, hatch=hatch, edgecolor="black", linewidth=0.6,
                       label=label if i == 0 else None)
            pts = [100 * v for v in st.values]
            ax_bar.scatter([x] * len(pts), pts, s=10, color="black", zorder=3)
            ax_bar.annotate(f"{mean:.2f}", (x, max([mean + std] + pts)), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7)
            lows += [mean - std] + pts
            highs += [mean + std] + pts
    if rows:
        lo, hi = min(lows), max(highs)
        pad = max(0.5, 0.35 * (hi - lo))
        ax_bar.set_ylim(max(0.0, lo - pad), min(100.0, hi + 1.6 * pad))
        ax_bar.set_xticks(range(len(rows)))
        ax_bar.set_xticklabels([r.method for r in rows], rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
        ax_bar.legend(fontsize="small", loc="lower right")
        ns = sorted({r.n for r in rows})
        nlab = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"
        ax_bar.set_title(f"test top-1 (mean ± std over seeds, {nlab}; dots = seeds)", fontsize=10)
        ax_bar.set_ylabel("top-1 (%) — axis does not start at 0")
        ax_bar.grid(axis="y", alpha=0.3)
    else:
        ax_bar.set_axis_off()
    for r in summary.rows:
        pts = curves[r.method]
        if not pts:
            continue
        ep = [p[0] + 1 for p in pts]
        mean = [100 * p[1] for p in pts]
        std = [100 * p[2] for p in pts]
        ax_curve.plot(ep, mean, marker="o" if len(ep) <= 30 else None, markersize=3, color=colors[r.method], label=r.method)
        ax_curve.fill_between(ep, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                              color=colors[r.method], alpha=0.15, linewidth=0)
    from matplotlib.ticker import MaxNLocator

    ax_curve.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel("test top-1 (%)")
    ax_curve.set_title("learning curves (mean ± std over seeds)", fontsize=10)
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize="small", loc="lower right")
    return _save_png(fig, path)


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


def _draw_reliability(ax, rel: Mapping[str, Any], title: str) -> None:
    try:
        from .eval import plot_reliability
    except ImportError:  # pragma: no cover - metrics ships with the package
        plot_reliability = None
    if plot_reliability is not None:
        plot_reliability(ax, dict(rel), title=title)
        return
    edges, nb = rel["bin_edges"], len(rel["bin_edges"]) - 1  # pragma: no cover
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(nb)]  # pragma: no cover
    ax.bar(centers, rel["bin_acc"], width=1 / nb, edgecolor="black")  # pragma: no cover
    ax.plot([0, 1], [0, 1], "--", color="gray")  # pragma: no cover
    ax.set_title(title)  # pragma: no cover


def _plot_reliability(summary: Summary, runs, path: Path) -> Optional[Path]:
    pooled = []
    for r in summary.rows:
        rels = [_dict(runs[r.method][s].final.get("metrics")).get("reliability") for s in r.seeds]
        rel = _pooled_reliability(rels)
        if rel is not None:
            pooled.append((r.method, rel))
    if not pooled:
        return None
    ncols = min(4, len(pooled))
    nrows = math.ceil(len(pooled) / ncols)
    fig = _new_figure(3.6 * ncols, 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, (m, rel) in enumerate(pooled):
        ax = axes[i // ncols][i % ncols]
        s = "seed" if rel["n_seeds"] == 1 else "seeds pooled"
        _draw_reliability(ax, rel, f"{m} ({rel['n_seeds']} {s})")
    for j in range(len(pooled), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.suptitle("reliability diagrams (bin counts summed over seeds)", fontsize=11)
    fig.tight_layout()
    return _save_png(fig, path)


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


def _plot_corruption(summary: Summary, runs, colors, path: Path) -> Optional[Path]:
    data = {}
    for r in summary.rows:
        sev_vals: Dict[int, List[float]] = {}
        name_vals: Dict[str, List[float]] = {}
        for s in r.seeds:
            m = _dict(runs[r.method][s].final.get("metrics"))
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
    if not data:
        return None
    names = sorted({n for _, nv in data.values() for n in nv})
    methods = [m for m in data if data[m][1]]
    heat = bool(names and methods)
    width = max(8.0, 0.62 * len(names) + 2.8) if heat else 7.0
    fig = _new_figure(width, 4.2 + (0.36 * len(methods) + 1.9 if heat else 0.0))
    if heat:
        ax_sev, ax_heat = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4.2, 0.36 * len(methods) + 1.2]})
    else:
        ax_sev, ax_heat = fig.subplots(), None
    for m, (sev_vals, _) in data.items():
        sevs = sorted(sev_vals)
        if not sevs:
            continue
        ms = [_mean_std(sev_vals[s]) for s in sevs]
        err = [100 * e for _, e in ms]
        ax_sev.errorbar(sevs, [100 * a for a, _ in ms], yerr=err if any(err) else None, marker="o", capsize=3,
                        color=colors[m], label=m)
    all_sevs = sorted({s for sv, _ in data.values() for s in sv})
    ax_sev.set_xticks(all_sevs)
    ax_sev.set_xticklabels(["clean" if s == 0 else str(s) for s in all_sevs])
    ax_sev.set_xlabel("severity (mean over corruptions; clean = the same test subset uncorrupted)")
    ax_sev.set_ylabel("accuracy (%)")
    ax_sev.set_title("corruption accuracy vs severity (mean ± std over seeds)", fontsize=10)
    ax_sev.grid(alpha=0.3)
    ax_sev.legend(fontsize="small")
    if heat:
        grid = [[100 * statistics.fmean(data[m][1][n]) if n in data[m][1] else float("nan") for n in names]
                for m in methods]
        finite = [v for row in grid for v in row if math.isfinite(v)]
        lo, hi = min(finite), max(finite)
        im = ax_heat.imshow(grid, aspect="auto", cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1)
        mid = (lo + hi) / 2
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if math.isfinite(v):
                    ax_heat.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                                 color="black" if v > mid else "white")
        ax_heat.set_xticks(range(len(names)))
        ax_heat.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax_heat.set_yticks(range(len(methods)))
        ax_heat.set_yticklabels(methods, fontsize=8)
        ax_heat.set_title("accuracy (%) per corruption, mean over severities and seeds", fontsize=10)
        fig.colorbar(im, ax=ax_heat, fraction=0.025, pad=0.01)
    fig.tight_layout()
    return _save_png(fig, path)


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


def _plot_occlusion(summary: Summary, runs, colors, path: Path) -> Optional[Path]:
    curves = {}
    for r in summary.rows:
        by_f: Dict[float, List[float]] = {}
        for s in r.seeds:
            for f, a in _occlusion_points(_dict(runs[r.method][s].final.get("metrics")).get("occlusion")):
                by_f.setdefault(round(f, 6), []).append(a)
        if by_f:
            curves[r.method] = sorted((f, *_mean_std(v)) for f, v in by_f.items())
    if not curves:
        return None
    fig = _new_figure(6.4, 4.4)
    ax = fig.subplots()
    for m, pts in curves.items():
        auc = summary[m].stats["occlusion_auc"]
        label = m if auc is None else f"{m} (AUC {100 * auc.mean:.2f})"
        fr = [100 * p[0] for p in pts]
        mean = [100 * p[1] for p in pts]
        std = [100 * p[2] for p in pts]
        ax.plot(fr, mean, marker="o", markersize=3, color=colors[m], label=label)
        ax.fill_between(fr, [a - e for a, e in zip(mean, std)], [a + e for a, e in zip(mean, std)], color=colors[m],
                        alpha=0.15, linewidth=0)
    ax.set_xlabel("occluded fraction of the input (%)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("occlusion robustness (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save_png(fig, path)


def _plot_calibration_robustness(summary: Summary, colors, path: Path) -> Optional[Path]:
    pts = [(r.method, r.stats["ece"], r.stats["corruption"], r.stats["fgsm"]) for r in summary.rows
           if r.stats["ece"] is not None and (r.stats["corruption"] is not None or r.stats["fgsm"] is not None)]
    if not pts:
        return None
    panels = [(2, "corruption acc (%)")] if any(p[2] is not None for p in pts) else []
    if any(p[3] is not None for p in pts):
        panels.append((3, "FGSM acc (%)"))
    fig = _new_figure(5.2 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (idx, ylabel) in zip(axes, panels):
        for p in pts:
            ece, rob = p[1], p[idx]
            if rob is None:
                continue
            ax.errorbar(100 * ece.mean, 100 * rob.mean, xerr=100 * (ece.std or 0.0), yerr=100 * (rob.std or 0.0),
                        marker="o", capsize=3, color=colors[p[0]], label=p[0])
            ax.annotate(p[0], (100 * ece.mean, 100 * rob.mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel("ECE (%) — lower is better")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("calibration vs robustness (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


PLOTS = ("accuracy.png", "reliability.png", "corruption.png", "occlusion.png", "calibration_robustness.png")


def write_plots(run_dir, records: Sequence[Mapping[str, Any]], summary: Optional[Summary] = None) -> Dict[str, Path]:
    """Write the report's PNGs into ``run_dir`` (each atomically); returns ``{file name: path}``.

    A plot whose data are missing for every method is not written, and a stale copy from an earlier
    report is removed so the folder never shows outdated pictures. Needs matplotlib.
    """
    run_dir = Path(run_dir)
    records = [r for r in records if isinstance(r, Mapping)]
    summary = summary if summary is not None else summarize(records)
    runs, _ = _group(records)
    colors = _colors(summary.methods)
    makers = {
        "accuracy.png": lambda p: _plot_accuracy(summary, runs, colors, p),
        "reliability.png": lambda p: _plot_reliability(summary, runs, p),
        "corruption.png": lambda p: _plot_corruption(summary, runs, colors, p),
        "occlusion.png": lambda p: _plot_occlusion(summary, runs, colors, p),
        "calibration_robustness.png": lambda p: _plot_calibration_robustness(summary, colors, p),
    }
    out: Dict[str, Path] = {}
    for name in PLOTS:
        path = run_dir / name
        made = None
        if summary.rows:
            try:
                made = makers[name](path)
            except Exception as e:  # a picture must never cost the report of a long run
                warnings.warn(f"could not draw {name}: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
                summary.notes.append(f"{name} could not be drawn ({type(e).__name__}: {e}).")
        if made is not None:
            out[name] = made
        elif path.exists():
            path.unlink()
    return out


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------
_PLOT_CAPTIONS = {
    "accuracy.png": "Final and median-of-last-k test top-1 per method, and the learning curves.",
    "reliability.png": "Reliability diagrams (15 equal-width confidence bins unless configured otherwise).",
    "corruption.png": "Accuracy under common corruptions by severity and per corruption.",
    "occlusion.png": "Accuracy as random blocks hide a growing share of every input.",
    "calibration_robustness.png": "Calibration error against robustness.",
    "gallery.png": "Mixed samples of each method (drawn by the trainer).",
}


def render_report(summary: Summary, plots: Sequence[str] = (), *, results_name: str = "results.jsonl",
                  plot_error: Optional[str] = None) -> str:
    """The Markdown text of ``report.md`` for ``summary``, embedding the PNG file names in ``plots``."""
    cfg = summary.config
    title = "mixkit bench report"
    if cfg.get("dataset") or cfg.get("model"):
        title += f": {cfg.get('dataset', '?')} / {cfg.get('model', '?')}"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {title}", "", f"Built from `{results_name}` ({summary.n_records} records) on {now}. "
             "Rebuild with `mixkit report DIR`.", ""]
    if cfg.get("command"):
        cmd = cfg["command"]
        cmd = " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd)
        lines += ["Command:", "", "```bash", cmd, "```", ""]
    lines += _setup_section(summary)
    lines += _env_section(summary)

    lines += ["## Results", ""]
    if not summary.rows:
        lines += ["No results yet.", ""]
    else:
        ns = sorted({r.n for r in summary.rows})
        n_txt = f"{ns[0]} seed{'s' if ns[0] != 1 else ''}" if len(ns) == 1 else "n seeds (given per row)"
        lines += [main_table(summary), ""]
        legend = [f"Mean ± sample std (ddof=1) over {n_txt}; `–` = a single seed, no spread; `n/a` = not measured.",
                  "Accuracies, ECE and the occlusion AUC are in %. Top-1 final = the last epoch (no test-set epoch "
                  f"picking); median last {summary.median_k} = the median test top-1 of the last {summary.median_k} epochs."]
        if summary.reference is not None:
            legend.append("Δ = paired difference to vanilla over the seeds both were run with (mean of the per-seed "
                          "differences ± t₀.₉₇₅,ₙ₋₁·sd/√n), in percentage points; `*` = the 95% interval excludes 0. "
                          "Overhead × = vanilla's images/s ÷ the method's (> 1: slower than vanilla).")
        lines += [" ".join(legend), ""]
        dt = delta_table(summary)
        if dt is not None:
            lines += ["### Paired differences to vanilla (95% CI)", "", dt, "",
                      "NLL and Brier in their own units, the other columns in percentage points; lower is better "
                      "for NLL, ECE and Brier.", ""]
        pst = _per_seed_table(summary)
        if pst is not None:
            lines += ["### Final top-1 per seed (%)", "", pst, ""]
        lines += ["## Hyper-parameters", "", _params_table(summary), ""]
    if summary.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary.notes] + [""]
    if plots or plot_error:
        lines += ["## Plots", ""]
        if plot_error:
            lines += [f"Plots were not drawn: {plot_error}", ""]
        for name in plots:
            stem = name[:-4] if name.endswith(".png") else name
            lines += [f"### {stem.replace('_', ' ')}", "", _PLOT_CAPTIONS.get(name, ""), "", f"![{stem}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir, results_path=None, *, plots: bool = True) -> Path:
    """Write ``report.md`` (and the PNGs) into ``run_dir`` from its results; returns the report's path.

    Args:
        run_dir: the run folder (created if needed).
        results_path: the JSON-lines results (default ``run_dir / "results.jsonl"``).
        plots: draw the PNGs (needs matplotlib; without it the report says so and has no pictures).

    ``report.md`` is written atomically (temporary file + ``os.replace``). A ``gallery.png`` already in
    ``run_dir`` (drawn by the trainer) is embedded too.
    """
    run_dir = Path(run_dir)
    results_path = Path(results_path) if results_path is not None else run_dir / "results.jsonl"
    records = load_results(results_path)
    summary = summarize(records)
    names: List[str] = []
    plot_error = None
    if plots and summary.rows:
        try:
            import matplotlib  # noqa: F401  (optional dependency)
        except ImportError:
            plot_error = "matplotlib is not installed (pip install 'mixkit[bench]')."
        else:
            names = list(write_plots(run_dir, records, summary))
    if (run_dir / "gallery.png").is_file():
        names.append("gallery.png")
    try:  # the path relative to the run folder when the results live inside it
        rel = results_path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        rel = str(results_path.resolve())
    text = render_report(summary, names, results_name=rel, plot_error=plot_error)
    return _atomic_write_bytes(run_dir / "report.md", text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def report_command(args: argparse.Namespace) -> int:
    """Handler of ``mixkit report DIR [--results FILE] [--no-plots]``: prints the report's path."""
    path = write_report(args.dir, args.results, plots=not getattr(args, "no_plots", False))
    print(path)
    return 0


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command to an ``argparse`` sub-parsers object; returns its parser.

    The parser sets ``func=report_command``, so a dispatcher can run ``args.func(args)``.
    """
    p = subparsers.add_parser(
        "report",
        help="rebuild report.md and the plots of a `mixkit bench` run from its results.jsonl",
        description="Rebuild report.md and the PNG plots of a `mixkit bench` run folder from its results "
                    "(mean ± std over seeds, paired 95%% intervals against vanilla). Prints the report's path.",
    )
    p.add_argument("dir", metavar="DIR", help="the run folder (where report.md and the PNGs are written)")
    p.add_argument("--results", metavar="FILE", default=None, help="results file (default: DIR/results.jsonl)")
    p.add_argument("--no-plots", action="store_true", help="write report.md only, without drawing the PNGs")
    p.set_defaults(func=report_command)
    return p

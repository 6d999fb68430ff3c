"""The report's statistics: mean ± sample std over seeds and paired differences with 95% t intervals.

* A metric over seeds is the mean and the *sample* standard deviation (``ddof=1``); with one seed
  the spread is unknown (``std`` is ``None``).
* A difference to the reference method is computed from **paired** seeds: the mean of the ``n``
  per-seed differences ± ``t_{0.975, n-1} * sd / sqrt(n)``; with ``n = 1`` no interval is given.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .values import _sort_seeds

# two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (used when scipy is not installed)
_T975 = (
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252,
    2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688,
    2.131449546, 2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845,
    2.073873068, 2.068657610, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142,
    2.045229642, 2.042272456,
)


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


def _mean_std(vals: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample std of ``vals``, the std 0.0 for one value (for error bars and bands)."""
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

"""Reading the loosely typed values of ``results.jsonl`` records: numbers, dicts and seeds.

A record written by an older or a partial run may hold ``None``, NaN, strings or containers where a
number is expected; these helpers turn every such value into "missing" (``None`` or ``{}``) so the
rest of the report never has to check types.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional


def _num(v: Any) -> Optional[float]:
    """``v`` as a finite float, or None (None, NaN, inf, bools, strings and containers are 'missing')."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _dict(v: Any) -> Dict[str, Any]:
    """``v`` when it is a dict, else an empty dict."""
    return v if isinstance(v, dict) else {}


def _first(*vals: Any) -> Optional[float]:
    """The first of ``vals`` that is a finite number (see :func:`_num`), or None."""
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


def _sort_seeds(seeds: Iterable[Any]) -> List[Any]:
    """Int seeds in numeric order, then any others in text order."""
    return sorted(seeds, key=lambda s: (not isinstance(s, int), s if isinstance(s, int) else str(s)))

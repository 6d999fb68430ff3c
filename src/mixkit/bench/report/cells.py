"""The cells of the report's tables: numbers, mean ± std, paired differences and hyper-parameters as
text, and a Markdown table (shared by :mod:`.markdown` and :mod:`.tables`)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from .stats import Delta, Stat


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

"""The ranked table a paper quotes: the "Ranking" section of ``report.md``, ``table.csv`` and ``table.tex``.

One table model (:func:`ranked`), three renderings. Methods are ranked by final top-1 (mean over seeds;
ties by the median of the last k epochs, then by name); every column's best mean is marked (bold in
Markdown and LaTeX, a ``best`` column in the CSV naming the columns a method leads). A column no method
has a value for is left out. Numbers are in the report's units: accuracies, ECE and the corruption
error relative to vanilla (mCE) in %, NLL as is, images/s, the overhead against vanilla as a ratio,
the wall-clock time of a run in seconds.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .cells import _NA, _fmt_stat, _fmt_value, _md_table
from .stats import Stat
from .summary import Summary

__all__ = ["COLUMNS", "RankedTable", "ranked", "ranked_markdown", "ranked_csv", "ranked_latex"]

#: (metric key, label, kind, which way is better); "overhead" is the row's overhead against vanilla
COLUMNS: Tuple[Tuple[str, str, str, str], ...] = (
    ("top1", "top-1 final (%)", "acc", "high"),
    ("median_top1", "top-1 median last k (%)", "acc", "high"),
    ("nll", "NLL", "nll", "low"),
    ("ece", "ECE (%)", "acc", "low"),
    ("corruption", "corruption acc (%)", "acc", "high"),
    ("rel_mce", "mCE vs vanilla (%)", "acc", "low"),
    ("fgsm", "FGSM acc (%)", "acc", "high"),
    ("occlusion_auc", "occlusion AUC (%)", "acc", "high"),
    ("images_per_s", "images/s", "speed", "high"),
    ("overhead", "overhead ×", "ratio", "low"),
    ("wall_time_s", "wall-clock per run (s)", "speed", "low"),
)


@dataclass
class RankedTable:
    """``columns``: (key, label, kind) kept; ``rows``: (rank, method, n seeds, {key: Stat or None});
    ``best``: {key: methods whose mean is the column's best (ties share it)}."""

    columns: List[Tuple[str, str, str]]
    rows: List[Tuple[int, str, int, Dict[str, Optional[Stat]]]]
    best: Dict[str, List[str]]


def _cell_stat(row, key: str) -> Optional[Stat]:
    if key == "overhead":
        return None if row.overhead is None else Stat(row.overhead, None, 1, [row.overhead], [])
    return row.stats.get(key)


def ranked(summary: Summary) -> RankedTable:
    """The table model of the ranking (see the module docstring)."""
    def order(r):
        top1, med = r.stats["top1"], r.stats["median_top1"]
        return (top1 is None, -(top1.mean if top1 else 0), -(med.mean if med else 0), r.method)

    rows = sorted(summary.rows, key=order)
    columns, best = [], {}
    for key, label, kind, better in COLUMNS:
        values = {r.method: _cell_stat(r, key) for r in rows}
        have = {m: st for m, st in values.items() if st is not None}
        if not have:
            continue
        columns.append((key, label.replace("last k", f"last {summary.median_k}"), kind))
        shown = {m: _fmt_value(st.mean, kind) for m, st in have.items()}
        top = (max if better == "high" else min)(have.values(), key=lambda st: st.mean)
        best[key] = [m for m in have if shown[m] == _fmt_value(top.mean, kind)]
    table_rows = [(i + 1, r.method, r.n, {key: _cell_stat(r, key) for key, _, _ in columns}) for i, r in enumerate(rows)]
    return RankedTable(columns, table_rows, best)


def _text(st: Optional[Stat], kind: str) -> str:
    if st is None:
        return _NA
    if kind == "ratio":
        return f"{st.mean:.2f}×"
    return _fmt_stat(st, kind)


def ranked_markdown(summary: Summary) -> Optional[str]:
    """The ranking as a Markdown table, each column's best in bold (None without rows)."""
    t = ranked(summary)
    if not t.rows:
        return None
    header = ["rank", "method", "seeds"] + [label for _, label, _ in t.columns]
    rows = []
    for rank, method, n, cells in t.rows:
        out = [str(rank), method, str(n)]
        for key, _, kind in t.columns:
            text = _text(cells[key], kind)
            out.append(f"**{text}**" if method in t.best[key] else text)
        rows.append(out)
    return _md_table(header, rows, ["r", "l"] + ["r"] * (len(header) - 2))


def ranked_csv(summary: Summary) -> str:
    """The ranking as CSV: a mean and a std column per metric (empty when not measured or one seed)."""
    t = ranked(summary)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["rank", "method", "seeds"]
    for _, label, kind in t.columns:
        head += [f"{label} mean"] + ([] if kind == "ratio" else [f"{label} std"])
    w.writerow(head + ["best in"])
    scale = {"acc": 100.0}
    for rank, method, n, cells in t.rows:
        row: List[object] = [rank, method, n]
        for key, _, kind in t.columns:
            st, f = cells[key], scale.get(kind, 1.0)
            row.append("" if st is None else round(f * st.mean, 6))
            if kind != "ratio":
                row.append("" if st is None or st.std is None else round(f * st.std, 6))
        row.append(" ".join(label for key, label, _ in t.columns if method in t.best[key]))
        w.writerow(row)
    return buf.getvalue()


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "×": r"$\times$"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(s))


def ranked_latex(summary: Summary) -> str:
    """The ranking as a LaTeX ``tabular`` (booktabs), mean $\\pm$ std, each column's best in bold."""
    t = ranked(summary)
    cfg = summary.config
    lines = [f"% mixkit bench: {_latex_escape(cfg.get('dataset', '?'))} / {_latex_escape(cfg.get('model', '?'))}, "
             "mean $\\pm$ sample std over seeds; bold: best per column. Needs \\usepackage{booktabs}.",
             "\\begin{tabular}{rlr" + "r" * len(t.columns) + "}", "\\toprule",
             " & ".join(["", "method", "seeds"] + [_latex_escape(label) for _, label, _ in t.columns]) + " \\\\",
             "\\midrule"]
    for rank, method, n, cells in t.rows:
        out = [str(rank), _latex_escape(method), str(n)]
        for key, _, kind in t.columns:
            st = cells[key]
            if st is None:
                out.append("--")
                continue
            if kind == "ratio":
                num = f"{st.mean:.2f}\\times"
            else:
                kind_ = "speed_int" if kind == "speed" and st.mean >= 100 else kind
                num = _fmt_value(st.mean, kind_) + ("" if st.std is None else f" \\pm {_fmt_value(st.std, kind_)}")
            out.append(f"$\\mathbf{{{num}}}$" if method in t.best[key] else f"${num}$")
        lines.append(" & ".join(out) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"

"""The goal table of issue 10, filled in by the benchmark scripts.

``speed.py`` measures rows 1-5, ``model_aware_cost.py`` row 6. Each script writes the whole table into
its own page: the rows it measured, and the other script's rows copied from the other page (marked with
where they come from), so both pages show all six rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from _harness import read_section

SECTION = "goals"


@dataclass(frozen=True)
class Goal:
    key: str
    where: str
    now: str
    goal: str
    script: str   # which script measures it
    page: str     # which page it is written to


GOALS: List[Goal] = [
    Goal("batch32", "batch MixUp / CutMix, 128×3×32×32",
         "1.57× / 2.04× timm, 1.54× torchvision CutMix", "≤ 1.0× the fastest peer", "speed.py", "docs/speed.md"),
    Goal("fixed", "fixed cost per call (tiny batch)",
         "0.13 ms MixUp, 0.32–0.37 ms CutMix (timm 0.03 / 0.10)", "≤ timm's", "speed.py", "docs/speed.md"),
    Goal("cutmix224", "sample CutMix, 64×3×224×224 with cheap page faults",
         "2.37× floor, 1.12× timm elem, 1.44× timm pair", "≤ 1.3× floor, ahead of every timm mode",
         "speed.py", "docs/speed.md"),
    Goal("fmix", "sample FMix, 32 px / 1-D / 3-D",
         "56× / 52× / 170× floor; peak memory 4× the input on 1-channel data",
         "≤ 10× floor at 32 px, ≤ 1.5× input memory", "speed.py", "docs/speed.md"),
    Goal("resizemix", "sample ResizeMix, 32 px", "43× floor", "≤ 10× floor", "speed.py", "docs/speed.md"),
    Goal("solvers", "PuzzleMix step (16×16 grids) / Co-Mixup step",
         "3.1–3.3× / 2.2× a vanilla step (mean PuzzleMix 2.1×)", "PuzzleMix ≤ 1.5× on every grid, Co-Mixup ≤ 2× PuzzleMix",
         "model_aware_cost.py", "docs/cost.md"),
]

HEADER = ["| where | now (issue 10) | goal | measured | verdict | what bounds it (measured) |",
          "|---|---|---|---|---|---|"]


@dataclass
class Result:
    measured: str
    met: Optional[bool]       # None: could not be decided here (a peer missing, a case failed)
    bound: str = ""           # for a miss: what the script can attribute the time to


def verdict(met: Optional[bool]) -> str:
    return "not decided" if met is None else ("**met**" if met else "**not met**")


def _cell(s: str) -> str:
    return s.replace("|", "/").replace("\n", " ")


def row_line(g: Goal, r: Result) -> str:
    bound = r.bound if r.met is not True else (r.bound or "-")
    return (f"| {g.where} | {g.now} | {g.goal} | {_cell(r.measured)} | {verdict(r.met)} | {_cell(bound)} |")


def _rows_from(page: Path) -> Dict[str, str]:
    body = read_section(page, SECTION)
    out: Dict[str, str] = {}
    if not body:
        return out
    for ln in body.splitlines():
        if "not generated yet" in ln or "not measured in this run" in ln or "(copied from" in ln:
            continue  # a placeholder, or a row that page copied itself: not a measurement of that page
        for g in GOALS:
            if ln.startswith(f"| {g.where} |"):
                out[g.key] = ln
    return out


def table(results: Dict[str, Result], root: Path, this_page: str) -> str:
    """The six rows: ``results`` for the rows measured now, the others copied from their own page."""
    lines = list(HEADER)
    cache: Dict[str, Dict[str, str]] = {}
    for g in GOALS:
        if g.key in results:
            lines.append(row_line(g, results[g.key]))
            continue
        if g.page != this_page:
            rows = cache.setdefault(g.page, _rows_from(root / g.page))
            if g.key in rows:
                ln = rows[g.key].rstrip().rstrip("|").rstrip()
                lines.append(f"{ln} (copied from `{g.page}`, written by `benchmarks/{g.script}`) |")
                continue
        lines.append(row_line(g, Result(f"not measured in this run (`benchmarks/{g.script}` measures it)", None)))
    return "\n".join(lines)


def publish(results: Dict[str, Result], root: Path, this_page: str, out: Path) -> str:
    """Write the goal table into ``out``; when ``out`` is this script's own page in the repository, also
    refresh the goal table of the other page (its own rows kept, this script's rows replaced), so that
    the two pages agree whichever script ran last. Returns the table."""
    from _harness import write_section

    md = table(results, root, this_page)
    write_section(out, SECTION, "## Goal table (issue 10)\n\n" + md + "\n")
    if out.resolve() != (root / this_page).resolve():
        return md
    for page in {g.page for g in GOALS} - {this_page}:
        path = root / page
        if read_section(path, SECTION) is None:
            continue
        theirs = _rows_from(path)
        lines = list(HEADER)
        for g in GOALS:
            if g.key in results:
                ln = row_line(g, results[g.key]).rstrip().rstrip("|").rstrip()
                lines.append(f"{ln} (copied from `{this_page}`, written by `benchmarks/{g.script}`) |")
            elif g.page == page and g.key in theirs:
                lines.append(theirs[g.key])
            else:
                lines.append(row_line(g, Result(f"not measured yet (`benchmarks/{g.script}` measures it)", None)))
        write_section(path, SECTION, "## Goal table (issue 10)\n\n" + "\n".join(lines) + "\n")
    return md

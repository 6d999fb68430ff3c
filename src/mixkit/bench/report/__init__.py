"""The report of ``mixkit bench``: tables and plots rebuilt from ``results.jsonl``.

The trainer appends one JSON line per (method, seed, epoch) to ``results.jsonl``; the last epoch of
each (method, seed) carries ``"final": true`` and the ``"metrics"`` dict of
:func:`mixkit.bench.eval.evaluate` (plus ``median_top1``). This package reads those lines and writes
``report.md`` and the PNG plots into the run folder (:func:`write_report`; ``mixkit report DIR`` on
the command line). Its modules, each used only by those below it in this list:

* :mod:`.values`: the loosely typed values of a record as numbers, dicts and seeds;
* :mod:`.stats`: mean ± sample std over seeds, paired differences with 95% t intervals;
* :mod:`.records`: :func:`load_results` and the grouping of records into (method, seed) runs;
* :mod:`.compare`: the one configuration a report shows, and what else differs between records;
* :mod:`.summary`: :func:`summarize`, the :class:`Summary` with one :class:`MethodSummary` per method;
* :mod:`.series`: the numbers behind the plots (learning curves, pooled reliability, robustness);
* :mod:`.cells`: numbers and intervals as table cells;
* :mod:`.tables`: the ranked table (best per column in bold) as Markdown, CSV and LaTeX;
* :mod:`.markdown`: the tables and the text of ``report.md`` (:func:`render_report`);
* :mod:`.plots`: the PNGs (:func:`write_plots`; needs matplotlib).

:func:`write_report` writes ``report.md``, ``table.csv``, ``table.tex`` and the PNGs; it reads the
timed throughput pass from ``throughput.json`` beside the results when there is one.

Robustness to partial files: blank lines are skipped; a line that is not valid JSON (a writer killed
mid-line) is skipped with a :class:`RuntimeWarning`; a (method, seed, epoch) logged twice (a resumed
run) keeps its last line; a (method, seed) without a final line counts in the learning curves only;
metrics that are missing or ``null`` (corruptions, FGSM or occlusion switched off) are shown as
``n/a`` and their plots are left out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import List

from ..io import atomic_write_text
from ..outdir import THROUGHPUT
# the public names of the single-module report, re-exported (write_report uses some of them)
from .markdown import delta_table, main_table, render_report
from .plots import DPI, PLOTS, write_plots
from .records import load_results
from .stats import Delta, Stat, paired_difference, t_quantile_975
from .summary import DELTA_METRICS, METRICS, REFERENCE, MethodSummary, Summary, summarize
from .tables import ranked_csv, ranked_latex

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


def write_report(run_dir, results_path=None, *, plots: bool = True) -> Path:
    """Write ``report.md`` (and the PNGs) into ``run_dir`` from its results; returns the report's path.

    Args:
        run_dir: the run folder (created if needed).
        results_path: the JSON-lines results (default ``run_dir / "results.jsonl"``).
        plots: draw the PNGs (needs matplotlib; without it the report says so and has no pictures).

    ``report.md`` is written atomically (temporary file + ``os.replace``), and so are ``table.csv`` and
    ``table.tex`` (the ranking). A ``gallery.png`` already in ``run_dir`` (drawn by the trainer) is
    embedded too; a ``throughput.json`` beside the results gives images/s.
    """
    run_dir = Path(run_dir)
    results_path = Path(results_path) if results_path is not None else run_dir / "results.jsonl"
    records = load_results(results_path)
    summary = summarize(records, _read_throughput(results_path.parent / THROUGHPUT))
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
    if summary.rows:
        atomic_write_text(run_dir / "table.csv", ranked_csv(summary))
        atomic_write_text(run_dir / "table.tex", ranked_latex(summary))
    return atomic_write_text(run_dir / "report.md", text)


def _read_throughput(path: Path):
    """The timed throughput pass, or None when there is none (or it cannot be read)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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

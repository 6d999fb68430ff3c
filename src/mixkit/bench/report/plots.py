"""The report's PNGs: ``accuracy.png``, ``reliability.png``, ``corruption.png``, ``occlusion.png`` and
``calibration_robustness.png`` (each only when its data exist).

matplotlib is imported only inside the plotting functions and draws on the Agg canvas without pyplot,
so a report can be rebuilt on a headless machine and nothing is left open in pyplot's global state.
"""
from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..io import atomic_path
from ..eval import plot_reliability
from .compare import one_configuration
from .records import _group
from .series import _corruption_by_method, _learning_curves, _occlusion_by_method, _reliability_by_method
from .stats import _mean_std
from .summary import Summary, summarize

#: resolution of the saved PNGs
DPI = 110


def _new_figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return Path(path)


def _colors(methods: Sequence[str]) -> Dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _plot_band(ax, xs: Sequence[float], pts: Sequence[Tuple[Any, float, float]], color, label: str,
               marker: Optional[str] = "o") -> None:
    """A mean curve with a ± std band; ``pts`` are ``(x, mean, std)`` of accuracies, drawn in % at ``xs``."""
    mean = [100 * p[1] for p in pts]
    std = [100 * p[2] for p in pts]
    ax.plot(xs, mean, marker=marker, markersize=3, color=color, label=label)
    ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=color,
                    alpha=0.15, linewidth=0)


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
        _plot_band(ax_curve, [p[0] + 1 for p in pts], pts, colors[r.method], r.method,
                   marker="o" if len(pts) <= 30 else None)
    from matplotlib.ticker import MaxNLocator

    ax_curve.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel("test top-1 (%)")
    ax_curve.set_title("learning curves (mean ± std over seeds)", fontsize=10)
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize="small", loc="lower right")
    return _save_png(fig, path)


def _plot_reliability(summary: Summary, runs, path: Path) -> Optional[Path]:
    pooled = _reliability_by_method(summary, runs)
    if not pooled:
        return None
    ncols = min(4, len(pooled))
    nrows = math.ceil(len(pooled) / ncols)
    fig = _new_figure(3.6 * ncols, 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, (m, rel) in enumerate(pooled):
        ax = axes[i // ncols][i % ncols]
        s = "seed" if rel["n_seeds"] == 1 else "seeds pooled"
        plot_reliability(ax, dict(rel), title=f"{m} ({rel['n_seeds']} {s})")
    for j in range(len(pooled), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.suptitle("reliability diagrams (bin counts summed over seeds)", fontsize=11)
    fig.tight_layout()
    return _save_png(fig, path)


def _plot_corruption(summary: Summary, runs, colors, path: Path) -> Optional[Path]:
    data = _corruption_by_method(summary, runs)
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


def _plot_occlusion(summary: Summary, runs, colors, path: Path) -> Optional[Path]:
    curves = _occlusion_by_method(summary, runs)
    if not curves:
        return None
    fig = _new_figure(6.4, 4.4)
    ax = fig.subplots()
    for m, pts in curves.items():
        auc = summary[m].stats["occlusion_auc"]
        label = m if auc is None else f"{m} (AUC {100 * auc.mean:.2f})"
        _plot_band(ax, [100 * p[0] for p in pts], pts, colors[m], label)
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
    runs, _ = _group(one_configuration(records)[0])  # the configuration the summary shows
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

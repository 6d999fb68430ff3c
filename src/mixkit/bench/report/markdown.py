"""The Markdown of ``report.md``: the command, the setup, the environment, the main table
(mean ± std over seeds), the paired differences to vanilla with 95% t intervals, the per-method
hyper-parameters and the plots.

With one seed the spread is shown as ``–``; a metric that was not measured as ``n/a``. A paired
interval that excludes 0 is marked ``*``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .stats import Delta, Stat
from .summary import DELTA_METRICS, METRICS, Summary
from .values import _sort_seeds


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


def _teacher_table(summary: Summary) -> Optional[str]:
    rows = [[r.method, _fmt_stat(r.stats["top1"], "acc"), _fmt_stat(r.stats["teacher_top1"], "acc")]
            for r in summary.rows if r.stats.get("teacher_top1") is not None]
    if not rows:
        return None
    return _md_table(["method", "classifier top-1 final (%)", "EMA teacher top-1 final (%)"], rows)


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
    """``key=value, ...`` for the ``keys`` in ``cfg`` (milestones and gamma only with the step schedule)."""
    parts = []
    for key in keys:
        if key not in cfg:
            continue
        v = cfg[key]
        if key in ("milestones", "gamma") and cfg.get("schedule") != "step":
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
        tt = _teacher_table(summary)
        if tt is not None:
            lines += ["### Learned mixing: classifier and EMA teacher", "", tt, "",
                      "The tables above evaluate the trained classifier, as the AutoMix / AdAutoMix papers do; "
                      "the EMA teacher that drives the mask generator is shown here beside it.", ""]
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

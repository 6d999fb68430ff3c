"""The Markdown of ``report.md``: a warning block when anything differs between the runs, the command,
the setup (as realised: data sizes, parameter count, effective settings), the environment, the main
table (mean ± std over seeds), the ranking (:mod:`.tables`), the paired differences to vanilla with 95%
t intervals, how throughput was measured, the corruptions that ran, the per-method hyper-parameters
and the plots.

With one seed the spread is shown as ``–``; a metric that was not measured as ``n/a``. A paired
interval that excludes 0 is marked ``*``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .cells import _NA, _fmt_delta, _fmt_params, _fmt_stat, _fmt_value, _md_table
from .summary import DELTA_METRICS, METRICS, Summary
from .tables import ranked_markdown
from .values import _sort_seeds


def main_table(summary: Summary) -> str:
    """The main Markdown table of the report (rows = methods, see the module docstring)."""
    k = summary.median_k
    ref = summary.reference is not None
    header = ["method", "top-1 final (%)", f"top-1 median last {k} (%)"]
    if ref:
        header.append("Δ top-1 vs vanilla [95% CI] (pp)")
    header += ["NLL", "ECE (%)", "corruption acc (%)", "FGSM acc (%)", "occlusion AUC (%)", "wall-clock per run (s)",
               "images/s"]
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
            _fmt_stat(r.stats["wall_time_s"], "speed"),
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


def _setup_value(summary: Summary, key: str) -> Any:
    """A setup field as realised when the runs recorded it (data sizes; the model with its parameter
    count), else as configured."""
    cfg, real = summary.config, summary.setup
    if key in ("n_train", "n_test") and real.get(key) is not None:
        return real[key]
    if key == "model" and cfg.get("model") is not None and real.get("model_params") is not None:
        return f"{cfg['model']} ({real['model_params']:,} parameters)"
    if key == "dataset" and cfg.get("dataset") is not None and real.get("input_shape"):
        shape = "×".join(map(str, real["input_shape"]))
        return f"{cfg['dataset']} (inputs {shape}" + (f", {real['num_classes']} classes)" if real.get("num_classes") else ")")
    return cfg.get(key)


def _recipe(summary: Summary) -> str:
    """The recipe line; amp and channels-last as the runs really had them (both are GPU-only)."""
    cfg = dict(summary.config)
    notes = []
    for key in ("amp", "channels_last"):
        if key in summary.setup and key in cfg and bool(cfg[key]) != bool(summary.setup[key]):
            notes.append(f"{key}={summary.setup[key]} (requested {cfg[key]}; it applies on CUDA only"
                         + (", to 2-D models" if key == "channels_last" else "") + ")")
            cfg.pop(key)
    return ", ".join(p for p in (_kv(cfg, _RECIPE_FIELDS), *notes) if p)


def _setup_section(summary: Summary) -> List[str]:
    cfg = summary.config
    out = ["## Setup", ""]
    if not cfg:
        return out + ["No configuration was recorded in the results.", ""]
    for key, label in _SETUP_FIELDS:
        v = _setup_value(summary, key)
        if v is not None:
            if isinstance(v, (list, tuple)):
                v = ", ".join(map(str, v)) + f" ({len(cfg[key])})"
            out.append(f"- **{label}**: {v}")
    recipe = _recipe(summary)
    if recipe:
        out.append(f"- **recipe** (shared by every method): {recipe}")
    if summary.setup.get("threads") is not None:
        out.append(f"- **threads**: {summary.setup['threads']} per training process (part of the protocol: the "
                   "thread count changes the float reduction order, hence the numbers)")
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


def _warning_block(summary: Summary) -> List[str]:
    if not summary.warnings:
        return []
    return (["> **⚠ Warning: these runs may not be comparable.**", ">"] + [f"> - {w}" for w in summary.warnings]
            + [""])


def _throughput_text(summary: Summary) -> str:
    t = summary.throughput
    if not t:
        return ("Images/s were measured during training, each run under its own load: with parallel jobs, runs "
                "that shared the CPU cores are not comparable with runs that trained alone.")
    rounds, per, warm = t.get("rounds"), t.get("steps_per_round"), t.get("warmup_steps")
    return (f"Images/s come from a timed pass after training: every method's training step (augmentation, mixing, "
            f"forward, backward, update) on the same batch of {t.get('batch_size')}, in one process with "
            f"{t.get('threads')} thread(s) on {t.get('device')}, in {rounds} rounds of {per} step(s) interleaved "
            f"across the methods after {warm} warm-up step(s); mean ± std over the rounds, so every method is timed "
            "under the same load.")


def _throughput_table(summary: Summary) -> Optional[str]:
    rows = [r for r in summary.rows if r.timing]
    if not rows:
        return None
    return _md_table(["method", "images/s", "step (ms)", "of which mixing (ms)", "overhead ×"],
                     [[r.method, _fmt_stat(r.stats["images_per_s"], "speed"), f"{r.timing.get('step_ms', 0):.1f}",
                       f"{r.timing.get('mix_ms', 0):.1f}", _NA if r.overhead is None else f"{r.overhead:.2f}×"]
                      for r in rows])


def _corruption_text(summary: Summary) -> Optional[str]:
    c = summary.corruptions
    if not c:
        return None
    ran, not_run = c.get("ran", []), c.get("not_run", {})
    text = f"Corruptions that ran ({len(ran)} of {len(ran) + len(not_run)}, 5 severities unless configured): {', '.join(ran)}."
    if not_run:
        text += " Not run: " + "; ".join(f"{n} ({why})" for n, why in not_run.items()) + "."
    if summary.reference is not None:
        text += (" mCE vs vanilla = Σ_s error(method) / Σ_s error(vanilla) per corruption, averaged over the "
                 "corruptions and paired by seed (Hendrycks & Dietterich's mCE with vanilla as the baseline; "
                 "< 100% = fewer corruption errors than vanilla).")
    return text


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
    lines += _warning_block(summary)
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
        legend.append("Wall-clock per run = training, evaluation and checkpoints over all its epochs (with parallel "
                      "jobs, under shared load).")
        lines += [" ".join(legend), ""]
        rk = ranked_markdown(summary)
        if rk is not None:
            lines += ["### Ranking", "", rk, "",
                      "Ranked by final top-1; the best of each column in bold (lower is better for NLL, ECE, mCE, "
                      "overhead and wall-clock). The same table is in `table.csv` and `table.tex` (LaTeX, booktabs) "
                      "beside this report.", ""]
        lines += ["### Throughput", "", _throughput_text(summary), ""]
        tt = _throughput_table(summary)
        if tt is not None:
            lines += [tt, ""]
        ct = _corruption_text(summary)
        if ct is not None:
            lines += ["### Corruptions", "", ct, ""]
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
    notes = [n for n in summary.notes if n not in summary.warnings]  # the warnings are at the top
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if plots or plot_error:
        lines += ["## Plots", ""]
        if plot_error:
            lines += [f"Plots were not drawn: {plot_error}", ""]
        for name in plots:
            stem = name[:-4] if name.endswith(".png") else name
            lines += [f"### {stem.replace('_', ' ')}", "", _PLOT_CAPTIONS.get(name, ""), "", f"![{stem}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"

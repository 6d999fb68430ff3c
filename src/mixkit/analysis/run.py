"""``mixkit analyze``: the analyses of :mod:`mixkit.analysis` on every checkpoint of a ``mixkit bench`` run.

Each checkpoint (``OUT/state/<method>-s<seed>.pt``) is rebuilt, evaluated on its run's test split (the
first ``max_eval`` images, in pixel space; the run's normalisation is part of the model), and every chosen
analysis appends one record to ``analysis.jsonl``: ``{checkpoint, method, seed, analysis, key, metrics}``.
The file is rewritten atomically after every record, so an interrupted run keeps what it finished and a
rerun skips every (checkpoint, analysis, settings) already there. ``analysis.md`` then shows, per
analysis and metric, the mean ± std over seeds and the paired difference to vanilla with its 95% t
interval (as the bench report), with the noise curve and the efficiency plot. See
docs/analysis/index.md.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..bench.config import BenchConfig
from ..bench.io import atomic_path, atomic_write_jsonl, atomic_write_text, read_jsonl
from ..bench.report.stats import Stat, paired_difference
from ..bench.runner import load_bench_data
from . import calibration, efficiency, gradients, robustness, transfer

__all__ = ["ANALYSES", "DEFAULT_ANALYSES", "analyze", "write_analysis_report"]

PathLike = Union[str, Path]
NOISE_EPS = (0.0, 0.05, 0.1, 0.2, 0.3)


class _Normalized(nn.Module):
    """The run's model with its input normalisation: pixels in ``[0, 1]`` in, logits out."""

    def __init__(self, model: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean).reshape(-1).float())
        self.register_buffer("std", torch.as_tensor(std).reshape(-1).float())

    def forward(self, x: Tensor) -> Tensor:
        view = (1, -1) + (1,) * (x.dim() - 2)
        return self.model((x - self.mean.reshape(view)) / self.std.reshape(view))


def _logits(model: nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, x.shape[0], batch_size)])


def _deepfool(model, x, y, ctx) -> Dict[str, float]:
    out = {}
    for norm in ("l2", "linf"):
        s = robustness.deepfool_summary(model, x, None, norm=norm)
        out.update({f"{norm}_{k}": float(s[k]) for k in ("rho_mean", "rho_median", "norm_mean", "norm_median",
                                                          "flip_rate") if s.get(k) is not None})
    return out


def _noise(model, x, y, ctx) -> Dict[str, float]:
    c = robustness.uniform_noise_curve(model, x, y, NOISE_EPS, generator=torch.Generator().manual_seed(0))
    out = {f"acc@{e:g}": float(a) for e, a in zip(c["eps"], c["accuracy"])}
    out["mean_acc"] = float(sum(c["accuracy"]) / len(c["accuracy"]))
    return out


def _gradients(model, x, y, ctx) -> Dict[str, float]:
    norms = gradients.input_gradient_norms(model, x, y)
    prof = gradients.input_gradient_distance_profile(model, x, y, max_distance=min(8, min(x.shape[2:]) - 1))
    first = gradients.first_layer_weight_norms(ctx["net"])
    out = {"input_grad_norm_mean": float(norms.mean()), "input_grad_norm_median": float(norms.median()),
           "first_layer_weight_norm": float(first["total"])}
    for d, v, c in zip(prof["distance"], prof["abs_product"], prof["correlation"]):
        out[f"abs_grad_product@d{d}"] = float(v)
        out[f"grad_correlation@d{d}"] = float(c)
    return out


def _calibration(model, x, y, ctx) -> Dict[str, float]:
    return calibration.calibration_summary(_logits(model, x), y)


def _cam(model, x, y, ctx) -> Dict[str, float]:
    """Grad-CAM of the last stage on CutMix-mixed test samples (one box per sample, the same draws for every
    checkpoint, so the methods are compared on the same mixes): how much of each source's class map lies on
    its own region."""
    from ..hooks import stage_names
    from ..mixers import CutMix
    from . import cam

    layer = "model." + stage_names(ctx["net"])[-1]
    res = CutMix(alpha=1.0, mode="sample").mix(x[:200], generator=torch.Generator().manual_seed(0))
    out = cam.cam_share_on_sources(model, res, y[:200], layer)
    share, weight = out["share"].double(), out["weight"].double()
    ok = torch.isfinite(share).all(1)
    share, weight = share[ok], weight[ok]
    dev = share - weight
    pic = ctx.get("cam_picture")
    if pic is not None and x.dim() == 4:  # the pictures are 2-D: clean and mixed samples with each source's map
        cam.show_cams(model, x[:4], layer, y=y[:4], res=CutMix(alpha=1.0, mode="sample").mix(
            x[:4], generator=torch.Generator().manual_seed(1)), out=pic)
    return {"share_on_own_region_anchor": float(share[:, 0].mean()), "label_weight_anchor": float(weight[:, 0].mean()),
            "mean_abs_share_minus_weight": float(dev.abs().mean()),
            "share_weight_correlation": float(torch.corrcoef(torch.stack([share.flatten(), weight.flatten()]))[0, 1]),
            "n_samples": int(ok.sum())}


def _transfer(model, x, y, ctx) -> Dict[str, float]:
    second = ctx.get("transfer")
    if second is None:
        raise ValueError("the transfer analysis needs a second dataset: pass transfer_dataset= (--transfer-dataset)")
    (xtr, ytr), (xte, yte) = second
    probe = transfer.linear_probe(model, (xtr, ytr), (xte, yte))
    tuned = transfer.fine_tune(model, (xtr, ytr), (xte, yte), epochs=ctx.get("transfer_epochs", 5),
                               generator=torch.Generator().manual_seed(0))
    return {"linear_probe_top1": probe["top1"], "fine_tune_top1": tuned["top1"]}


#: per-checkpoint analyses: name -> (function(model, x, y, ctx) -> {metric: float}, what it measures)
ANALYSES: Dict[str, tuple] = {
    "deepfool": (_deepfool, "DeepFool minimal perturbations, L2 and L-inf (rho = mean ||r|| / ||x||)"),
    "noise": (_noise, "top-1 under uniform noise U(-eps, eps), eps in " + ", ".join(f"{e:g}" for e in NOISE_EPS)),
    "gradients": (_gradients, "input-gradient norms, mean |g_a g_b| and the gradient correlation by pixel distance d "
                              "along the axes, first-layer weight norm"),
    "calibration": (_calibration, "ECE, adaptive ECE, classwise ECE, temperature-scaled ECE and NLL"),
    "cam": (_cam, "Grad-CAM of the last stage on CutMix-mixed test samples (one box per sample): the share of each source's class map on "
                  "its own region against its label weight (a model attending in proportion to its label has "
                  "share = weight)"),
    "transfer": (_transfer, "linear probe and fine-tune top-1 on a second dataset"),
}
#: run-level analyses (need the run, not one checkpoint)
RUN_ANALYSES = {
    "efficiency": "training time per epoch against final top-1",
    "mutual_info": "the FMix paper's VAE mutual information between a VAE trained on real data and one trained on "
                   "data mixed by each method of the run (nats; per seed of the run)",
}
DEFAULT_ANALYSES = ("deepfool", "noise", "gradients", "calibration", "cam")


def _key(analysis: str, settings: Dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps([analysis, settings], sort_keys=True, default=str).encode()).hexdigest()[:12]


def analyze(run_dir: PathLike, analyses: Sequence[str] = DEFAULT_ANALYSES, *, max_eval: int = 500,
            device: str = "cpu", checkpoints: Optional[Sequence[PathLike]] = None, dataset: Optional[str] = None,
            transfer_dataset: Optional[str] = None, data_dir: Optional[str] = None, transfer_n: int = 1000,
            transfer_epochs: int = 5, vae_epochs: int = 20, resume: bool = True, progress: bool = True,
            log: Optional[Callable[[str], None]] = None) -> Path:
    """Run ``analyses`` on every checkpoint of ``run_dir`` (or on ``checkpoints``, writing into ``run_dir``)
    and write ``analysis.md`` there; returns its path.

    ``dataset`` (with ``data_dir``) evaluates the checkpoints on another dataset than their run's (same
    input shape); the run-level analyses (``efficiency``, ``mutual_info``) need the run's ``results.jsonl``.
    """
    run_dir = Path(run_dir)
    names = list(analyses)
    valid = list(ANALYSES) + list(RUN_ANALYSES)
    bad = [a for a in names if a not in valid]
    if bad or not names:
        raise ValueError(f"analyses must be among {', '.join(valid)}, got {bad or names}")
    if not isinstance(max_eval, int) or max_eval < 1:
        raise ValueError(f"max_eval must be a positive int, got {max_eval!r}")
    if "transfer" in names and not transfer_dataset:
        raise ValueError("the transfer analysis needs a second dataset: pass --transfer-dataset NAME")
    ckpts = sorted((run_dir / "state").glob("*.pt")) if checkpoints is None else [Path(c) for c in checkpoints]
    per_ckpt = [a for a in names if a in ANALYSES]
    if per_ckpt and not ckpts:
        raise FileNotFoundError(f"{str(run_dir)!r} has no checkpoints in state/ (a `mixkit bench --out` folder)")
    for c in ckpts:
        if not c.is_file():
            raise FileNotFoundError(f"checkpoint {str(c)!r} does not exist")
    if any(a in RUN_ANALYSES for a in names) and not (run_dir / "results.jsonl").is_file():
        raise FileNotFoundError(f"the run-level analyses ({', '.join(a for a in names if a in RUN_ANALYSES)}) need "
                                f"{str(run_dir / 'results.jsonl')!r}: pass a `mixkit bench --out` folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "analysis.jsonl"
    records: List[Dict[str, Any]] = read_jsonl(out) if out.is_file() else []
    if not resume:  # recompute the chosen analyses; the records of the others stay
        records = [r for r in records if r.get("analysis") not in names]
    done = {(r.get("checkpoint"), r.get("analysis"), r.get("key")) for r in records}
    settings = {"max_eval": max_eval, "dataset": dataset, "transfer_dataset": transfer_dataset,
                "transfer_n": transfer_n, "transfer_epochs": transfer_epochs}
    todo = [(c, a) for c in ckpts for a in per_ckpt if (c.stem, a, _key(a, settings)) not in done]
    mi_settings = {"vae_epochs": vae_epochs}
    mi_todo = "mutual_info" in names and ("run", "mutual_info", _key("mutual_info", mi_settings)) not in done
    bar = _bar(len(todo) + int(mi_todo), progress)
    data_cache: Dict[str, Any] = {}
    dev = torch.device(device)

    def add(recs: List[Dict[str, Any]], what: str) -> None:
        records.extend(recs)
        atomic_write_jsonl(out, records)
        if bar is not None:
            bar.update(1)
        elif log is not None:
            log(f"{what} done")

    try:
        for ckpt in ckpts:
            mine = [a for c, a in todo if c == ckpt]
            if not mine:
                continue
            net, info = transfer.load_bench_model(ckpt)
            config = dict(info["config"], **({"dataset": dataset, "data_dir": data_dir} if dataset else {}))
            ds = _data(config, data_cache)
            model = _Normalized(net, ds.mean, ds.std).to(dev).eval()
            x, y = ds.x_test[:max_eval].to(dev), ds.y_test[:max_eval].to(dev)
            ctx = {"net": net, "transfer_epochs": transfer_epochs}
            if "cam" in mine and not any(r.get("analysis") == "cam" and r.get("method") == info["method"]
                                         for r in records):  # one picture per method (its first checkpoint)
                ctx["cam_picture"] = run_dir / f"cam_{info['method']}.png"
            if "transfer" in mine:
                ctx["transfer"] = _second(transfer_dataset, data_dir, transfer_n, data_cache)
            for a in mine:
                t0 = time.perf_counter()
                metrics = ANALYSES[a][0](model, x, y, ctx)
                add([{"checkpoint": ckpt.stem, "method": info["method"], "seed": info["seed"], "analysis": a,
                      "key": _key(a, settings), "settings": settings, "metrics": metrics,
                      "time_s": time.perf_counter() - t0}], f"{ckpt.stem}: {a}")
        if mi_todo:
            t0 = time.perf_counter()
            recs = _mutual_info(run_dir, vae_epochs, data_cache)
            add([dict(r, checkpoint="run", analysis="mutual_info", key=_key("mutual_info", mi_settings),
                      settings=mi_settings, time_s=time.perf_counter() - t0) for r in recs], "mutual_info")
    finally:
        if bar is not None:
            bar.close()
    return write_analysis_report(run_dir, names)


def _mutual_info(run_dir: Path, vae_epochs: int, cache: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One record per (method, seed) of the run: MI of a VAE on data mixed by the method with the real-data VAE."""
    from ..bench.step import build_mixer
    from ..registry import spec
    from .mutual_info import mixing_mi_table

    results = read_jsonl(run_dir / "results.jsonl")
    config = results[-1]["config"]
    cfg = _config(config)
    ds = _data(config, cache)
    methods = [m for m in cfg.methods if m != "vanilla" and not spec(m).needs_model]
    out = []
    for seed in cfg.seeds:
        mixers = {m: build_mixer(cfg, m, ds.num_classes) for m in methods}
        table = mixing_mi_table(ds.x_train, mixers, eval_data=ds.x_test, epochs=vae_epochs,
                                generator=torch.Generator().manual_seed(int(seed)))
        for name, r in table.items():
            out.append({"method": "vanilla" if name == "real" else name, "seed": seed,
                        "metrics": {"mi": r["mi"], "rate": r["rate"], "mse": r["mse"]}})
    return out


def write_analysis_report(run_dir: PathLike, analyses: Optional[Iterable[str]] = None) -> Path:
    """``analysis.md`` (and ``noise.png``, ``efficiency.png``) from ``analysis.jsonl`` and the run's results."""
    run_dir = Path(run_dir)
    path = run_dir / "analysis.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    names = list(analyses) if analyses is not None else sorted({r["analysis"] for r in records})
    lines = ["# Analyses", "", f"Run: `{run_dir}`; records: `analysis.jsonl` ({len(records)}). Per method: mean ± std "
             "over seeds; Δ = paired difference to vanilla over the common seeds with its 95% t interval "
             "(* when it excludes 0).", ""]
    for a in names:
        if a == "efficiency":
            lines += _efficiency_section(run_dir)
            continue
        recs = [r for r in records if r.get("analysis") == a]
        if not recs:
            continue
        about = ANALYSES[a][1] if a in ANALYSES else RUN_ANALYSES[a]
        if a == "mutual_info":
            about += "; the vanilla row is the real-data VAE against itself"
        lines += [f"## {a}", "", about + ".", "", _table(recs), ""]
        if a == "noise":
            png = _noise_plot(recs, run_dir / "noise.png")
            if png:
                lines += [f"![uniform noise]({png.name})", ""]
        if a == "cam":
            for m in sorted({r["method"] for r in recs}, key=lambda k: (k != "vanilla", k)):
                if (run_dir / f"cam_{m}.png").is_file():
                    lines += [f"Class maps of the {m} model (clean, then CutMix-mixed with each source's map):", "",
                              f"![cam {m}](cam_{m}.png)", ""]
    return atomic_write_text(run_dir / "analysis.md", "\n".join(lines))


def _table(recs: List[Dict[str, Any]]) -> str:
    by: Dict[str, Dict[str, Dict[Any, float]]] = {}
    for r in recs:  # the last record of a (method, seed) wins
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)):
                by.setdefault(r["method"], {}).setdefault(k, {})[r["seed"]] = float(v)
    methods = sorted(by, key=lambda m: (m != "vanilla", m))
    metrics = sorted({k for m in by.values() for k in m}, key=lambda k: list(by[methods[0]]).index(k)
                     if k in by[methods[0]] else 10 ** 6)
    head = "| method | n | " + " | ".join(metrics) + " |"
    rows = [head, "|---|---:|" + "---:|" * len(metrics)]
    ref = by.get("vanilla")
    for m in methods:
        cells = []
        n = max(len(v) for v in by[m].values())
        for k in metrics:
            vals = by[m].get(k, {})
            st = Stat.of(sorted(vals.items(), key=lambda kv: str(kv[0])))
            cell = "–" if st is None else f"{st.mean:.4g}" + ("" if st.std is None else f" ± {st.std:.2g}")
            if ref is not None and m != "vanilla" and k in ref and vals:
                d = paired_difference(vals, ref[k])
                if d is not None and d.lo is not None:
                    cell += f"<br>Δ {d.mean:+.3g} [{d.lo:+.3g}, {d.hi:+.3g}]" + (" *" if d.excludes_zero else "")
            cells.append(cell)
        rows.append(f"| {m} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _noise_plot(recs: List[Dict[str, Any]], path: Path) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a bench extra
        return None
    curves: Dict[str, List[List[float]]] = {}
    for r in recs:
        curves.setdefault(r["method"], []).append([r["metrics"][f"acc@{e:g}"] for e in NOISE_EPS])
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for m, cs in sorted(curves.items()):
        mean = [sum(c[i] for c in cs) / len(cs) for i in range(len(NOISE_EPS))]
        ax.plot(NOISE_EPS, [100 * v for v in mean], marker="o", label=f"{m} (n={len(cs)})")
    ax.set_xlabel("uniform noise amplitude eps")
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _efficiency_section(run_dir: Path) -> List[str]:
    pts = efficiency.efficiency_points(run_dir)
    rows = ["## efficiency", "", "Training time per epoch (as logged; the timed pass when the run has one) against "
            "final top-1 (AdAutoMix fig. 9).", "", "| method | top-1 (%) | s / epoch | × vanilla | s / epoch, timed pass |",
            "|---|---:|---:|---:|---:|"]
    for p in pts:
        fmt = (lambda v, f: "–" if v is None else format(v, f))
        rows.append(f"| {p['method']} | {fmt(None if p['top1_mean'] is None else 100 * p['top1_mean'], '.2f')} | "
                    f"{fmt(p['epoch_s'], '.3f')} | {fmt(p['time_ratio'], '.2f')} | {fmt(p['epoch_s_timed'], '.3f')} |")
    rows.append("")
    if any(p["epoch_s"] is not None for p in pts):
        png = efficiency.plot_efficiency(pts, run_dir / "efficiency.png")
        rows += [f"![efficiency]({png.name})", ""]
    return rows


def _config(config: Dict[str, Any]) -> BenchConfig:
    """The run's BenchConfig from a record's config (its keys that are BenchConfig fields)."""
    return BenchConfig.from_dict({k: v for k, v in config.items() if k in BenchConfig.__dataclass_fields__})


def _data(config: Dict[str, Any], cache: Dict[str, Any]):
    cfg = _config(config)
    key = json.dumps([cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test])
    if key not in cache:
        cache[key] = load_bench_data(cfg)
    return cache[key]


def _second(name: str, data_dir: Optional[str], n: int, cache: Dict[str, Any]):
    key = json.dumps(["transfer", name, data_dir, n])
    if key not in cache:
        ds = load_bench_data(BenchConfig.from_dict({"dataset": name, "data_dir": data_dir, "n_train": n}))
        cache[key] = ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test))
    return cache[key]


def _bar(total: int, progress: bool):
    if not progress or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="analyze", unit="analysis", dynamic_ncols=True)

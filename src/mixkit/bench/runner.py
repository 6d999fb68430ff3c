"""Running a whole benchmark: every method × seed under one protocol, then the report."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .. import registry
from .config import BenchConfig
from .data import DataSplit, load_dataset, subset
from .io import atomic_path, atomic_write_jsonl, read_jsonl
from .trainer import DistInfo, build_mixer, make_generator, train_run

__all__ = ["run_bench", "load_bench_data", "check_methods"]


def load_bench_data(cfg: BenchConfig) -> DataSplit:
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)
    if cfg.n_train is not None or cfg.n_test is not None:
        ds = subset(ds, cfg.n_train, cfg.n_test, seed=0)
    return ds


def check_methods(cfg: BenchConfig, ds: DataSplit) -> None:
    """Fail early, with one clear message, on unknown / unavailable / incompatible methods."""
    problems = []
    for m in cfg.methods:
        if m == "vanilla":
            continue
        try:
            registry.spec(m)
        except ValueError as e:
            problems.append(str(e))
            continue
        if not registry.is_available(m):
            problems.append(f"{m}: not available ({registry.describe(m).get('error', 'import failed')})")
            continue
        dims = registry.spatial_dims(m)
        if ds.spatial_dims not in dims:
            problems.append(f"{m}: supports {dims}-D data, dataset {ds.name!r} is {ds.spatial_dims}-D")
    if problems:
        raise ValueError("cannot run these methods:\n  " + "\n  ".join(problems))


def _progress(cfg: BenchConfig, total: int):
    if not cfg.progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="bench", unit="epoch", dynamic_ncols=True, file=sys.stderr)


def run_bench(cfg: BenchConfig, *, resume: bool = True, report: bool = True) -> Path:
    """Train every (method, seed), write ``results.jsonl`` after every epoch and ``report.md`` at the end."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    joined = _init_distributed(cfg)
    try:
        return _run_bench(cfg, resume, report)
    finally:
        if joined:  # tear the group down: gloo threads alive at interpreter exit abort the process
            import torch.distributed as dist

            dist.destroy_process_group()


def _run_bench(cfg: BenchConfig, resume: bool, report: bool) -> Path:
    di = DistInfo()
    out = Path(cfg.out)
    ds = load_bench_data(cfg)
    check_methods(cfg, ds)
    results_path = out / "results.jsonl"
    done: Dict[tuple, List[dict]] = {}
    if di.main:
        out.mkdir(parents=True, exist_ok=True)
        for r in read_jsonl(results_path):  # keep finished runs of an earlier invocation
            done.setdefault((r["method"], r["seed"]), []).append(r)

    def flush(current_key, current_records):
        done[current_key] = list(current_records)
        order = [(m, s) for m in cfg.methods for s in cfg.seeds]
        recs = [r for k in order if k in done for r in done[k]]
        recs += [r for k, v in done.items() if k not in order for r in v]  # other runs already in the file
        atomic_write_jsonl(results_path, recs)

    bar = _progress(cfg, len(cfg.methods) * len(cfg.seeds) * cfg.epochs) if di.main else None
    key = cfg.run_key()
    todo = []
    for seed in cfg.seeds:  # seeds outermost: paired comparisons become available early
        for method in cfg.methods:
            prev = done.get((method, seed), [])
            if resume and prev and prev[-1].get("final") and prev[-1].get("run_key") == key:
                if bar is not None:
                    bar.update(cfg.epochs)
                continue
            todo.append((method, seed))
    try:
        if cfg.resolved_jobs() > 1 and not di.enabled and len(todo) > 1:
            _run_parallel(cfg, todo, out, resume, flush, bar)
        else:
            for method, seed in todo:
                _run_serial(cfg, ds, method, seed, out, resume, flush, bar)
    finally:
        if bar is not None:
            bar.close()
    if di.main and report:
        write_gallery(cfg, ds, out / "gallery.png")
        from .report import write_report

        write_report(out)
    di.barrier()
    return out


def _run_serial(cfg, ds, method, seed, out, resume, flush, bar) -> None:
    last_epoch = [-1]

    def on_epoch(records):
        flush((method, seed), records)
        if bar is not None:
            r = records[-1]
            bar.update(r["epoch"] - last_epoch[0] if last_epoch[0] >= 0 else r["epoch"] + 1)
            last_epoch[0] = r["epoch"]
            bar.set_postfix_str(f"{method} s{seed} ep{r['epoch'] + 1} loss {r['train_loss']:.3f} "
                                f"acc {100 * r.get('test_top1', float('nan')):.1f}%")

    train_run(cfg, ds, method, seed, out, on_epoch=on_epoch, resume=resume)


def _worker_init() -> None:
    torch.set_num_threads(1)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker when the process that started it dies (a killed ``mixkit bench`` must not leave
    workers writing into its output folder)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mixkit-parent-watch").start()


def _worker_run(cfg_dict, method, seed, out, resume):
    cfg = BenchConfig.from_dict(cfg_dict)
    return train_run(cfg, load_bench_data(cfg), method, seed, out, resume=resume)


def _run_parallel(cfg, todo, out, resume, flush, bar) -> None:
    """Independent runs in ``cfg.jobs`` processes (spawned, one thread each). Every run still writes
    its checkpoint and records after each epoch, so an interruption loses nothing; results.jsonl is
    rewritten as runs finish."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from concurrent.futures import FIRST_COMPLETED, wait

    d = cfg.to_dict()
    d["progress"] = False
    shown: Dict[tuple, int] = {}  # epochs already counted on the bar, per run

    def show(key, records):
        if bar is None or not records:
            return
        new = len(records) - shown.get(key, 0)
        if new > 0:
            shown[key] = len(records)
            r = records[-1]
            bar.update(new)
            bar.set_postfix_str(f"{key[0]} s{key[1]} ep{r['epoch'] + 1} loss {r['train_loss']:.3f} "
                                f"acc {100 * r.get('test_top1', float('nan')):.1f}%")

    with ProcessPoolExecutor(max_workers=min(cfg.resolved_jobs(), len(todo)), mp_context=mp.get_context("spawn"),
                             initializer=_worker_init) as ex:
        futs = {ex.submit(_worker_run, d, m, s, str(out), resume): (m, s) for m, s in todo}
        pending = set(futs)
        while pending:
            finished, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            for fut in finished:  # a finished run: its records go into results.jsonl
                key = futs[fut]
                records = fut.result()
                flush(key, records)
                show(key, records)
            for fut in pending:  # live progress: the per-epoch records each worker writes atomically
                key = futs[fut]
                show(key, read_jsonl(Path(out) / "state" / f"{key[0]}-s{key[1]}.jsonl"))


def _init_distributed(cfg: BenchConfig) -> bool:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1): nccl on GPU, gloo on CPU.
    Returns whether this call created the group (and so must destroy it)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def write_gallery(cfg: BenchConfig, ds: DataSplit, path: Path, n: int = 6) -> Optional[Path]:
    """One row per method: ``n`` mixed training images with their label weights."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    methods = [m for m in cfg.methods if m != "vanilla" and not registry.spec(m).needs_model]
    if not methods or ds.spatial_dims != 2:
        return None
    g = make_generator(0, "gallery")
    idx = torch.randperm(ds.x_train.shape[0], generator=g)[:max(n, 2)]
    x, y = ds.x_train[idx], ds.y_train[idx]
    names = ds.class_names or tuple(str(i) for i in range(ds.num_classes))
    fig, axes = plt.subplots(len(methods), n, figsize=(1.6 * n, 1.9 * len(methods)), squeeze=False)
    for row, m in enumerate(methods):
        mixer = build_mixer(cfg, m, ds.num_classes)
        if hasattr(mixer, "mode"):
            mixer.mode = "sample"
        res = mixer.mix(x, generator=make_generator(1, "gallery", m))
        for col in range(n):
            ax = axes[row, col]
            img = res.inputs[col].clamp(0, 1)
            ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            parts = [f"{float(w):.2f}·{names[int(y[int(j)])]}" for j, w in zip(res.index[col], res.weights[col]) if w > 0.005]
            ax.set_title("\n".join(parts), fontsize=6)
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 0].set_ylabel(m, fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path

"""Running a whole benchmark: every method × seed under one protocol, then the report.

The order of :func:`run_bench`: load the data; check the whole plan (:mod:`.plan`); check that the
output folder holds this protocol only (:mod:`.outdir`; ``overwrite`` discards an earlier one); rebuild
``results.jsonl`` from the per-run state; train what is not finished, serially or in ``jobs`` worker
processes; time every method's step in one pass (:mod:`.throughput`); write the report. Ctrl-C stops
every run at its next step (:mod:`.stop`): the finished epochs stay on disk, ``results.jsonl`` is
rewritten from them and :class:`~mixkit.bench.stop.Interrupted` is raised.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from .config import BenchConfig
from .data import DataSplit, load_dataset, subset
from .io import atomic_path, read_jsonl
from .outdir import THROUGHPUT, check_same_config, discard_results, read_runs, write_results
from .plan import check_checkpoints, check_methods, check_plan
from .step import DistInfo, build_mixer, make_generator, method_params, needs_model, resolve_device
from .stop import Interrupted, StopRequest, flag_is_set, sigint_ignored
from .throughput import throughput_is_current, time_methods, write_throughput
from .trainer import train_run

__all__ = ["run_bench", "load_bench_data", "check_methods", "is_main_process"]


def load_bench_data(cfg: BenchConfig) -> DataSplit:
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)
    if cfg.n_train is not None or cfg.n_test is not None:
        ds = subset(ds, cfg.n_train, cfg.n_test, seed=0)
    return ds


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, or a process that was not launched by it (the one that prints)."""
    return int(os.environ.get("RANK", "0")) == 0


def _progress(cfg: BenchConfig, total: int):
    if not cfg.progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="bench", unit="epoch", dynamic_ncols=True, file=sys.stderr)


def run_bench(cfg: BenchConfig, *, resume: bool = True, report: bool = True, overwrite: bool = False) -> Path:
    """Train every (method, seed), keep ``results.jsonl`` current after every epoch, time every method's
    step and write ``report.md``; returns the output folder.

    ``resume=False`` retrains every run of the plan from scratch. ``overwrite=True`` first discards the
    results and checkpoints of another configuration in the folder (without it such a folder raises
    :class:`~mixkit.bench.outdir.ConfigMismatchError`). A bad plan raises
    :class:`~mixkit.bench.plan.PlanError` before the first step; Ctrl-C raises
    :class:`~mixkit.bench.stop.Interrupted` once the runs have stopped.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.resolved_threads())  # part of the protocol: the same in every process
    joined = _init_distributed(cfg)
    try:
        return _run_bench(cfg, resume, report, overwrite)
    finally:
        torch.set_num_threads(threads)
        if joined:  # tear the group down: gloo threads alive at interpreter exit abort the process
            import torch.distributed as dist

            dist.destroy_process_group()


def _run_bench(cfg: BenchConfig, resume: bool, report: bool, overwrite: bool) -> Path:
    di = DistInfo()
    out = Path(cfg.out)
    ds = load_bench_data(cfg)
    check_plan(cfg, ds)
    runs = read_runs(out)
    if overwrite:
        if di.main:
            discard_results(out)
        runs = {}
        di.barrier()
    else:
        check_same_config(out, runs, cfg, {m: method_params(cfg, m) for m in cfg.methods})
    order = [(m, s) for m in cfg.methods for s in cfg.seeds]
    # seeds outermost: paired comparisons become available early
    todo = [(m, s) for s in cfg.seeds for m in cfg.methods
            if not (resume and runs.get((m, s)) and runs[(m, s)][-1].get("final"))]
    if resume:
        check_checkpoints(out, todo)
    if di.main:  # a damaged results.jsonl is rebuilt here; an unwritable --out fails before training
        write_results(out, runs, order)

    def flush(key, records) -> None:
        runs[key] = list(records)
        write_results(out, runs, order)

    bar = _progress(cfg, len(order) * cfg.epochs) if di.main else None
    if bar is not None:
        bar.update(cfg.epochs * (len(order) - len(todo)))
    stop = StopRequest()
    stopped = False
    try:
        with stop.on_sigint() if not di.enabled else contextlib.nullcontext():
            if cfg.resolved_jobs() > 1 and not di.enabled and len(todo) > 1:
                _run_parallel(cfg, todo, out, resume, flush, bar, stop)
            else:
                for method, seed in todo:
                    records = _run_serial(cfg, ds, method, seed, out, resume, flush, bar, stop)
                    if di.main:
                        flush((method, seed), records)
    except KeyboardInterrupt:  # Interrupted at a step, or a second Ctrl-C
        stopped = True
    finally:
        if bar is not None:
            bar.close()
        if di.main:  # every finished epoch, from the per-run state
            runs.update(read_runs(out))
            write_results(out, runs, order)
    if stopped or stop.is_set():
        raise Interrupted()
    if di.main:
        _time_throughput(cfg, ds, out, runs)
    if di.main and report:
        write_gallery(cfg, ds, out / "gallery.png")
        from .report import write_report

        write_report(out)
    di.barrier()
    return out


def _time_throughput(cfg: BenchConfig, ds: DataSplit, out: Path, runs) -> None:
    """The timed pass over every method the report shows (the plan's and the folder's other runs)."""
    if not cfg.throughput_steps:
        return
    others = {m: recs[-1].get("params") or {} for (m, _), recs in runs.items() if m not in cfg.methods}
    methods = list(cfg.methods) + list(others)
    path = out / THROUGHPUT
    if not throughput_is_current(path, cfg, methods):
        # the folder's other methods with the hyper-parameters they were trained with
        timed = dataclasses.replace(cfg, methods=methods, method_params={**{m: v for m, v in others.items() if v}, **cfg.method_params})
        write_throughput(path, time_methods(timed, ds, methods, resolve_device(cfg.device)))


def _run_serial(cfg, ds, method, seed, out, resume, flush, bar, stop):
    last_epoch = [-1]

    def on_epoch(records):
        flush((method, seed), records)
        if bar is not None:
            r = records[-1]
            bar.update(r["epoch"] - last_epoch[0] if last_epoch[0] >= 0 else r["epoch"] + 1)
            last_epoch[0] = r["epoch"]
            bar.set_postfix_str(f"{method} s{seed} ep{r['epoch'] + 1} loss {r['train_loss']:.3f} "
                                f"acc {100 * r.get('test_top1', float('nan')):.1f}%")

    return train_run(cfg, ds, method, seed, out, on_epoch=on_epoch, resume=resume, should_stop=stop.is_set)


#: in each worker process: the parent's stop flag (StopRequest.flag)
_STOP = None


def _stop_requested() -> bool:
    return _STOP is not None and flag_is_set(_STOP)


def _worker_init(flag, threads: int, counter=None, device: str = "auto") -> None:
    import signal

    global _STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and sets the shared flag
    _STOP = flag
    torch.set_num_threads(threads)
    if counter is not None:
        with counter.get_lock():
            k = counter.value
            counter.value += 1
        gpu = worker_gpu(k, device)
        if gpu is not None:
            torch.cuda.set_device(gpu)
    _exit_with_parent()


def worker_gpu(k: int, device: str) -> Optional[int]:
    """The GPU of the ``k``-th worker process: ``k mod`` the number of visible GPUs when the runs train on
    CUDA (``device`` auto or cuda without an index), ``None`` otherwise (CPU, or a device named with its
    index, which every worker then shares). Several workers on one GPU each have their own process,
    CUDA context and default stream, so their kernels overlap."""
    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return None
    return k % torch.cuda.device_count()


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
    if _stop_requested():  # a run queued before the stop: do not start it
        raise Interrupted()
    cfg = BenchConfig.from_dict(cfg_dict)
    return train_run(cfg, load_bench_data(cfg), method, seed, out, resume=resume, should_stop=_stop_requested)


def _run_parallel(cfg, todo, out, resume, flush, bar, stop: StopRequest) -> None:
    """Independent runs in ``cfg.jobs`` spawned processes, each with the benchmark's thread count. Every
    run writes its checkpoint and records after each epoch; results.jsonl is rewritten as epochs come in.
    The workers share ``stop``'s flag: Ctrl-C stops each at its next step; a failed run sets the flag too.
    Then the runs not started are cancelled and the workers awaited; a failed run's error is raised."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    d = cfg.to_dict()
    d["progress"] = False
    shown: Dict[tuple, int] = {}  # epochs already seen, per run

    def show(key, records):
        new = len(records) - shown.get(key, 0)
        if not records or new <= 0:
            return False
        shown[key] = len(records)
        if bar is not None:
            r = records[-1]
            bar.update(new)
            bar.set_postfix_str(f"{key[0]} s{key[1]} ep{r['epoch'] + 1} loss {r['train_loss']:.3f} "
                                f"acc {100 * r.get('test_top1', float('nan')):.1f}%")
        return True

    error: Optional[BaseException] = None
    asked = False  # whether Ctrl-C came before the error (a worker lost to it is no failure)
    with sigint_ignored():  # workers start with SIGINT ignored: a stop reaches them through the flag
        ex = ProcessPoolExecutor(max_workers=min(cfg.resolved_jobs(), len(todo)), mp_context=ctx,
                                 initializer=_worker_init,
                                 initargs=(stop.flag, cfg.resolved_threads(), ctx.Value("i", 0), cfg.device))
        futs = {ex.submit(_worker_run, d, m, s, str(out), resume): (m, s) for m, s in todo}
    try:
        pending = set(futs)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is None:  # a finished run: its records go into results.jsonl
                    show(futs[fut], fut.result())
                    flush(futs[fut], fut.result())
                elif not isinstance(exc, KeyboardInterrupt) and error is None:
                    error, asked = exc, stop.is_set()
            if error is not None:
                stop.set()
            if stop.is_set():
                for fut in pending:
                    fut.cancel()
            for fut in pending:  # live progress: the per-epoch records each worker writes atomically
                key = futs[fut]
                records = read_jsonl(Path(out) / "state" / f"{key[0]}-s{key[1]}.jsonl")
                if show(key, records):
                    flush(key, records)
    except BaseException:  # a second Ctrl-C: the workers stop too
        stop.set()
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    if error is not None and not (asked and isinstance(error, BrokenProcessPool)):
        raise error


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
    methods = [m for m in cfg.methods if m != "vanilla" and not needs_model(m)]
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

#!/usr/bin/env python
"""How long the paper protocol takes here: a short timed slice of it, extrapolated to the whole comparison.

The protocol (default): the FMix paper's Fashion-MNIST comparison, PreAct-ResNet-18, the ``fmix-cifar``
recipe (SGD lr 0.1, batch 128, 200 epochs), 3 seeds, the methods vanilla, MixUp, CutMix, FMix and the
MixUp/FMix alternation, on the full split (60000 / 10000). For every method the bench's own pieces are
timed on the real data, as a run uses them:

* **step**: ``--steps`` training steps (:func:`mixkit.bench.step.train_step` on batches from
  :class:`mixkit.bench.batches.TrainData`, the run's placement) after ``--warmup`` untimed ones;
* **epoch eval**: the test-set pass every epoch makes (top-1 and NLL);
* **final eval**: once per run, the full evaluation (calibration, corruptions, FGSM, occlusion).

A run is then ``epochs × (steps_per_epoch × step + epoch eval) + final eval`` and the comparison is
``seeds ×`` the sum over the methods, trained one run at a time. **Packing**: ``--pack 1,2,4`` starts
that many processes at once, each training vanilla steps on its own copy of the data (what
``mixkit bench --jobs N`` does on one GPU); their aggregate images/s against one process gives the
speed-up of packed runs, and the comparison's time divided by the best speed-up is the packed estimate
(it assumes every method packs like vanilla).

This is an extrapolation from a few steps, not a run: the numbers are what it says they are.

    python benchmarks/protocol_time.py [--device cuda] [--data-dir DIR] [--steps 30] [--pack 1,2,4]
        [--methods vanilla,mixup,cutmix,fmix,mixup+fmix] [--out docs/results/gpu_protocol_time.md]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing as mp
import platform
import queue
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import clock, cpu_model, write_section  # noqa: E402

from mixkit.bench import eval as metrics  # noqa: E402
from mixkit.bench.batches import TrainData  # noqa: E402
from mixkit.bench.config import BenchConfig  # noqa: E402
from mixkit.bench.io import atomic_write_text  # noqa: E402
from mixkit.bench.runner import load_bench_data  # noqa: E402
from mixkit.bench.step import build_parts, make_generator, train_step  # noqa: E402
from mixkit.bench.trainer import _final_metrics, _quick_eval  # noqa: E402

METHODS = "vanilla,mixup,cutmix,fmix,mixup+fmix"


def config(args, methods: List[str]) -> BenchConfig:
    d: Dict[str, Any] = dict(dataset=args.dataset, data_dir=args.data_dir, n_train=args.n_train, n_test=args.n_test,
                             preset=args.preset, methods=methods, seeds=list(range(args.seeds)), epochs=args.epochs,
                             device=args.device, data_placement=args.placement, compile=args.compile,
                             progress=False, threads=args.threads, max_eval=args.max_eval)
    if args.model:
        d["model"] = args.model
    if args.batch:
        d["batch_size"] = args.batch
    return BenchConfig.from_dict(d)


def time_steps(cfg: BenchConfig, ds, method: str, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per training step of ``method`` (median of the timed steps, each synchronised)."""
    parts = build_parts(cfg, ds, method, 0, device)
    parts.net.train()
    data = TrainData(ds, device, cfg.data_placement)
    g_aug, g_mix = make_generator(0, "augment", 0), make_generator(0, "mix", 0)
    batches = data.batches(torch.randperm(data.n_train, generator=make_generator(0, "order", 0)), cfg.batch_size)
    times = []
    for i in range(warmup + steps):
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = data.batches(torch.randperm(data.n_train), cfg.batch_size)
            xb, yb = next(batches)
        if xb.shape[0] < cfg.batch_size:  # the short last batch of an epoch is not a typical step
            continue
        t0 = clock(device)
        train_step(parts, xb, yb, g_aug, g_mix)
        if i >= warmup:
            times.append(clock(device) - t0)
    return statistics.median(times)


#: the longest the packed processes may take to report (then they are stopped and the run fails)
PACK_TIMEOUT_S = 900


def _pack_worker(cfg_dict, steps: int, barrier, out) -> None:
    cfg = BenchConfig.from_dict(cfg_dict)
    torch.set_num_threads(cfg.resolved_threads())
    device = torch.device(cfg.device)
    ds = load_bench_data(cfg)
    parts = build_parts(cfg, ds, "vanilla", 0, device)
    data = TrainData(ds, device, cfg.data_placement)
    g = (make_generator(0, "augment"), make_generator(0, "mix"))
    batches = list(data.batches(torch.randperm(data.n_train, generator=make_generator(0, "order")), cfg.batch_size))
    batches = [b for b in batches if b[0].shape[0] == cfg.batch_size] or batches
    for xb, yb in batches[:2]:  # warm-up
        train_step(parts, xb, yb, *g)
    barrier.wait(timeout=PACK_TIMEOUT_S)
    t0 = clock(device)
    for i in range(steps):
        train_step(parts, *batches[i % len(batches)], *g)
    out.put(clock(device) - t0)


def time_packing(cfg: BenchConfig, jobs: int, steps: int) -> float:
    """Aggregate images/s of ``jobs`` processes training vanilla steps at the same time."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(jobs), ctx.Queue()
    d = cfg.to_dict()
    procs = [ctx.Process(target=_pack_worker, args=(d, steps, barrier, out)) for _ in range(jobs)]
    for p in procs:
        p.start()
    walls: List[float] = []
    deadline = time.monotonic() + PACK_TIMEOUT_S
    try:
        while len(walls) < jobs:
            try:
                walls.append(out.get(timeout=0.5))
            except queue.Empty:
                # a worker that died never reports, and the others wait for it at the barrier: stop them all
                failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if failed:
                    raise RuntimeError(f"a packing worker failed (exit code {failed[0]}; its error is above)")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the packing workers gave no result within {PACK_TIMEOUT_S} s")
    finally:
        for p in procs:
            if p.is_alive() and len(walls) < jobs:
                p.terminate()
            p.join()
    return jobs * steps * cfg.batch_size / max(walls)


def measure(args) -> Dict[str, Any]:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    cfg = config(args, args.methods)
    ds = load_bench_data(cfg)
    steps_per_epoch = math.ceil(ds.n_train / cfg.batch_size)
    res: Dict[str, Any] = {"config": cfg.to_dict(), "n_train": ds.n_train, "n_test": ds.n_test,
                           "input_shape": list(ds.input_shape), "steps_per_epoch": steps_per_epoch, "methods": {}}
    for m in args.methods:
        res["methods"][m] = {"step_s": time_steps(cfg, ds, m, device, args.warmup, args.steps)}
    parts = build_parts(cfg, ds, "vanilla", 0, device)
    data = TrainData(ds, device, cfg.data_placement)
    t0 = clock(device)
    _quick_eval(parts.model, data.x_test, data.y_test, parts.norm, device)
    res["epoch_eval_s"] = clock(device) - t0
    t0 = clock(device)
    _final_metrics(cfg, ds, parts.model, parts.norm, device, 0, [{"test_top1": 0.0}], metrics)
    res["final_eval_s"] = clock(device) - t0
    total = 0.0
    for m, v in res["methods"].items():
        v["run_s"] = cfg.epochs * (steps_per_epoch * v["step_s"] + res["epoch_eval_s"]) + res["final_eval_s"]
        v["images_per_s"] = cfg.batch_size / v["step_s"]
        total += v["run_s"]
    res["comparison_s"] = len(cfg.seeds) * total
    res["packing"] = {str(j): time_packing(cfg, j, args.pack_steps) for j in args.pack} if args.pack else {}
    return res


def _hours(s: float) -> str:
    return f"{s / 3600:,.1f} h" if s >= 3600 else f"{s / 60:,.1f} min"


def render(args, res, seconds: float) -> str:
    cfg = res["config"]
    dev = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({cpu_model()}), {args.threads} thread(s)"
    lines = [
        f"Run {datetime.date.today().isoformat()} on {dev}; torch {torch.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/protocol_time.py {shlex.join(args.argv)}` ({seconds:.0f} s).",
        f"- protocol: `{cfg['dataset']}` {res['n_train']} / {res['n_test']} images {tuple(res['input_shape'])}, "
        f"`{cfg['model']}`, preset `{cfg['preset']}`, batch {cfg['batch_size']}, {cfg['epochs']} epochs, "
        f"{len(cfg['seeds'])} seeds, data placement `{cfg['data_placement']}`, compile `{cfg['compile']}`; "
        f"{res['steps_per_epoch']} steps per epoch",
        f"- timed: {args.steps} steps per method after {args.warmup} warm-up steps (median step); epoch eval "
        f"{res['epoch_eval_s']:.2f} s; final eval {res['final_eval_s']:.1f} s (max_eval {cfg['max_eval']})",
        "- an extrapolation from those steps, not a training run", "",
        "| method | step ms | images/s | one run (extrapolated) |", "|---|---:|---:|---:|"]
    for m, v in res["methods"].items():
        lines.append(f"| {m} | {1000 * v['step_s']:.1f} | {v['images_per_s']:,.0f} | {_hours(v['run_s'])} |")
    lines += ["", f"**The whole comparison, one run at a time: {_hours(res['comparison_s'])}** "
                  f"({len(cfg['seeds'])} seeds × {len(res['methods'])} methods × {cfg['epochs']} epochs)."]
    if res["packing"]:
        one = res["packing"].get("1") or next(iter(res["packing"].values()))
        lines += ["", f"Packed runs (vanilla, {args.pack_steps} steps per process, started together):", "",
                  "| processes | aggregate images/s | × one process |", "|---:|---:|---:|"]
        for j, rate in res["packing"].items():
            lines.append(f"| {j} | {rate:,.0f} | {rate / one:.2f}× |")
        best_j, best = max(res["packing"].items(), key=lambda kv: kv[1])
        lines += ["", f"With `--jobs {best_j}` (the best packing measured, {best / one:.2f}×): about "
                      f"{_hours(res['comparison_s'] * one / best)} for the whole comparison."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", dest="data_dir")
    ap.add_argument("--n-train", dest="n_train", type=int, help="a subset (for a dry run); default the full split")
    ap.add_argument("--n-test", dest="n_test", type=int)
    ap.add_argument("--preset", default="fmix-cifar")
    ap.add_argument("--model", help="default: the preset's (preactresnet18)")
    ap.add_argument("--batch", type=int, help="default: the preset's (128)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--placement", default="auto", choices=["auto", "host", "device"])
    ap.add_argument("--compile", default="off", choices=["off", "model", "mixer", "all"])
    ap.add_argument("--max-eval", dest="max_eval", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--pack", default="", help="comma list of process counts to time packed, e.g. 1,2,4 (default: none)")
    ap.add_argument("--pack-steps", dest="pack_steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="markdown page to write the section into (atomically); a .json beside it")
    ap.add_argument("--section", default="protocol time")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.methods = [m for m in args.methods.split(",") if m]
    try:
        args.pack = [int(j) for j in args.pack.split(",") if j.strip()]
    except ValueError:
        ap.error(f"--pack must be a comma list of ints, got {args.pack!r}")
    if any(j < 1 for j in args.pack) or min(args.steps, args.pack_steps, args.epochs, args.seeds) < 1:
        ap.error("--pack entries, --steps, --pack-steps, --epochs and --seeds must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    t0 = time.perf_counter()
    try:
        res = measure(args)
    except (FileNotFoundError, ValueError) as e:  # the dataset is not installed, a bad method or model
        ap.error(str(e).splitlines()[0])
    body = render(args, res, time.perf_counter() - t0)
    if args.out:
        out = Path(args.out)
        write_section(out, args.section, body, title="# Time of the paper protocol")
        atomic_write_text(out.with_suffix(".json"), json.dumps(res, indent=1, sort_keys=True, default=str) + "\n")
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What ``torch.compile`` buys a benchmark training step: ``mixkit bench --compile off|model|mixer|all``.

For each method and each compile setting, the bench's real training step
(:func:`mixkit.bench.step.train_step`: augment, normalise, mix, forward, loss, backward, update) is
built with :func:`mixkit.bench.step.build_parts` exactly as a run builds it. The first ``--warmup`` steps
(which include the compilation, and a recompilation for every new input shape) are timed apart as the
**warm-up**; then interleaved rounds time ``--steps`` steps of every case, the order rotated per round,
and each compiled case is divided by the eager (``off``) case of the same method **in the same round**.
The table gives the median and IQR of those per-round ratios (below 1: compiling is faster) and the
number of steps a compilation has to save to pay for its warm-up.

    python benchmarks/compile_cost.py [--device cpu|cuda] [--model resnet8] [--size 32] [--batch 128]
        [--methods vanilla,mixup,cutmix] [--compile model,mixer,all] [--rounds 5] [--steps 5] [--out docs/speed.md]
"""
from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Dict

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import Dist, clock, cpu_model, write_section  # noqa: E402

from mixkit.bench.config import BenchConfig  # noqa: E402
from mixkit.bench.data import DataSplit  # noqa: E402
from mixkit.bench.step import build_parts, make_generator, train_step  # noqa: E402


def synthetic_split(n: int, channels: int, size: int, classes: int) -> DataSplit:
    """A random image split of the given shape (the step's cost does not depend on the pixels)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, channels, size, size, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataSplit(x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], num_classes=classes, name="synthetic",
                     mean=(0.5,) * channels, std=(0.29,) * channels, spatial_dims=2)


def measure(args) -> Dict[str, Dict[str, object]]:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    ds = synthetic_split(args.batch, 3, args.size, args.classes)
    xb, yb = ds.x_train.to(device), ds.y_train.to(device)
    cases: Dict[str, Dict[str, object]] = {}
    for m in args.methods:
        for c in ["off"] + args.compile:
            cfg = BenchConfig(model=args.model, batch_size=args.batch, methods=[m], compile=c, device=args.device,
                              progress=False)
            parts = build_parts(cfg, ds, m, 0, device)
            parts.net.train()
            gens = (make_generator(0, "a", m, c), make_generator(0, "m", m, c))
            t0 = clock(device)
            try:
                for _ in range(args.warmup):
                    train_step(parts, xb, yb, *gens)
            except Exception as e:  # a setting that does not compile is a result: reported, not fatal
                cases[f"{m}|{c}"] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"}
                continue
            cases[f"{m}|{c}"] = {"parts": parts, "gens": gens, "warmup_s": clock(device) - t0, "times": []}
    names = [n for n, case in cases.items() if "error" not in case]
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            case = cases[name]
            t0 = clock(device)
            for _ in range(args.steps):
                train_step(case["parts"], xb, yb, *case["gens"])
            case["times"].append((clock(device) - t0) / args.steps)
    for case in cases.values():
        case.pop("parts", None), case.pop("gens", None)
    return cases


def render(args, cases, seconds: float) -> str:
    dev = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({cpu_model()}), {args.threads} thread(s)"
    lines = [
        f"Run {datetime.date.today().isoformat()} on {dev}; torch {torch.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/compile_cost.py {shlex.join(args.argv)}` ({seconds:.0f} s).",
        f"- model `{args.model}`, batch {args.batch} × 3 × {args.size} × {args.size}, {args.classes} classes; warm-up = "
        f"the first {args.warmup} steps (compilation included); then {args.rounds} interleaved rounds of {args.steps} steps",
        "- × off: the per-round ratio of the step time to the eager step of the same method (below 1: faster); "
        "break-even: steps the saving needs to repay the extra warm-up (- where compiling is slower)",
        "- the warm-up of a later case can be short: inductor reuses the kernels it compiled for an earlier case "
        "(the same model) and its on-disk cache from earlier processes; a first compilation in a fresh process "
        "costs what the first compiled row of a model shows, or more", "",
        "| method | compile | step ms | × off | warm-up s | break-even steps |", "|---|---|---:|---:|---:|---:|"]
    for name, case in cases.items():
        m, c = name.split("|")
        off = cases[f"{m}|off"]
        if "error" in case or "error" in off:
            lines.append(f"| {m} | {c} | fails: {case.get('error') or 'eager step failed'} | - | - | - |")
            continue
        step = statistics.median(case["times"])
        ratio = Dist.of([a / b for a, b in zip(case["times"], off["times"])])
        saved = statistics.median(off["times"]) - step
        extra = case["warmup_s"] - off["warmup_s"]
        even = f"{max(0.0, extra) / saved:,.0f}" if c != "off" and saved > 0 else "-"
        lines.append(f"| {m} | {c} | {1000 * step:.1f} | {ratio.fmt('×') if c != 'off' else '1'} | "
                     f"{case['warmup_s']:.1f} | {even} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="resnet8")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--methods", default="vanilla,mixup,cutmix")
    ap.add_argument("--compile", default="model,mixer,all", help="compile settings to time against off")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="markdown page to write the section into (atomically)")
    ap.add_argument("--section", default="torch.compile", help="section name in --out (default 'torch.compile')")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.compile = [c for c in args.compile.split(",") if c and c != "off"]
    bad = [c for c in args.compile if c not in ("model", "mixer", "all")]
    if bad:
        ap.error(f"--compile takes model, mixer, all; got {', '.join(bad)}")
    if min(args.rounds, args.steps, args.warmup, args.batch - 1) < 1:
        ap.error("--rounds, --steps, --warmup must be >= 1 and --batch >= 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    t0 = time.perf_counter()
    try:
        cases = measure(args)
    except ValueError as e:  # an unknown method or model
        ap.error(str(e).splitlines()[0])
    body = render(args, cases, time.perf_counter() - t0)
    if args.out:
        write_section(Path(args.out), args.section, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of one training step with the learned mixers (AutoMix, AdAutoMix) against a vanilla and a MixUp step.

One step = (mix) + forward(s) + loss + backward + SGD step (+ the EMA teacher update for the learners),
on CPU, for each model and batch size. Time: every method is timed in the same process with the same
batch and number of threads, in interleaved rounds (so machine load hits all alike); the table gives
the median step time and its ratio to the vanilla and the MixUp step of the same round set. Memory: each
method runs in a fresh subprocess and reports the growth of its peak resident set size (``ru_maxrss``)
over the two steps, against the process's state just before the first step (model, data and learner
built); that includes activations, gradients, the optimizer's momentum buffers and allocator slack.

Methods: ``vanilla``, ``mixup`` (``mixkit.MixUp``, alpha 1), ``automix`` and ``adautomix`` at their
official CIFAR defaults (AdAutoMix N = 3), and ``automix_noclean`` (AutoMix with ``head_one_q = 0``: no
clean-batch pass, the configuration that can approach 2x vanilla).

    python benchmarks/learned_cost.py [--models resnet8,resnet20,preactresnet18] [--batches 64,128]
                                      [--size 32] [--rounds 3] [--steps 2] [--threads 1] [--width 1]
                                      [--methods ...] [--memory | --no-memory] [--out FILE]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

import mixkit
from mixkit.bench.models import build_model
from mixkit.learned import AdAutoMix, AutoMix

METHODS = ["vanilla", "mixup", "automix", "automix_noclean", "adautomix"]
NUM_CLASSES = 10
_PEAK = "PEAK_JSON="


#: stage 3 of every benchmark ResNet (8x8 at 32 px): the official AutoMix / AdAutoMix feature map
FEATURE_LAYER = "layer3"


def make_step(method: str, model: torch.nn.Module) -> Callable:
    """A closure ``step(x, y, g)`` running one full training step of ``method`` on ``model``."""
    if method in ("vanilla", "mixup"):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        mixer = mixkit.MixUp(alpha=1.0, num_classes=NUM_CLASSES) if method == "mixup" else None

        def step(x, y, g):
            if mixer is None:
                loss = F.cross_entropy(model(x), y)
            else:
                x_mix, target = mixer(x, y, generator=g)
                loss = mixkit.soft_cross_entropy(model(x_mix), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step
    if method == "automix":
        learner = AutoMix(model, FEATURE_LAYER, total_steps=10 ** 6)
    elif method == "automix_noclean":
        learner = AutoMix(model, FEATURE_LAYER, total_steps=10 ** 6, head_weights={"head_one_q": 0})
    elif method == "adautomix":
        learner = AdAutoMix(model, FEATURE_LAYER, total_steps=10 ** 6)
    else:
        raise ValueError(f"unknown method {method!r}; use {', '.join(METHODS)}")
    opt = torch.optim.SGD(learner.param_groups(0.01), momentum=0.9, weight_decay=1e-4)

    def step(x, y, g):
        out = learner(x, y, generator=g)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        learner.update_teacher()

    return step


def _data(batch: int, size: int):
    g0 = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, size, size, generator=g0), torch.randint(0, NUM_CLASSES, (batch,), generator=g0)


def _model(name: str, width: float) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, NUM_CLASSES, 3, 2, width=width)


def _probe(method: str, model_name: str, batch: int, size: int, width: float, steps: int = 2) -> Dict[str, float]:
    """In this process: peak RSS growth (MiB) over ``steps`` steps of ``method``."""
    x, y = _data(batch, size)
    step = make_step(method, _model(model_name, width))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for s in range(steps):
        step(x, y, torch.Generator().manual_seed(s))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": max(0, after - before) / 1024.0, "base_mib": before / 1024.0}


def probe_memory(method: str, model_name: str, batch: int, size: int, width: float, threads: int = 1) -> str:
    """Run :func:`_probe` in a fresh subprocess; returns its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", method, "--models", model_name,
           "--batches", str(batch), "--size", str(size), "--width", str(width), "--threads", str(threads)]
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr[-2000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(_PEAK))
    return line[len(_PEAK):]


def time_methods(methods: List[str], model_name: str, batch: int, args) -> Dict[str, float]:
    x, y = _data(batch, args.size)
    base = _model(model_name, args.width)
    steps = {m: make_step(m, copy.deepcopy(base)) for m in methods}
    for m in methods:  # warm-up
        steps[m](x, y, torch.Generator().manual_seed(1))
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for r in range(args.rounds):
        for m in methods:
            for s in range(args.steps):
                g = torch.Generator().manual_seed(100 * r + s)
                t0 = time.perf_counter()
                steps[m](x, y, g)
                times[m].append(time.perf_counter() - t0)
    return {m: statistics.median(v) for m, v in times.items()}


def table(model_name: str, batch: int, med: Dict[str, float], mem: Dict[str, float], args) -> str:
    lines = [f"### {model_name} (width {args.width}), batch {batch}x3x{args.size}x{args.size}, CPU, "
             f"{args.threads} thread(s)", "",
             f"torch {torch.__version__}, mixkit {mixkit.__version__}, {platform.processor() or platform.machine()}, "
             f"load average {os.getloadavg()[0]:.1f}; median of {args.rounds}x{args.steps} steps per method, "
             "rounds interleaved; memory = peak RSS growth over 2 steps in a fresh process.", "",
             "| method | step ms | x vanilla | x MixUp | peak MiB | mem x vanilla | mem x MixUp |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    tv, tm = med.get("vanilla"), med.get("mixup")
    mv, mm = mem.get("vanilla"), mem.get("mixup")

    def ratio(a, b):
        return f"{a / b:.2f}" if a is not None and b else ""

    for m, t in med.items():
        mib = mem.get(m)
        lines.append(f"| {m} | {t * 1e3:.1f} | {ratio(t, tv)} | {ratio(t, tm)} | "
                     f"{'' if mib is None else f'{mib:.0f}'} | {ratio(mib, mv)} | {ratio(mib, mm)} |")
    return "\n".join(lines) + "\n"


def run(args) -> str:
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    out = []
    for model_name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            med = time_methods(methods, model_name, batch, args)
            mem: Dict[str, float] = {}
            if args.memory:
                for m in methods:
                    mem[m] = json.loads(probe_memory(m, model_name, batch, args.size, args.width, args.threads))["peak_mib"]
            text = table(model_name, batch, med, mem, args)
            print(text, flush=True)
            out.append(text)
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet8,resnet20,preactresnet18")
    ap.add_argument("--batches", default="64,128")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one memory probe in this process
    ap.add_argument("--out", help="append the tables to this markdown file (written atomically)")
    args = ap.parse_args(argv)
    if args.probe:
        torch.set_num_threads(args.threads)
        res = _probe(args.probe, args.models, int(args.batches), args.size, args.width)
        print(_PEAK + json.dumps(res), flush=True)
        return 0
    text = run(args)
    if args.out:
        from mixkit.bench.io import atomic_write_text

        p = Path(args.out)
        head = p.read_text() if p.exists() else ""
        atomic_write_text(p, head + ("\n" if head else "") + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

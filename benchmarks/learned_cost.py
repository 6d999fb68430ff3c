"""Cost of one training step with the learned mixers (AutoMix, AdAutoMix) against a vanilla and a MixUp step.

One step = (mix) + forward(s) + loss + backward + SGD step (+ the EMA teacher update for the learners),
on the CPU (or a CUDA device, ``--device cuda``), for each model and batch size. Time: every method is
timed in the same process with the same batch and number of threads, in interleaved rounds (so machine
load hits all alike); the table gives the median step time and its ratio to the vanilla and the MixUp
step of the same round set. Memory: each method runs in a fresh subprocess (Linux; glibc told to return freed blocks at once) and reports the
peak resident set size over two steps after a warm-up step, minus the resident size before the data,
model and learner were built: the model, the teacher, the optimizer's momentum buffers and the step's
activations and gradients (``peak MiB``), and the part above the state after the warm-up step, the
step's working memory (``step MiB``). On CUDA the same two figures are read from the device's allocator
(``torch.cuda.max_memory_allocated``), and the step times are wall times with the device synchronised
before and after each step.

Methods: ``vanilla``, ``mixup`` (``mixkit.MixUp``, alpha 1), ``automix`` and ``adautomix`` at their
official CIFAR defaults (AdAutoMix N = 3), and ``automix_noclean`` (AutoMix with ``head_one_q = 0``: no
clean-batch pass, the configuration that can approach 2x vanilla).

    python benchmarks/learned_cost.py [--models resnet8,resnet20,preactresnet18] [--batches 64,128]
                                      [--size 32] [--rounds 3] [--steps 2] [--threads 1] [--width 1]
                                      [--methods ...] [--memory | --no-memory] [--device cpu] [--out FILE]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import mixkit  # noqa: E402
from mixkit.bench.models import build_model  # noqa: E402
from mixkit.learned import AdAutoMix, AutoMix  # noqa: E402

from _harness import clock, sync  # noqa: E402

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


def _data(batch: int, size: int, device: str = "cpu"):
    g0 = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 3, size, size, generator=g0), torch.randint(0, NUM_CLASSES, (batch,), generator=g0)
    return x.to(device), y.to(device)


def _model(name: str, width: float, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, NUM_CLASSES, 3, 2, width=width).to(device)


def _rss_kib(field: str) -> int:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process in KiB, from ``/proc/self/status``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS (Linux)
        return True
    except OSError:
        return False


def _meter(device: str) -> Tuple[Callable[[], float], Callable[[], object], Callable[[], float]]:
    """``(now, reset_peak, peak)`` of the memory :func:`_probe` reads, in MiB: the process's resident set on
    the CPU (``VmRSS`` / ``VmHWM``), the CUDA allocator's bytes on CUDA (read once the device is idle)."""
    if device == "cuda":
        def now() -> float:
            sync(device)
            return torch.cuda.memory_allocated() / 2.0 ** 20

        def peak() -> float:
            sync(device)
            return torch.cuda.max_memory_allocated() / 2.0 ** 20

        return now, torch.cuda.reset_peak_memory_stats, peak
    if not _reset_peak():
        raise RuntimeError("the memory probe needs Linux /proc/self/clear_refs")
    return (lambda: _rss_kib("VmRSS") / 1024.0), _reset_peak, (lambda: _rss_kib("VmHWM") / 1024.0)


def _probe(method: str, model_name: str, batch: int, size: int, width: float, steps: int = 2,
           device: str = "cpu") -> Dict[str, float]:
    """In this process: the peak resident memory (MiB) of ``steps`` steps of ``method`` after a warm-up step.

    ``peak_mib``: the peak over the resident size before the data, model and learner were built (so it
    counts the model, the teacher, the optimizer state and the step's activations and gradients);
    ``step_mib``: the peak over the resident size after the warm-up step (the step's working memory).
    Run it with glibc's ``MALLOC_MMAP_THRESHOLD_`` low (as :func:`probe_memory` does) so that freed
    tensors leave the resident set. On CUDA: the same from the device's allocator."""
    now, reset_peak, peak_of = _meter(device)
    start = now()
    x, y = _data(batch, size, device)
    step = make_step(method, _model(model_name, width, device))
    step(x, y, torch.Generator().manual_seed(99))  # warm-up: optimizer state, lazy initialisations
    warm = now()
    reset_peak()
    for s in range(steps):
        step(x, y, torch.Generator().manual_seed(s))
    peak = peak_of()
    return {"peak_mib": peak - start, "step_mib": max(0.0, peak - warm), "base_mib": start}


def probe_memory(method: str, model_name: str, batch: int, size: int, width: float, threads: int = 1,
                 device: str = "cpu") -> str:
    """Run :func:`_probe` in a fresh subprocess; returns its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", method, "--models", model_name,
           "--batches", str(batch), "--size", str(size), "--width", str(width), "--threads", str(threads),
           "--device", device]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr[-2000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(_PEAK))
    return line[len(_PEAK):]


def time_methods(methods: List[str], model_name: str, batch: int, args) -> Dict[str, float]:
    x, y = _data(batch, args.size, args.device)
    base = _model(model_name, args.width, args.device)
    steps = {m: make_step(m, copy.deepcopy(base)) for m in methods}
    for m in methods:  # warm-up
        steps[m](x, y, torch.Generator().manual_seed(1))
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for r in range(args.rounds):
        for m in methods:
            for s in range(args.steps):
                g = torch.Generator().manual_seed(100 * r + s)
                t0 = clock(args.device)
                steps[m](x, y, g)
                times[m].append(clock(args.device) - t0)
    return {m: statistics.median(v) for m, v in times.items()}


def table(model_name: str, batch: int, med: Dict[str, float], mem: Dict[str, Dict[str, float]], args) -> str:
    where = f"CUDA ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else "CPU"
    memory = ("peak MiB: peak memory the device's allocator held during a step, in a fresh process, over what it "
              "held before the model was built (model, teacher, optimizer state, the step's activations and "
              "gradients)" if args.device == "cuda" else
              "peak MiB: peak resident memory of a step in a fresh process, over the process "
              "before the model was built (model, teacher, optimizer state, the step's activations and gradients, "
              "and torch's own lazily allocated state)")
    lines = [f"### {model_name} (width {args.width}), batch {batch}x3x{args.size}x{args.size}, {where}, "
             f"{args.threads} thread(s)", "",
             f"torch {torch.__version__}, mixkit {mixkit.__version__}, {platform.processor() or platform.machine()}, "
             f"load average {os.getloadavg()[0]:.1f}; median of {args.rounds}x{args.steps} steps per method, "
             f"rounds interleaved; {memory}; step MiB: the part above the state after a warm-up step.", "",
             "| method | step ms | x vanilla | x MixUp | peak MiB | x vanilla | step MiB | x vanilla |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    tv, tm = med.get("vanilla"), med.get("mixup")
    mv = mem.get("vanilla", {})

    def ratio(a, b):
        return f"{a / b:.2f}" if a is not None and b else ""

    def mib(v):
        return "" if v is None else f"{v:.0f}"

    for m, t in med.items():
        p = mem.get(m, {})
        pk, st = p.get("peak_mib"), p.get("step_mib")
        lines.append(f"| {m} | {t * 1e3:.1f} | {ratio(t, tv)} | {ratio(t, tm)} | {mib(pk)} | "
                     f"{ratio(pk, mv.get('peak_mib'))} | {mib(st)} | {ratio(st, mv.get('step_mib'))} |")
    return "\n".join(lines) + "\n"


def run(args) -> str:
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    out = []
    for model_name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            med = time_methods(methods, model_name, batch, args)
            mem: Dict[str, Dict[str, float]] = {}
            if args.memory:
                for m in methods:
                    mem[m] = json.loads(probe_memory(m, model_name, batch, args.size, args.width, args.threads,
                                                     args.device))
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
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one memory probe in this process
    ap.add_argument("--out", help="append the tables to this markdown file (written atomically)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.probe:
        torch.set_num_threads(args.threads)
        res = _probe(args.probe, args.models, int(args.batches), args.size, args.width, device=args.device)
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

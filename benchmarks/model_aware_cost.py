#!/usr/bin/env python
"""Cost of one training step with each model-aware mixer, as ratios to a vanilla step within each round.

One step = mix (including any saliency pass) + forward + soft-target loss + backward + SGD step, on a small
ResNet with a CIFAR-sized batch (128 x 3 x 32 x 32) on the CPU, or a CUDA device with ``--device cuda``
(then the clock is the wall clock, and the device is synchronised at each clock reading). All methods
share one model, batch and thread count and run in interleaved rounds (each round: one step of every
method, in an order shuffled per round, with a vanilla step before every pair of methods and at the end); each method's ratio to the
vanilla step is taken within each round, against the mean of the two vanilla steps around it, then the
median and IQR of those per-round ratios are reported. PuzzleMix draws its grid size per batch from {2, 4, 8, 16}: each
size is also forced (``block_num=k``) and reported on its own. Inside each step the time of ``mixer.mix``
and of the saliency pass (``input_gradient_saliency``) is recorded too: the "what bounds it" column.

Writes row 6 of issue 10's goal table (PuzzleMix <= 1.5x a vanilla step on every grid, Co-Mixup <= 2x a
PuzzleMix step), with the other rows copied from docs/speed.md.

    python benchmarks/model_aware_cost.py [--rounds 12] [--threads 1] [--device cpu] [--out docs/cost.md] [--quick]
"""
from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import mixkit  # noqa: E402
from mixkit import registry, saliency, soft_targets  # noqa: E402
from mixkit.bench.models import build_model  # noqa: E402
from mixkit.losses import soft_cross_entropy  # noqa: E402

import goals  # noqa: E402
from _harness import Dist, clock, loadavg, write_section  # noqa: E402

GRIDS = (2, 4, 8, 16)
#: the clock of the steps: wall time, or the CPU time of the process (``--clock cpu``, one thread: the time
#: the process waited for a core on a loaded machine is left out); with ``--device cuda`` the wall clock read
#: once the device has finished its queued work (``_harness.clock``)
_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter
METHODS = ["vanilla", "mixup", "cutmix", "saliencymix", "puzzlemix"] + [f"puzzlemix@{k}" for k in GRIDS] + ["comixup"]


class SaliencyClock:
    """Wraps ``input_gradient_saliency`` in every mixer module that imported it, summing its time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._patched: List = []

    def __enter__(self):
        orig = saliency.input_gradient_saliency

        def timed(*a, **k):
            t0 = _clock()
            try:
                return orig(*a, **k)
            finally:
                self.seconds += _clock() - t0

        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("mixkit.") and getattr(mod, "input_gradient_saliency", None) is orig:
                self._patched.append(mod)
                mod.input_gradient_saliency = timed
        self._orig = orig
        return self

    def __exit__(self, *exc):
        for mod in self._patched:
            mod.input_gradient_saliency = self._orig


def make_step(method: str, model, opt, num_classes: int):
    mixer = None
    if method != "vanilla":
        name, _, grid = method.partition("@")
        kw = {"num_classes": num_classes}
        if registry.spec(name).needs_model:
            kw["model"] = model
        if grid:
            kw["block_num"] = int(grid)
        mixer = registry.create(name, **kw)

    def step(x, y, g) -> float:
        """One step; returns the seconds spent in ``mixer.mix``."""
        opt.zero_grad(set_to_none=True)
        t_mix = 0.0
        if mixer is None:
            logits, target = model(x), mixkit.one_hot(y, num_classes)
        else:
            t0 = _clock()
            res = mixer.mix(x, y, generator=g)
            t_mix = _clock() - t0
            target = soft_targets(y, res, num_classes)
            logits = res.outputs if res.outputs is not None else model(res.inputs)
        loss = soft_cross_entropy(logits, target)
        loss.backward()
        opt.step()
        return t_mix

    return step


def measure(args) -> Dict[str, Dict[str, List[float]]]:
    torch.set_num_threads(args.threads)
    g0 = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g0).to(args.device)
    y = torch.randint(0, 10, (args.batch,), generator=g0).to(args.device)
    methods = [m for m in args.methods.split(",") if m == "vanilla" or registry.is_available(m.partition("@")[0])]
    torch.manual_seed(0)
    model = build_model(args.model, 10, 3, 2).to(args.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    steps = {m: make_step(m, model, opt, 10) for m in methods}
    rec = {m: {"step": [], "mix": [], "sal": [], "ref": []} for m in methods}
    for m in methods:  # warm-up
        steps[m](x, y, torch.Generator().manual_seed(1))
    others = [m for m in methods if m != "vanilla"]
    rng = random.Random(0)
    for r in range(args.rounds):
        rng.shuffle(others)
        # a vanilla step before every pair of methods and at the end: each method's reference is the mean of
        # the two vanilla steps around it, seconds away, so a load change within the round cancels too
        seq: List[str] = []
        for i, m in enumerate(others):
            seq += (["vanilla"] if i % 2 == 0 and "vanilla" in rec else []) + [m]
        seq += ["vanilla"] if "vanilla" in rec else []
        done = []
        for m in seq:
            with SaliencyClock() as clock:
                t0 = _clock()
                t_mix = steps[m](x, y, torch.Generator().manual_seed(1000 + r))
                dt = _clock() - t0
            done.append((m, dt, t_mix, clock.seconds))
        van = [i for i, d in enumerate(done) if d[0] == "vanilla"]
        for m in methods:
            idx = [i for i, d in enumerate(done) if d[0] == m]
            rec[m]["step"].append(statistics.fmean(done[i][1] for i in idx))
            rec[m]["mix"].append(statistics.fmean(done[i][2] for i in idx))
            rec[m]["sal"].append(statistics.fmean(done[i][3] for i in idx))
            if m == "vanilla" or not van:
                rec[m]["ref"].append(rec["vanilla"]["step"][-1] if van else float("nan"))
            else:
                i = idx[0]
                around = [max((j for j in van if j < i), default=None), min((j for j in van if j > i), default=None)]
                rec[m]["ref"].append(statistics.fmean(done[j][1] for j in around if j is not None))
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return rec


def _norm(rec, m: str, part: str = "step") -> Optional[List[float]]:
    """Per round: ``part`` of method ``m`` over its reference vanilla step (the two around it). ``part``:
    step, mix, sal, or rest (mix() minus the saliency pass)."""
    if m not in rec:
        return None
    v = rec[m]
    num = [a - b for a, b in zip(v["mix"], v["sal"])] if part == "rest" else v[part]
    return [n / q if q > 0 else float("nan") for n, q in zip(num, v["ref"])]


def per_round(rec, a: str, b: str, part: str = "step") -> Optional[Dist]:
    """Per-round ratios ``part of a / step of b``, each side first normalised by its own reference vanilla
    step of the round; ``b`` "puzzlemix@mean" = the mean of the four forced-grid PuzzleMix steps (the
    expected cost of a step whose grid is drawn uniformly from the four sizes)."""
    num = _norm(rec, a, part)
    if num is None:
        return None
    if b == "vanilla":
        den = [1.0] * len(num)
    elif b == "puzzlemix@mean":
        grids = [_norm(rec, f"puzzlemix@{k}") for k in GRIDS]
        if any(g is None for g in grids):
            return None
        den = [statistics.fmean(v) for v in zip(*grids)]
    else:
        den = _norm(rec, b)
        if den is None:
            return None
    return Dist.of([p / q for p, q in zip(num, den) if q > 0])


def _med(v: List[float]) -> float:
    return statistics.median(v) * 1e3 if v else float("nan")


def goal_result(rec) -> goals.Result:
    parts, oks, bounds = [], [], []
    for k in GRIDS:
        m = f"puzzlemix@{k}"
        d = per_round(rec, m, "vanilla")
        if d is None:
            parts.append(f"{k}×{k}: not measured")
            oks.append(None)
            continue
        parts.append(f"PuzzleMix {k}×{k} {d.fmt('×')}")
        oks.append(d.median <= 1.5)
        if d.median > 1.5:
            sal, rest = per_round(rec, m, "vanilla", "sal"), per_round(rec, m, "vanilla", "rest")
            bounds.append(f"{k}×{k}: saliency pass {sal.median:.2f}×, rest of mix() (costs, labelling, transport, "
                          f"blend) {rest.median:.2f}× a vanilla step")
    dm = per_round(rec, "puzzlemix", "vanilla")
    if dm is not None:
        parts.append(f"PuzzleMix, grid drawn per batch {dm.fmt('×')}")
    dc = per_round(rec, "comixup", "puzzlemix@mean")
    if dc is None:
        parts.append("Co-Mixup: not measured")
        oks.append(None)
    else:
        dv = per_round(rec, "comixup", "vanilla")
        dd = per_round(rec, "comixup", "puzzlemix")
        parts.append(f"Co-Mixup {dc.fmt('×')} the mean PuzzleMix step over the four grids"
                     + (f" ({dd.fmt('×')} the grid-drawn PuzzleMix step)" if dd else "") + f"; {dv.fmt('×')} vanilla")
        oks.append(dc.median <= 2.0)
        if dc.median > 2.0:
            sal, rest = per_round(rec, "comixup", "vanilla", "sal"), per_round(rec, "comixup", "vanilla", "rest")
            bounds.append(f"Co-Mixup: saliency pass {sal.median:.2f}×, rest of mix() {rest.median:.2f}× a vanilla step")
    met = None if None in oks else all(oks)
    return goals.Result("; ".join(parts), met, "; ".join(bounds))


def render(args, rec, load0, elapsed) -> str:
    quick = " (--quick: tiny sizes, not a measurement)" if args.quick else ""
    lines = [f"## Generated by `benchmarks/model_aware_cost.py`{quick}", "",
             f"- command: `python benchmarks/model_aware_cost.py {' '.join(args.argv)}`".rstrip() + f"; date "
             f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}, mixkit {mixkit.__version__}, "
             f"python {platform.python_version()}; {os.cpu_count()} logical cores; {args.threads} torch thread(s); "
             f"run took {elapsed:.0f} s",
             f"- {args.model}, batch {args.batch}×3×{args.size}×{args.size}, {args.device_name}; {args.rounds} interleaved "
             "rounds, one step "
             "of every method per round (order shuffled per round, a vanilla step before every pair of methods and at "
             "the end); each ratio is taken within its round against the mean of the two vanilla steps around the "
             f"method's step, median (IQR) over the rounds; clock: "
             + ("CPU time of the process (one thread: time spent waiting for a core is left out)" if args.clock == "cpu"
                else "wall time" + (", the device synchronised at every reading" if args.device == "cuda" else ""))
             + f"; load average (1 min) at start / end {load0:.2f} / {loadavg():.2f}",
             "- `mix()` = the time inside `mixer.mix` (saliency pass, costs, labelling, transport, blend); `saliency` "
             "= the time inside `mixkit.saliency.input_gradient_saliency` (one extra forward + backward); "
             "`puzzlemix@k` = PuzzleMix with its grid forced to k×k (the default draws k from {2, 4, 8, 16} per batch)", "",
             "| method | step ms | mix() ms | saliency ms | × vanilla step | mix() × vanilla step | "
             "(mix() − saliency) × vanilla step | × mean PuzzleMix step |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m, v in rec.items():
        ds = [per_round(rec, m, "vanilla"), per_round(rec, m, "vanilla", "mix"), per_round(rec, m, "vanilla", "rest"),
              per_round(rec, m, "puzzlemix@mean")]
        lines.append(f"| {m} | {_med(v['step']):.1f} | {_med(v['mix']):.1f} | {_med(v['sal']):.1f} | "
                     + " | ".join(d.fmt('×') if d else '-' for d in ds) + " |")
    missing = [m for m in args.methods.split(",") if m not in rec]
    if missing:
        lines += ["", f"Not available here: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 12; 2 with --quick)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", default="auto", choices=["auto", "wall", "cpu"],
                    help="cpu: process CPU time (robust on a loaded machine; needs one thread); wall: perf_counter; "
                         "auto (default): cpu with --threads 1, else wall")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="resnet8, batch 8, 2 rounds: the smoke test's mode")
    ap.add_argument("--out", help="markdown page to write the generated sections into (atomically)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.model, args.batch = "resnet8", 8
    args.rounds = args.rounds or (2 if args.quick else 12)
    if args.rounds < 1 or args.batch < 2:
        ap.error("--rounds must be >= 1 and --batch >= 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.device == "cuda" and args.clock == "cpu":
        ap.error("--clock cpu measures the CPU's time, not the GPU's: use --clock wall with --device cuda")
    cpu_clock = args.threads == 1 and args.device == "cpu"
    args.clock = ("cpu" if cpu_clock else "wall") if args.clock == "auto" else args.clock
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu needs --threads 1 (CPU time sums the threads)")
    args.device_name = f"CUDA ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else "CPU"
    global _clock
    _clock = functools.partial(clock, "cuda") if args.device == "cuda" else _CLOCKS[args.clock]
    t0, load0 = time.perf_counter(), loadavg()
    rec = measure(args)
    body = render(args, rec, load0, time.perf_counter() - t0)
    res = {"solvers": goal_result(rec)}
    if args.out:
        page = Path(args.out)
        write_section(page, "model-aware step cost", body, title="# Cost of the model-aware methods")
        goal_md = goals.publish(res, HERE.parent, "docs/cost.md", page)
    else:
        goal_md = goals.table(res, HERE.parent, "docs/cost.md")
    print(body + "\n" + goal_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

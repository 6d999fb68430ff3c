#!/usr/bin/env python
"""Images/s of the training input pipeline: a DataLoader with worker processes against the split resident
on the device (what ``mixkit bench --data-placement device`` does).

Ways, each producing augmented batches (pad + random crop + flip, the benchmark's augmentation) **on the
device**:

* ``dataloader-wN``: ``torch.utils.data.DataLoader`` over the in-memory split, shuffled by a generator,
  per-sample crop and flip in ``__getitem__`` (the torchvision ``RandomCrop(padding) +
  RandomHorizontalFlip`` recipe, in torch ops), ``N`` worker processes (persistent), pinned memory on CUDA,
  then one copy to the device per batch: what a user's training loop does;
* ``host``: the bench's ``data_placement="host"``: the split in host memory, a batch gathered there and
  copied, then the batched crop/flip on the device;
* ``resident``: ``data_placement="device"``: the split on the device, a batch gathered there, the batched
  crop/flip there. No worker process, no host-to-device copy.

With ``--step MODEL`` each way also feeds a real training step of the bench (vanilla, the given model),
so the table shows what the pipeline costs a run, not only its own rate.

Timing: interleaved rounds (the order of the ways rotated per round); in each round every way makes
``--batches`` batches from a fresh epoch iterator (the DataLoader's persistent workers restart their
prefetch, as at every epoch), the device synchronised at the end. Ratios against ``resident`` are taken
round by round; the median and IQR of the per-round ratios are reported.

    python benchmarks/data_pipeline.py [--device cpu|cuda] [--dataset fashion-mnist] [--batch 128]
        [--batches 40] [--rounds 5] [--workers 0,2] [--step preactresnet18] [--out docs/speed.md]
"""
from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import Dist, cpu_model, sync, write_section  # noqa: E402

from mixkit.bench.batches import TrainData  # noqa: E402
from mixkit.bench.config import BenchConfig  # noqa: E402
from mixkit.bench.data import random_crop_flip  # noqa: E402
from mixkit.bench.runner import load_bench_data  # noqa: E402
from mixkit.bench.step import build_parts, make_generator, train_step  # noqa: E402


class CropFlipDataset(torch.utils.data.Dataset):
    """The split with the per-sample augmentation of a torchvision pipeline: zero-pad, random crop, random
    horizontal flip (2-D), drawn from torch's per-worker RNG."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, pad: int) -> None:
        self.x, self.y, self.pad = x, y, pad

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        img = self.x[i]
        h, w = img.shape[-2:]
        p = self.pad
        padded = F.pad(img, (p, p, p, p))
        oy, ox = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        img = padded[:, oy:oy + h, ox:ox + w]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        return img, self.y[i]


def make_ways(ds, device: torch.device, batch: int, workers: List[int], pad: int) -> Dict[str, Callable[[], Iterator]]:
    """``{name: () -> iterator of (x, y) batches on the device}``: one fresh epoch iterator per call."""
    ways: Dict[str, Callable[[], Iterator]] = {}
    for w in workers:
        g = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(
            CropFlipDataset(ds.x_train, ds.y_train, pad), batch_size=batch, shuffle=True, generator=g, num_workers=w,
            pin_memory=device.type == "cuda", persistent_workers=w > 0, drop_last=True)

        def it(loader=loader):
            for xb, yb in loader:
                yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        ways[f"dataloader-w{w}"] = it
    for name, placement in (("host", "host"), ("resident", "device")):
        data = TrainData(ds, device, placement)
        epoch = [0]

        def it(data=data, epoch=epoch):
            epoch[0] += 1
            perm = torch.randperm(data.n_train, generator=make_generator(0, "order", epoch[0]))
            g_aug = make_generator(0, "augment", epoch[0])
            for xb, yb in data.batches(perm, batch):
                yield random_crop_flip(xb, pad=pad, generator=g_aug), yb
        ways[name] = it
    return ways


def measure(args) -> Dict[str, Dict[str, List[float]]]:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    cfg = BenchConfig(dataset=args.dataset, data_dir=args.data_dir, n_train=args.n_train, progress=False,
                      model=args.step or "resnet8", batch_size=args.batch, augment=False, device=args.device)
    ds = load_bench_data(cfg)
    args.shape = tuple(ds.x_train.shape)
    pad = max(1, round(4 * ds.x_train.shape[-1] / 32))
    ways = make_ways(ds, device, args.batch, args.workers, pad)
    parts = build_parts(cfg, ds, "vanilla", 0, device) if args.step else None
    g = (make_generator(0, "a"), make_generator(0, "m"))

    def run(name: str) -> float:
        it = ways[name]()
        sync(device)
        t0 = time.perf_counter()
        n = 0
        for _ in range(args.batches):
            try:
                xb, yb = next(it)
            except StopIteration:
                it = ways[name]()
                xb, yb = next(it)
            if parts is not None:
                train_step(parts, xb, yb, *g)
            n += xb.shape[0]
        sync(device)
        return n / (time.perf_counter() - t0)

    names = list(ways)
    for name in names:  # warm-up: workers started, kernels loaded, caches filled
        run(name)
    rates: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rates[name].append(run(name))
    return {"rates": rates}


def render(args, res, seconds: float) -> str:
    rates = res["rates"]
    dev = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({cpu_model()}), {args.threads} thread(s)"
    step = f"a vanilla training step of `{args.step}` on every batch" if args.step else "no training step (pipeline only)"
    lines = [
        f"Run {datetime.date.today().isoformat()} on {dev}; torch {torch.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/data_pipeline.py {shlex.join(args.argv)}` ({seconds:.0f} s).",
        f"- dataset `{args.dataset}`, split {tuple(args.shape)}, batch {args.batch}, {args.batches} batches per way and "
        f"round, {args.rounds} interleaved rounds after a warm-up; {step}",
        "- images/s: median (IQR) over the rounds; × resident: the per-round ratio to `resident` (below 1: slower)", "",
        "| way | images/s | × resident |", "|---|---:|---:|"]
    for name, v in rates.items():
        d = Dist.of(v)
        ratio = Dist.of([a / b for a, b in zip(v, rates["resident"])])
        lines.append(f"| {name} | {d.median:,.0f} ({d.q1:,.0f}–{d.q3:,.0f}) | {ratio.fmt('×')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dataset", default="fashion-mnist", help="a bench dataset (default fashion-mnist)")
    ap.add_argument("--data-dir", dest="data_dir")
    ap.add_argument("--n-train", dest="n_train", type=int, help="a stratified subset of the training split")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=40, help="batches per way and round (default 40)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", default="0,2", help="DataLoader worker counts to time (default 0,2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of this process (default 1)")
    ap.add_argument("--step", help="also run a vanilla training step of this bench model on every batch")
    ap.add_argument("--out", help="markdown page to write the section into (atomically)")
    ap.add_argument("--section", default="data pipeline", help="section name in --out (default 'data pipeline')")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        ap.error(f"--workers must be a comma list of ints, got {args.workers!r}")
    if any(w < 0 for w in args.workers) or args.batch < 1 or args.batches < 1 or args.rounds < 1:
        ap.error("--workers must be >= 0, and --batch, --batches, --rounds >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    t0 = time.perf_counter()
    try:
        res = measure(args)
    except (FileNotFoundError, ValueError) as e:  # e.g. the dataset is not installed
        ap.error(str(e).splitlines()[0])
    body = render(args, res, time.perf_counter() - t0)
    if args.out:
        write_section(Path(args.out), args.section, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

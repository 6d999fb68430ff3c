#!/usr/bin/env python
"""PuzzleMix's labelling step: mixkit's exact batched solver against pyGCO's alpha-beta swap.

For each grid size ``block_num`` in {2, 4, 8, 16} a batch of PuzzleMix-like problems is built the way
the official ``mixup_graph`` builds them (``mixkit.mixers.puzzlemix.puzzle_costs`` on smooth random
images in [0, 1] and peaked random saliency maps, a random partner and ``lam ~ U(0, 1)`` per sample),
then scaled by ``1000 * block_num**2`` and truncated to int32 exactly as the official code does before
``gco.cut_grid_graph(unary, pairwise, w_v, w_h, algorithm="swap")``. Both solvers get the same int32
costs; both energies are evaluated by ``mixkit.masks.graphcut.energy`` (float64, exact on these
integers).

Reported per grid size:

* time to turn the costs into the ``(B, n, n)`` mask for the whole batch: mixkit
  (``graphcut.solve_grid``, one batched call; the solver it picked is shown) and pyGCO (one
  ``cut_grid_graph`` call per sample in a Python loop, as the official code does without its
  ``multiprocessing.Pool``; with ``--mp 8`` that part would be divided by at most the number of cores);
  median of ``--repeats`` runs, ``--threads`` torch threads;
* the energy comparison: fraction of samples where ours <= pyGCO (always 1 for an exact solver),
  fraction strictly lower, mean and max energy gap ``E_gco - E_ours`` (in the official int units) and
  the mean relative gap.

Usage::

    python benchmarks/graphcut_vs_gco.py [--batch 100] [--blocks 2,4,8,16] [--repeats 3]
                                         [--threads 1] [--device cpu|cuda|auto] [--seed 0]

pyGCO is the ``gco-wrapper`` package (``pip install gco-wrapper``; the official code imports it as
``gco``). Without it only mixkit's timings are printed. Benchmarks are not tests: nothing fails on time.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mixkit.masks import graphcut as G  # noqa: E402
from mixkit.mixers.puzzlemix import block_saliency, puzzle_costs  # noqa: E402


def puzzlemix_like_costs(b: int, block_num: int, gen: torch.Generator, size: int = 32):
    """Official-style int32 costs ``(unary, w_v, w_h)`` (x ``1000 * block_num**2``, truncated)."""
    z = F.interpolate(torch.randn(b, 3, 4, 4, generator=gen), size=size, mode="bicubic", align_corners=False)
    img = torch.sigmoid(1.5 * z + 0.3 * torch.randn(b, 3, size, size, generator=gen))
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    sal = 0.05 * torch.rand(b, size, size, generator=gen)
    for _ in range(3):
        c = torch.rand(b, 2, 1, 1, generator=gen) * size
        s = 2 + 6 * torch.rand(b, 1, 1, generator=gen)
        sal = sal + torch.rand(b, 1, 1, generator=gen) * torch.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / (2 * s ** 2))
    perm = torch.randperm(b, generator=gen)
    lam = torch.rand(b, generator=gen)
    bs = size // block_num
    s1 = block_saliency(sal, (bs, bs))
    u, wv, wh = puzzle_costs(s1, s1[perm], img, img[perm], lam, block_num)
    scale = 1000 * block_num ** 2
    return tuple((scale * t.double()).to(torch.int32) for t in (u, wv, wh))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _median_time(fn, repeats: int, dev: torch.device):
    fn()  # warm-up
    out, times = None, []
    for _ in range(repeats):
        _sync(dev)
        t = time.perf_counter()
        out = fn()
        _sync(dev)
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def _method(u, wv, wh, v) -> str:
    b, h, w, n = u.shape
    if G.is_convex_pairwise(v) and bool((wv >= 0).all()) and bool((wh >= 0).all()):
        return "dp" if n ** min(h, w) <= 81 else "mincut"
    return "dp" if n ** min(h, w) <= 6561 else "strips"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--blocks", default="2,4,8,16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "pymaxflow"),
                    help="min-cut backend of the 8x8 / 16x16 grids (graphcut.solve_grid's backend; auto: "
                         "PyMaxflow on the CPU when installed, else torch)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    try:
        import gco  # noqa: F401
        import numpy as np
        have_gco = True
    except Exception as e:  # pragma: no cover - depends on the environment
        have_gco, why = False, f"{type(e).__name__}: {e}"

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print("# PuzzleMix labelling: mixkit exact solver vs pyGCO alpha-beta swap\n")
    print(f"torch {torch.__version__}, device {dev}, torch threads: {args.threads}, batch {args.batch}, "
          f"repeats {args.repeats}, CPU: {platform.processor() or platform.machine()}, "
          f"load average {load[0]}, min-cut backend {args.backend} (PyMaxflow "
          f"{'installed' if G._pymaxflow() is not None else 'not installed'})")
    print("pyGCO: " + ("gco-wrapper " + _gco_version() if have_gco else f"not available ({why})") + "\n")
    head = ("| block_num | mixkit solver | mixkit ms | pyGCO ms | ours/gco time | ours <= gco | ours < gco "
            "| mean gap | max gap | mean rel. gap |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    v = G.label_cost(3)
    for bn in [int(s) for s in args.blocks.split(",") if s]:
        gen = torch.Generator().manual_seed(args.seed + bn)
        u, wv, wh = puzzlemix_like_costs(args.batch, bn, gen)
        ud, wvd, whd, vd = u.to(dev), wv.to(dev), wh.to(dev), v.to(dev)

        def ours():
            lab = G.solve_grid(ud, wvd, whd, vd, backend=args.backend)
            return lab, 1.0 - lab.to(torch.float32) / 2

        (lab, _), t_ours = _median_time(ours, args.repeats, dev)
        e_ours = G.energy(lab.cpu(), u, wv, wh, v)
        cells = [str(bn), _method(u, wv, wh, v), f"{t_ours * 1e3:.1f}"]
        if have_gco:
            v32 = v.float().numpy()
            un, wvn, whn = u.numpy(), wv.numpy(), wh.numpy()

            def official():
                labs = np.stack([gco.cut_grid_graph(un[i], v32, wvn[i], whn[i], algorithm="swap")
                                 for i in range(args.batch)]).reshape(args.batch, bn, bn)
                return labs, 1.0 - torch.from_numpy(labs).to(torch.float32) / 2

            (glab, _), t_gco = _median_time(official, args.repeats, torch.device("cpu"))
            e_gco = G.energy(torch.from_numpy(glab).long(), u, wv, wh, v)
            gap = e_gco - e_ours
            cells += [f"{t_gco * 1e3:.1f}", f"{t_ours / t_gco:.2f}",
                      f"{(e_ours <= e_gco).double().mean().item():.3f}", f"{(e_ours < e_gco).double().mean().item():.3f}",
                      f"{gap.mean().item():.1f}", f"{gap.max().item():.0f}",
                      f"{(gap / e_gco.abs().clamp(min=1)).mean().item():.2e}"]
        else:
            cells += ["-"] * 7
        print("| " + " | ".join(cells) + " |")
    print("\nGaps are E_gco - E_ours in the official int units (costs x 1000 * block_num**2); "
          "a positive gap means pyGCO's swap stopped above the optimum.")
    return 0


def _gco_version() -> str:
    try:
        import importlib.metadata as md
        return md.version("gco-wrapper")
    except Exception:  # pragma: no cover
        return "?"


if __name__ == "__main__":
    sys.exit(main())

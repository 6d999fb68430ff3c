#!/usr/bin/env python
"""Measure the int32 wrap of the official PuzzleMix labelling in pyGCO's float path.

The official ``graphcut_multi`` scales its costs by ``large_val = 1000 * block_num**2`` and casts the
unaries and edge weights to int32, but builds the 3x3 label cost ``(i - j)**2 / 4`` as float32. pyGCO's
``cut_grid_graph`` then takes its float path (any float input), multiplies the already-int unaries by
1e5 and casts them to int32 again: a unary above ``2**31 / 1e5 = 21474`` int units wraps. At
``block_num = 16`` (large_val 256000) that is a unary above 0.084, i.e. a block holding more than 8.4%
of the image's (normalised) saliency. This script builds PuzzleMix-like problems as
``benchmarks/graphcut_vs_gco.py`` does and reports, per grid size, how many problems wrap and how far
the official labelling's energy is above the optimum (mixkit's exact solver on the same int32 costs;
all energies in the official int units). As a control, pyGCO is also run on its int path (an int32
label cost ``(i - j)**2`` and 4x the unaries: 4x the same energy, no float path).

Usage: ``python scripts/puzzlemix_gco_overflow.py [--batch 200] [--blocks 2,4,8,16] [--seed 0]``
(needs ``pip install gco-wrapper``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch.nn.functional as F  # noqa: E402

from mixkit.masks import graphcut as G  # noqa: E402
from mixkit.mixers.puzzlemix import block_saliency, puzzle_costs  # noqa: E402

WRAP = (2 ** 31 - 1) / 1e5  # pyGCO's _UNARY_FLOAT_PRECISION


def costs(b: int, block_num: int, gen: torch.Generator, width: float, size: int = 32, spike: float = 0.0):
    """Official-style int32 ``(unary, w_v, w_h)`` as in ``benchmarks/graphcut_vs_gco.py``, with saliency
    peaks of ``width`` to ``4 * width`` pixels (narrow peaks concentrate the saliency in few blocks),
    and the largest block's share of each image's saliency ``(B,)``. ``spike > 0``: instead, a uniform
    random background with one random block holding ``spike`` of the saliency (to sweep the share)."""
    z = F.interpolate(torch.randn(b, 3, 4, 4, generator=gen), size=size, mode="bicubic", align_corners=False)
    img = torch.sigmoid(1.5 * z + 0.3 * torch.randn(b, 3, size, size, generator=gen))
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    sal = 0.05 * torch.rand(b, size, size, generator=gen)
    for _ in range(3):
        c = torch.rand(b, 2, 1, 1, generator=gen) * size
        s = width * (1 + 3 * torch.rand(b, 1, 1, generator=gen))
        sal = sal + torch.rand(b, 1, 1, generator=gen) * torch.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / (2 * s ** 2))
    perm = torch.randperm(b, generator=gen)
    lam = torch.rand(b, generator=gen)
    bs = size // block_num
    s1 = block_saliency(sal, (bs, bs))
    if spike > 0:
        s1 = torch.rand(s1.shape, generator=gen) + 0.5
        s1 = s1 / s1.flatten(1).sum(1).view(-1, 1, 1)
        k = torch.randint(block_num * block_num, (b,), generator=gen)
        flat = s1.flatten(1) * (1 - spike) / (1 - s1.flatten(1).gather(1, k[:, None]))
        flat.scatter_(1, k[:, None], spike)
        s1 = flat.view_as(s1)
    share = (s1.flatten(1) / s1.flatten(1).sum(1, keepdim=True)).amax(1)
    u, wv, wh = puzzle_costs(s1, s1[perm], img, img[perm], lam, block_num)
    scale = 1000 * block_num ** 2
    return tuple((scale * t.double()).to(torch.int32) for t in (u, wv, wh)) + (share,)


def main(argv=None) -> int:
    import gco

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--blocks", default="2,4,8,16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--widths", default="2,0.5", help="saliency peak widths in pixels (2 = the benchmark's)")
    ap.add_argument("--spikes", default="", help="instead of peaks: one block's share of the saliency, e.g. 0.05,0.1,0.2")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    v = G.label_cost(3)  # (i - j)**2 / 4, float: the official pairwise_cost
    v32, vint = v.float().numpy(), (4 * v).round().to(torch.int32).numpy()
    print(f"| {'spike share' if args.spikes else 'peak width'} | block_num | max block share (median / max) | problems wrapping "
          "| official above optimum | mean rel. gap | max rel. gap | int-path control: mean / max rel. gap |")
    print("|---|---|---|---|---|---|---|---|")
    cases = [(float(w), int(s)) for w in (args.spikes or args.widths).split(",") for s in args.blocks.split(",") if s]
    for width, bn in cases:
        gen = torch.Generator().manual_seed(args.seed + bn)
        u, wv, wh, share = costs(args.batch, bn, gen, 1.0, spike=width) if args.spikes else costs(args.batch, bn, gen, width)
        lab_opt = G.solve_grid(u, wv, wh, v)
        e_opt = G.energy(lab_opt, u, wv, wh, v)
        un, wvn, whn = u.numpy(), wv.numpy(), wh.numpy()
        off = np.stack([gco.cut_grid_graph(un[i], v32, wvn[i], whn[i], algorithm="swap")
                        for i in range(args.batch)]).reshape(args.batch, bn, bn)
        ctl = np.stack([gco.cut_grid_graph(4 * un[i], vint, wvn[i], whn[i], algorithm="swap")
                        for i in range(args.batch)]).reshape(args.batch, bn, bn)
        e_off = G.energy(torch.from_numpy(off).long(), u, wv, wh, v)
        e_ctl = G.energy(torch.from_numpy(ctl).long(), u, wv, wh, v)
        wraps = (u.abs().double().flatten(1).amax(1) > WRAP)
        rel = (e_off - e_opt) / e_opt.abs().clamp(min=1)
        rel_c = (e_ctl - e_opt) / e_opt.abs().clamp(min=1)
        print(f"| {width:g} | {bn} | {share.median().item():.1%} / {share.max().item():.1%} | {wraps.double().mean().item():.1%} | {(e_off > e_opt + 1e-6).double().mean().item():.1%} "
              f"| {rel.mean().item():.2%} | {rel.max().item():.2%} | {rel_c.mean().item():.2%} / {rel_c.max().item():.2%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

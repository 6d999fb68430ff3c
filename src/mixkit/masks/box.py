"""Axis-aligned boxes on 1-, 2- and 3-D grids (CutMix, HMix, ResizeMix, SaliencyMix ...).

Boxes are half-open integer intervals ``[lo, hi)`` per spatial dim, as int64 tensors of shape ``(n, d)``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import math

import torch
from torch import Tensor

from .. import sampling

__all__ = ["cut_lengths", "place_centered", "place_inside", "sample_boxes", "sample_box_ints", "box_mask", "outside_mask",
           "box_volume", "outside_share", "outside_share_ints", "empty_rows", "paste_owner", "owner_shares",
           "owner_mask"]

Ints = List[int]


def cut_lengths(sizes: Sequence[int], lam: Tensor, ratio: float = 1.0) -> Tensor:
    """Side lengths ``(n, d)`` of a box covering a ``(1 - lam) * ratio`` share of a ``d``-dim grid.

    Each side is ``floor(size_i * ((1 - lam) * ratio) ** (1/d))``: the square root on images (CutMix),
    the plain fraction on sequences and the cube root on volumes, so the box follows the data's aspect.
    """
    d = len(sizes)
    frac = ((1.0 - lam.double()).clamp(0, 1) * ratio) ** (1.0 / d)  # (n,)
    size_t = torch.tensor(list(sizes), dtype=torch.float64, device=lam.device)
    return torch.floor(frac.unsqueeze(1) * size_t).long()


def place_centered(sizes: Sequence[int], lengths: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """CutMix placement: centre uniform over the whole grid, box clipped at the border.

    Returns ``lo, hi`` ``(n, d)``; ``hi - lo`` may be shorter than ``lengths`` where the box is clipped.
    """
    n, d = lengths.shape
    dev = lengths.device
    size_t = torch.tensor(list(sizes), dtype=torch.long, device=dev)
    u = torch.rand(n, d, generator=generator, device=sampling.gen_device(generator)).to(dev, torch.float64)
    centre = torch.floor(u * size_t).long().clamp_max(size_t - 1)
    lo = centre - lengths // 2
    hi = lo + lengths
    return lo.clamp(min=0).minimum(size_t), hi.clamp(min=0).minimum(size_t)


def place_inside(sizes: Sequence[int], lengths: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Placement with the whole box inside the grid: ``lo ~ U{0 .. size - length}`` (never clipped)."""
    n, d = lengths.shape
    dev = lengths.device
    size_t = torch.tensor(list(sizes), dtype=torch.long, device=dev)
    lengths = lengths.minimum(size_t)
    u = torch.rand(n, d, generator=generator, device=sampling.gen_device(generator)).to(dev, torch.float64)
    lo = torch.floor(u * (size_t - lengths + 1)).long().minimum(size_t - lengths)
    return lo, lo + lengths


def sample_boxes(sizes: Sequence[int], lam: Tensor, generator: Optional[torch.Generator] = None,
                 minmax: Optional[Tuple[float, float]] = None, ratio: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Draw one box per entry of ``lam`` ``(n,)``.

    Without ``minmax``: sides from :func:`cut_lengths` (area ``(1 - lam) * ratio`` before clipping), centre
    uniform over the grid, clipped at the border (CutMix). With ``minmax=(a, b)`` (timm's option): each side
    uniform in ``[a * size, b * size]`` independently of ``lam``, box placed fully inside.
    """
    if minmax is None:
        return place_centered(sizes, cut_lengths(sizes, lam, ratio), generator)
    n, d = lam.shape[0], len(sizes)
    dev = lam.device
    size_t = torch.tensor(list(sizes), dtype=torch.float64, device=dev)
    lo_len = torch.floor(size_t * minmax[0])
    hi_len = torch.floor(size_t * minmax[1])
    u = torch.rand(n, d, generator=generator, device=sampling.gen_device(generator)).to(dev, torch.float64)
    lengths = torch.floor(lo_len + u * (hi_len - lo_len + 1)).minimum(hi_len).long()
    return place_inside(sizes, lengths, generator)


def sample_box_ints(sizes: Sequence[int], lam: float, generator: Optional[torch.Generator] = None,
                    minmax: Optional[Tuple[float, float]] = None, ratio: float = 1.0) -> Tuple[Ints, Ints]:
    """:func:`sample_boxes` for one box (batch mode) in Python arithmetic: ``lo, hi`` as int lists.

    ``lam`` is the float32 lambda as a float; the same generator draws in the same order and the same
    float64 operations give the same box as ``sample_boxes(sizes, torch.tensor([lam]), ...)``.
    """
    d = len(sizes)
    u = torch.rand(d, generator=generator, device=sampling.gen_device(generator)).tolist()  # the (1, d) draw
    lo, hi = [], []
    if minmax is None:
        frac = min(max(1.0 - lam, 0.0), 1.0) * ratio
        # torch's pow: exponent 1 copies, 0.5 is a square root, others C pow (one element: no vector path)
        frac = frac if d == 1 else (math.sqrt(frac) if d == 2 else frac ** (1.0 / d))
        for ui, s in zip(u, sizes):
            n = math.floor(frac * s)
            a = min(math.floor(ui * s), s - 1) - n // 2
            lo.append(min(max(a, 0), s))
            hi.append(min(max(a + n, 0), s))
        return lo, hi
    lengths = []
    for ui, s in zip(u, sizes):
        lo_len, hi_len = math.floor(s * minmax[0]), math.floor(s * minmax[1])
        lengths.append(min(math.floor(lo_len + ui * (hi_len - lo_len + 1)), hi_len, s))
    u = torch.rand(d, generator=generator, device=sampling.gen_device(generator)).tolist()
    for ui, s, n in zip(u, sizes, lengths):
        lo.append(min(math.floor(ui * (s - n + 1)), s - n))
        hi.append(lo[-1] + n)
    return lo, hi


def box_mask(lo: Tensor, hi: Tensor, sizes: Sequence[int], device=None) -> Tensor:
    """Boolean ``(n, 1, *sizes)`` mask, True inside ``[lo, hi)``."""
    return _axis_masks(lo, hi, sizes, device, outside=False)


def outside_mask(lo: Tensor, hi: Tensor, sizes: Sequence[int], device=None) -> Tensor:
    """Boolean ``(n, 1, *sizes)`` mask, True outside ``[lo, hi)``: ``~box_mask`` built from the small per-axis
    masks (De Morgan), without negating a full-size mask."""
    return _axis_masks(lo, hi, sizes, device, outside=True)


def _axis_masks(lo: Tensor, hi: Tensor, sizes: Sequence[int], device, outside: bool) -> Tensor:
    n, d = lo.shape
    device = lo.device if device is None else device
    lo, hi = lo.to(device), hi.to(device)
    out = None
    for i, s in enumerate(sizes):
        ar = torch.arange(s, device=device)
        if outside:
            m = (ar < lo[:, i, None]) | (ar >= hi[:, i, None])  # (n, s)
        else:
            m = (ar >= lo[:, i, None]) & (ar < hi[:, i, None])
        shape = [n] + [1] * d
        shape[1 + i] = s
        m = m.view(shape).view(torch.uint8)  # the broadcast OR / AND runs about 2x faster on bytes than on bools
        out = m if out is None else ((out | m) if outside else (out & m))
    return out.view(torch.bool).unsqueeze(1)


def box_volume(lo: Tensor, hi: Tensor) -> Tensor:
    """Number of grid cells in each box, int64 ``(n,)``."""
    return (hi - lo).clamp(min=0).prod(dim=1)


def outside_share(lo: Tensor, hi: Tensor, sizes: Sequence[int]) -> Tensor:
    """Share of the grid outside each box, ``1 - box_volume / N``, float64 ``(n,)``: the anchor's label
    weight of a box method (the realised, clipped box)."""
    return 1.0 - box_volume(lo, hi).double() / math.prod(sizes)


def outside_share_ints(lo: Sequence[int], hi: Sequence[int], sizes: Sequence[int]) -> float:
    """:func:`outside_share` of one box given as ints: the same float64 value, as a float."""
    return 1.0 - math.prod(max(z - a, 0) for a, z in zip(lo, hi)) / math.prod(sizes)


def empty_rows(lo: Tensor, hi: Tensor, keep: Optional[Tensor]) -> Tensor:
    """The box ends ``hi`` with an empty box (``hi = lo``) on the rows where ``keep`` ``(n,)`` is False
    (rows not selected by ``p``); ``hi`` itself when ``keep`` is ``None``."""
    if keep is None:
        return hi
    return torch.where(keep.to(hi.device).unsqueeze(1), hi, lo)


def paste_owner(lo: Tensor, hi: Tensor, sizes: Sequence[int]) -> Tensor:
    """Which cut shows at each cell when the boxes ``[lo[:, m], hi[:, m])`` (``lo``, ``hi`` ``(n, k, d)``) are
    pasted in the order m = 0 .. k-1, a later box over an earlier one: ``(n, *sizes)`` int64, 0 where no box
    covers the cell and ``m + 1`` where box ``m`` is the last to cover it (CutMix with ``num_mix=k``)."""
    n, k = lo.shape[:2]
    owner = torch.zeros((n, *sizes), dtype=torch.long, device=lo.device)
    for m in range(k):
        owner.masked_fill_(box_mask(lo[:, m], hi[:, m], sizes).squeeze(1), m + 1)
    return owner


def owner_shares(owner: Tensor, k: int) -> Tensor:
    """``(n, k)`` float64 share of the cells of each row of ``owner`` ``(n, *sizes)`` holding each value 0 .. k-1."""
    flat = owner.reshape(owner.shape[0], -1)
    counts = torch.zeros(flat.shape[0], k, dtype=torch.float64, device=owner.device)
    counts.scatter_add_(1, flat, torch.ones((), dtype=torch.float64, device=owner.device).expand(flat.shape))
    return counts / flat.shape[1]


def owner_mask(owner: Tensor, k: int, b: int) -> Tensor:
    """The ``(b, k, *sizes)`` float32 one-hot mask of ``owner`` ``(n, *sizes)`` (``n`` = 1 broadcasts to ``b`` rows):
    the per-pixel shares of a result whose every pixel comes from one of ``k`` sources."""
    m = torch.nn.functional.one_hot(owner, k).movedim(-1, 1).float()
    return m.expand(b, *m.shape[1:]) if m.shape[0] != b else m

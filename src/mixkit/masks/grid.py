"""GridMask-style lattices of holes inside a crop (GridMix), on 1-, 2- and 3-D grids.

A grid is described per draw by four int64 tensors of shape ``(n, d)`` (``d`` spatial dims, in the
data's own dim order): the crop ``[crop_lo, crop_hi)``, the lattice ``period`` and the ``hole`` length.
A cell at position ``p`` is in a hole iff, on *every* axis ``i``,

    crop_lo_i <= p_i < crop_hi_i   and   (p_i - crop_lo_i) mod period_i < hole_i

so the hole set is a product of one 1-D pattern per axis. The masks are built from those 1-D patterns
by broadcasting (no loop over holes or over the batch), and the number of hole cells has a closed form,
which gives exact label weights without summing the mask.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import sampling
from . import box

__all__ = ["GridParams", "sample_grid", "grid_axes", "grid_mask", "hole_volume"]


class GridParams(NamedTuple):
    """One hole lattice per draw; every field is int64 ``(n, d)``."""

    crop_lo: Tensor
    crop_hi: Tensor
    period: Tensor
    hole: Tensor

    def to(self, device) -> "GridParams":
        return GridParams(*(t.to(device) for t in self))

    def emptied(self, keep: Tensor) -> "GridParams":
        """Rows where ``keep`` ``(n,)`` is False get an empty crop (no holes at all)."""
        return self._replace(crop_hi=box.empty_rows(self.crop_lo, self.crop_hi, keep))


def _uniform(rng: Tuple[float, float], n: int, generator: Optional[torch.Generator]) -> Tensor:
    u = torch.rand(n, generator=generator, device=sampling.gen_device(generator), dtype=torch.float64)
    return rng[0] + u * (rng[1] - rng[0])


def sample_grid(sizes: Sequence[int], lam: Tensor, generator: Optional[torch.Generator] = None, *,
                n_holes: Tuple[int, int] = (2, 6), hole_aspect_ratio: Tuple[float, float] = (1.0, 1.0),
                cut_area_ratio: Tuple[float, float] = (0.5, 1.0),
                cut_aspect_ratio: Tuple[float, float] = (0.5, 2.0)) -> GridParams:
    """Draw one hole lattice per entry of ``lam`` ``(n,)`` (the IlyaDobrynin/GridMixup recipe).

    Per draw, with every range ``(min, max)`` sampled uniformly (``n_holes`` as an integer, both ends
    included):

    * crop: covers ``cut_area_ratio`` of the grid; on 2-D and 3-D data its last two sides are
      ``size * a ** (1/d) * sqrt(r)`` and ``size * a ** (1/d) / sqrt(r)`` for the aspect ratio ``r``
      (the crop's height/width relative to the image's; pixel aspect on square images), other sides
      ``size * a ** (1/d)``; floored, clamped to ``[1, size]`` and placed uniformly fully inside;
    * lattice: ``n_holes`` cells along the last axis, ``period = ceil(crop_len / n_holes)``; every other
      axis has ``period = int(period_last * hole_aspect_ratio)``; each period is at least 2;
    * hole: ``clamp(int(period * (1 - lam) ** (1/d)), 1, period - 1)`` per axis (``sqrt`` on images),
      so a cell is about a ``1 - lam`` hole.

    Returns a :class:`GridParams` on ``lam``'s device (the draws are made on the generator's device).
    """
    d = len(sizes)
    n = lam.shape[0]
    gdev = sampling.gen_device(generator)
    size_t = torch.tensor(list(sizes), dtype=torch.float64, device=gdev)
    nh = torch.randint(int(n_holes[0]), int(n_holes[1]) + 1, (n,), generator=generator, device=gdev)
    har = _uniform(hole_aspect_ratio, n, generator)
    area = _uniform(cut_area_ratio, n, generator)
    car = _uniform(cut_aspect_ratio, n, generator)

    frac = area ** (1.0 / d)  # (n,)
    side = frac.unsqueeze(1) * size_t  # (n, d)
    if d >= 2:
        s = car.sqrt()
        side[:, -2] = side[:, -2] * s
        side[:, -1] = side[:, -1] / s
    side = torch.floor(side).long().clamp(min=1).minimum(size_t.long())
    crop_lo, crop_hi = box.place_inside(sizes, side, generator)

    period = torch.empty_like(side)
    p_last = torch.div(side[:, -1] + nh - 1, nh, rounding_mode="floor").clamp(min=2)  # ceil(len / n)
    period[:] = torch.floor(p_last.double() * har).long().clamp(min=2).unsqueeze(1)
    period[:, -1] = p_last

    ratio = (1.0 - lam.to(gdev, torch.float64)).clamp(0, 1) ** (1.0 / d)  # (n,)
    hole = torch.floor(period.double() * ratio.unsqueeze(1)).long()
    hole = hole.clamp(min=1).minimum(period - 1)
    return GridParams(crop_lo, crop_hi, period, hole).to(lam.device)


def grid_axes(sizes: Sequence[int], params: GridParams, device=None) -> List[Tensor]:
    """The 1-D hole patterns: a list of ``d`` boolean tensors ``(n, size_i)``."""
    device = params.crop_lo.device if device is None else device
    lo, hi, period, hole = params.to(device)
    out = []
    for i, s in enumerate(sizes):
        pos = torch.arange(s, device=device)
        rel = pos - lo[:, i, None]  # (n, s)
        inside = (rel >= 0) & (pos < hi[:, i, None])
        out.append(inside & (rel.remainder(period[:, i, None]) < hole[:, i, None]))
    return out


def grid_mask(sizes: Sequence[int], params: GridParams, device=None) -> Tensor:
    """Boolean ``(n, 1, *sizes)`` mask, True in the holes (where the partner goes)."""
    axes = grid_axes(sizes, params, device)
    n, d = params.crop_lo.shape
    mask = None
    for i, m in enumerate(axes):
        shape = [n] + [1] * d
        shape[1 + i] = m.shape[1]
        m = m.view(shape)
        mask = m if mask is None else mask & m
    return mask.unsqueeze(1)


def hole_volume(params: GridParams) -> Tensor:
    """Number of hole cells per draw, int64 ``(n,)``, in closed form.

    Along one axis a crop of length ``L`` holds ``(L // period) * hole + min(L % period, hole)`` hole
    cells; the hole set is the product of the axes' patterns, so the volume is the product of these.
    """
    length = (params.crop_hi - params.crop_lo).clamp(min=0)
    per_axis = torch.div(length, params.period, rounding_mode="floor") * params.hole \
        + torch.minimum(length.remainder(params.period), params.hole)
    return per_axis.prod(dim=1)

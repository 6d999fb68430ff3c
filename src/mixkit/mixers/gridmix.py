"""GridMix: a GridMask-style lattice of holes inside a random crop, filled from the partner image
(the method of ``IlyaDobrynin/GridMixup``, which OpenMixup ports as ``gridmix``)."""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_range, check_span
from ..masks import grid
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["GridMix"]

Range = Union[float, Tuple[float, float]]


class GridMix(Mixer):
    """GridMix: the partner fills a regular lattice of holes inside a random crop of the anchor.

    Two different methods share this name:

    * Baek, Bang and Shim, "GridMix: Strong regularization through local context mapping", Pattern
      Recognition 2021: swaps whole grid cells between images and adds a per-cell classification loss.
      No official code is public; it is **not** implemented here.
    * ``IlyaDobrynin/GridMixup`` (GridMask + CutMix), the code that OpenMixup's ``gridmix`` ports (even
      though OpenMixup's tables cite the paper above). **This class implements this one.**

    Algorithm, per draw (one draw per batch in ``mode="batch"``, as the reference; one per row in
    ``mode="sample"``):

    1. ``lam ~ U(alpha[0], alpha[1])`` for a pair ``alpha`` (the reference's default), or
       ``lam ~ Beta(alpha, alpha)`` for a number;
    2. a crop covering ``cut_area_ratio`` of the image with aspect ``cut_aspect_ratio``, placed fully
       inside;
    3. ``n_holes`` lattice cells along the last (width) axis: ``period = ceil(crop_width / n_holes)``,
       the other axes' period is ``int(period * hole_aspect_ratio)``; each hole side is
       ``clamp(int(period * sqrt(1 - lam)), 1, period - 1)`` (``(1 - lam) ** (1/d)`` on ``d``-D data);
    4. ``x~ = x * (1 - M) + x[perm] * M`` for the hole mask ``M``; the anchor's label weight is the
       realised ``1 - mean(M)`` (exact, from a closed-form hole count), not the sampled ``lam``.

    Ranges (``n_holes``, ``hole_aspect_ratio``, ``cut_area_ratio``, ``cut_aspect_ratio``) may be a number or a
    ``(min, max)`` pair sampled uniformly (``n_holes`` as an integer, both ends included). The mask is
    built from one 1-D pattern per axis by broadcasting: no loop over holes or over the batch.

    Works on 1-D (a periodic pattern of gaps along the sequence; the aspect ratios have no effect), 2-D
    and 3-D data (``hole_aspect_ratio`` sets the period of every axis but the last; ``cut_aspect_ratio``
    acts on the last two axes).

    Deliberate differences from the reference code:

    * the crop follows the image's own aspect: its sides are ``H * sqrt(a * r)`` and ``W * sqrt(a / r)``
      for area ratio ``a`` and aspect ``r`` (identical to the reference on square images). The reference
      uses ``sqrt(H * W * a / r)`` pixels for both, and lets the crop overflow the image when
      ``a * r > 1`` (e.g. the default ``cut_aspect_ratio=2``): the crop offset goes negative and numpy /
      torch slicing then wraps the holes to the opposite border or drops them. Here every crop side is
      clamped to the image;
    * OpenMixup's port names ``size[2]`` "W" and ``size[3]`` "H" and builds a ``(W, H)`` mask, which is
      wrong on non-square images; dims are handled by position here;
    * the reference raises when ``n_holes > crop_width // 2`` and its hole vanishes when
      ``int(period * hole_aspect_ratio) < 2``; here every period is at least 2 pixels instead, so a
      draw never fails and a mixed row always has holes;
    * the crop corner is uniform over all positions that keep it inside (the reference's
      ``int((W - w) * U(0, 1))`` almost never reaches the last position).

    Args:
        alpha: ``(min, max)`` of a uniform lambda (default ``(0.1, 0.9)``, the reference's default), or a
            positive number for ``lam ~ Beta(alpha, alpha)`` (OpenMixup's form; its CIFAR configs use 0.2).
        n_holes: holes along the last axis, int or ``(min, max)`` (default ``(2, 6)``, OpenMixup).
        hole_aspect_ratio: period of the other axes / period of the last axis (default 1.0).
        cut_area_ratio: share of the image covered by the crop, in ``(0, 1]`` (default ``(0.5, 1.0)``).
        cut_aspect_ratio: crop height/width relative to the image's (default ``(0.5, 2.0)``).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.share_map`` is the anchor's bool map ``(B or 1, 1, *spatial)`` (True = anchor); ``params``
    holds ``crop_lo``, ``crop_hi``, ``period``, ``hole`` (int64 ``(n, d)``, ``n`` = 1 in batch mode).
    """

    name = "gridmix"
    defaults = {"alpha": (0.1, 0.9), "n_holes": (2, 6)}
    summary = "partner pasted through a lattice of holes (GridMask + CutMix)"
    paper = "IlyaDobrynin/GridMixup (the method OpenMixup ports as gridmix)"

    def __init__(self, alpha: Range = (0.1, 0.9), *, n_holes: Union[int, Tuple[int, int]] = (2, 6),
                 hole_aspect_ratio: Range = 1.0, cut_area_ratio: Range = (0.5, 1.0),
                 cut_aspect_ratio: Range = (0.5, 2.0), **kw) -> None:
        if isinstance(alpha, (tuple, list)):
            lam_range = check_range(alpha, "alpha")
            super().__init__(1.0, **kw)  # the base class checks a Beta concentration; unused here
            self.alpha = lam_range
        else:
            lam_range = None
            super().__init__(alpha, **kw)
        self.lam_range: Optional[Tuple[float, float]] = lam_range
        self.n_holes = check_span(n_holes, "n_holes", low=1, low_open=False, integer=True)
        self.hole_aspect_ratio = check_span(hole_aspect_ratio, "hole_aspect_ratio", low=0.0)
        self.cut_area_ratio = check_span(cut_area_ratio, "cut_area_ratio", low=0.0, high=1.0)
        self.cut_aspect_ratio = check_span(cut_aspect_ratio, "cut_aspect_ratio", low=0.0)

    def sample_lam(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        """``(n,)`` float32 lambdas: uniform on ``alpha`` for a pair, ``Beta(alpha, alpha)`` for a number."""
        if self.lam_range is not None:
            return sampling.sample_uniform((n,), generator, *self.lam_range)
        return super().sample_lam(n, generator)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        lam = self.sample_lam(self._n_draws(x), generator)
        grid_params = grid.sample_grid(tuple(x.shape[2:]), lam, generator, n_holes=self.n_holes,
                                       hole_aspect_ratio=self.hole_aspect_ratio,
                                       cut_area_ratio=self.cut_area_ratio,
                                       cut_aspect_ratio=self.cut_aspect_ratio).to(dev)
        partner = self._partner(x, generator)
        return MixParams(active=active, lam=lam.to(dev), partner=partner, draws={"grid": grid_params})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        sizes = tuple(x.shape[2:])
        grid_params, active = params.draws["grid"], params.active
        if active is not None:  # rows not selected by p get an empty crop
            grid_params = grid_params.emptied(active)
        lam = self._deactivate(params.lam, active, x.shape[0])
        share_map = ~grid.grid_mask(sizes, grid_params)  # (n, 1, *sizes): True where the anchor stays
        w0 = 1.0 - grid.hole_volume(grid_params).double() / math.prod(sizes)
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        return self._pair_result(x_mix, params, w0.float(), lam=lam, share_map=share_map, **grid_params._asdict())

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", n_holes={self.n_holes}, hole_aspect_ratio={self.hole_aspect_ratio}"
                f", cut_area_ratio={self.cut_area_ratio}, cut_aspect_ratio={self.cut_aspect_ratio}")

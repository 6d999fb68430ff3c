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

    The method of ``IlyaDobrynin/GridMixup`` (GridMask + CutMix, what OpenMixup's ``gridmix`` ports), not Baek
    et al.'s GridMix (Pattern Recognition 2021, no public code, not implemented). Per draw (one per batch, or
    one per row in sample mode): ``lam ~ U(alpha)`` for a pair, ``Beta(alpha, alpha)`` for a number; a crop
    covering ``cut_area_ratio`` of the image with aspect ``cut_aspect_ratio``, placed fully inside;
    ``n_holes`` lattice cells along the last axis (``period = ceil(crop_width / n_holes)``, the other axes'
    period ``int(period * hole_aspect_ratio)``, every period at least 2); hole sides
    ``clamp(int(period * (1 - lam) ** (1/d)), 1, period - 1)``. ``x~ = (1 - M) * x + M * x[perm]`` for the hole
    mask ``M``; the anchor's label weight is the realised ``1 - mean(M)`` (exact, from a closed-form count).

    Args:
        alpha: ``(min, max)`` of a uniform lambda (default ``(0.1, 0.9)``, the reference's), or a positive
            number for ``lam ~ Beta(alpha, alpha)`` (OpenMixup's form; its CIFAR configs use 0.2).
        n_holes: holes along the last axis, int or ``(min, max)`` (default ``(2, 6)``, OpenMixup's; reference 20).
        hole_aspect_ratio: period of the other axes / period of the last axis (default 1.0).
        cut_area_ratio: share of the image covered by the crop, in ``(0, 1]`` (default ``(0.5, 1.0)``).
        cut_aspect_ratio: crop height/width relative to the image's (default ``(0.5, 2.0)``).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    The four ranges may be a number or a ``(min, max)`` pair drawn uniformly (``n_holes`` as an int, both ends
    included). ``MixResult.share_map``: the anchor's bool map ``(n, 1, *spatial)`` (True = anchor); ``params``:
    ``crop_lo``, ``crop_hi``, ``period``, ``hole`` ``(n, d)`` int64 (``n`` = 1 in batch mode, B in sample mode).

    See docs/methods/gridmix.md.
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

"""HMix (Park, Yun, Chun, "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function
Perspective", NeurIPS 2022): a CutMix box inside a MixUp blend."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .._validate import check_prob
from ..masks import box
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["HMix", "hmix_share"]


def hmix_share(sizes: Sequence[int], lam: Tensor, lo: Tensor, hi: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The anchor's HMix share map for boxes ``[lo, hi)`` and sampled ``lam``.

    Args:
        sizes: spatial size ``(size_1, ..., size_d)``.
        lam: ``(n,)`` sampled anchor weights.
        lo, hi: ``(n, d)`` int64 boxes (already clipped), on ``lam``'s device.

    Returns:
        ``share_map`` ``(n, 1, *sizes)`` float32: ``mixup_lam`` outside the box, 0 inside;
        ``weight`` ``(n,)`` float64: the exact mean of ``share_map`` (``mixup_lam * cutmix_lam``);
        ``mixup_lam`` ``(n,)`` float32 and ``cutmix_lam`` ``(n,)`` float64 (the share of the grid outside the box).

    ``mixup_lam = lam / cutmix_lam`` makes the mean of the share equal ``lam``. It is at most 1 whenever
    the box covers at most ``1 - lam`` of the grid, which always holds for ``r <= 1``: the unclipped box
    has ``prod_i floor(size_i * ((1 - lam) r) ** (1/d)) <= (1 - lam) r N`` cells and clipping only removes
    cells. A box larger than ``1 - lam`` (``r > 1``, or a float64 rounding of ``pow`` that lets ``floor``
    land one cell high) would ask the anchor for a share above 1 outside the box; ``mixup_lam`` is
    clamped to ``[0, 1]`` and the weight is then the realised ``cutmix_lam`` (still the exact mean of the
    share, slightly below ``lam``). A box covering the whole grid (``cutmix_lam == 0``) gives an all-zero
    share and weight 0.
    """
    n_cells = math.prod(sizes)
    d = len(sizes)
    cutmix_lam = box.outside_share(lo, hi, sizes)
    ratio = lam.double() / cutmix_lam.clamp_min(1.0 / (2 * n_cells))
    mixup_lam = torch.where(cutmix_lam > 0, ratio, torch.ones_like(ratio)).clamp(0.0, 1.0).float()
    inside = box.box_mask(lo, hi, sizes)  # (n, 1, *sizes) bool
    share_map = torch.where(inside, torch.zeros((), device=inside.device),
                            mixup_lam.to(inside.device).view(-1, 1, *([1] * d)))
    weight = mixup_lam.double() * cutmix_lam
    return share_map, weight, mixup_lam, cutmix_lam


class HMix(Mixer):
    """HMix: MixUp everywhere, plus a box of pure partner pixels; label weight = the realised share.

    ``lam ~ Beta(alpha, alpha)``; a CutMix box covering ``r * (1 - lam)`` of the grid (sides
    ``floor(size_i * ((1 - lam) r) ** (1/d))``, centre uniform, clipped at the border). With
    ``cutmix_lam = 1 - |box| / N`` and ``mixup_lam = lam / cutmix_lam`` (clamped to ``[0, 1]``), the anchor's
    share is 0 inside the box and ``mixup_lam`` outside (``x~ = x[perm]`` inside, a MixUp blend outside), and
    its label weight is the share's mean ``mixup_lam * cutmix_lam`` (``= lam`` unless clamped, see
    :func:`hmix_share`). ``r = 0`` is MixUp (the same draws); ``r = 1`` is almost CutMix (the same box under the
    same seed).

    Args:
        alpha: Beta concentration (default 1.0).
        r: box area ratio in ``[0, 1]`` (default 0.5, the paper's Fig. 3; the official default
            ``hmix_ratio=1.0`` makes HMix CutMix, so set ``r`` explicitly when comparing with published runs).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params``: ``box_lo``, ``box_hi`` ``(n, d)`` int64, ``mixup_lam`` ``(n,)`` float32 and
    ``cutmix_lam`` ``(n,)`` float64 (``n`` = 1 in batch mode, B in sample mode); ``share_map``
    ``(n, 1, *spatial)`` float32.

    See docs/methods/hmix.md.
    """

    name = "hmix"
    defaults = {"alpha": 1.0, "r": 0.5}
    summary = "MixUp outside a CutMix box of area r*(1-lambda)"
    paper = "Park, Yun, Chun, NeurIPS 2022 (arXiv:2208.09913)"

    def __init__(self, alpha: float = 1.0, *, r: float = 0.5, **kw) -> None:
        super().__init__(alpha, **kw)
        self.r = check_prob(r, "r")

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        sizes = tuple(x.shape[2:])
        n = self._n_draws(x)
        lam = self.sample_lam(n, generator)
        if self.r > 0:
            lo, hi = box.sample_boxes(sizes, lam, generator, ratio=self.r)
        else:  # r = 0: no box, and no draw for it (MixUp's random stream)
            lo = hi = torch.zeros(n, len(sizes), dtype=torch.long, device=lam.device)
        partner = self._partner(x, generator)
        return MixParams(active=active, lam=lam.to(dev), partner=partner,
                         draws={"box_lo": lo.to(dev), "box_hi": hi.to(dev)})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        sizes = tuple(x.shape[2:])
        lo = params.draws["box_lo"]
        hi = box.empty_rows(lo, params.draws["box_hi"], params.active)  # rows not selected: lam = 1 -> share 1
        lam = self._deactivate(params.lam, params.active, x.shape[0])
        share_map, w0, mixup_lam, cutmix_lam = hmix_share(sizes, lam, lo, hi)
        x_mix = _ops.lerp_paste(x, params.partner, share_map, mixup_lam, lo, hi, self.inplace)
        return self._pair_result(x_mix, params, w0.float(), lam=lam, share_map=share_map,
                                 box_lo=lo, box_hi=hi, mixup_lam=mixup_lam, cutmix_lam=cutmix_lam)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", r={self.r}"

"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_range
from ..masks import box
from ..result import MixResult
from . import _ops
from .base import Mixer


class CutMix(Mixer):
    """CutMix: paste a box from the partner; label weight = the realised (clipped) share.

    ``lam ~ Beta(alpha, alpha)``; the box covers ``1 - lam`` of the grid before clipping: each side is
    ``size * (1 - lam) ** (1/d)`` for ``d`` spatial dims (square root on images, the plain fraction on
    sequences, cube root on volumes), so the box follows each dim's own size on non-square inputs. The
    centre is uniform over the whole grid as in the official code, and the box is clipped at the border.

    Fidelity notes (see the official ``rand_bbox``):
      * the official box is ``2 * (cut // 2)`` wide (one pixel short for odd cuts); here it is ``cut`` wide;
      * the official code names rows "W" and columns "H"; here dims are handled by position, so
        non-square inputs get the right aspect (a known bug class in ports);
      * the label weight is ``1 - box_volume / N`` from the *clipped* box (as the official code's
        "adjusted lambda"), so it always equals the mean of the mask. ``correct_lam=False`` keeps the
        sampled lambda instead (timm's option; the labels then no longer match the pixels).

    Args:
        alpha: Beta concentration (official README: 1.0; OpenMixup CIFAR configs: 0.2).
        minmax: optional ``(min, max)`` box side ratio (timm's ``cutmix_minmax``): sides uniform in
            ``[min * size, max * size]`` independent of lambda, box fully inside.
        correct_lam: use the realised box share as the label weight (default True).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params`` holds ``box_lo``/``box_hi`` ``(n, d)`` int64 (``n`` = 1 in batch mode).
    """

    def __init__(self, alpha: float = 1.0, *, minmax: Optional[Sequence[float]] = None, correct_lam: bool = True, **kw) -> None:
        super().__init__(alpha, **kw)
        self.minmax = check_range(minmax, "minmax")
        self.correct_lam = bool(correct_lam)

    def _mix(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixResult:
        b, dev = x.shape[0], x.device
        sizes = tuple(x.shape[2:])
        n = self._n_draws(x)
        lam = sampling.sample_beta(self.alpha, self.alpha, (n,), generator)
        lo, hi = box.sample_boxes(sizes, lam, generator, self.minmax)
        lo, hi, lam = lo.to(dev), hi.to(dev), lam.to(dev)
        partner = self._partner(x, generator)
        if active is not None:  # rows not selected by p get an empty box
            hi = torch.where(active.unsqueeze(1), hi, lo)
            lam = self._deactivate(lam, active, b)
        w0 = 1.0 - box.box_volume(lo, hi).double() / math.prod(sizes)
        keep = box.outside_mask(lo, hi, sizes)
        if self.mode == "batch":  # one box: copy only its region from the partners
            out = x if self.inplace else x.clone()  # clone keeps the memory format
            region = (slice(None), slice(None)) + tuple(slice(a, z) for a, z in zip(lo[0].tolist(), hi[0].tolist()))
            out[region] = x[region].index_select(0, partner)
            x_mix = out
        else:
            x_mix = _ops.mix_pair(x, partner, keep, self.inplace)
        if not self.correct_lam:
            w0 = lam
        return self._pair_result(x_mix, partner, w0.float(), lam=lam, active=active, share=keep,
                                 box_lo=lo, box_hi=hi)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", minmax={self.minmax}" if self.minmax else "") + ("" if self.correct_lam else ", correct_lam=False")

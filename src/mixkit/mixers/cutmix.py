"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019)."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor

from .._validate import check_range
from ..masks import box
from ..result import MixResult
from .base import Mixer
from .params import MixParams

__all__ = ["CutMix"]


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
        sampled lambda instead (timm's option; the labels then no longer match the pixels), except with
        ``minmax``, where the box does not depend on lambda and the label is always the box share (timm).

    Args:
        alpha: Beta concentration (official README: 1.0; OpenMixup CIFAR configs: 0.2).
        minmax: optional ``(min, max)`` box side ratio (timm's ``cutmix_minmax``): sides uniform in
            ``[min * size, max * size]`` independent of lambda, box fully inside.
        correct_lam: use the realised box share as the label weight (default True).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params`` holds ``box_lo``/``box_hi`` ``(n, d)`` int64 (``n`` = 1 in batch mode).
    """

    name = "cutmix"
    defaults = {"alpha": 1.0}
    summary = "paste a box of the partner; label = realised box share"
    paper = "Yun et al., ICCV 2019 (arXiv:1905.04899)"

    def __init__(self, alpha: float = 1.0, *, minmax: Optional[Sequence[float]] = None, correct_lam: bool = True, **kw) -> None:
        super().__init__(alpha, **kw)
        self.minmax = check_range(minmax, "minmax")
        self.correct_lam = bool(correct_lam)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        lam = self.sample_lam(self._n_draws(x), generator)
        lo, hi = box.sample_boxes(tuple(x.shape[2:]), lam, generator, self.minmax)
        partner = self._partner(x, generator)
        draws = {"box_lo": lo.to(dev), "box_hi": hi.to(dev)}
        if self.mode == "batch":  # the one box as ints, read where the draws live (no device sync)
            draws["box_ints"] = (lo[0].tolist(), hi[0].tolist())
        return MixParams(active=active, lam=lam.to(dev), partner=partner, draws=draws)

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        # with minmax the box ignores lambda: only its realised share can label it (as timm does)
        return self._box_apply(x, params, params.lam, realised=self.correct_lam or self.minmax is not None)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", minmax={self.minmax}" if self.minmax else "") + ("" if self.correct_lam else ", correct_lam=False")

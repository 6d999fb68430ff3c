"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .._validate import check_range
from ..masks import box
from ..result import MixResult
from .base import Mixer
from .params import MixParams

__all__ = ["CutMix"]


class CutMix(Mixer):
    """CutMix: paste a box of the partner into the anchor; the label weight is the realised (clipped) box share.

    ``lam ~ Beta(alpha, alpha)``; the box covers ``1 - lam`` of the grid before clipping (each side
    ``floor(size_i * (1 - lam) ** (1/d))`` for ``d`` spatial dims), its centre is uniform over the grid and it is
    clipped at the border; the partner ``x[perm]`` fills the box, the anchor the rest. The anchor's label weight
    is ``1 - |clipped box| / N``, the mean of its mask. With ``minmax`` the box does not
    depend on lambda, so the label is always the box share, whatever ``correct_lam`` says (as timm).

    Args:
        alpha: Beta concentration (default 1.0, the official README's; the official ``--beta`` defaults to 0,
            i.e. off; OpenMixup's CIFAR configs use 0.2).
        minmax: optional ``(min, max)`` box side ratio (timm's ``cutmix_minmax``): each side uniform in
            ``[min * size, max * size]`` independently of ``lam``, the box fully inside (default None).
        correct_lam: the label weight is the realised box share (default True); False keeps the sampled
            ``lam`` (timm's option; the labels then no longer match the pixels).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer` (the official
            ``--cutmix_prob`` is ``p``: 0.5 on CIFAR, 1.0 on ImageNet).

    ``MixResult.params``: ``box_lo``, ``box_hi`` ``(n, d)`` int64, the clipped boxes ``[lo, hi)`` (``n`` = 1 in
    batch mode, B in sample mode; rows not selected by ``p`` have an empty box).

    See docs/methods/cutmix.md.
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
        sizes = tuple(x.shape[2:])
        if self.mode == "batch":  # the one box in Python ints, read where the draws live (no device sync)
            lo_i, hi_i = box.sample_box_ints(sizes, lam.item(), generator, self.minmax)
            partner = self._partner(x, generator)
            ends = torch.tensor([[lo_i], [hi_i]], dtype=torch.long, device=dev)
            draws = {"box_lo": ends[0], "box_hi": ends[1], "box_ints": (lo_i, hi_i)}
        else:
            lo, hi = box.sample_boxes(sizes, lam, generator, self.minmax)
            partner = self._partner(x, generator)
            draws = {"box_lo": lo.to(dev), "box_hi": hi.to(dev)}
        return MixParams(active=active, lam=lam.to(dev), partner=partner, draws=draws)

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        # with minmax the box ignores lambda: only its realised share can label it (as timm does)
        return self._box_apply(x, params, params.lam, realised=self.correct_lam or self.minmax is not None)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", minmax={self.minmax}" if self.minmax else "") + ("" if self.correct_lam else ", correct_lam=False")

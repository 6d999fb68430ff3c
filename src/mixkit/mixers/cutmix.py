"""CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .._validate import check_int, check_range
from ..masks import box
from ..result import Lazy, MixResult
from . import _ops
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
        lam_range: ``(a, b)``: ``lam ~ U(a, b)`` instead of the Beta (``alpha`` unused), default None.
        num_mix: number of boxes per sample (kornia's ``num_mix``, default 1). With ``k > 1`` box ``m`` (its own
            lambda, box and partner permutation) is pasted over the earlier ones from the *unmixed* batch, so the
            result has ``k + 1`` sources: ``index`` ``(B, k + 1)``, ``weights`` the realised share of each source
            after the overwrites, ``mask`` ``(B, k + 1, *spatial)``; ``lam`` is None (the ``(n, k)`` lambdas are in
            ``params["lam"]``) and ``box_lo``/``box_hi`` are ``(n, k, d)``.
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

    def __init__(self, alpha: float = 1.0, *, minmax: Optional[Sequence[float]] = None, correct_lam: bool = True,
                 lam_range: Optional[Sequence[float]] = None, num_mix: int = 1, **kw) -> None:
        super().__init__(alpha, **kw)
        self.minmax = check_range(minmax, "minmax")
        self.correct_lam = bool(correct_lam)
        self._set_lam_range(lam_range)
        self.num_mix = check_int(num_mix, "num_mix", 1)
        if self.num_mix > 1 and not self.correct_lam:
            raise ValueError("correct_lam=False needs num_mix=1: several boxes are labelled by their realised shares")

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        if self.num_mix > 1:
            return self._sample_cuts(x, active, generator)
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

    def _sample_cuts(self, x: Tensor, active: Optional[Tensor], generator) -> MixParams:
        """``num_mix`` cuts, each drawn as one CutMix call draws (lambda, box, partner), in order."""
        dev, sizes, n = x.device, tuple(x.shape[2:]), self._n_draws(x)
        lams, los, his, partners = [], [], [], []
        for _ in range(self.num_mix):
            lam = self.sample_lam(n, generator)
            lo, hi = box.sample_boxes(sizes, lam, generator, self.minmax)
            lams.append(lam)
            los.append(lo)
            his.append(hi)
            partners.append(self._partner(x, generator))
        return MixParams(active=active, draws={"lam": torch.stack(lams, 1).to(dev), "index": torch.stack(
            [torch.arange(x.shape[0], device=dev)] + partners, 1), "box_lo": torch.stack(los, 1).to(dev),
            "box_hi": torch.stack(his, 1).to(dev)})

    def _apply_cuts(self, x: Tensor, params: MixParams) -> MixResult:
        """Paste the boxes in order from the unmixed batch; each source's weight is the share it shows."""
        b, dev, sizes, k = x.shape[0], x.device, tuple(x.shape[2:]), self.num_mix + 1
        d = dict(params.draws)
        index, lo, hi = d["index"], d["box_lo"], d["box_hi"]
        if params.active is not None:  # rows not selected by p: empty boxes
            hi = torch.where(params.active.to(dev).view(-1, 1, 1), hi, lo)
        owner = box.paste_owner(lo, hi, sizes)  # (n, *spatial): 0 = the anchor, m = cut m
        out = x
        for m in range(1, k):
            out = torch.where(owner.unsqueeze(1) == m, _ops.gather(x, index[:, m]), out)
        out = _ops.keep_format(out, x) if out is not x else x.clone()
        if self.inplace:
            x.copy_(out)
            out = x
        weights = box.owner_shares(owner, k).float()
        weights = weights.expand(b, k).contiguous() if weights.shape[0] != b else weights
        mixed = torch.ones(b, dtype=torch.bool, device=dev) if params.active is None else params.active.to(dev)
        return MixResult(inputs=out, index=index, weights=weights, lam=None, mixed=mixed,
                         share_map=Lazy(box.owner_mask, owner, k, b), params=d)

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        if self.num_mix > 1:
            return self._apply_cuts(x, params)
        # with minmax the box ignores lambda: only its realised share can label it (as timm does)
        return self._box_apply(x, params, params.lam, realised=self.correct_lam or self.minmax is not None)

    def extra_repr(self) -> str:
        return (super().extra_repr() + (f", minmax={self.minmax}" if self.minmax else "")
                + ("" if self.correct_lam else ", correct_lam=False")
                + (f", lam_range={self.lam_range}" if self.lam_range else "")
                + (f", num_mix={self.num_mix}" if self.num_mix > 1 else ""))

"""MixUp (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["MixUp"]


class MixUp(Mixer):
    """MixUp: a convex combination of two samples and of their labels.

    ``lam ~ Beta(alpha, alpha)`` (one per batch, or one per row in sample mode) and a partner ``j = perm[i]``:
    ``x~_i = lam * x_i + (1 - lam) * x_j``; the anchor's label weight is ``lam``. No mask.

    Args:
        alpha: Beta concentration (default 1.0, the official CIFAR value; 0.2 on ImageNet).
        reformulate: the FMix repository's "reformulated" MixUp: ``lam ~ Beta(alpha + 1, alpha)`` and the
            target is the anchor's label alone, so ``weights`` are ``(1, 0)`` by design (default False).
        lam_range: ``(a, b)``: ``lam ~ U(a, b)`` instead of the Beta (``alpha`` unused; kornia's ``lambda_val``,
            whose lambda is the *partner's* weight: ``lambda_val=(a, b)`` is ``lam_range=(1 - b, 1 - a)``).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params`` is empty; ``lam`` ``(B,)`` float32 is the sampled lambda.

    See docs/methods/mixup.md.
    """

    name = "mixup"
    defaults = {"alpha": 1.0}
    summary = "convex combination of two samples, lambda ~ Beta(alpha, alpha)"
    paper = "Zhang et al., ICLR 2018 (arXiv:1710.09412)"

    def __init__(self, alpha: float = 1.0, *, reformulate: bool = False,
                 lam_range: Optional[Sequence[float]] = None, **kw) -> None:
        super().__init__(alpha, **kw)
        self.reformulate = bool(reformulate)
        self._set_lam_range(lam_range)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        lam = self.sample_lam(self._n_draws(x), generator).to(x.device)
        return MixParams(active=active, lam=lam, partner=self._partner(x, generator))

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        b, active = x.shape[0], params.active
        lam = self._deactivate(params.lam, active, b)
        share = lam if lam.numel() == 1 else _ops.rows_view(lam, x)  # one lambda broadcasts as it is
        x_mix = _ops.mix_pair(x, params.partner, share, self.inplace)
        w0 = torch.ones_like(lam) if self.reformulate else lam
        if self.reformulate and active is not None:
            w0 = torch.ones(b, device=x.device)
        return self._pair_result(x_mix, params, w0, lam=lam)

    def extra_repr(self) -> str:
        return (super().extra_repr() + (", reformulate=True" if self.reformulate else "")
                + (f", lam_range={self.lam_range}" if self.lam_range else ""))

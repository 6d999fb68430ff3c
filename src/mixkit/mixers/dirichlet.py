"""Dirichlet MixUp: convex combinations of k samples with Dirichlet weights (the multi-sample remark of
Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_int
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["DirichletMixUp"]


class DirichletMixUp(Mixer):
    """Dirichlet MixUp: a convex combination of k samples, with weights drawn from a Dirichlet.

    ``w ~ Dir(alpha * 1_k)`` (one draw per batch, or one per row in sample mode); column 0 is the sample itself
    and columns 1 .. k-1 are independent random pairings ``pi_j``: ``x~_i = sum_j w_j x_{pi_j(i)}``, and the
    label weights are ``w``. With ``k = 2`` this is MixUp with a ``Beta(alpha, alpha)`` lambda.

    Args:
        alpha: Dirichlet concentration (default 1.0: uniform on the simplex).
        k: number of sources per output sample, >= 2 (default 3).
        weights: ``"dirichlet"`` (default) or ``"normalized_beta"`` (AdAutoMix: k i.i.d. ``Beta(alpha, alpha)``
            draws divided by their sum, a less peaked law than the Dirichlet).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.index`` ``(B, k)`` (column 0 the sample itself) and ``weights`` ``(B, k)`` float32 (rows sum to 1);
    ``lam`` is ``weights[:, 0]``; ``params`` is empty.

    See docs/methods/dirichlet_mixup.md.
    """

    name = "dirichlet_mixup"
    aliases = ("dmixup", "dirichlet")
    defaults = {"alpha": 1.0, "k": 3}
    summary = "convex combination of k samples, weights ~ Dirichlet(alpha)"
    paper = "Zhang et al., ICLR 2018 (multi-sample remark)"

    def __init__(self, alpha: float = 1.0, *, k: int = 3, weights: str = "dirichlet", **kw) -> None:
        super().__init__(alpha, **kw)
        self.k = check_int(k, "k", 2)
        if weights not in ("dirichlet", "normalized_beta"):
            raise ValueError(f"weights must be 'dirichlet' or 'normalized_beta', got {weights!r}")
        self.weight_dist = weights

    def sample_weights(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        """``(n, k)`` float32 source weights, rows summing to 1: Dirichlet(alpha) or normalised Betas (``weight_dist``)."""
        if self.weight_dist == "dirichlet":
            return sampling.sample_dirichlet(self.alpha, self.k, (n,), generator)
        return sampling.sample_normalized_betas(self.alpha, self.k, (n,), generator)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        b, dev = x.shape[0], x.device
        w = self.sample_weights(self._n_draws(x), generator).to(dev)
        index = sampling.k_way_index(b, self.k, generator, self.no_self_pairs).to(dev)
        return MixParams(active=active, draws={"weights": w, "index": index})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        b, dev, active = x.shape[0], x.device, params.active
        w, index = params.draws["weights"], params.draws["index"]
        w = w.expand(b, self.k) if w.shape[0] != b else w
        if active is not None:  # rows not selected by p: weight 1 on the row itself
            w = torch.where(active.to(dev).unsqueeze(1), w, torch.eye(self.k, device=dev)[0])
        x_mix = _ops.blend(x, index, w, self.inplace)
        mixed = torch.ones(b, dtype=torch.bool, device=dev) if active is None else active.to(dev)
        return MixResult(inputs=x_mix, index=index, weights=w.float().contiguous(), lam=w[:, 0].float(), mixed=mixed)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", k={self.k}, weights={self.weight_dist!r}"

"""Multi-sample MixUp: convex combinations of k examples with Dirichlet weights.

The MixUp paper (Zhang et al., ICLR 2018, §3.1 discussion) mentions combinations of more than two
examples with Dirichlet weights; Co-Mixup (Kim et al., ICLR 2021) draws its priors from a Dirichlet too.
AdAutoMix (Qin et al., ICLR 2024) instead normalises k i.i.d. Beta draws, which is *not* a Dirichlet
(it is less peaked: with k=3, alpha=1, E[max w] = 0.52 vs 0.61); ``weights="normalized_beta"`` gives it.
"""
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
    """``x~ = sum_j w_j x[pi_j]`` with ``w ~ Dir(alpha * 1_k)`` and k-1 independent random pairings.

    Args:
        alpha: Dirichlet concentration (default 1.0).
        k: number of sources per output sample (default 3; k=2 is MixUp with a Beta(alpha, alpha) lambda).
        weights: ``"dirichlet"`` (default) or ``"normalized_beta"`` (AdAutoMix's i.i.d. Betas, normalised).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.index`` is ``(B, k)`` with column 0 the sample itself; ``weights`` ``(B, k)`` sum to 1.
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

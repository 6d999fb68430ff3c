"""SmoothMix (Lee, Zaheer, Astrid, Lee, "SmoothMix: a Simple Yet Effective Data Augmentation to Train
Robust Classifiers", CVPR Workshops 2020): a soft-edged (Gaussian) region from the partner."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_range
from ..masks import gaussian
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["SmoothMix"]


class SmoothMix(Mixer):
    """SmoothMix, Gaussian-blob variant: the partner fills a peak-1 blob ``k``; the anchor keeps ``1 - k``.

    A centre ``c`` uniform over the pixels and a width ``s ~ U(sigma_range)`` shared by all axes,
    ``sigma_i = s * size_i``; ``k(p) = exp(-1/2 * sum_i ((p_i - c_i) / sigma_i) ** 2)`` and
    ``x~ = (1 - k) * x + k * x[perm]``; the label weights are the realised shares ``1 - mean(k)`` (anchor) and
    ``mean(k)`` (partner). No lambda is sampled: ``MixResult.lam`` is ``None`` and the anchor's weight is
    ``weights[:, 0]``.

    Args:
        alpha: accepted for a uniform signature and must be > 0, but **unused** (no Beta variate is drawn).
        sigma_range: ``(min, max)`` of ``s``, with ``0 < min <= max`` (default ``(0.25, 0.5)``, as OpenMixup's port).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params``: ``centre`` ``(n, d)`` float32, ``sigma`` ``(n, d)`` float32 (pixels); ``share_map``
    ``(n, 1, *spatial)`` float32, the anchor's share ``1 - k`` (``n`` = 1 in batch mode, B in sample mode).

    See docs/methods/smoothmix.md.
    """

    name = "smoothmix"
    defaults = {"sigma_range": (0.25, 0.5)}
    summary = "soft-edged Gaussian blob of the partner"
    paper = "Lee et al., CVPR Workshops 2020"

    def __init__(self, alpha: float = 1.0, *, sigma_range: Sequence[float] = (0.25, 0.5), **kw) -> None:
        super().__init__(alpha, **kw)
        rng = check_range(sigma_range, "sigma_range", 0.0, math.inf)
        if not rng[0] > 0 or not math.isfinite(rng[1]):
            raise ValueError(f"sigma_range must satisfy 0 < min <= max < inf, got {tuple(rng)}")
        self.sigma_range = rng

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev, n = x.device, self._n_draws(x)
        lo, hi = self.sigma_range
        s = sampling.sample_uniform((n,), generator, lo, hi).to(dev)
        centre = gaussian.uniform_centres(tuple(x.shape[2:]), n, generator, device=dev)
        partner = self._partner(x, generator)
        return MixParams(active=active, partner=partner, draws={"scale": s, "centre": centre})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        sizes = tuple(x.shape[2:])
        s, centre = params.draws["scale"], params.draws["centre"]
        sigma = s.unsqueeze(1) * torch.tensor(list(sizes), dtype=torch.float32, device=x.device)
        k, k_sum = gaussian.kernel_and_mass(sizes, centre, sigma, device=x.device)
        share_map = self._deactivate(1.0 - k, params.active, x.shape[0])
        w0 = self._deactivate(1.0 - k_sum / math.prod(sizes), params.active, x.shape[0]).float()
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        return self._pair_result(x_mix, params, w0, lam=None, share_map=share_map, centre=centre, sigma=sigma)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", sigma_range={self.sigma_range}"

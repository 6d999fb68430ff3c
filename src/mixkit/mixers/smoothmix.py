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

    No official code was published; this follows the reference port in OpenMixup
    (``openmixup/models/augments/smoothmix.py``)::

        c ~ uniform over the pixels,  s ~ U(0.25, 0.5),  sigma_i = s * size_i
        k(p) = exp(-1/2 * sum_i ((p_i - c_i) / sigma_i) ** 2)          # peak 1 at c
        x~ = (1 - k) * x + k * x[perm]
        weight of x = 1 - mean(k),  weight of x[perm] = mean(k)        # realised shares, per sample

    The blob size is drawn from ``U(0.25, 0.5) * size`` (``sigma_range``) as in the port; the paper's
    mixing ratio is the realised blob area ``mean(k)`` (the partner's share). ``alpha`` is kept for a
    uniform signature but **does not affect** SmoothMix: the port draws ``lam ~ Beta(alpha, alpha)`` and
    then discards it, so no Beta variate is drawn here, and ``MixResult.lam`` is ``None`` (there is no
    sampled lambda); the realised anchor weight ``1 - mean(k)`` is ``weights[:, 0]``.

    Non-square and 1-/3-D inputs: ``sigma_i`` is proportional to each axis' own size (one ``s`` shared by
    all axes), so the blob follows the data's aspect (the port uses ``H`` for both axes).

    Args:
        alpha: unused (see above); must still be > 0.
        sigma_range: ``(min, max)`` of ``s`` (default ``(0.25, 0.5)``), with ``0 < min <= max``.
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    Differences from the OpenMixup port:
      * **bug fix**: the port returns ``mean(k)`` as the weight of the *anchor* label ``y_a`` although ``k``
        weights the *shuffled* image; the anchor's share is ``1 - mean(k)``, which is what is used here;
      * the port is batch mode only with one square blob; here both modes (sample mode: a centre and a
        width per row, vectorised), any aspect and 1-/2-/3-D;
      * the centre sits on a pixel (the port's rolled grid puts it half a pixel off).

    ``MixResult.params``: ``centre`` ``(n, d)`` float32, ``sigma`` ``(n, d)`` float32 (pixels).
    ``MixResult.share_map``: ``(B or 1, 1, *spatial)`` float32, the anchor's share ``1 - k``.
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
        k = gaussian.gaussian_kernel(sizes, centre, sigma, device=x.device)
        share_map = self._deactivate(1.0 - k, params.active, x.shape[0])
        w0 = (share_map.flatten(1).sum(1, dtype=torch.float64) / math.prod(sizes)).float()
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        return self._pair_result(x_mix, params, w0, lam=None, share_map=share_map, centre=centre, sigma=sigma)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", sigma_range={self.sigma_range}"

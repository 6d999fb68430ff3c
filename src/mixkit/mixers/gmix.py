"""GMix (Park, Yun, Chun, "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function
Perspective", NeurIPS 2022): a Gaussian-kernel soft mask."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..masks import gaussian
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["GMix"]


class GMix(Mixer):
    """GMix: the minority image fills a Gaussian kernel of mass ``min(lam, 1 - lam)``; label = its realised mean.

    ``lam ~ Beta(alpha, alpha)``, ``l = min(lam, 1 - lam)``, a centre ``c`` uniform over the pixels and the
    peak-1 kernel ``g(p) = exp(-pi * sum_i ((p_i - c_i) / size_i) ** 2 / l ** (2/d))``, whose untruncated mean
    over the grid is ``l`` for every aspect and dimensionality (:func:`mixkit.masks.gaussian.sigma_for_mass`).
    The anchor's share is ``g`` if ``lam < 0.5`` (the anchor is the minority image), else ``1 - g``;
    ``x~ = share * x + (1 - share) * x[perm]``. The anchor's label weight is the mean of its share (the border
    truncates the kernel, so it is not ``lam``).

    Args:
        alpha: Beta concentration (default 1.0).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.params``: ``centre`` ``(n, d)`` float32 pixel coordinates, ``sigma`` ``(n, d)`` float32 per-axis
    std in pixels, ``minority_anchor`` ``(n,)`` bool (``lam < 0.5``); ``share_map`` ``(n, 1, *spatial)`` float32
    (``n`` = 1 in batch mode, B in sample mode).

    See docs/methods/gmix.md.
    """

    name = "gmix"
    defaults = {"alpha": 1.0}
    summary = "Gaussian-kernel soft mask centred at a random point"
    paper = "Park, Yun, Chun, NeurIPS 2022 (arXiv:2208.09913)"

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        n = self._n_draws(x)
        lam = self.sample_lam(n, generator)
        centre = gaussian.uniform_centres(tuple(x.shape[2:]), n, generator, device=x.device)
        partner = self._partner(x, generator)
        return MixParams(active=active, lam=lam.to(x.device), partner=partner, draws={"centre": centre})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        sizes = tuple(x.shape[2:])
        d, centre = len(sizes), params.draws["centre"]
        lam = self._deactivate(params.lam, params.active, x.shape[0])  # rows not selected by p: lam = 1 -> l = 0 -> share 1
        minority = lam < 0.5
        mass = torch.where(minority, lam, 1.0 - lam)
        sigma = gaussian.sigma_for_mass(sizes, mass)
        g, g_sum = gaussian.kernel_and_mass(sizes, centre, sigma, device=x.device)
        share_map = torch.where(minority.view(-1, 1, *([1] * d)), g, 1.0 - g)
        n_cells = math.prod(sizes)  # the share's sum in closed form: sum(g) or N - sum(g)
        w0 = torch.where(minority.to(g_sum.device), g_sum, n_cells - g_sum) / n_cells
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        return self._pair_result(x_mix, params, w0.float(), lam=lam, share_map=share_map,
                                 centre=centre, sigma=sigma, minority_anchor=minority)

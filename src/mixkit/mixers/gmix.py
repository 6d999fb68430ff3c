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

    Algorithm (official ``naver-ai/hmix-gmix``, ``gmix_gaussian_kernel`` and the ``gmix`` branch):
    ``lam ~ Beta(alpha, alpha)``, ``l = min(lam, 1 - lam)``, a centre ``c`` uniform over the pixels and a
    peak-1 kernel whose untruncated integral is ``l * N``::

        g(p) = exp(-pi * sum_i ((p_i - c_i) / size_i) ** 2 / l ** (2/d))
        lam < 0.5:   share of the anchor = g          (the anchor is the minority image)
        lam >= 0.5:  share of the anchor = 1 - g      (the partner is the minority image)

    so the kernel's peak (share 1) always belongs to the image with the smaller share. The label weight
    of the anchor is the mean of its realised share map (per sample), not the sampled ``lam``: the border
    truncates the kernel (|difference| is about 0.08 on average on 32x32 images, with zero mean).

    Non-square and 1-/3-D grids: the kernel is written in per-axis normalised coordinates
    ``u_i = (p_i - c_i) / size_i`` (std ``sigma_i = size_i * l ** (1/d) / sqrt(2 pi)`` pixels, see
    :func:`mixkit.masks.gaussian.sigma_for_mass`), so its untruncated mean over the grid is ``l`` for every
    aspect ratio and dimensionality and the blob stretches with the grid (an ellipse on a 17x41 image), as
    CutMix's box does. For square images this is exactly the official ``exp(-pi * d2 / (l * H * H))``.

    Args:
        alpha: Beta concentration (default 1.0).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    Differences from the official code (a fork of timm's ``Mixup``):
      * the official kernel builds its grid as ``H x H`` and scales by ``H * H`` (it assumes square
        images: on ``H != W`` the mask has the wrong shape or mass); here every axis uses its own size;
      * the official code is batch mode only and pairs with ``x.flip(0)``; here both modes (sample mode:
        a centre and a lambda per row, vectorised) and any batch size;
      * ``l = 0`` (``lam`` exactly 0 or 1) gives an all-zero kernel (the limit of its mass), not a single
        peak pixel.

    ``MixResult.params``: ``centre`` ``(n, d)`` float32 pixel coordinates, ``sigma`` ``(n, d)`` float32 per-axis
    std in pixels, ``minority_anchor`` ``(n,)`` bool (``lam < 0.5``). ``MixResult.share_map``: ``(n, 1, *spatial)`` float32.
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
        g = gaussian.gaussian_kernel(sizes, centre, sigma, device=x.device)
        share_map = torch.where(minority.view(-1, 1, *([1] * d)), g, 1.0 - g)
        w0 = share_map.flatten(1).sum(1, dtype=torch.float64) / math.prod(sizes)
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        return self._pair_result(x_mix, params, w0.float(), lam=lam, share_map=share_map,
                                 centre=centre, sigma=sigma, minority_anchor=minority)

"""FMix (Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation", arXiv 2002.12047)."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .._validate import check_positive
from ..masks import fourier
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["FMix"]


class FMix(Mixer):
    """FMix: keep the anchor where a thresholded low-frequency random image is high, the partner elsewhere.

    ``lam ~ Beta(alpha, alpha)``. A random image with a ``1 / f ** decay_power`` spectrum is drawn on the
    input's spatial grid (taken from ``x`` at call time: any size, non-square images, non-cubic volumes,
    1-D sequences) and its top ``lam * N`` pixels (``ceil`` or ``floor`` at random) form the anchor's
    share: ``x_mix = mask * x + (1 - mask) * x[perm]``, the mask broadcast over channels.

    Modes: ``"batch"`` (the paper and official code) uses ONE mask and one permutation for the whole batch;
    ``"sample"`` draws a lambda and a mask per sample (one batched ``irfftn`` and one ``topk``).

    Args:
        alpha: Beta concentration (official default 1.0; OpenMixup CIFAR configs use 0.2).
        decay_power: spectral decay ``delta`` > 0 (official default 3.0); larger gives smoother masks.
        max_soft: half-width of a linear soft edge around the threshold, as a share of the pixels, in
            ``[0, 0.5]`` (official default 0.0: a hard mask). See :func:`mixkit.masks.fourier.binarise`.
        reformulate: the FMix repository's reformulated objective: ``lam ~ Beta(alpha + 1, alpha)`` and the
            target is the anchor's label only, so ``weights`` are ``(1, 0)`` by design (as ``MixUp``).
        spectrum: ``"paper"`` (default: the spectrum the paper describes) or ``"official"``: the official
            code's ``spectrum[:, 0] + 1j * spectrum[:, 1]``, which indexes the first frequency axis, so its
            2-D masks only vary at last-axis frequencies {-1, 0, 1} and its 1-D masks are single cosines
            (docs/methods/fmix.md); for exact reproduction of the published numbers.
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    Result: ``share_map`` is the anchor's mask ``(n, 1, *spatial)`` (``n`` = 1 in batch mode, else B): bool for
    hard masks, float32 with ``max_soft > 0``; ``lam`` the sampled lambda; ``params["num"]`` the number
    of pixels (the ramp's centre for soft masks) kept from the anchor per mask.

    Where this deliberately differs from the official code (``ecs-vlc/FMix``):
      * the label weight is the realised mask mean per sample, not the sampled lambda the official code
        returns. With the exact top-k threshold the two differ by at most ``1/N`` (and the symmetric soft
        ramp keeps the mean), so the official value is off only by that rounding; the mean is exact;
      * 3-D masks use a correct frequency grid for non-cubic volumes (the official ``fftfreqnd`` swaps
        axis roles, right only for cubes);
      * the size comes from ``x`` instead of a fixed ``size`` argument, and all randomness from the
        ``generator`` instead of numpy / ``random`` / scipy global state;
      * ``mode="sample"`` (a mask per sample) is an extension; the paper uses one mask per batch.
    Hard masks are applied with ``torch.where`` (exact pixel copies, also in fp16/bf16).
    """

    name = "fmix"
    defaults = {"alpha": 1.0, "decay_power": 3.0}
    summary = "binary mask from thresholded low-frequency Fourier noise"
    paper = "Harris et al., arXiv:2002.12047, 2020"

    def __init__(self, alpha: float = 1.0, *, decay_power: float = 3.0, max_soft: float = 0.0,
                 reformulate: bool = False, spectrum: str = "paper", **kw) -> None:
        super().__init__(alpha, **kw)
        self.decay_power = check_positive(decay_power, "decay_power")
        self.max_soft = fourier._check_max_soft(max_soft)
        self.reformulate = bool(reformulate)
        if spectrum not in fourier.SPECTRA:
            raise ValueError(f"spectrum must be one of {fourier.SPECTRA}, got {spectrum!r}")
        self.spectrum = spectrum

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        n = self._n_draws(x)
        lam = self.sample_lam(n, generator)
        grey = fourier.low_freq_images(n, tuple(x.shape[2:]), self.decay_power, generator, device=dev, normalize=False,
                                       spectrum=self.spectrum)
        hard = self.max_soft == 0
        share_map = fourier.binarise(grey, lam.to(dev), self.max_soft, generator,
                                     dtype=torch.bool if hard else torch.float32).unsqueeze(1)
        partner = self._partner(x, generator)
        return MixParams(active=active, lam=lam.to(dev), partner=partner, draws={"share_map": share_map})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        b, active = x.shape[0], params.active
        numel = math.prod(x.shape[2:])
        lam = self._deactivate(params.lam, active, b)
        share_map = self._deactivate(params.draws["share_map"], active, b)
        x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace)
        if self.max_soft == 0:
            num = share_map.flatten(1).sum(1)  # exact integer counts per mask
            realised = num.double() / numel
        else:
            realised = share_map.flatten(1).double().mean(1)
            num = torch.round(realised * numel).long()  # the centre of the ramp
        w0 = torch.ones(b, device=x.device) if self.reformulate else realised.float()
        return self._pair_result(x_mix, params, w0, lam=lam, share_map=share_map, num=num)

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", decay_power={self.decay_power}"
        if self.max_soft:
            s += f", max_soft={self.max_soft}"
        s += f", spectrum={self.spectrum!r}" if self.spectrum != "paper" else ""
        return s + (", reformulate=True" if self.reformulate else "")

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


def _counts(mask: Tensor) -> Tensor:
    """Per-row True counts of a bool ``(n, N)`` as int64, summed in int16 (int32 for ``N >= 2**15``) over
    row slices of about 2**16 pixels: a bool sum would make an int64 copy of the whole mask."""
    n, N = mask.shape
    step, acc = max(1, (1 << 16) // max(1, N)), torch.int16 if N < (1 << 15) else torch.int32
    parts = [mask[i:i + step].sum(1, dtype=acc) for i in range(0, n, step)]
    return (torch.cat(parts) if len(parts) != 1 else parts[0]).long()


class FMix(Mixer):
    """FMix: keep the anchor where a thresholded low-frequency random image is high, the partner elsewhere.

    ``lam ~ Beta(alpha, alpha)``; a random image with a ``1 / f ** decay_power`` spectrum is drawn on the input's
    grid (any size, 1-, 2- or 3-D) and its top ``ceil`` or ``floor`` (at random) of ``lam * N`` pixels form the
    anchor's mask ``M`` (``max_soft > 0``: a symmetric linear ramp around the threshold);
    ``x~ = M * x + (1 - M) * x[perm]``, the mask broadcast over channels. The anchor's label weight is the
    realised ``mean(M)`` (within ``1/N`` of ``lam``). One mask per batch (``mode="batch"``, as the paper) or one
    per row (``"sample"``).

    Args:
        alpha: Beta concentration (default 1.0, official; OpenMixup's CIFAR configs use 0.2).
        decay_power: spectral decay ``delta`` > 0 (default 3.0, official); larger gives smoother masks.
        max_soft: half-width of the soft edge around the threshold, as a share of the pixels, in ``[0, 0.5]``
            (default 0.0, official: a hard mask). See :func:`mixkit.masks.fourier.binarise`.
        reformulate: the FMix repository's reformulated objective: ``lam ~ Beta(alpha + 1, alpha)`` and the
            anchor's label alone, so ``weights`` are ``(1, 0)`` by design (default False).
        spectrum: ``"paper"`` (default: the spectrum the paper describes) or ``"official"``: the official
            code's ``spectrum[:, 0] + 1j * spectrum[:, 1]``, which indexes the first frequency axis, so its
            2-D masks only vary at last-axis frequencies {-1, 0, 1} and its 1-D masks are single cosines
            (docs/methods/fmix.md); for exact reproduction of the published numbers.
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.share_map``: the anchor's mask ``(n, 1, *spatial)`` (``n`` = 1 in batch mode, else B), bool for
    hard masks, float32 with ``max_soft > 0``. ``params``: ``num`` ``(n,)`` int64, the number of pixels kept from
    the anchor per mask (the ramp's centre for soft masks).

    See docs/methods/fmix.md.
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
            num = _counts(share_map.flatten(1))  # exact integer counts per mask
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

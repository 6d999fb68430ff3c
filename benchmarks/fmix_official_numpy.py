"""A numpy re-statement of the official FMix mask generator, used only as a speed reference.

Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation" (arXiv 2002.12047); the official code
(``ecs-vlc/FMix``, ``fmix.py``) builds its masks on the CPU with numpy, one mask per call. This module
re-states that algorithm from its description (mixkit's ``reference/methods.md`` section 3) so that
``benchmarks/speed.py`` can time the official *cost* next to mixkit's batched torch generator. It is not
the official code and is not part of the library.

The steps, as the official generator performs them:

1. ``frequency_magnitudes(shape)``: the radial frequency ``sqrt(fy^2 + fx^2 [+ fz^2])`` on the real-FFT
   grid. The first dim uses the full ``fftfreq``; the last dim keeps ``w // 2 + 1`` bins (one more for
   odd ``w``, which the inverse FFT crops). For 3-D shapes the official axis order is kept as is
   (the second and third axes swap roles, which only matters for non-cubic volumes).
2. ``random_spectrum``: Gaussian real and imaginary parts scaled by ``1 / max(f, 1/max(shape)) ** decay``.
3. ``low_frequency_image``: the real part of the inverse real FFT at ``shape``, min-max normalised to
   ``[0, 1]``; returned as ``(1, *shape)``.
4. ``binarise``: the top-``num`` pixels (by value, descending) become 1 and the rest 0, where ``num`` is
   ``ceil(lam * N)`` or ``floor(lam * N)`` with probability 1/2 each; ``max_soft > 0`` puts a linear ramp
   of ``2 * int(N * max_soft)`` pixels across the threshold.
5. ``sample_mask``: draw ``lam ~ Beta(alpha, alpha)`` (``Beta(alpha + 1, alpha)`` when reformulated),
   build the low-frequency image, binarise it.

Randomness comes from one ``numpy.random.Generator`` passed in (the official code uses numpy's and
Python's global state and ``scipy.stats.beta``; a ``Generator`` is at least as fast, so the timing
comparison does not favour mixkit).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

__all__ = ["frequency_magnitudes", "random_spectrum", "low_frequency_image", "binarise", "sample_mask",
           "sample_masks_looped"]


def frequency_magnitudes(shape: Sequence[int]) -> np.ndarray:
    """Radial frequency magnitudes on the real-FFT grid of a 1-, 2- or 3-D ``shape``.

    Shapes of the result: ``(h,)``; ``(h, w // 2 + 1)`` (``+2`` for odd ``w``); ``(h, z, w // 2 + 1)`` for
    ``shape = (h, w, z)`` (the official axis order).
    """
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"shape must have 1 to 3 dims, got {tuple(shape)}")
    h = shape[0]
    w = shape[1] if len(shape) > 1 else None
    z = shape[2] if len(shape) > 2 else None
    f_first = np.fft.fftfreq(h)
    f_last = 0.0
    f_mid = 0.0
    if w is not None:
        f_first = f_first[:, None]
        keep = w // 2 + (2 if w % 2 == 1 else 1)
        f_last = np.fft.fftfreq(w)[:keep]
    if z is not None:
        f_first = f_first[..., None]
        f_mid = np.fft.fftfreq(z)[:, None]
    return np.sqrt(f_first ** 2 + f_last ** 2 + f_mid ** 2)


def random_spectrum(freqs: np.ndarray, decay_power: float, shape: Sequence[int], rng: np.random.Generator,
                    channels: int = 1) -> np.ndarray:
    """Gaussian spectrum ``(channels, *freqs.shape, 2)`` (real, imaginary) with a power-law decay."""
    floor = 1.0 / max(shape)
    scale = 1.0 / np.maximum(freqs, floor) ** decay_power
    noise = rng.standard_normal((channels,) + freqs.shape + (2,))
    return scale[None, ..., None] * noise


def low_frequency_image(decay_power: float, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random low-frequency grey image ``(1, *shape)`` with values in ``[0, 1]``."""
    shape = tuple(int(s) for s in shape)
    spec = random_spectrum(frequency_magnitudes(shape), decay_power, shape, rng)
    complex_spec = spec[..., 0] + 1j * spec[..., 1]
    # the inverse transform runs over the last len(shape) axes (the official call leaves axes implicit)
    img = np.real(np.fft.irfftn(complex_spec, shape, axes=tuple(range(-len(shape), 0))))
    img = img[(slice(0, 1),) + tuple(slice(0, s) for s in shape)]
    img = img - img.min()
    return img / img.max()


def binarise(img: np.ndarray, lam: float, shape: Sequence[int], rng: np.random.Generator,
             max_soft: float = 0.0) -> np.ndarray:
    """Turn a grey image into a mask whose top ``~lam * N`` pixels are 1 (exact count, random rounding)."""
    flat = img.reshape(-1).copy()
    n = flat.size
    order = np.argsort(flat)[::-1]
    count = math.ceil(lam * n) if rng.random() > 0.5 else math.floor(lam * n)
    soft = max_soft
    if max_soft > lam or max_soft > 1 - lam:
        soft = min(lam, 1 - lam)
    ramp = int(n * soft)
    lo, hi = count - ramp, count + ramp
    flat[order[:hi]] = 1
    flat[order[lo:]] = 0
    flat[order[lo:hi]] = np.linspace(1, 0, hi - lo)
    return flat.reshape((1,) + tuple(shape))


def sample_mask(alpha: float, decay_power: float, shape: Sequence[int], rng: np.random.Generator,
                max_soft: float = 0.0, reformulate: bool = False) -> Tuple[float, np.ndarray]:
    """One FMix draw: ``(lam, mask)`` with ``mask`` of shape ``(1, *shape)`` (float64, as the official)."""
    lam = float(rng.beta(alpha + 1, alpha) if reformulate else rng.beta(alpha, alpha))
    img = low_frequency_image(decay_power, shape, rng)
    return lam, binarise(img, lam, shape, rng, max_soft)


def sample_masks_looped(n: int, alpha: float, decay_power: float, shape: Sequence[int],
                        rng: np.random.Generator, max_soft: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` independent masks by calling the single-mask generator ``n`` times (what a per-sample
    variant of the official code has to do): ``(lams (n,), masks (n, 1, *shape))``."""
    lams = np.empty(n)
    masks = np.empty((n, 1) + tuple(shape))
    for i in range(n):
        lams[i], masks[i] = sample_mask(alpha, decay_power, shape, rng, max_soft)
    return lams, masks


if __name__ == "__main__":  # a quick self-check of the exact-count property
    r = np.random.default_rng(0)
    for shp in [(32, 32), (31, 33), (16000,), (16, 16, 16)]:
        lam_, m = sample_mask(1.0, 3.0, shp, r)
        assert m.shape == (1,) + shp
        assert abs(m.mean() - lam_) <= 1.0 / m.size + 1e-12, (shp, lam_, m.mean())
    print("ok")

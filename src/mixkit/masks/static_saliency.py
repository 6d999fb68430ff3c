"""Fine-grained static saliency (Montabone & Soto, 2010), batched and vectorised in torch.

The intensity channel of S. Montabone and A. Soto, "Human detection using a mobile platform and novel
features derived from a visual saliency mechanism", Image and Vision Computing 28(3), 2010, as OpenCV's
``StaticSaliencyFineGrained`` (opencv-contrib, ``saliency`` module) computes it for SaliencyMix (Uddin et
al., ICLR 2021): a centre-surround difference computed with integral images at several scales.

1. grayscale: ``gray = w . channels`` (luma for RGB);
2. smoothing: two passes of the 3-tap binomial kernel ``[1, 2, 1] / 4`` per axis (what OpenCV's
   ``GaussianBlur(ksize=3, sigma=0)`` uses), borders reflected without repeating the edge;
3. for each surround half-size ``n`` in ``(12, 24, 48, 28, 56, 112)``: the surround of a pixel ``p``
   is the window ``[p - n + 1, p + n]`` per axis (clipped to the image); its mean *without the centre
   pixel* is ``m = (window_sum - gray(p)) / (window_count - 1)``, and the scale contributes
   ``on = max(gray - m, 0)`` (brighter than the surround) and ``off = max(m - gray, 0)`` (darker);
4. ``on`` and ``off`` are summed over the scales, each sum is divided by its maximum over the image,
   and the saliency is ``(on + off) / max(on + off)`` in ``[0, 1]``.

Every step is a tensor operation over the whole batch (the N-D window sums are separable: cumulative sums
along one axis at a time, gathered at clipped per-axis indices), ``O(B * N * scales)`` on any device, with
no Python loop over pixels or samples; sequences and volumes use the same definition per axis. It differs
from OpenCV on purpose (float arithmetic, RGB channel order, borders, no uint8 overflow, constant images);
those differences, and why the dark surround of a bright blob scores high: docs/methods/saliencymix.md.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["static_saliency", "FINE_GRAINED_SCALES"]

#: surround half-sizes of OpenCV's StaticSaliencyFineGrained (3*4, 3*4*2, 3*4*4, 7*4, 7*4*2, 7*4*4)
FINE_GRAINED_SCALES = (12, 24, 48, 28, 56, 112)

_LUMA_RGB = (0.299, 0.587, 0.114)


def _to_gray(x: Tensor, gray_weights: Optional[Sequence[float]]) -> Tensor:
    """``(B, C, *spatial)`` -> ``(B, *spatial)``."""
    c = x.shape[1]
    if gray_weights is None:
        if c == 3:
            gray_weights = _LUMA_RGB
        else:
            return x.mean(1)
    w = torch.as_tensor(list(gray_weights), dtype=x.dtype, device=x.device)
    if w.dim() != 1 or w.numel() != c:
        raise ValueError(f"gray_weights must have one weight per channel (C={c}), got {tuple(w.shape)} values")
    return torch.einsum("bc...,c->b...", x, w)


def _blur121(g: Tensor) -> Tensor:
    """One pass of the separable ``[1, 2, 1] / 4`` kernel along every spatial axis of ``(B, *spatial)``."""
    for ax in range(1, g.dim()):
        n = g.shape[ax]
        if n == 1:
            continue  # a reflected border of a single pixel is the pixel itself
        # reflect-101 padding by one: index -1 -> 1, n -> n - 2
        idx = torch.cat([torch.tensor([1]), torch.arange(n), torch.tensor([n - 2])]).to(g.device)
        p = g.index_select(ax, idx)
        g = 0.25 * p.narrow(ax, 0, n) + 0.5 * p.narrow(ax, 1, n) + 0.25 * p.narrow(ax, 2, n)
    return g


def _window_sums(g: Tensor, n: int) -> tuple:
    """Sum and cell count of the clipped window ``[p - n + 1, p + n]`` (per axis) around every pixel."""
    s = g
    count = None
    for ax in range(1, g.dim()):
        size = s.shape[ax]
        pos = torch.arange(size, device=g.device)
        lo = (pos - n + 1).clamp(0, size)
        hi = (pos + n + 1).clamp(0, size)
        shape = [1] * (g.dim() - 1)
        shape[ax - 1] = size
        cnt = (hi - lo).view(shape)
        count = cnt if count is None else count * cnt
        zero = torch.zeros_like(s.narrow(ax, 0, 1))
        cs = torch.cat([zero, s.cumsum(ax)], ax)  # prefix sums with a leading 0: cs[i] = sum of [0, i)
        s = cs.index_select(ax, hi) - cs.index_select(ax, lo)
    return s, count.to(g.dtype)


def static_saliency(x: Tensor, *, scales: Sequence[int] = FINE_GRAINED_SCALES,
                    gray_weights: Optional[Sequence[float]] = None, blur_passes: int = 2) -> Tensor:
    """Fine-grained static saliency map of every sample (Montabone & Soto 2010, as in OpenCV).

    Args:
        x: ``(B, C, *spatial)`` float batch with 1 to 3 spatial dims, any device; any intensity range
            (normalised tensors are fine: the map is invariant to ``a * x + b`` with ``a > 0``).
        scales: surround half-sizes in pixels (default OpenCV's ``(12, 24, 48, 28, 56, 112)``).
        gray_weights: per-channel weights for the grayscale conversion; default RGB luma for 3
            channels, the channel mean otherwise.
        blur_passes: passes of the ``[1, 2, 1] / 4`` smoothing kernel (OpenCV: 2).

    Returns:
        ``(B, *spatial)`` saliency in ``[0, 1]`` (float32, or float64 for float64 input), with maximum
        1 unless the image is constant (then all zeros). No gradient flows through it.

    See the module docstring for the algorithm, docs/methods/saliencymix.md for the deliberate differences
    from OpenCV.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor of shape (B, C, *spatial)")
    if x.dim() not in (3, 4, 5):
        raise ValueError(f"x must have shape (B, C, *spatial) with 1 to 3 spatial dims, got {tuple(x.shape)}")
    scales = [int(s) for s in scales]
    if not scales or any(s < 1 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of ints >= 1, got {scales}")
    if int(blur_passes) < 0:
        raise ValueError(f"blur_passes must be >= 0, got {blur_passes}")
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        g = _to_gray(x.detach().to(dt), gray_weights)
        # remove the per-image offset (the map is invariant to it): keeps the cumulative sums small.
        # The minimum rather than the mean keeps integer-valued images integer, so their sums are exact.
        g = g - g.flatten(1).amin(1).view(-1, *([1] * (g.dim() - 1)))
        for _ in range(int(blur_passes)):
            g = _blur121(g)
        on = torch.zeros_like(g)
        off = torch.zeros_like(g)
        for n in scales:
            s, cnt = _window_sums(g, n)
            denom = (cnt - 1).clamp_min(1)
            m = (s - g) / denom
            m = torch.where(cnt > 1, m, g)  # a 1-cell window has no surround: no contrast
            d = g - m
            on += d.clamp_min(0)
            off += (-d).clamp_min(0)
        on = _normalise_max(on)
        off = _normalise_max(off)
        return _normalise_max(on + off)


def _normalise_max(v: Tensor) -> Tensor:
    mx = v.flatten(1).amax(1).view(-1, *([1] * (v.dim() - 1)))
    return torch.where(mx > 0, v / mx.clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v))

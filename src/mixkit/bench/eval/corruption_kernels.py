"""The corruption kernels: ``f(x, param, generator) -> x`` on float ``(N, C, *spatial)``, unclamped.

One function per corruption of :data:`mixkit.bench.eval.corruptions.CORRUPTIONS`, which holds
their severity tables, clamps the result to ``[0, 1]`` and documents where they differ from
CIFAR-10-C / ImageNet-C (Hendrycks & Dietterich, ICLR 2019). Random numbers come only from the
caller's generator, drawn on its device and moved to ``x``'s device.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


# ---------------------------------------------------------------------------------------------
# random numbers (always from the caller's generator, on its device)
# ---------------------------------------------------------------------------------------------


def _gdev(g: torch.Generator | None, device: torch.device) -> torch.device:
    return g.device if g is not None else device


def _rand(shape: Sequence[int], g: torch.Generator | None, like: Tensor) -> Tensor:
    return torch.rand(tuple(shape), generator=g, device=_gdev(g, like.device), dtype=like.dtype).to(like.device)


def _randn(shape: Sequence[int], g: torch.Generator | None, like: Tensor) -> Tensor:
    return torch.randn(tuple(shape), generator=g, device=_gdev(g, like.device), dtype=like.dtype).to(like.device)


# ---------------------------------------------------------------------------------------------
# filtering helpers
# ---------------------------------------------------------------------------------------------


def _conv_same(x: Tensor, weight: Tensor) -> Tensor:
    """Correlate every channel of ``x`` (N, C, *spatial) with ``weight`` (*k, odd sizes); replicate borders."""
    n, c, *sp = x.shape
    nd = len(sp)
    xr = x.reshape(n * c, 1, *sp)
    pads: list[int] = []
    for k in reversed(weight.shape):
        pads += [k // 2, k // 2]
    xr = F.pad(xr, pads, mode="replicate")
    conv = F.conv1d if nd == 1 else F.conv2d
    out = conv(xr, weight.to(device=x.device, dtype=x.dtype)[None, None])
    return out.reshape(n, c, *sp)


def _gauss1d(sigma: float, truncate: float = 4.0, dtype: torch.dtype = torch.float64) -> Tensor:
    radius = max(1, int(truncate * sigma + 0.5))
    i = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def _gaussian_filter(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over all spatial dims (skimage.filters.gaussian: truncate 4, 'nearest')."""
    k = _gauss1d(sigma)
    nd = x.ndim - 2
    if nd == 1:
        return _conv_same(x, k)
    x = _conv_same(x, k.reshape(1, -1))
    return _conv_same(x, k.reshape(-1, 1))


def _disk_kernel(radius: float, alias_blur: float, nd: int) -> Tensor:
    """make_cifar_c.disk: aliased disk on [-8, 8]^nd, normalised, then a 3-tap Gaussian per axis (sigma alias_blur)."""
    grid = torch.arange(-8, 9, dtype=torch.float64)
    coords = torch.meshgrid(*([grid] * nd), indexing="ij")
    r2 = sum(c**2 for c in coords)
    k = (r2 <= radius**2).double()
    k = k / k.sum()
    g3 = torch.exp(-torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) ** 2 / (2 * alias_blur**2))
    g3 = g3 / g3.sum()
    kk = k[None, None]
    if nd == 1:
        kk = F.conv1d(F.pad(kk, (1, 1)), g3.reshape(1, 1, 3))
    else:
        kk = F.conv2d(F.pad(kk, (1, 1, 0, 0)), g3.reshape(1, 1, 1, 3))
        kk = F.conv2d(F.pad(kk, (0, 0, 1, 1)), g3.reshape(1, 1, 3, 1))
    k = kk[0, 0]
    h = int(math.floor(radius)) + 1  # support after the 3-tap alias blur
    sl = slice(8 - h, 8 + h + 1)
    return k[(sl,) * nd]


# ---------------------------------------------------------------------------------------------
# corruptions: f(x, param, generator) with x float (N, C, *spatial); clamping happens in Corruption
# ---------------------------------------------------------------------------------------------


def gaussian_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    return x + c * _randn(x.shape, g, x)


def shot_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    rate = (x.clamp(0, 1) * c).to(_gdev(g, x.device))
    return torch.poisson(rate, generator=g).to(x.device) / c


def impulse_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    flip = _rand(x.shape, g, x) < c
    salt = _rand(x.shape, g, x) < 0.5
    out = torch.where(flip & salt, torch.ones_like(x), x)
    return torch.where(flip & ~salt, torch.zeros_like(x), out)


def speckle_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    return x + x * (c * _randn(x.shape, g, x))


def gaussian_blur(x: Tensor, sigma: float, g: torch.Generator | None) -> Tensor:
    return _gaussian_filter(x, sigma)


def defocus_blur(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    return _conv_same(x, _disk_kernel(c[0], c[1], x.ndim - 2))


def motion_blur(x: Tensor, c: tuple[int, float], g: torch.Generator | None) -> Tensor:
    radius, sigma = c
    n, ch, h, w = x.shape
    taps = min(2 * radius + 1, int(math.ceil(4 * sigma)) + 1)
    i = torch.arange(taps, dtype=torch.float64)
    wts = torch.exp(-(i**2) / (2 * sigma**2))
    wts = (wts / wts.sum()).tolist()
    angle = (_rand((n,), g, x.double()) * 2 - 1) * (math.pi / 4)
    dx = torch.round(i.to(x.device)[None] * torch.cos(angle)[:, None]).long()  # (n, taps)
    dy = torch.round(i.to(x.device)[None] * torch.sin(angle)[:, None]).long()
    p = taps - 1
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    nidx = torch.arange(n, device=x.device)[:, None, None]
    rows0 = torch.arange(h, device=x.device)[None, :] + p
    cols0 = torch.arange(w, device=x.device)[None, :] + p
    out = torch.zeros_like(x)
    for t in range(taps):
        rows = (rows0 + dy[:, t : t + 1])[:, :, None]  # (n, h, 1)
        cols = (cols0 + dx[:, t : t + 1])[:, None, :]  # (n, 1, w)
        out = out + wts[t] * xp[nidx, :, rows, cols].permute(0, 3, 1, 2)
    return out


def zoom_blur(x: Tensor, n_zooms: int, g: torch.Generator | None) -> Tensor:
    """Mean of x and centre zooms by 1.00, 1.01, ... (n_zooms factors, as np.arange in the original)."""
    n = x.shape[0]
    acc = x.clone()
    for i in range(n_zooms):
        z = 1.0 + 0.01 * i
        theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
        theta[:, 0, 0] = 1.0 / z
        theta[:, 1, 1] = 1.0 / z
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        acc = acc + F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return acc / (n_zooms + 1)


def contrast(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    m = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)  # per image and channel, as in make_cifar_c
    return (x - m) * c + m


def brightness(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    """HSV value + c, exactly: V = max over channels; hue and saturation are kept, so rgb scales by V'/V."""
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scale = torch.where(v > 0, v_new / v.clamp_min(1e-12), torch.zeros_like(v))
    return torch.where(v > 0, x * scale, v_new.expand_as(x))


def saturate(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    """HSV saturation * c[0] + c[1], exactly. Grey pixels have hue 0 (red), as in skimage's rgb2hsv."""
    v = x.amax(dim=1, keepdim=True)
    mn = x.amin(dim=1, keepdim=True)
    delta = v - mn
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * c[0] + c[1]).clamp(0, 1)
    # rgb_i = V - V * S * g_i(H) with g_i in [0, 1]; for grey pixels (H = 0) g = (0, 1, 1)
    g_hue = torch.where(delta > 0, (v - x) / delta.clamp_min(1e-12), x.new_tensor([0.0, 1.0, 1.0]).reshape(1, 3, 1, 1))
    return v - v * s_new * g_hue


def _box_resample_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) row-stochastic matrix of PIL's BOX resampling along one axis.

    Output pixel ``i`` averages (with equal weights) the input pixels whose centres fall in
    ``[c - r, c + r)`` where ``c = (i + 0.5) * n_in / n_out`` and ``r = 0.5 * max(n_in / n_out, 1)``:
    a box average when downsampling, nearest neighbour when upsampling.
    """
    scale = n_in / n_out
    centre = (torch.arange(n_out, dtype=torch.float64)[:, None] + 0.5) * scale
    support = 0.5 * max(scale, 1.0)
    pos = torch.arange(n_in, dtype=torch.float64)[None, :] + 0.5
    w = ((pos >= centre - support) & (pos < centre + support)).double()
    empty = w.sum(dim=1) == 0  # cannot happen for box support >= 0.5, kept as a guard
    if bool(empty.any()):
        nearest = (centre[:, 0] - 0.5).round().clamp(0, n_in - 1).long()
        w[empty, nearest[empty]] = 1.0
    return w / w.sum(dim=1, keepdim=True)


def _resample_axes(x: Tensor, sizes: Sequence[int]) -> Tensor:
    for d, n_out in enumerate(sizes):
        axis = 2 + d
        m = _box_resample_matrix(x.shape[axis], n_out).to(device=x.device, dtype=x.dtype)
        x = torch.movedim(torch.movedim(x, axis, -1) @ m.T, -1, axis)
    return x


def pixelate(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    """PIL BOX resize to ``int(size * c)`` per axis and back (as make_cifar_c.py)."""
    sp = list(x.shape[2:])
    small = [max(1, min(s - 1, int(s * c))) if s > 1 else 1 for s in sp]
    return _resample_axes(_resample_axes(x, small), sp)


def elastic(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    """Smooth random displacement: white noise, Gaussian-smoothed (sigma c[1] px), scaled to RMS c[0] px.

    Both parameters are given for 32 px and scaled by ``min(H, W) / 32``. Bilinear resampling
    with reflection at the borders.
    """
    n, _, h, w = x.shape
    scale = min(h, w) / 32.0
    amp, sigma = c[0] * scale, max(c[1] * scale, 0.5)
    noise = _randn((n, 2, h, w), g, x)
    field_ = _gaussian_filter(noise, sigma)
    rms = field_.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
    disp = field_ / rms * amp  # pixels; channel 0: x (width), 1: y (height)
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx[None] + disp[:, 0] * (2.0 / w), gy[None] + disp[:, 1] * (2.0 / h)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def cutout(x: Tensor, area: float, g: torch.Generator | None) -> Tensor:
    """Zero a random axis-aligned box covering ``area`` of the input (side ``sqrt(area) * size`` in 2-D,
    length ``area * L`` in 1-D), placed uniformly and entirely inside the input."""
    n = x.shape[0]
    sp = x.shape[2:]
    side = math.sqrt(area) if len(sp) == 2 else area
    mask = torch.ones((n,) + (1,) * (x.ndim - 1), dtype=torch.bool, device=x.device)
    u = _rand((n, len(sp)), g, x.double())
    for d, s in enumerate(sp):
        length = min(s, max(1, round(side * s)))
        start = torch.floor(u[:, d] * (s - length + 1)).long().clamp(0, s - length)
        pos = torch.arange(s, device=x.device)
        inside = (pos[None] >= start[:, None]) & (pos[None] < start[:, None] + length)  # (n, s)
        shape = [n] + [1] * (x.ndim - 1)
        shape[2 + d] = s
        mask = mask & inside.reshape(shape)
    return torch.where(mask, torch.zeros_like(x), x)


def _fractal_noise(n: int, spatial: Sequence[int], beta: float, g: torch.Generator | None, like: Tensor) -> Tensor:
    """(n, *spatial) noise with amplitude spectrum |f|^-beta (random phases), min-max scaled to [0, 1]."""
    spatial = list(spatial)
    freqs = [torch.fft.fftfreq(s, dtype=torch.float64) for s in spatial[:-1]] + [
        torch.fft.rfftfreq(spatial[-1], dtype=torch.float64)
    ]
    grids = torch.meshgrid(*freqs, indexing="ij")
    f = torch.sqrt(sum(gr**2 for gr in grids))
    amp = torch.where(f > 0, f.clamp_min(1e-12) ** (-beta), torch.zeros_like(f))
    shape = (n, *f.shape)
    re = _randn(shape, g, like.double())
    im = _randn(shape, g, like.double())
    coef = torch.complex(re, im) * amp.to(like.device)
    dims = tuple(range(1, len(spatial) + 1))
    field_ = torch.fft.irfftn(coef, s=spatial, dim=dims)
    flat = field_.reshape(n, -1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    flat = (flat - lo) / (hi - lo).clamp_min(1e-12)
    return flat.reshape(n, *spatial).to(like.dtype)


def fog(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    strength, decay = c
    beta = 2 * math.log2(decay) + (x.ndim - 2) / 2  # see mixkit.bench.eval.corruptions
    noise = _fractal_noise(x.shape[0], x.shape[2:], beta, g, x).unsqueeze(1)
    m = x.amax(dim=tuple(range(1, x.ndim)), keepdim=True)
    return (x + strength * noise) * m / (m + strength)


def quantize(x: Tensor, bits: int, g: torch.Generator | None) -> Tensor:
    """Uniform quantisation to ``2**bits`` levels (0 and 1 kept): ``round(x * (L - 1)) / (L - 1)``."""
    levels = 2**bits - 1
    return torch.round(x.clamp(0, 1) * levels) / levels


def _shift_axis(x: Tensor, d: Tensor, axis: int) -> Tensor:
    """Translate each sample by d[n] pixels along ``axis`` (zero fill)."""
    n, s = x.shape[0], x.shape[axis]
    src = torch.arange(s, device=x.device)[None] - d[:, None]  # (n, s)
    valid = (src >= 0) & (src < s)
    shape = [n] + [1] * (x.ndim - 1)
    shape[axis] = s
    idx = src.clamp(0, s - 1).reshape(shape).expand(x.shape)
    return torch.gather(x, axis, idx) * valid.reshape(shape).to(x.dtype)


def shift(x: Tensor, frac: float, g: torch.Generator | None) -> Tensor:
    """Translate by ``max(1, round(frac * size))`` px along every spatial axis, random sign per
    sample and axis, vacated pixels set to 0."""
    n = x.shape[0]
    signs = _rand((n, x.ndim - 2), g, x.double()) < 0.5
    out = x
    for d, s in enumerate(x.shape[2:]):
        k = max(1, round(frac * s))
        dd = torch.where(signs[:, d], -k, k).to(device=x.device, dtype=torch.long)
        out = _shift_axis(out, dd, 2 + d)
    return out

"""Common corruptions in pure torch, after CIFAR-10-C / ImageNet-C (Hendrycks & Dietterich, ICLR 2019).

Every corruption works on a batch ``x`` of shape ``(N, C, *spatial)`` in pixel space ``[0, 1]``
(1 spatial dim: sequences ``(N, C, L)``; 2: images ``(N, C, H, W)``), at five severities 1..5, and
returns a tensor of the same shape, dtype and device, clamped to ``[0, 1]``. All randomness comes
from the ``torch.Generator`` passed in (``None``: torch's global generator for the generator's
device); the random numbers are drawn on the generator's device and moved to ``x``'s device, so a
seeded CPU generator gives the same corruption on CPU and GPU. Computation runs in float32 for
half-precision inputs (float64 inputs stay float64).

The registry :data:`CORRUPTIONS` maps a name to a :class:`Corruption` (a callable
``f(x, severity, generator=None) -> x``) that declares which spatial ranks (``dims``) and channel
counts it supports; calling it on anything else raises ``ValueError``.

Parameters
----------
Where an original exists, the severity table is the **CIFAR-10-C** one from
``hendrycks/robustness`` (``ImageNet-C/create_c/make_cifar_c.py``), i.e. already scaled for 32x32
images; it is applied in pixels whatever the input size. Differences from the original:

* ``gaussian_blur``, ``defocus_blur``: replicate ("nearest") borders everywhere.
* ``motion_blur``: ImageMagick's one-sided Gaussian line kernel (taps at rounded offsets
  ``i * (cos a, sin a)``, weights ``exp(-i^2 / 2 sigma^2)``), truncated at ``4 sigma``; random angle
  ``U(-45, 45)`` degrees per sample.
* ``fog``: the diamond-square plasma fractal is replaced by Fourier noise with the same scaling
  law, min-max scaled to ``[0, 1]`` and added to every channel as in the original. The plasma's
  displacement at each octave is ``wibble * U(-wibble, wibble)`` with ``wibble`` divided by
  ``wibbledecay`` per octave, so its amplitude falls by ``wibbledecay ** 2`` per octave
  (Hurst exponent ``H = 2 log2(wibbledecay)``); spread over the ``~f ** d`` modes of an octave in
  ``d`` dimensions that is a per-mode amplitude spectrum ``f ** -(H + d / 2)``, which we use.
* ``brightness`` / ``saturate`` act on HSV value / saturation exactly (closed form, no HSV round
  trip). ``brightness`` generalises to any channel count (value = max over channels);
  ``saturate`` needs RGB (C == 3).
* Not from CIFAR-10-C (own parameters, documented on each function): ``elastic`` (smooth random
  displacement; the original is mostly a random affine), ``cutout``, ``quantize``, ``shift``.
* Not implemented: ``glass_blur``, ``snow``, ``frost`` (texture files), ``spatter``,
  ``jpeg_compression``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .metrics import Normalize, _check_batch_size, _check_x, _check_y, _eval_mode, _forward, _model_device
from .metrics import _model_dtype, _resolve_normalize

__all__ = [
    "SEVERITIES",
    "Corruption",
    "CORRUPTIONS",
    "available_corruptions",
    "corrupt",
    "corruption_accuracy",
    "corruption_error",
]

#: The five severities of CIFAR-10-C / ImageNet-C.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

CorruptionFn = Callable[[Tensor, Any, "torch.Generator | None"], Tensor]


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


def _gaussian_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    return x + c * _randn(x.shape, g, x)


def _shot_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    rate = (x.clamp(0, 1) * c).to(_gdev(g, x.device))
    return torch.poisson(rate, generator=g).to(x.device) / c


def _impulse_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    flip = _rand(x.shape, g, x) < c
    salt = _rand(x.shape, g, x) < 0.5
    out = torch.where(flip & salt, torch.ones_like(x), x)
    return torch.where(flip & ~salt, torch.zeros_like(x), out)


def _speckle_noise(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    return x + x * (c * _randn(x.shape, g, x))


def _gaussian_blur(x: Tensor, sigma: float, g: torch.Generator | None) -> Tensor:
    return _gaussian_filter(x, sigma)


def _defocus_blur(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    return _conv_same(x, _disk_kernel(c[0], c[1], x.ndim - 2))


def _motion_blur(x: Tensor, c: tuple[int, float], g: torch.Generator | None) -> Tensor:
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


def _zoom_blur(x: Tensor, n_zooms: int, g: torch.Generator | None) -> Tensor:
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


def _contrast(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    m = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)  # per image and channel, as in make_cifar_c
    return (x - m) * c + m


def _brightness(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    """HSV value + c, exactly: V = max over channels; hue and saturation are kept, so rgb scales by V'/V."""
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scale = torch.where(v > 0, v_new / v.clamp_min(1e-12), torch.zeros_like(v))
    return torch.where(v > 0, x * scale, v_new.expand_as(x))


def _saturate(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
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


def _pixelate(x: Tensor, c: float, g: torch.Generator | None) -> Tensor:
    """PIL BOX resize to ``int(size * c)`` per axis and back (as make_cifar_c.py)."""
    sp = list(x.shape[2:])
    small = [max(1, min(s - 1, int(s * c))) if s > 1 else 1 for s in sp]
    return _resample_axes(_resample_axes(x, small), sp)


def _elastic(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
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


def _cutout(x: Tensor, area: float, g: torch.Generator | None) -> Tensor:
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


def _fog(x: Tensor, c: tuple[float, float], g: torch.Generator | None) -> Tensor:
    strength, decay = c
    beta = 2 * math.log2(decay) + (x.ndim - 2) / 2  # see the module docstring
    noise = _fractal_noise(x.shape[0], x.shape[2:], beta, g, x).unsqueeze(1)
    m = x.amax(dim=tuple(range(1, x.ndim)), keepdim=True)
    return (x + strength * noise) * m / (m + strength)


def _quantize(x: Tensor, bits: int, g: torch.Generator | None) -> Tensor:
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


def _shift(x: Tensor, frac: float, g: torch.Generator | None) -> Tensor:
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


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """A named corruption with its severity table.

    Call it as ``corruption(x, severity, generator=None)``: ``x`` float ``(N, C, *spatial)`` in
    ``[0, 1]`` with ``len(spatial)`` in :attr:`dims` (and ``C == channels`` when set); ``severity``
    in 1..5. Returns a tensor of ``x``'s shape, dtype and device, clamped to ``[0, 1]``.

    Attributes:
        name: registry key.
        fn: ``fn(x, params[severity - 1], generator)``; ``x`` already in the compute dtype.
        params: one parameter per severity 1..5.
        dims: supported numbers of spatial dims.
        channels: required channel count (``None``: any).
        stochastic: whether the output depends on the generator.
        monotone: whether the distortion grows with severity (checked by the tests).
        description: one line for humans.
    """

    name: str
    fn: CorruptionFn = field(repr=False)
    params: tuple[Any, ...]
    dims: frozenset[int]
    channels: int | None = None
    stochastic: bool = True
    monotone: bool = True
    description: str = ""

    def supports(self, x: Tensor | Sequence[int]) -> bool:
        """Whether an input (or an input shape ``(N, C, *spatial)``) is supported."""
        shape = tuple(x.shape) if isinstance(x, Tensor) else tuple(x)
        if len(shape) < 3 or (len(shape) - 2) not in self.dims:
            return False
        return self.channels is None or shape[1] == self.channels

    def check(self, x: Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` naming what is wrong with ``x`` for this corruption."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.name}: x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{self.name}: x must be a float tensor in [0, 1], got dtype {x.dtype}")
        if x.ndim < 3 or (x.ndim - 2) not in self.dims:
            want = " or ".join(f"{d}" for d in sorted(self.dims))
            raise ValueError(
                f"{self.name} supports inputs (N, C, *spatial) with {want} spatial dim(s), got shape {tuple(x.shape)}"
            )
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(f"{self.name} needs {self.channels} channels (RGB), got shape {tuple(x.shape)}")

    def __call__(self, x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
        self.check(x)
        sev = _check_severity(severity)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        out = self.fn(x.to(work), self.params[sev - 1], generator)
        return out.clamp(0.0, 1.0).to(x.dtype)


def _check_severity(severity: int) -> int:
    try:
        sev = int(severity)
    except (TypeError, ValueError):
        raise TypeError(f"severity must be an int in 1..5, got {severity!r}") from None
    if sev != severity or not 1 <= sev <= 5:
        raise ValueError(f"severity must be an int in 1..5, got {severity!r}")
    return sev


_D12 = frozenset({1, 2})
_D2 = frozenset({2})

#: name -> :class:`Corruption`. Parameter tables, severity 1..5.
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in [
        # --- noise (CIFAR-10-C tables) ---
        Corruption("gaussian_noise", _gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10), _D12,
                   description="x + N(0, c^2); c = std"),
        Corruption("shot_noise", _shot_noise, (500, 250, 100, 75, 50), _D12,
                   description="Poisson(x * c) / c; c = photons at full intensity"),
        Corruption("impulse_noise", _impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07), _D12,
                   description="salt & pepper: each value set to 0 or 1 (1:1) with probability c"),
        Corruption("speckle_noise", _speckle_noise, (0.06, 0.10, 0.12, 0.16, 0.20), _D12,
                   description="x + x * N(0, c^2)"),
        # --- blur ---
        Corruption("gaussian_blur", _gaussian_blur, (0.4, 0.6, 0.7, 0.8, 1.0), _D12, stochastic=False,
                   description="separable Gaussian blur, c = sigma in px (truncate 4, replicate borders)"),
        Corruption("defocus_blur", _defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)), _D12,
                   stochastic=False, description="disk (1-D: segment) kernel (radius px, 3-tap alias-blur sigma)"),
        Corruption("motion_blur", _motion_blur, ((10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0)), _D2,
                   description="one-sided Gaussian line kernel (radius, sigma px), random angle U(-45, 45) deg"),
        Corruption("zoom_blur", _zoom_blur, (7, 12, 16, 21, 26), _D2, stochastic=False,
                   description="mean of x and centre zooms 1.00, 1.01, ... (c = number of zoom factors)"),
        # --- weather / digital ---
        Corruption("contrast", _contrast, (0.75, 0.5, 0.4, 0.3, 0.15), _D12, stochastic=False,
                   description="(x - m) * c + m, m = per-image, per-channel mean"),
        Corruption("brightness", _brightness, (0.05, 0.1, 0.15, 0.2, 0.3), _D12, stochastic=False,
                   description="HSV value + c (any channel count; value = max over channels)"),
        Corruption("saturate", _saturate, ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)), _D2,
                   channels=3, stochastic=False, monotone=False,
                   description="HSV saturation * a + b (RGB only; severities 1-2 desaturate, 3-5 saturate)"),
        Corruption("pixelate", _pixelate, (0.95, 0.9, 0.85, 0.75, 0.65), _D12, stochastic=False,
                   description="PIL-BOX resize to int(size * c) per axis and back"),
        Corruption("elastic", _elastic, ((0.4, 4.0), (0.6, 3.5), (0.8, 3.0), (1.0, 2.5), (1.2, 2.0)), _D2,
                   description="smooth random displacement (RMS px, smoothing sigma px; both for 32 px, scaled)"),
        Corruption("cutout", _cutout, (0.04, 0.09, 0.16, 0.25, 0.36), _D12,
                   description="zero one random box covering share c of the input"),
        Corruption("fog", _fog, ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)), _D12,
                   description="(x + a * fractal) * max / (max + a), fractal spectrum f^-(2 log2(decay) + d/2)"),
        Corruption("quantize", _quantize, (5, 4, 3, 2, 1), _D12, stochastic=False,
                   description="uniform quantisation to 2^bits levels (c = bits)"),
        Corruption("shift", _shift, (0.03, 0.06, 0.10, 0.15, 0.20), _D12,
                   description="translate by round(c * size) px per axis, random sign, zero fill"),
    ]
}


def available_corruptions(x: Tensor | Sequence[int]) -> list[str]:
    """Names of the corruptions in :data:`CORRUPTIONS` that support ``x`` (or its shape), in registry order."""
    return [name for name, c in CORRUPTIONS.items() if c.supports(x)]


def corrupt(x: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply ``CORRUPTIONS[name]`` at ``severity`` (1..5) to ``x`` ``(N, C, *spatial)`` in ``[0, 1]``."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name](x, severity, generator)


def _fnv1a(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def corruption_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    normalize: Normalize | None = None,
    severities: Sequence[int] = SEVERITIES,
    names: Sequence[str] | None = None,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Top-1 accuracy of ``model`` on corrupted copies of ``x`` for every corruption and severity.

    Batches are corrupted on the model's device and evaluated one at a time in eval mode. One base
    seed is drawn from ``generator`` (default: seed 0); each (corruption, severity) pair gets its
    own generator derived from it, so a pair's result does not depend on which other corruptions
    are evaluated. Results depend on ``batch_size`` only through the order random numbers are drawn.

    Args:
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        normalize / mean / std: the model's input normalisation, applied after corrupting.
        severities: subset of 1..5 (default all).
        names: corruption names (default: every corruption in :data:`CORRUPTIONS` that supports
            ``x``'s spatial rank and channel count). An explicitly named unsupported corruption
            raises ``ValueError``.

    Returns:
        ``{"per": {name: {severity: acc}}, "per_corruption": {name: mean over severities},
        "mean": mean over all (name, severity) pairs, "names": [...], "severities": [...]}``.
    """
    norm = _resolve_normalize(normalize, mean, std)
    _check_x(x)
    y = _check_y(y, x.shape[0])
    bs = _check_batch_size(batch_size)
    sevs = [_check_severity(s) for s in severities]
    if not sevs:
        raise ValueError("severities must not be empty")
    if names is None:
        names = available_corruptions(x)
        if not names:
            raise ValueError(f"no corruption supports inputs of shape {tuple(x.shape)}")
    else:
        names = list(names)
        for name in names:
            if name not in CORRUPTIONS:
                raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
            CORRUPTIONS[name].check(x[:1])
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    base = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    dev, dtype = _model_device(model, device), _model_dtype(model)
    per: dict[str, dict[int, float]] = {}
    with _eval_mode(model), torch.no_grad():
        for name in names:
            cor = CORRUPTIONS[name]
            per[name] = {}
            for sev in sevs:
                g = torch.Generator().manual_seed((base ^ _fnv1a(f"{name}/{sev}")) % (2**63 - 1))
                correct = 0
                for start in range(0, x.shape[0], bs):
                    xb = x[start : start + bs].to(dev)
                    xc = cor(xb, sev, g)
                    pred = _forward(model, norm, xc, dev, dtype).argmax(dim=1).cpu()
                    correct += int((pred == y[start : start + bs].cpu()).sum())
                per[name][sev] = correct / x.shape[0]
    per_c = {name: sum(d.values()) / len(d) for name, d in per.items()}
    overall = sum(sum(d.values()) for d in per.values()) / sum(len(d) for d in per.values())
    return {"per": per, "per_corruption": per_c, "mean": overall, "names": list(names), "severities": sevs}


def corruption_error(
    result: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    clean_acc: float | None = None,
    baseline_clean_acc: float | None = None,
) -> dict[str, Any]:
    """Corruption error normalised by a baseline model (Hendrycks & Dietterich 2019, mCE).

    ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}`` with errors ``E = 1 - acc``, ``mCE = mean_c CE_c``
    over the corruptions present in both results (severities present in both). With both clean
    accuracies given, also the relative version ``(E_{s,c} - E_clean)`` in numerator and denominator.

    Args:
        result, baseline: outputs of :func:`corruption_accuracy` (or just their ``"per"`` dicts).

    Returns:
        ``{"ce": {name: CE_c}, "mce": float}`` (ratios; multiply by 100 for the paper's %), plus
        ``"relative_ce"`` / ``"relative_mce"`` when clean accuracies are given.
    """
    per = result.get("per", result)
    base = baseline.get("per", baseline)
    names = [n for n in per if n in base]
    if not names:
        raise ValueError("result and baseline share no corruption")
    ce: dict[str, float] = {}
    rel: dict[str, float] = {}
    for name in names:
        sevs = [s for s in per[name] if s in base[name]]
        num = sum(1 - per[name][s] for s in sevs)
        den = sum(1 - base[name][s] for s in sevs)
        ce[name] = num / den if den > 0 else math.inf
        if clean_acc is not None and baseline_clean_acc is not None:
            num_r = sum((1 - per[name][s]) - (1 - clean_acc) for s in sevs)
            den_r = sum((1 - base[name][s]) - (1 - baseline_clean_acc) for s in sevs)
            rel[name] = num_r / den_r if den_r != 0 else math.inf
    out: dict[str, Any] = {"ce": ce, "mce": sum(ce.values()) / len(ce)}
    if rel:
        out["relative_ce"] = rel
        out["relative_mce"] = sum(rel.values()) / len(rel)
    return out

"""Batched Gaussian kernels (blobs) on 1-, 2- and 3-D grids (GMix, SmoothMix).

A kernel is ``k(p) = exp(-1/2 * sum_i ((p_i - c_i) / sigma_i) ** 2)`` over the integer pixel grid
``p_i in {0, ..., size_i - 1}``: peak 1 at the centre ``c`` and one standard deviation ``sigma_i`` per
axis, so a blob can follow the aspect of a non-square image or volume. It is evaluated separably (one
1-D factor per axis, multiplied by broadcasting), which costs ``O(n * sum(size))`` exponentials.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .. import sampling

__all__ = ["gaussian_kernel", "kernel_and_mass", "sigma_for_mass", "uniform_centres"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def uniform_centres(sizes: Sequence[int], n: int, generator: Optional[torch.Generator] = None,
                    device: Union[str, torch.device, None] = None) -> Tensor:
    """``n`` pixel centres ``(n, d)`` float32, each coordinate uniform over ``{0, ..., size_i - 1}``.

    Drawn on the generator's device (one ``rand(n, d)`` call) and moved to ``device``.
    """
    d = len(sizes)
    u = torch.rand(n, d, generator=generator, device=sampling.gen_device(generator), dtype=torch.float64)
    size_t = torch.tensor(list(sizes), dtype=torch.float64, device=u.device)
    c = torch.minimum(torch.floor(u * size_t), size_t - 1)
    return c.to(device if device is not None else u.device, torch.float32)


def sigma_for_mass(sizes: Sequence[int], mass: Tensor) -> Tensor:
    """Per-axis standard deviations ``(n, d)`` float32 of a kernel whose untruncated integral is ``mass * N``.

    ``N = prod(sizes)``. With ``sigma_i = size_i * mass ** (1/d) / sqrt(2 pi)`` the integral of the
    peak-1 kernel over all of R^d is ``prod_i sqrt(2 pi) sigma_i = mass * N``, so its mean over the grid
    is ``mass`` when the border does not truncate it. Written in the grid's own normalised coordinates
    ``u_i = (p_i - c_i) / size_i`` this is ``exp(-pi * |u| ** 2 / mass ** (2/d))``, which for a square image
    is GMix's ``exp(-pi * d2 / (mass * H * W))``; on a non-square grid the blob stretches with the grid.

    Args:
        sizes: the spatial size ``(size_1, ..., size_d)``.
        mass: ``(n,)`` fractions in ``[0, 1]``; a mass of 0 gives sigma 0 (an all-zero kernel).
    """
    d = len(sizes)
    mass = mass.to(torch.float64).clamp(min=0.0)
    size_t = torch.tensor(list(sizes), dtype=torch.float64, device=mass.device)
    sigma = (mass ** (1.0 / d)).unsqueeze(1) * size_t / _SQRT_2PI
    return sigma.to(torch.float32)


def gaussian_kernel(sizes: Sequence[int], centres: Tensor, sigma: Tensor,
                    device: Union[str, torch.device, None] = None) -> Tensor:
    """Gaussian blobs ``(n, 1, *sizes)`` float32 with peak 1, one per row of ``centres``.

    Args:
        sizes: spatial size ``(size_1, ..., size_d)``, ``d`` in 1..3 (any ``d`` works).
        centres: ``(n, d)`` centres in pixel coordinates (pixel ``j`` of axis ``i`` sits at ``j``).
        sigma: ``(n, d)`` per-axis standard deviations in pixels (``(n, 1)`` or ``(d,)`` broadcast).
            A row with any ``sigma_i == 0`` gives an all-zero kernel: the limit of a kernel whose mass
            goes to 0 (a single peak pixel would otherwise keep a share of ``1/N``). Values must be
            finite and >= 0 (not checked here, to avoid a device sync; the mixers guarantee it).
        device: where to build it (default: ``centres``' device).

    Returns:
        ``k[r, 0, p] = exp(-1/2 * sum_i ((p_i - centres[r, i]) / sigma[r, i]) ** 2)`` (float32).
    """
    return kernel_and_mass(sizes, centres, sigma, device)[0]


def kernel_and_mass(sizes: Sequence[int], centres: Tensor, sigma: Tensor,
                    device: Union[str, torch.device, None] = None) -> Tuple[Tensor, Tensor]:
    """:func:`gaussian_kernel` and its sum over the grid, ``(n,)`` float64, without reading the kernel.

    The kernel is a product of per-axis factors, so its sum is the product of the per-axis sums of those
    factors (each summed in float64): exact in float64 for the factors, within float32 rounding of the
    product (about ``2 ** -24`` relative per axis) of the kernel's own float32 sum.
    """
    if centres.dim() != 2 or centres.shape[1] != len(sizes):
        raise ValueError(f"centres must have shape (n, {len(sizes)}), got {tuple(centres.shape)}")
    device = centres.device if device is None else torch.device(device)
    n, d = centres.shape
    c = centres.to(device, torch.float32)
    s = torch.as_tensor(sigma, dtype=torch.float32, device=device)
    if s.dim() < 2:
        s = s.reshape(1, -1)
    s = s.expand(n, d)
    alive = (s > 0).all(dim=1)  # (n,)
    s_safe = torch.where(s > 0, s, torch.ones_like(s))
    kernel, mass = None, alive.to(torch.float64)
    for i, size in enumerate(sizes):
        ar = torch.arange(size, device=device, dtype=torch.float32)
        z = (ar.unsqueeze(0) - c[:, i:i + 1]) / s_safe[:, i:i + 1]  # (n, size)
        f = torch.exp(-0.5 * z * z)
        mass = mass * f.sum(1, dtype=torch.float64)
        shape = [n] + [1] * d
        shape[1 + i] = size
        f = f.view(shape)
        kernel = f if kernel is None else kernel * f
    kernel = kernel * alive.to(torch.float32).view(n, *([1] * d))
    return kernel.unsqueeze(1).contiguous(), mass

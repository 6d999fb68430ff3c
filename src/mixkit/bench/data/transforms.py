"""Per-channel normalisation and the standard augmentation (random crop + flip / random shift)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ["normalize", "denormalize", "random_crop_flip"]


def _stat_view(v: Sequence[float], x: torch.Tensor, arg: str) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(f"x must have shape (B, C, *spatial); got {tuple(x.shape)}")
    t = torch.as_tensor(v, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
    if t.dim() == 0:
        t = t.reshape(1)
    if t.numel() not in (1, x.shape[1]):
        raise ValueError(f"{arg} has {t.numel()} entries but x has {x.shape[1]} channels")
    return t.reshape(1, -1, *([1] * (x.dim() - 2)))


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel.

    Args:
        x: ``(B, C, *spatial)`` float tensor on any device.
        mean, std: ``C`` (or 1) floats, e.g. ``DataSplit.mean`` / ``DataSplit.std``.

    Returns:
        A new tensor with ``x``'s shape, dtype and device.
    """
    return (x - _stat_view(mean, x, "mean")) / _stat_view(std, x, "std")


def denormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Inverse of :func:`normalize`: ``x * std + mean`` per channel (same shape/dtype/device)."""
    return x * _stat_view(std, x, "std") + _stat_view(mean, x, "mean")


def random_crop_flip(
    x: torch.Tensor,
    pad: int = 4,
    flip: bool = True,
    generator: Optional[torch.Generator] = None,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Per-sample random crop after padding, plus random horizontal flip; vectorised.

    The usual CIFAR augmentation (pad 4, random 32x32 crop, flip with p=0.5), applied to a batch on
    any device without a Python loop over samples.

    * 2-D ``x`` ``(B, C, H, W)``: pad ``pad`` pixels on every side, take a random ``H x W`` crop
      (offsets uniform in ``[0, 2*pad]`` per sample), then flip left-right with probability 0.5
      per sample if ``flip``.
    * 1-D ``x`` ``(B, C, L)``: random shift by ``-pad..pad`` positions (pad + crop); ``flip`` is
      ignored because reversing a sequence changes its meaning.

    Args:
        x: float tensor (any float dtype, any device); not modified.
        pad: padding in pixels (0 disables the crop).
        flip: random horizontal flip (2-D only).
        generator: ``torch.Generator`` the offsets/flips are drawn from (on its own device; results
            are moved to ``x.device``, so a CPU generator gives identical results on any device).
            ``None`` uses torch's global RNG.
        padding_mode: ``"zeros"`` or ``"reflect"`` (``reflect`` needs ``pad`` < the spatial size).

    Returns:
        Tensor with ``x``'s shape, dtype and device (and channels-last layout if ``x`` has it).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(
            f"x must be (B, C, L) or (B, C, H, W); got shape {tuple(x.shape)}"
        )
    if pad < 0:
        raise ValueError(f"pad must be >= 0; got {pad}")
    if padding_mode not in ("zeros", "reflect"):
        raise ValueError(f"padding_mode must be 'zeros' or 'reflect'; got {padding_mode!r}")
    b = x.shape[0]
    rng_device = generator.device if generator is not None else torch.device("cpu")

    def draw(high: int) -> torch.Tensor:
        return torch.randint(0, high, (b,), generator=generator, device=rng_device).to(x.device)

    mode = "constant" if padding_mode == "zeros" else "reflect"
    if x.dim() == 3:
        if pad == 0 or b == 0:
            return x.clone()
        length = x.shape[-1]
        xp = F.pad(x, (pad, pad), mode=mode)
        off = draw(2 * pad + 1)
        idx = off[:, None] + torch.arange(length, device=x.device)[None]  # (B, L)
        return torch.gather(xp, 2, idx[:, None, :].expand(-1, x.shape[1], -1))

    h, w = x.shape[-2:]
    if b == 0:
        return x.clone()
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad), mode=mode)
        oy = draw(2 * pad + 1)
        ox = draw(2 * pad + 1)
    else:
        xp = x
        oy = torch.zeros(b, dtype=torch.long, device=x.device)
        ox = torch.zeros(b, dtype=torch.long, device=x.device)
    cols = torch.arange(w, device=x.device)[None].expand(b, -1)  # (B, W)
    if flip:
        flipped = draw(2).bool()
        cols = torch.where(flipped[:, None], (w - 1) - cols, cols)
    rows = oy[:, None] + torch.arange(h, device=x.device)[None]  # (B, H)
    cols = ox[:, None] + cols
    wp = xp.shape[-1]
    flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w)
    out = torch.gather(xp.reshape(b, x.shape[1], -1), 2, flat.expand(-1, x.shape[1], -1))
    out = out.reshape(x.shape)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out

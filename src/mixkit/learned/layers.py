"""Building blocks shared by the mask generators: a dimension-agnostic 1x1 convolution, the λ channel,
the fp32 attention softmax and the upsampling of a feature-resolution mask to the input's size.

Everything here works on feature maps flattened to ``(B, C, P)`` (``P`` = the product of the spatial
sizes), so the same code serves 1-D sequences, 2-D images and 3-D volumes.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Pointwise", "lam_channel", "scaled_softmax", "upsample", "resolve_mode", "check_modes", "UPSAMPLING_MODES"]

#: upsampling modes accepted by the generators, resolved per number of spatial dims
UPSAMPLING_MODES = ("nearest", "bilinear", "linear", "trilinear", "bicubic")
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


class Pointwise(nn.Module):
    """A 1x1 convolution on a flattened feature map: ``(B, C_in, P) -> (B, C_out, P)``.

    Initialised as in the official mix blocks: weights ``N(0, 0.01)``, bias 0 (drawn from torch's global
    RNG at construction, like every ``nn.Module``). ``relu=True`` appends the ReLU of mmcv's
    ``ConvModule`` default (AdAutoMix's query and key convs have it; AutoMix's do not).
    """

    def __init__(self, in_channels: int, out_channels: int, relu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=1)
        self.relu = bool(relu)
        nn.init.normal_(self.conv.weight, 0.0, 0.01)
        nn.init.zeros_(self.conv.bias)

    def forward(self, f: Tensor) -> Tensor:
        out = self.conv(f)
        return F.relu(out) if self.relu else out

    def extra_repr(self) -> str:
        return f"relu={self.relu}"


def lam_channel(f: Tensor, lam: float) -> Tensor:
    """``f`` ``(B, C, P)`` with one more channel holding the constant ``lam`` (the λ embedding)."""
    return torch.cat([f, f.new_full((f.shape[0], 1, f.shape[2]), float(lam))], dim=1)


def scaled_softmax(q: Tensor, k: Tensor, use_scale: bool = True) -> Tensor:
    """``softmax(q @ k / sqrt(d), dim=-1)`` in float32; ``q`` ``(..., P, d)``, ``k`` ``(..., d, P)``."""
    logits = torch.matmul(q.float(), k.float())
    if use_scale:
        logits = logits / math.sqrt(q.shape[-1])
    return logits.softmax(dim=-1)


def resolve_mode(mode: str, n_spatial: int) -> str:
    """The ``F.interpolate`` mode for ``n_spatial`` dims: ``"bilinear"`` (or ``"linear"``/``"trilinear"``)
    means the linear interpolation of that dimensionality; ``"bicubic"`` needs 2-D."""
    if mode == "nearest":
        return "nearest"
    if mode in ("bilinear", "linear", "trilinear"):
        return _LINEAR[n_spatial]
    if mode == "bicubic":
        if n_spatial != 2:
            raise ValueError(f"upsampling mode 'bicubic' needs 2-D inputs, got {n_spatial} spatial dims")
        return "bicubic"
    raise ValueError(f"unknown upsampling mode {mode!r}; use one of {', '.join(UPSAMPLING_MODES)}")


def check_modes(modes) -> Tuple[str, ...]:
    """A mode or a sequence of modes (one is drawn per call), validated; returned as a tuple."""
    items = (modes,) if isinstance(modes, str) else tuple(modes)
    if not items:
        raise ValueError("unsampling_mode must name at least one mode")
    for m in items:
        if m not in UPSAMPLING_MODES:
            raise ValueError(f"unknown upsampling mode {m!r}; use one of {', '.join(UPSAMPLING_MODES)}")
    return items


def upsample(m: Tensor, size: Sequence[int], mode: str, scale_factor: Optional[float] = None) -> Tensor:
    """Resize ``m`` ``(B, N, *feature_spatial)`` to ``size`` (the input's spatial size).

    The official code passes ``scale_factor`` (4 for a CIFAR stage-3 feature map); here the target is
    always the input's size, which equals ``feature_size * scale_factor`` whenever that is exact. A given
    ``scale_factor`` that does not reach the input's size is an error rather than a silent mismatch.
    """
    size = tuple(int(s) for s in size)
    have = tuple(m.shape[2:])
    if scale_factor is not None:
        want = tuple(int(round(h * scale_factor)) for h in have)
        if want != size:
            raise ValueError(f"scale_factor={scale_factor} upsamples the {have} feature map to {want}, but the input's "
                             f"spatial size is {size}; pass scale_factor=None to upsample to the input's size")
    if have == size and mode == "nearest":
        return m
    resolved = resolve_mode(mode, len(size))
    align = False if resolved in ("linear", "bilinear", "trilinear", "bicubic") else None
    return F.interpolate(m, size=size, mode=resolved, align_corners=align)

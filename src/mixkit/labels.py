"""Label rows: one-hot encoding and label smoothing (the ground floor: imports only ``_validate``)."""
from __future__ import annotations

import torch
from torch import Tensor

from ._validate import check_smoothing

__all__ = ["one_hot", "smooth"]


def one_hot(y: Tensor, num_classes: int, smoothing: float = 0.0, dim: int = -1) -> Tensor:
    """Float32 one-hot of integer ``y`` with optional label smoothing.

    With smoothing ``a`` the off value is ``a/K`` and the on value ``1 - a + a/K`` (rows sum to 1).
    ``dim`` is where the class axis goes (``-1`` for ``(B, K)``, ``1`` for dense ``(B, K, *spatial)``).
    """
    if y.is_floating_point():
        raise TypeError(f"one_hot expects integer class ids, got dtype {y.dtype}")
    check_smoothing(smoothing)
    off = smoothing / num_classes
    out = torch.full((*y.shape, num_classes), off, dtype=torch.float32, device=y.device)
    out.scatter_(-1, (y if y.dtype == torch.long else y.long()).unsqueeze(-1), 1.0 - smoothing + off)
    if dim not in (-1, y.dim()):
        out = out.movedim(-1, dim)
    return out


def smooth(y: Tensor, smoothing: float) -> Tensor:
    """Label smoothing of probability rows ``(B, K)``: ``y * (1 - a) + a / K`` (rows keep their sum)."""
    check_smoothing(smoothing)
    y = y.float()
    if smoothing == 0:
        return y
    return y * (1.0 - smoothing) + smoothing / y.shape[-1]

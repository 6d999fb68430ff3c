"""Label rows: one-hot encoding and label smoothing (the ground floor: imports only ``_validate``).

Smoothing moves each row toward a target (``smoothing_target``):

* ``"uniform"`` (default, single-label, softmax): toward ``1/K``: ``y * (1 - a) + a / K``; a one-hot row
  becomes off ``a/K``, on ``1 - a + a/K`` (rows sum to 1; timm's ``mixup_target``).
* ``"binary"`` (multi-label, sigmoid/BCE): each class is its own 0/1 label, moved toward 0.5:
  ``y * (1 - a) + a / 2``; off ``a/2``, on ``1 - a/2`` (timm's ``multi_label=True`` and
  ``BinaryCrossEntropy(smooth_dense=True)``). Rows no longer sum to 1.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ._validate import check_smoothing

__all__ = ["one_hot", "smooth", "SMOOTHING_TARGETS"]

#: the accepted ``smoothing_target`` values
SMOOTHING_TARGETS = ("uniform", "binary")


def check_smoothing_target(v: object, name: str = "smoothing_target") -> str:
    if not isinstance(v, str) or v not in SMOOTHING_TARGETS:
        raise ValueError(f"{name} must be one of {SMOOTHING_TARGETS} (toward 1/K, or each class toward 0.5), got {v!r}")
    return v


def _level(smoothing: float, k: int, smoothing_target: str) -> float:
    """What a fully smoothed entry becomes: ``a/K`` toward uniform, ``a/2`` toward 0.5."""
    return smoothing / (2 if check_smoothing_target(smoothing_target) == "binary" else k)


def one_hot(y: Tensor, num_classes: int, smoothing: float = 0.0, dim: int = -1,
            smoothing_target: str = "uniform") -> Tensor:
    """Float32 one-hot of integer ``y`` with optional label smoothing.

    With smoothing ``a`` the off value is ``a/K`` and the on value ``1 - a + a/K`` (rows sum to 1);
    ``smoothing_target="binary"``: off ``a/2``, on ``1 - a/2`` (each class toward 0.5, multi-label).
    ``dim`` is where the class axis goes (``-1`` for ``(B, K)``, ``1`` for dense ``(B, K, *spatial)``).
    """
    if y.is_floating_point():
        raise TypeError(f"one_hot expects integer class ids, got dtype {y.dtype}")
    check_smoothing(smoothing)
    off = _level(smoothing, num_classes, smoothing_target)
    out = torch.full((*y.shape, num_classes), off, dtype=torch.float32, device=y.device)
    out.scatter_(-1, (y if y.dtype == torch.long else y.long()).unsqueeze(-1), 1.0 - smoothing + off)
    if dim not in (-1, y.dim()):
        out = out.movedim(-1, dim)
    return out


def smooth(y: Tensor, smoothing: float, smoothing_target: str = "uniform") -> Tensor:
    """Label smoothing of probability / multi-hot rows ``(B, K)``: ``y * (1 - a) + a / K`` (rows keep their
    sum); ``smoothing_target="binary"``: ``y * (1 - a) + a / 2`` (each class toward 0.5, multi-label)."""
    check_smoothing(smoothing)
    level = _level(smoothing, y.shape[-1], smoothing_target)
    y = y.float()
    if smoothing == 0:
        return y
    return y * (1.0 - smoothing) + level

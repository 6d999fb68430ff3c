"""Targets: mixing class ids / soft / multi-hot labels with a MixResult.

``one_hot`` and ``smooth`` live in :mod:`mixkit.labels` and are re-exported here.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._validate import check_labels, check_num_classes
from .labels import check_smoothing_target, one_hot, smooth
from .result import MixResult

__all__ = ["one_hot", "smooth", "soft_targets"]


def soft_targets(y: Tensor, res: MixResult, num_classes: Optional[int] = None, smoothing: float = 0.0,
                 smoothing_target: str = "uniform") -> Tensor:
    """Mixed soft targets ``(B, K)`` float32 for a :class:`MixResult`.

    Args:
        y: class ids ``(B,)`` (any integer dtype; never cast to the image dtype) or probabilities /
           one-hot / multi-hot ``(B, K)``.
        res: the result of ``mixer.mix(...)`` on the batch that ``y`` labels.
        num_classes: K; required for class ids, checked against ``y.shape[1]`` otherwise.
        smoothing: label smoothing applied to each source label before mixing (default 0).
        smoothing_target: ``"uniform"`` (toward ``1/K``, default) or ``"binary"`` (each class toward 0.5,
           for multi-label / BCE targets as timm's ``multi_label=True``); see :mod:`mixkit.labels`.

    Returns ``sum_j res.weights[:, j] * Y[res.index[:, j]]``: rows sum to 1 for class ids and probability
    rows; for multi-hot labels each class gets the share of the sources that carry it.
    """
    num_classes = check_num_classes(num_classes)
    check_smoothing_target(smoothing_target)
    return _mix_labels(check_labels(y, res.batch_size, num_classes), res, num_classes, smoothing, smoothing_target)


def _mix_labels(y: Tensor, res: MixResult, num_classes: Optional[int], smoothing: float,
                smoothing_target: str = "uniform") -> Tensor:
    """:func:`soft_targets` without the argument checks, for callers that validated ``y`` already (the
    label range check is a device sync on CUDA: once per call is enough)."""
    if y.dim() == 1:
        Y = one_hot(y, num_classes, smoothing, smoothing_target=smoothing_target)
    else:
        Y = smooth(y, smoothing, smoothing_target)
    pair = res.__dict__.get("_pair")
    if pair is not None:  # two sources, index/weights unread: the same sums without the (B, 2, K) gather
        return _mix_pair_labels(Y, pair[0], pair[1], hard=y.dim() == 1 and smoothing == 0)
    index = res.index.to(Y.device)
    w = res.weights.to(Y.device, torch.float32)
    # elementwise, not einsum/matmul: autocast would run a matmul in fp16/bf16 (labels stay float32)
    return (w.unsqueeze(-1) * Y[index]).sum(1)


def _mix_pair_labels(Y: Tensor, partner: Tensor, w0, hard: bool) -> Tensor:
    """``w0 * Y + (1 - w0) * Y[partner]`` in float32, the value of the general sum for two sources.

    ``w0`` is one float32-exact float or ``(B,)`` float32. For 0/1 rows (``hard``) one ``lerp`` gives the
    same value (each entry is 0, 1, ``w0`` or ``1 - w0``, and ``1 - w0`` is float32's subtraction);
    other rows take the sum itself.
    """
    Yp = Y.index_select(0, partner.to(Y.device))
    if isinstance(w0, Tensor):  # (B,) or one element for the batch
        w0 = w0.to(Y.device, torch.float32)
        w0 = w0 if w0.numel() == 1 else w0.unsqueeze(1)
    if hard:
        return torch.lerp(Yp, Y, w0, out=Yp)
    return Y.mul(w0).add_(Yp.mul_(1.0 - w0))

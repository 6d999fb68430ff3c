"""Losses for mixed batches.

* :func:`soft_cross_entropy` — CE against soft targets (what timm's SoftTargetCrossEntropy does).
* :func:`mixed_loss` — the two-term (k-term) form ``sum_j w_ij * criterion(logits_i, y[index_ij])``
  for any per-sample criterion (focal, BCE, multi-head ...), reduced *after* weighting per sample.
* :func:`bce_with_logits_soft` — BCE-with-logits on soft / multi-hot targets.
* :func:`bce_on_softmax` — ``BCELoss(softmax(logits), soft_target)`` averaged over B×K, the loss that the
  Manifold Mixup, PatchUp, PuzzleMix and Co-Mixup papers trained with (needed to reproduce them).
All loss math is float32 whatever the logits' dtype.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .result import MixResult

__all__ = ["soft_cross_entropy", "mixed_loss", "bce_with_logits_soft", "bce_on_softmax", "SoftTargetCrossEntropy"]


def _reduce(v: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "sum":
        return v.sum()
    if reduction == "none":
        return v
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_pair(logits: Tensor, target: Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, K), got {tuple(logits.shape)}")
    if target.shape != logits.shape:
        raise ValueError(f"soft target shape {tuple(target.shape)} must equal logits shape {tuple(logits.shape)}")


def soft_cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``-sum_c target_c * log_softmax(logits)_c`` per sample; logits and target ``(B, K)``."""
    _check_pair(logits, target)
    per = -(target.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1)
    return _reduce(per, reduction)


class SoftTargetCrossEntropy(torch.nn.Module):
    """Module form of :func:`soft_cross_entropy`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return soft_cross_entropy(logits, target, self.reduction)


def mixed_loss(criterion: Callable[[Tensor, Tensor], Tensor], logits: Tensor, y: Tensor, res: MixResult,
               reduction: str = "mean") -> Tensor:
    """``sum_j res.weights[:, j] * criterion(logits, y[res.index[:, j]])``, reduced over the batch.

    ``criterion`` must return one loss per sample (e.g. ``nn.CrossEntropyLoss(reduction="none")`` or a
    focal loss): reducing before weighting is a known bug (fastai #2286) and is refused with a
    ``ValueError``. ``y`` may be class ids ``(B,)`` or per-sample label rows ``(B, ...)``.
    """
    b, k = res.index.shape
    if logits.shape[0] != b or y.shape[0] != b:
        raise ValueError(f"logits ({logits.shape[0]} rows) and y ({y.shape[0]} rows) must both have B={b} rows like the MixResult")
    index = res.index.to(y.device)
    w = res.weights.to(logits.device, torch.float32)
    total = None
    for j in range(k):
        if j > 0 and bool((w[:, j] == 0).all()):
            continue
        per = criterion(logits, y[index[:, j]])
        if per.dim() == 0 or per.shape[0] != b:
            raise ValueError(
                "criterion must return one loss per sample (shape (B,)), e.g. nn.CrossEntropyLoss(reduction='none'); "
                f"got shape {tuple(per.shape)}"
            )
        if per.dim() > 1:
            per = per.reshape(b, -1).mean(1)
        term = w[:, j] * per.float()
        total = term if total is None else total + term
    return _reduce(total, reduction)


def bce_with_logits_soft(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """BCE-with-logits on soft or multi-hot targets ``(B, K)``, averaged over classes per sample."""
    _check_pair(logits, target)
    per = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none").mean(-1)
    return _reduce(per, reduction)


def bce_on_softmax(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``nn.BCELoss()(softmax(logits), target)``: the Manifold Mixup / PatchUp / PuzzleMix / Co-Mixup loss.

    Computed from log-probabilities: ``-(t log p + (1-t) log(1-p))`` averaged over the K classes (so the
    mean over the batch equals ``BCELoss`` averaged over B×K), with ``log(1-p) = log(-expm1(log p))``.
    Log terms are clamped at -100 as ``nn.BCELoss`` does.
    """
    _check_pair(logits, target)
    logp = F.log_softmax(logits.float(), dim=-1)
    log1mp = torch.log(-torch.expm1(logp))  # log(1 - p), precise for p near 1; -inf at p == 1
    t = target.float()
    per = -(t * logp.clamp_min(-100) + (1 - t) * log1mp.clamp_min(-100)).mean(-1)
    return _reduce(per, reduction)

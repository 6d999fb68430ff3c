"""Scores of logits against class ids: top-1 accuracy, NLL, Brier; and the logits / probabilities checks.

Logits are scored in float64 (Brier 1950 for the Brier score).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_y


def check_logits(logits: Tensor, y: Tensor, name: str = "logits") -> tuple[Tensor, Tensor]:
    """``(logits, y)`` with ``logits`` a non-empty ``(N, K)`` tensor and ``y`` int64 ids in ``[0, K)`` on its device."""
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a (N, K) tensor, got {shape}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one row")
    y = check_y(y, logits.shape[0]).to(logits.device)
    k = logits.shape[1]
    if bool(((y < 0) | (y >= k)).any()):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes, got min {int(y.min())} max {int(y.max())}")
    return logits, y


def _looks_like_probs(t: Tensor) -> bool:
    tol = 1e-3 if t.dtype in (torch.float32, torch.float64) else 1e-2
    t64 = t.double()
    return bool(t64.min() >= 0) and bool(t64.max() <= 1) and bool((t64.sum(dim=1) - 1).abs().max() <= tol)


def as_probs(scores: Tensor, from_logits: bool | None) -> Tensor:
    """Probabilities from logits (softmax in float64) or validated probabilities (dtype kept).

    ``from_logits=None`` detects probabilities: rows in ``[0, 1]`` that sum to 1.
    """
    if from_logits is None:
        from_logits = not _looks_like_probs(scores)
    if from_logits:
        return torch.softmax(scores.double(), dim=1)
    if not _looks_like_probs(scores):
        raise ValueError("from_logits=False but the rows are not probabilities (values in [0, 1] summing to 1)")
    return scores


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Top-1 accuracy in ``[0, 1]`` of ``logits`` (or probabilities) ``(N, K)`` against ids ``y`` ``(N,)``."""
    logits, y = check_logits(logits, y)
    return float((logits.argmax(dim=1) == y).double().mean())


def nll(logits: Tensor, y: Tensor) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of ``logits`` ``(N, K)``; float64 math.

    Takes **logits**, not probabilities. Equals ``F.cross_entropy(logits, y)``.
    """
    logits, y = check_logits(logits, y)
    logp = torch.log_softmax(logits.double(), dim=1)
    return float(-logp.gather(1, y[:, None]).mean())


def brier(scores: Tensor, y: Tensor, *, from_logits: bool | None = None) -> float:
    """Multi-class Brier score ``mean_i sum_k (p_ik - 1[y_i = k])^2`` (Brier 1950), in ``[0, 2]``.

    Args:
        scores: ``(N, K)`` logits or probabilities. ``from_logits=None`` (default) detects
            probabilities (rows in ``[0, 1]`` summing to 1); pass ``True``/``False`` to be explicit.
        y: ``(N,)`` class ids.
    """
    scores, y = check_logits(scores, y, "scores")
    p = as_probs(scores, from_logits).double()
    onehot = F.one_hot(y, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(dim=1).mean())

"""The output of a learner's step and the one place where the learners build a :class:`~mixkit.MixResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ..result import MixResult

__all__ = ["LearnerOutput", "Draws", "make_result", "shares"]


def _result(inputs: Tensor, index: Tensor, weights: Tensor, mask: Tensor, lam: Tensor,
            params: Optional[Dict[str, Any]] = None) -> MixResult:
    """The only constructor call of :class:`MixResult` in the learners (the mask is stored in full)."""
    b = inputs.shape[0]
    return MixResult(inputs=inputs, index=index, weights=weights, lam=lam,
                     mixed=torch.ones(b, dtype=torch.bool, device=inputs.device), params=dict(params or {}),
                     share_map=mask)


def shares(mask: Tensor) -> Tensor:
    """Realised per-sample share of each source: the mask mean over the spatial dims, ``(B, N)`` float32."""
    return mask.detach().float().flatten(2).mean(-1)


def make_result(x_mix: Tensor, index: Tensor, mask: Tensor, weights: Sequence[float], **params: Any) -> MixResult:
    """A detached :class:`MixResult` for logging: realised shares as ``weights``, the sampled λ_0 as ``lam``
    and all N sampled weights (float64, as drawn) in ``params["lam"]``."""
    b = x_mix.shape[0]
    lam = torch.full((b,), float(weights[0]), dtype=torch.float32, device=x_mix.device)
    params = dict(params, lam=torch.tensor([float(w) for w in weights], dtype=torch.float64))
    m = mask.detach()
    return _result(x_mix.detach(), index, shares(m), m, lam, params)


@dataclass
class LearnerOutput:
    """One training step of a learner.

    Attributes:
        loss: the scalar to back-propagate (all terms, weighted).
        terms: the unweighted loss terms (scalar tensors still attached to the graph; ``float(t)`` to log).
        mixed: the batch the classifier trained on (generated mask detached, or the plain-mixup fallback).
        generated: the batch that trained the generator through the teacher (its mask, detached).
        logits: detached logits: ``"clean"``/``"mixed"`` of the classifier, ``"teacher_clean"``/
            ``"teacher_generated"`` of the teacher (and ``"linear"`` for AdAutoMix with N > 2).
        step: the iteration index of this step (0-based, the learner's counter before the step).
        fallback: whether the classifier's mix fell back to plain mixing (λ too extreme).
        adversarial: AdAutoMix only: whether this was an adversarial (True) or cooperative step.
    """

    loss: Tensor
    terms: Dict[str, Tensor]
    mixed: MixResult
    generated: MixResult
    logits: Dict[str, Tensor] = field(default_factory=dict)
    step: int = 0
    fallback: bool = False
    adversarial: Optional[bool] = None


@dataclass
class Draws:
    """The random draws of one step: source weights and indices for the generator branch (``mb``, trains
    the generator) and the classifier branch (``bb``). Column 0 of every index is ``arange(B)``."""

    w_mb: List[float]
    w_bb: List[float]
    idx_mb: Tensor
    idx_bb: Tensor

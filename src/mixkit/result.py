"""MixResult: what every mixer returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .labels import one_hot

__all__ = ["MixResult"]


@dataclass
class MixResult:
    """The outcome of one mixing call.

    Attributes:
        inputs:  ``(B, C, *spatial)`` mixed batch, same dtype/device/memory format as the input.
        index:   ``(B, k)`` int64 source of each share; column 0 is the sample itself (``arange(B)``).
        weights: ``(B, k)`` float32 realised share of each source in ``inputs[i]``; rows sum to 1.
                 These are the label weights: the mean of the per-pixel shares, not the sampled lambda
                 where the two differ (clipped boxes, kernels, graph-cut masks).
        lam:     ``(B,)`` float32 sampled lambda, before any realisation (for diagnostics), for every
                 method that draws one; rows that were not mixed (``p`` < 1) hold 1. ``None`` for a
                 mixed batch of a method that draws no lambda (SmoothMix, Co-Mixup): their realised
                 shares are in ``weights``.
        mixed:   ``(B,)`` bool, which rows were mixed.
        params:  method-specific draws (boxes, scales, ...), for debugging and visualisation.
        outputs: model outputs (logits) when the method ran the model itself (hidden-layer methods such
                 as Manifold Mixup mix inside the forward pass); ``None`` otherwise, and then the caller
                 runs the model on ``inputs``.
        share_map: the stored per-pixel shares that ``mask`` is built from (internal, not in the repr):
                 for a two-source method the *anchor's* share map ``(n, 1, *spatial)`` with ``n`` = 1
                 (one map for the batch) or B, float or bool (hard masks); for a method with ``k`` > 2
                 sources (Co-Mixup) the whole ``(B, k, *spatial)`` mask. ``None`` for pure interpolation.

    ``mask`` (property) is ``(B, k, *spatial)`` float32 per-pixel shares (summing to 1 over ``k``), or
    ``None`` for pure interpolation (MixUp), where every pixel's share equals ``weights``. A two-source
    ``share_map`` is expanded lazily: ``mask = cat([s, 1 - s])`` over the batch.
    """

    inputs: Tensor
    index: Tensor
    weights: Tensor
    lam: Optional[Tensor] = None
    mixed: Optional[Tensor] = None
    params: Dict[str, Any] = field(default_factory=dict)
    outputs: Optional[Tensor] = None
    share_map: Optional[Tensor] = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.index.shape[0])

    @property
    def k(self) -> int:
        return int(self.index.shape[1])

    @property
    def mask(self) -> Optional[Tensor]:
        m = self.share_map
        if m is None:
            return None
        if m.shape[1] == self.k:  # every source's share is stored
            return m
        s = m.float()
        b = self.batch_size
        s = s.expand(b, *s.shape[1:]) if s.shape[0] == 1 else s
        return torch.cat([s, 1.0 - s], dim=1)

    def mix_dense(self, target: Tensor, num_classes: Optional[int] = None) -> Tensor:
        """Mix a dense target with the same sources and mask as the inputs.

        Args:
            target: ``(B, *spatial)`` integer class map, or ``(B, K, *spatial)`` float probabilities.
                A spatial size different from the inputs' is handled by resizing the mask (nearest).
            num_classes: needed to one-hot an integer map when the result must be soft.

        Returns:
            For an integer map and a hard mask (every pixel from one source: CutMix, FMix, ...):
            an integer map of the same dtype taking each pixel's label from its source (nearest).
            Otherwise ``(B, K, *spatial)`` float32 probabilities, the per-pixel share-weighted mix.
        """
        if not isinstance(target, Tensor):
            raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
        b, k = self.index.shape
        if target.shape[0] != b:
            raise ValueError(f"target has {target.shape[0]} rows but the mixed batch has B={b}")
        integer = not target.is_floating_point()
        n_sp = self.inputs.dim() - 2
        if integer and target.dim() != 1 + n_sp:
            raise ValueError(f"an integer dense target must have shape (B, *spatial) with {n_sp} spatial dims, got {tuple(target.shape)}")
        if not integer and target.dim() != 2 + n_sp:
            raise ValueError(f"a float dense target must have shape (B, K, *spatial) with {n_sp} spatial dims, got {tuple(target.shape)}")
        spatial = tuple(target.shape[1:]) if integer else tuple(target.shape[2:])
        index = self.index.to(target.device)
        m = self.mask
        if m is None:
            shares = self.weights.to(target.device).view(b, k, *([1] * n_sp))
            hard = False
        else:
            m = m.to(target.device)
            if tuple(m.shape[2:]) != spatial:
                m = F.interpolate(m, size=spatial, mode="nearest")
            shares = m
            hard = bool(((m == 0) | (m == 1)).all())
        if integer and hard:
            src = shares.argmax(1, keepdim=True)  # (B, 1, *spatial): which column owns each pixel
            gathered = target[index]  # (B, k, *spatial)
            return gathered.gather(1, src).squeeze(1)
        if integer:
            if num_classes is None:
                raise ValueError("num_classes is required to mix an integer dense target with a soft mask")
            probs = one_hot(target, num_classes, dim=1)  # (B, K, *spatial)
        else:
            probs = target.float()
        gathered = probs[index]  # (B, k, K, *spatial)
        return (shares.unsqueeze(2) * gathered).sum(1)

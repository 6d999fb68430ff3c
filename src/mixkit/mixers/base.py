"""The mixer base class: the contract every mixer keeps (see DESIGN.md).

A subclass implements :meth:`Mixer._mix`, which receives a validated batch, the rows selected by
``p`` and a generator, and returns a :class:`~mixkit.MixResult`. Everything else (argument checks,
``p``, batch size 1, soft targets, the ``(x, y) -> (x_mix, y_soft)`` call form) lives here once.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .. import sampling
from .._validate import (check_batch, check_generator, check_labels, check_mode, check_num_classes,
                         check_positive, check_prob, check_smoothing)
from ..result import MixResult
from ..targets import _mix_labels


class Mixer(nn.Module):
    """Base class of all mixers.

    Args:
        alpha: concentration of the lambda distribution (``Beta(alpha, alpha)`` for most methods).
        mode: ``"batch"`` (one lambda and one region for the whole batch, as in the papers) or
            ``"sample"`` (independent draws per sample, vectorised).
        p: probability that the batch (batch mode) or each sample (sample mode) is mixed. Applied once.
        num_classes: number of classes, needed when calling with class ids.
        smoothing: label smoothing applied to the targets (default 0: no hidden smoothing).
        no_self_pairs: forbid pairing a sample with itself (for B >= 2).
        inplace: write the mixed batch into the input tensor instead of a new one.

    Call forms:
        ``x_mix, y_soft = mixer(x, y, generator=g)`` -- soft targets ``(B, K)`` float32.
        ``res = mixer.mix(x, generator=g)`` -- a :class:`MixResult` for two-term / custom losses.
    """

    #: spatial dimensionalities this method supports
    spatial_dims: Tuple[int, ...] = (1, 2, 3)
    #: whether the method needs labels in ``mix`` (model-aware methods)
    needs_labels: bool = False
    #: whether ``mix`` runs the model and returns logits in ``MixResult.outputs`` (hidden-layer methods)
    runs_model: bool = False

    def __init__(self, alpha: float = 1.0, *, mode: str = "batch", p: float = 1.0,
                 num_classes: Optional[int] = None, smoothing: float = 0.0,
                 no_self_pairs: bool = False, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = check_positive(alpha, "alpha")
        self.mode = check_mode(mode)
        self.p = check_prob(p, "p")
        self.num_classes = check_num_classes(num_classes)
        self.smoothing = check_smoothing(smoothing)
        self.no_self_pairs = bool(no_self_pairs)
        self.inplace = bool(inplace)

    # ------------------------------------------------------------------ public API
    def mix(self, x: Tensor, y: Optional[Tensor] = None, *, generator: Optional[torch.Generator] = None) -> MixResult:
        """Mix a batch ``x`` of shape ``(B, C, *spatial)``; returns a :class:`MixResult`."""
        x, generator = self._check_call(x, generator)
        if self.needs_labels and y is None:
            raise ValueError(f"{type(self).__name__}.mix needs the labels: call mix(x, y)")
        b = x.shape[0]
        if b == 1:
            return self.identity(x)
        if self.mode == "batch":
            if self.p < 1.0 and not bool(sampling.bernoulli(self.p, (), generator)):
                return self.identity(x)
            active = None
        else:
            active = sampling.bernoulli(self.p, (b,), generator) if self.p < 1.0 else None
        return self._mix(x, y, active, generator)

    def forward(self, x: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """``(x_mix, y_soft)``: the mixed batch and its ``(B, K)`` float32 soft targets."""
        x = check_batch(x)
        check_labels(y, x.shape[0], self.num_classes)
        res = self.mix(x, y, generator=generator)
        return res.inputs, _mix_labels(y, res, self.num_classes, self.smoothing)

    def identity(self, x: Tensor) -> MixResult:
        """The unmixed result: ``x`` itself (same tensor object), weight 1 on the sample itself."""
        b, dev = x.shape[0], x.device
        return MixResult(inputs=x, index=torch.arange(b, device=dev).unsqueeze(1),
                         weights=torch.ones(b, 1, device=dev), lam=torch.ones(b, device=dev),
                         mixed=torch.zeros(b, dtype=torch.bool, device=dev))

    # ------------------------------------------------------------------ for subclasses
    def _mix(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor],
             generator: Optional[torch.Generator]) -> MixResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, x: Tensor) -> None:
        """Hook for method-specific shape checks."""

    def _check_call(self, x: Tensor, generator: Optional[torch.Generator]):
        """Validate the batch (dtype, rank, supported spatial dims, method checks) and the generator."""
        x = check_batch(x)
        generator = check_generator(generator)
        n_sp = x.dim() - 2
        if n_sp not in self.spatial_dims:
            raise ValueError(
                f"{type(self).__name__} supports inputs with {self._dims_text()} spatial dims, got x of shape "
                f"{tuple(x.shape)} ({n_sp} spatial dims)")
        self._check_input(x)
        return x, generator

    def _n_draws(self, x: Tensor) -> int:
        """How many independent parameter draws: 1 in batch mode, B in sample mode."""
        return 1 if self.mode == "batch" else x.shape[0]

    def _partner(self, x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """Partner index ``(B,)`` on ``x``'s device."""
        return sampling.permutation(x.shape[0], generator, self.no_self_pairs).to(x.device)

    @staticmethod
    def _deactivate(v: Tensor, active: Optional[Tensor], b: int) -> Tensor:
        """Set per-row values (lambda ``(B,)`` or share maps ``(B, ...)``) to 1 on rows not selected by p."""
        if active is None:
            return v
        if v.shape[0] != b:
            v = v.expand(b, *v.shape[1:])
        keep = active.to(v.device).reshape(-1, *([1] * (v.dim() - 1)))
        return torch.where(keep, v, torch.ones((), dtype=v.dtype, device=v.device))

    def _pair_result(self, x_mix: Tensor, partner: Tensor, w0: Tensor, *, lam: Tensor,
                     active: Optional[Tensor], share: Optional[Tensor] = None, **params) -> MixResult:
        """Build the result of a two-source method from the anchor's realised weight ``w0`` ``(B,)``."""
        b, dev = x_mix.shape[0], x_mix.device
        w0 = w0.to(dev, torch.float32).expand(b) if w0.numel() == 1 else w0.to(dev, torch.float32)
        index = torch.stack([torch.arange(b, device=dev), partner.to(dev)], 1)
        weights = torch.stack([w0, 1.0 - w0], 1)
        lam = lam.to(dev, torch.float32)
        lam = lam.expand(b) if lam.numel() == 1 else lam
        mixed = torch.ones(b, dtype=torch.bool, device=dev) if active is None else active.to(dev)
        return MixResult(inputs=x_mix, index=index, weights=weights, lam=lam, mixed=mixed, share=share,
                         params=params)

    def _dims_text(self) -> str:
        d = self.spatial_dims
        return " or ".join(str(v) for v in d)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, mode={self.mode!r}, p={self.p}, num_classes={self.num_classes}, smoothing={self.smoothing}"

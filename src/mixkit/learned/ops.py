"""Mixing operations of the learners: the masked sum of the sources, the mixed cross-entropy and a guard
that restores a module's buffers."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence, Union

import torch
from torch import Tensor, nn

from ..losses import soft_cross_entropy
from ..targets import one_hot

__all__ = ["blend", "mixed_ce", "preserved_buffers"]


def blend(x: Tensor, index: Tensor, mask: Tensor) -> Tensor:
    """``sum_i mask[:, i] * x[index[:, i]]`` (column 0 is the batch itself), accumulated in float32."""
    calc = torch.promote_types(x.dtype, torch.float32)
    out = None
    for i in range(index.shape[1]):
        src = x if i == 0 else x[index[:, i]]
        term = src.to(calc) * mask[:, i:i + 1].to(calc)
        out = term if out is None else out + term
    return out.to(x.dtype)


def mixed_ce(logits: Tensor, y: Tensor, index: Tensor, weights: Union[Sequence[float], Tensor]) -> Tensor:
    """``mean_b sum_i w_i CE(logits_b, y[index[b, i]])`` via :func:`mixkit.soft_cross_entropy`.

    ``weights``: the sampled weights ``(N,)`` (the official ``lam * CE(y_a) + (1 - lam) * CE(y_b)``) or
    per-sample shares ``(B, N)``. ``y``: class ids ``(B,)`` or probability rows ``(B, K)``.
    """
    k = logits.shape[1]
    rows = one_hot(y, k) if not y.is_floating_point() else y.float()
    w = weights if isinstance(weights, Tensor) else torch.tensor([float(v) for v in weights])
    w = w.to(logits.device, torch.float32)
    w = w.unsqueeze(0).expand(index.shape[0], -1) if w.dim() == 1 else w
    target = (w.unsqueeze(-1) * rows[index]).sum(1)
    return soft_cross_entropy(logits, target)


@contextmanager
def preserved_buffers(module: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``module`` (BatchNorm statistics, counters) on leaving the block."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)

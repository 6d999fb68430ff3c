"""The model passes of the model-aware mixers (saliency passes, hidden-layer forwards).

The contract says any float dtype: a half / bfloat16 / float64 batch given to a float32 model (or the
reverse) is cast to the model's parameter dtype for the model's own passes only, while the mixing keeps
the input's dtype. Class ids are checked against the width of the logits when ``num_classes`` is not
known, so a label out of range is a clear error rather than an index error inside the loss.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

Runner = Callable[[Tensor], Tensor]


def model_dtype(model: nn.Module) -> Optional[torch.dtype]:
    """The dtype of the model's first floating-point parameter or buffer (``None`` if it has none)."""
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    for t in model.buffers():
        if t.is_floating_point():
            return t.dtype
    return None


def runner(model: nn.Module, forward: Optional[Runner] = None, y: Optional[Tensor] = None) -> Runner:
    """``x -> logits`` through ``forward`` (or ``model``), ``x`` cast to the model's dtype; with class ids
    ``y`` ``(B,)``, ids outside the logits' width raise a ``ValueError``."""
    run = model if forward is None else forward
    dtype = model_dtype(model)
    ids = y if y is not None and y.dim() == 1 and not y.is_floating_point() and y.numel() else None

    def call(x: Tensor) -> Tensor:
        out = run(x.to(dtype) if dtype is not None and x.dtype != dtype else x)
        if ids is not None:
            logits = out if isinstance(out, Tensor) else out[0] if isinstance(out, (tuple, list)) else None
            if isinstance(logits, Tensor) and logits.dim() == 2:
                lo, hi, k = int(ids.min()), int(ids.max()), logits.shape[1]
                if lo < 0 or hi >= k:
                    raise ValueError(f"class ids in y must lie in [0, {k - 1}] (the model has {k} outputs), "
                                     f"got range [{lo}, {hi}]")
        return out

    return call

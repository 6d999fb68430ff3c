"""MixParams: what a mixer drew for one call, the plain data between ``Mixer.sample`` and ``Mixer.apply``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
from torch import Tensor

__all__ = ["MixParams"]


@dataclass
class MixParams:
    """One call's draws: plain data (tensors, ints, nested ``MixParams``) that ``Mixer.apply`` replays.

    ``mixer.apply(x, params)`` is a pure function of ``x`` and ``params``: applying the same params twice
    gives the same result, and no draw is made (the one exception, PatchUp's hidden-layer masks, see
    ``generator``). ``n`` below is 1 in batch mode (one draw for the batch) and B in sample mode.

    Attributes:
        mixed: False when the call mixes nothing (a batch of one, or the batch-mode ``p`` coin failed);
            ``apply`` then returns the unmixed result.
        active: ``(B,)`` bool, the rows selected by ``p`` in sample mode (``None``: every row). The other
            rows come back unmixed, with weight 1 on themselves.
        lam: ``(n,)`` sampled lambda (before any realisation; ``None`` for methods that draw none).
        partner: ``(B,)`` int64 partner of each row (two-source methods).
        draws: the method's other draws (boxes, masks, scales, the chosen layer or child, ...), by name.
        generator: the generator of the draws that can only be made once the hidden state is known
            (PatchUp's block masks, whose shape is the feature map's): ``apply`` makes them and stores
            them in ``draws``, so a second ``apply`` of the same params draws nothing. ``None`` otherwise.
    """

    mixed: bool = True
    active: Optional[Tensor] = None
    lam: Optional[Tensor] = None
    partner: Optional[Tensor] = None
    draws: Dict[str, Any] = field(default_factory=dict)
    generator: Optional[torch.Generator] = field(default=None, repr=False)

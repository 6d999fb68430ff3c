"""The base of the composite mixers (see :mod:`mixkit.mixers.compose`): children held as an
``nn.ModuleList`` with a common mode, and the replay of the chosen child's parameters."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .._validate import check_num_classes
from ..result import MixResult
from .base import Mixer
from .params import MixParams

__all__ = ["Composite"]


# ---------------------------------------------------------------------------------------------- helpers
def _check_mixers(mixers: Any, owner: str) -> Tuple[Mixer, ...]:
    if isinstance(mixers, Mixer):
        raise TypeError(f"{owner}: mixers must be a sequence of Mixer instances, got a single {type(mixers).__name__}; wrap it in a list")
    try:
        mixers = tuple(mixers)
    except TypeError:
        raise TypeError(f"{owner}: mixers must be a sequence of Mixer instances, got {type(mixers).__name__}") from None
    if not mixers:
        raise ValueError(f"{owner}: mixers must contain at least one Mixer, got an empty sequence")
    for i, m in enumerate(mixers):
        if not isinstance(m, Mixer):
            raise TypeError(f"{owner}: mixers[{i}] must be a mixkit Mixer, got {type(m).__name__}")
    return mixers


def _common_mode(mixers: Sequence[Mixer], owner: str) -> str:
    modes = {m.mode for m in mixers}
    if len(modes) != 1:
        desc = ", ".join(f"{type(m).__name__}(mode={m.mode!r})" for m in mixers)
        raise ValueError(f"{owner}: all mixers must use the same mode ('batch' or 'sample'), got {desc}")
    return modes.pop()


def _common_num_classes(mixers: Sequence[Mixer], num_classes: Optional[int], owner: str) -> Optional[int]:
    num_classes = check_num_classes(num_classes)
    if num_classes is not None:
        return num_classes
    found = {m.num_classes for m in mixers if m.num_classes is not None}
    if len(found) > 1:
        raise ValueError(f"{owner}: the mixers disagree on num_classes ({sorted(found)}); pass num_classes= explicitly")
    return found.pop() if found else None


def _common_smoothing(mixers: Sequence[Mixer], smoothing: Optional[float], owner: str) -> float:
    if smoothing is not None:
        return float(smoothing)  # range checked by Mixer.__init__
    found = {m.smoothing for m in mixers}
    if len(found) > 1:
        raise ValueError(f"{owner}: the mixers disagree on smoothing ({sorted(found)}); pass smoothing= explicitly")
    return found.pop()


def _common_spatial_dims(mixers: Sequence[Mixer], owner: str) -> Tuple[int, ...]:
    dims = set(mixers[0].spatial_dims)
    for m in mixers[1:]:
        dims &= set(m.spatial_dims)
    if not dims:
        raise ValueError(f"{owner}: the mixers share no supported spatial dimensionality "
                         f"({[tuple(m.spatial_dims) for m in mixers]})")
    return tuple(sorted(dims))


class Composite(Mixer):
    """Shared plumbing: children as an ``nn.ModuleList``, common mode / classes / dims, input checks, and
    the replay of the chosen child's params (``draws["child"]``, the child ``draws["choice"]``)."""

    def __init__(self, mixers: Sequence[Mixer], *, p: float = 1.0, num_classes: Optional[int] = None,
                 smoothing: Optional[float] = None) -> None:
        owner = type(self).__name__
        mixers = _check_mixers(mixers, owner)
        mode = _common_mode(mixers, owner)
        super().__init__(1.0, mode=mode, p=p, num_classes=_common_num_classes(mixers, num_classes, owner),
                         smoothing=_common_smoothing(mixers, smoothing, owner))
        self.alpha = None  # a composite has no lambda distribution of its own
        self.mixers = nn.ModuleList(mixers)
        self.spatial_dims = _common_spatial_dims(mixers, owner)
        self.needs_labels = any(m.needs_labels for m in mixers)

    def _check_input(self, x: Tensor) -> None:
        # Every child checks the batch, so a bad input fails on every call, not only when a child is drawn.
        for m in self.mixers:
            m._check_input(x)

    def _draw_child(self, i: int, x: Tensor, y: Optional[Tensor], active: Optional[Tensor],
                    generator: Optional[torch.Generator], **draws: Any) -> MixParams:
        """Params choosing child ``i`` and holding its draws (its own ``p`` gate applied once, on top of
        this composite's row selection ``active``)."""
        return MixParams(active=active, draws={**draws, "child": self.mixers[i]._draw(x, y, generator, active)})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        draws = dict(params.draws)
        child_params = draws.pop("child")
        child = self.mixers[draws.get("choice", 0)]
        res = child._replay(x, child_params)
        if child_params.mixed:
            res.params.setdefault("method", type(child).__name__)
        else:  # the child's own p gate said no
            res.params["method"] = None
        res.params.update(draws)
        return res

    def _unmixed(self, x: Tensor, params: MixParams) -> MixResult:
        res = super()._unmixed(x, params)
        res.params.setdefault("method", None)
        return res

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, p={self.p}, num_classes={self.num_classes}, smoothing={self.smoothing}"

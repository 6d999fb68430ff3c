"""MixResult: what every mixer returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .labels import one_hot

__all__ = ["MixResult"]


class Lazy:
    """A field value built on first access: ``fn(*args)`` (``fn`` a module-level function, so it pickles)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Tensor], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __call__(self) -> Tensor:
        return self.fn(*self.args)

    def __reduce__(self):
        return (Lazy, (self.fn, *self.args))


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

    ``index``, ``weights``, ``lam``, ``mixed`` and ``share_map`` may be given as :class:`Lazy` values,
    built on first access (a result read only for its mixed batch and labels never builds them).
    """

    inputs: Tensor
    index: Tensor
    weights: Tensor
    lam: Optional[Tensor] = None
    mixed: Optional[Tensor] = None
    params: Dict[str, Any] = field(default_factory=dict)
    outputs: Optional[Tensor] = None
    share_map: Optional[Tensor] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # ``_pair``: ``(partner, w0)`` of a two-source result whose ``index``/``weights`` are unread (see
        # :meth:`two_source`); ``None`` otherwise
        self.__dict__["_pair"] = None

    @classmethod
    def two_source(cls, inputs: Tensor, partner: Tensor, w0: Union[Tensor, float], *, lam: Optional[Tensor] = None,
                   active: Optional[Tensor] = None, share_map: Any = None,
                   params: Optional[Dict[str, Any]] = None) -> "MixResult":
        """The result of a two-source method: row ``i`` mixes itself (weight ``w0``) with ``partner[i]``.

        ``w0`` is ``(B,)`` or ``(1,)`` float32 on the batch's device, or one float32-exact float; ``lam``
        ``(B,)`` or ``(1,)``; ``active`` the rows mixed (``None``: all). ``index``, ``weights``, ``mixed``
        and a ``(1,)`` ``lam`` are built when first read; until ``index`` or ``weights`` is read, the labels
        (:func:`mixkit.soft_targets`) are ``w0 * Y + (1 - w0) * Y[partner]`` without them.
        """
        b, dev = int(partner.shape[0]), inputs.device
        res = cls.__new__(cls)
        res.__dict__.update(
            inputs=inputs, _v_index=Lazy(_pair_index, partner), _v_weights=Lazy(_pair_weights, w0, b, dev),
            _v_lam=lam if lam is None or lam.numel() != 1 else Lazy(_expand_rows, lam, b),
            _v_mixed=Lazy(_mixed_rows, active, b, dev), params={} if params is None else params, outputs=None,
            _v_share_map=share_map, _pair=(partner, w0))
        return res

    @property
    def batch_size(self) -> int:
        """``B``, the number of mixed samples."""
        pair = self.__dict__.get("_pair")
        return int((pair[0] if pair is not None else self.index).shape[0])

    def __getstate__(self) -> Dict[str, Any]:
        for name in _LAZY_FIELDS:
            getattr(self, name)
        return dict(self.__dict__)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def k(self) -> int:
        return 2 if self.__dict__.get("_pair") is not None else int(self.index.shape[1])

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


def _pair_index(partner: Tensor) -> Tensor:
    """``(B, 2)`` int64 sources of a two-source result: the row itself, then its partner."""
    return torch.stack([torch.arange(partner.shape[0], device=partner.device), partner], 1)


def _pair_weights(w0: Union[Tensor, float], b: int, dev: torch.device) -> Tensor:
    """``(B, 2)`` float32 weights ``(w0, 1 - w0)`` of a two-source result."""
    w0 = _expand_rows(w0, b) if isinstance(w0, Tensor) else torch.full((b,), w0, dtype=torch.float32, device=dev)
    return torch.stack([w0, 1.0 - w0], 1)


def _mixed_rows(active: Optional[Tensor], b: int, dev: torch.device) -> Tensor:
    """``(B,)`` bool rows mixed by a two-source method: every row, or the rows ``p`` selected."""
    return torch.ones(b, dtype=torch.bool, device=dev) if active is None else active.to(dev)


def _expand_rows(v: Tensor, b: int) -> Tensor:
    """A per-row ``(B,)`` view of a one-element ``v`` (``v`` itself when it has ``B`` rows)."""
    return v.expand(b) if v.numel() == 1 else v


_LAZY_FIELDS = ("index", "weights", "lam", "mixed", "share_map")
_DROPS_PAIR = ("index", "weights")  # read, maybe to be changed: the labels follow the fields from then on


def _lazy_field(name: str) -> property:
    key = "_v_" + name
    drops = name in _DROPS_PAIR

    def get(self: MixResult) -> Any:
        d = self.__dict__
        v = d[key]
        if drops and d.get("_pair") is not None:
            d["_pair"] = None
        if type(v) is Lazy:
            v = d[key] = v()
        return v

    def set(self: MixResult, value: Any) -> None:
        d = self.__dict__
        if drops:
            d["_pair"] = None
        d[key] = value

    return property(get, set, doc=f"the ``{name}`` field (see the class docstring)")


for _name in _LAZY_FIELDS:
    setattr(MixResult, _name, _lazy_field(_name))
del _name

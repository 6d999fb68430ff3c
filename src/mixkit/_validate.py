"""Argument and tensor checks shared by every mixer.

Every failure raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape,
range or value) with a message that names the argument and what was expected.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

_MODES = ("batch", "sample")
_INT_DTYPES = frozenset((torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8))


def check_batch(x: object, name: str = "x") -> Tensor:
    """Check that ``x`` is a float tensor of shape (B, C, *spatial) with 1 to 3 spatial dims."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, *spatial), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float32/float16/bfloat16/float64), got dtype {x.dtype}; "
            "convert integer images first, e.g. x.float() / 255"
        )
    if x.dim() not in (3, 4, 5):
        raise ValueError(
            f"{name} must have shape (B, C, L), (B, C, H, W) or (B, C, D, H, W) (1 to 3 spatial dims), "
            f"got {x.dim()} dims with shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B=0); expected at least one sample")
    if 0 in x.shape[1:]:
        raise ValueError(f"{name} has a zero-sized dimension: shape {tuple(x.shape)}")
    return x


def check_not_unbatched(x: Tensor, name: str = "x") -> Tensor:
    """Refuse a 3-D ``x`` that reads as one ``(C, H, W)`` image without its batch dim rather than a
    ``(B, C, L)`` batch of sequences: at most 4 leading entries (image channels) and two equal trailing
    dims of at least 8 (a square image). A caller whose sequences really have that shape says so with
    the mixer's ``spatial_dims=1``."""
    if x.dim() == 3 and x.shape[0] <= 4 and x.shape[1] == x.shape[2] >= 8:
        c, h, w = x.shape
        raise ValueError(
            f"{name} of shape {tuple(x.shape)} is ambiguous: one ({c}, {h}, {w}) image without its batch dim, or "
            f"a batch of {c} sequences with {h} channels and length {w}? Add the batch dim for an image "
            f"({name}.unsqueeze(0)), or build the mixer with spatial_dims=1 for sequences")
    return x


def check_mode(mode: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def check_in_range(v: float, name: str, lo: float, hi: float, note: str = "") -> float:
    """A real number (not a bool) in ``[lo, hi]``; ``note`` is appended to the range error."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number in [{lo:g}, {hi:g}], got {type(v).__name__}")
    v = float(v)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}]{note}, got {v}")
    return v


def check_prob(p: float, name: str = "p") -> float:
    return check_in_range(p, name, 0.0, 1.0)


def check_smoothing(v: float, name: str = "smoothing") -> float:
    """Label smoothing in ``[0, 1)``."""
    if not 0.0 <= float(v) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {v}")
    return float(v)


def check_int(v: object, name: str, minimum: int = 0, allow: Tuple[int, ...] = ()) -> int:
    """An int (not a bool) ``>= minimum``, or one of the special values ``allow``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(v).__name__}")
    if v < minimum and v not in allow:
        extra = f" (or one of {allow})" if allow else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {v}")
    return int(v)


def check_nonneg(v: object, name: str) -> float:
    """A finite real number ``>= 0``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {type(v).__name__}")
    v = float(v)
    if not (v >= 0.0) or v == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def check_positive(v: float, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {type(v).__name__}")
    v = float(v)
    if not v > 0 or v != v or v == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def check_range(r: Optional[Sequence[float]], name: str, lo: float = 0.0, hi: float = 1.0) -> Optional[Tuple[float, float]]:
    if r is None:
        return None
    try:
        a, b = (float(v) for v in r)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (min, max) of numbers, got {r!r}") from None
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got ({a}, {b})")
    return a, b


def check_span(v: object, name: str, *, low: float, high: float = math.inf, low_open: bool = True,
               integer: bool = False) -> Tuple:
    """A number or a ``(min, max)`` pair, checked to lie in ``(low, high]`` (or ``[low, high]``)."""
    kind = "int" if integer else "number"
    ok_type = numbers.Integral if integer else numbers.Real
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise TypeError(f"{name} must be a {kind} or a pair (min, max) of {kind}s, got {v!r}")
        pair = tuple(v)
    else:
        pair = (v, v)
    for e in pair:
        if isinstance(e, bool) or not isinstance(e, ok_type):
            raise TypeError(f"{name} must be a {kind} or a pair (min, max) of {kind}s, got {v!r}")
    a, b = (int(e) if integer else float(e) for e in pair)
    too_low = (a <= low) if low_open else (a < low)
    if too_low or b > high or a > b or a != a or b != b:
        bound = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must lie in {bound} with min <= max, got {v!r}")
    return a, b


def check_probs(probs: Optional[Sequence[float]], n: int, name: str = "probs") -> Tuple[float, ...]:
    """``n`` non-negative finite weights, not all 0, normalised to sum to 1 (uniform for ``None``)."""
    if probs is None:
        return tuple(1.0 / n for _ in range(n))
    try:
        vals = [float(q) for q in probs]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of {n} non-negative numbers, got {probs!r}") from None
    if len(vals) != n:
        raise ValueError(f"{name} must have one entry per mixer ({n}), got {len(vals)}")
    if any(not math.isfinite(q) or q < 0 for q in vals):
        raise ValueError(f"{name} must be finite and >= 0, got {vals}")
    total = sum(vals)
    if total <= 0:
        raise ValueError(f"{name} must not all be 0, got {vals}")
    return tuple(q / total for q in vals)


def check_channel_stats(v: object, name: str, positive: bool = False) -> Optional[Tensor]:
    """Per-channel values (a normalisation's ``mean`` / ``std``) as a float32 vector, or ``None``."""
    if v is None:
        return None
    t = torch.as_tensor(v, dtype=torch.float32).reshape(-1)
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise ValueError(f"{name} must be a non-empty sequence of finite per-channel values, got {v!r}")
    if positive and not (t > 0).all():
        raise ValueError(f"{name} must be > 0 for every channel, got {v!r}")
    return t


def check_num_classes(num_classes: Optional[int], name: str = "num_classes") -> Optional[int]:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"{name} must be >= 1, got {num_classes}")
    return int(num_classes)


def check_generator(generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_labels(y: object, batch: int, num_classes: Optional[int], name: str = "y", *,
                 ids_need_num_classes: bool = True) -> Tensor:
    """Check class ids ``(B,)`` or probabilities / one-hot / multi-hot ``(B, K)``.

    Class ids need ``num_classes`` (to build targets from them) unless ``ids_need_num_classes=False``
    (the labels only feed a saliency pass); the id range is checked whenever ``num_classes`` is known.
    """
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class ids (B,) or probabilities (B, K), got {type(y).__name__}")
    if y.dim() not in (1, 2):
        raise ValueError(
            f"{name} must be class ids of shape (B,) or probabilities of shape (B, K), got shape {tuple(y.shape)}"
            " (dense targets (B, *spatial) are mixed with MixResult.mix_dense)"
        )
    if y.shape[0] != batch:
        raise ValueError(f"{name} has {y.shape[0]} rows but the image batch has B={batch}; they must match")
    if y.dim() == 1:
        if y.dtype not in _INT_DTYPES and (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool):
            raise TypeError(f"class ids {name} (B,) must be an integer tensor (int64 preferred), got dtype {y.dtype}")
        if num_classes is None:
            if ids_need_num_classes:
                raise ValueError(f"num_classes is required to turn class ids {name} (B,) into targets")
        elif y.numel():
            try:
                lo, hi = torch.aminmax(y)  # one pass over the ids
                lo, hi = int(lo), int(hi)
            except (RuntimeError, NotImplementedError):  # pragma: no cover - a dtype without aminmax
                lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(f"class ids in {name} must lie in [0, {num_classes - 1}] (num_classes={num_classes}), got range [{lo}, {hi}]")
    else:
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(f"{name} has K={y.shape[1]} columns but num_classes={num_classes}")
    return y

"""Checking the arguments of the picture functions, and getting the :class:`~mixkit.MixResult` they draw."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from ..result import MixResult

#: a mixer object (with a ``.mix`` method) or a registered method name
MixerLike = Union[str, Any]


def _make_mixer(mixer_or_name: MixerLike, params: Optional[Mapping[str, Any]]):
    """The mixer itself, or the registry's mixer of that name created with ``params``."""
    if isinstance(mixer_or_name, str):
        from .. import registry

        return registry.create(mixer_or_name, **dict(params or {}))
    if not hasattr(mixer_or_name, "mix"):
        raise TypeError(
            f"mixer_or_name must be a mixer (with a .mix method) or a registered method name, "
            f"got {type(mixer_or_name).__name__}")
    if params:
        raise ValueError("params= only applies when the mixer is given by name; configure the mixer object instead")
    return mixer_or_name


def _check_x(x: Tensor, dims: Sequence[int], fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; convert images first, e.g. x.float() / 255")
    n_sp = x.dim() - 2
    if n_sp not in dims:
        other = "show_1d" if n_sp == 1 else "show_grid"
        raise ValueError(
            f"{fn} draws inputs with {' or '.join(map(str, dims))} spatial dims; got x of shape {tuple(x.shape)} "
            f"({n_sp} spatial dims) -- use {other} (or show, which picks the right one)")
    return x


def _check_y(y: Optional[Tensor], b: int) -> Optional[Tensor]:
    """Class ids ``(B,)`` long, from class ids or from ``(B, K)`` probabilities (their top class); None stays None."""
    if y is None:
        return None
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    if y.shape[0] != b:
        raise ValueError(f"y has {y.shape[0]} rows but x has B={b}")
    if y.dim() == 2 and y.is_floating_point():
        return y.argmax(1)  # probabilities / one-hot: show the top class
    if y.dim() != 1:
        raise ValueError(f"y must be class ids (B,) or probabilities (B, K), got shape {tuple(y.shape)}")
    return y.long()


def _check_n(n: int) -> int:
    """The number of rows to draw: an int >= 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    return n


def _run(mixer, x: Tensor, y: Optional[Tensor], generator, result: Optional[MixResult]) -> MixResult:
    """``result`` (checked against ``x``) if given, else the mixer's draw on ``x`` (with ``y`` if it needs labels)."""
    if result is None and getattr(mixer, "runs_model", False):
        raise ValueError(
            f"{type(mixer).__name__} mixes inside the model (runs_model=True): its result's inputs are the unmixed "
            "batch, so show_grid/show_1d would draw nothing mixed; use show_hidden (or show, which dispatches)")
    if result is not None:
        if not isinstance(result, MixResult):
            raise TypeError(f"result must be a MixResult, got {type(result).__name__}")
        if result.batch_size != x.shape[0]:
            raise ValueError(f"result has B={result.batch_size} rows but x has B={x.shape[0]}")
        return result
    if getattr(mixer, "needs_labels", False):
        if y is None:
            raise ValueError(f"{type(mixer).__name__} needs the labels: pass y")
        return mixer.mix(x, y, generator=generator)
    return mixer.mix(x, generator=generator)


def _anchor_share(res: MixResult, rows: Sequence[int]) -> Tensor:
    """Per-pixel share of the anchor ``(n, *spatial)`` float32 on CPU, or ``(n,)`` when there is no mask."""
    m = res.mask
    if m is None:
        return res.weights[list(rows), 0].detach().float().cpu()
    return m[list(rows), 0].detach().float().cpu()

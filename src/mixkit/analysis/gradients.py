"""Input gradients and their structure over pixel distance; first-layer weight norms.

Park, Yun, Chun, "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function Perspective",
NeurIPS 2022 (the HMix/GMix paper): to second order, a mixed-sample loss is the clean loss plus terms
that couple every pixel pair ``(a, b)`` through ``df/dx_a df/dx_b`` and ``d2f/dx_a dx_b``, weighted by a
coefficient of the mask. For MixUp that coefficient is a function of lambda alone, the same for every
pair; for CutMix it depends on the distance ``|a - b|`` (a box splits far pixels more often than near
ones). This module measures both sides: the mixer's pair coefficients by distance
(:func:`pair_split_probability`, closed forms :func:`mixup_split_probability` and
:func:`cutmix_split_probability_1d`) and the trained model's input gradients (:func:`input_gradient_norms`,
:func:`input_gradient_distance_profile`), plus :func:`first_layer_weight_norms`.

Formulas and the paper's claim: docs/analysis/gradients.md.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bench.eval.checks import check_batch_size, check_x, check_y, default_generator
from ..bench.eval.model import ModelView, eval_mode

__all__ = [
    "input_gradients", "input_gradient_norms", "gradient_distance_profile", "input_gradient_distance_profile",
    "pair_split_probability", "mixup_split_probability", "cutmix_split_probability_1d",
    "first_layer_weight_norms",
]


# ---------------------------------------------------------------------------------------------- gradients
def input_gradients(model: nn.Module | ModelView, x: Tensor, y: Tensor, *, normalize: Optional[Callable] = None,
                    batch_size: int = 256, device: Any = None) -> Tensor:
    """``g_n = d CE(f(normalize(x_n)), y_n) / d x_n``, the clean loss's gradient in pixel space, eval mode.

    Args:
        model: classifier ``(B, C, *spatial) -> (B, K)`` logits, or a ``ModelView`` (then leave
            ``normalize`` / ``batch_size`` / ``device`` unset).
        x: ``(N, C, *spatial)`` float pixel-space inputs (1-D or 2-D spatial). y: ``(N,)`` class ids.
        normalize: applied inside, so the gradient is with respect to the pixels.

    Returns:
        ``(N, C, *spatial)`` float32 CPU gradients (each row the gradient of its own sample's loss).
    """
    check_x(x)
    y = check_y(y, x.shape[0])
    view = ModelView.of(model, normalize, batch_size=batch_size, device=device)
    out = []
    with eval_mode(view.model), torch.enable_grad():
        for sl in view.spans(x.shape[0]):
            xb = x[sl].detach().to(device=view.device, dtype=view.dtype).requires_grad_(True)
            logits = view.forward(xb)
            loss = F.cross_entropy(logits, y[sl].to(logits.device), reduction="sum")
            (g,) = torch.autograd.grad(loss, xb)
            out.append(g.detach().float().cpu())
    return torch.cat(out)


def input_gradient_norms(model: nn.Module | ModelView, x: Tensor, y: Tensor, *, normalize: Optional[Callable] = None,
                         batch_size: int = 256, device: Any = None, p: float = 2) -> Tensor:
    """Per-sample ``||d CE(f(x_n), y_n) / d x_n||_p`` (default ``p = 2``; 1 and ``inf`` too), eval mode.

    The quantity MSDA regularises (Park et al. 2022). Arguments as :func:`input_gradients`.
    Returns ``(N,)`` float32 CPU norms; see docs/analysis/gradients.md.
    """
    if p not in (1, 2, math.inf, float("inf")):
        raise ValueError(f"p must be 1, 2 or inf, got {p!r}")
    g = input_gradients(model, x, y, normalize=normalize, batch_size=batch_size, device=device)
    return torch.linalg.vector_norm(g.double().flatten(1), ord=p, dim=1).float()


def _spatial_axes(ndim: int, axis: Optional[int]) -> List[int]:
    """Tensor dims of the spatial axes ``(N, C, *spatial)``: all of them, or spatial axis ``axis`` (0-based)."""
    n_sp = ndim - 2
    if axis is None:
        return list(range(2, ndim))
    if not isinstance(axis, int) or isinstance(axis, bool) or not -n_sp <= axis < n_sp:
        raise ValueError(f"axis must be a spatial axis in [{-n_sp}, {n_sp}) or None, got {axis!r}")
    return [2 + axis % n_sp]


def _distances(distances: Optional[Iterable[int]], sizes: Sequence[int], name: str = "distances") -> List[int]:
    top = min(sizes) - 1
    if distances is None:
        return list(range(top + 1))
    ds = [distances] if isinstance(distances, int) else list(distances)
    if not ds or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= top for d in ds):
        raise ValueError(f"{name} must be non-empty ints in [0, {top}] (the smallest spatial size - 1), got {ds!r}")
    return ds


def _pair_means(t: Tensor, fn: Callable[[Tensor, Tensor], Tensor], dims: List[int], ds: List[int]) -> Tensor:
    """``(N, len(ds))``: per row, the mean over every pair at offset ``d`` along the axes ``dims`` of ``fn(a, b)``."""
    out = torch.zeros(t.shape[0], len(ds), dtype=torch.float64, device=t.device)
    for k, d in enumerate(ds):
        for dim in dims:
            size = t.shape[dim]
            v = fn(t.narrow(dim, 0, size - d), t.narrow(dim, d, size - d))
            out[:, k] += v.flatten(1).mean(dim=1)
        out[:, k] /= len(dims)
    return out


def gradient_distance_profile(g: Tensor, max_distance: Optional[int] = None, *, axis: Optional[int] = None) -> Dict[str, Any]:
    """Pair products of input gradients by pixel distance: ``P(d) = mean g_a g_b`` over pairs ``b = a + d e_axis``.

    Args:
        g: ``(N, C, *spatial)`` gradients (:func:`input_gradients`).
        max_distance: largest offset (default: smallest spatial size - 1).
        axis: the spatial axis of the offset (default: the mean over every spatial axis).

    Returns:
        dict of lists over ``distance`` ``0..max_distance``: ``product`` (``mean g_a g_b``), ``abs_product``
        (``mean |g_a g_b|``), ``correlation`` (``product / product[0]``), and ``n``.
    """
    check_x(g, "g")
    dims = _spatial_axes(g.ndim, axis)
    sizes = [g.shape[d] for d in dims]
    if max_distance is not None and (not isinstance(max_distance, int) or isinstance(max_distance, bool)
                                     or max_distance < 0):
        raise ValueError(f"max_distance must be a non-negative int or None, got {max_distance!r}")
    ds = _distances(None if max_distance is None else range(max_distance + 1), sizes, "max_distance")
    g64 = g.double()
    prod = _pair_means(g64, lambda a, b: a * b, dims, ds).mean(dim=0)
    absp = _pair_means(g64, lambda a, b: (a * b).abs(), dims, ds).mean(dim=0)
    zero = float(prod[0]) if ds[0] == 0 else float((g64 * g64).mean())
    corr = prod / zero if zero > 0 else torch.zeros_like(prod)
    return {"distance": ds, "product": prod.tolist(), "abs_product": absp.tolist(), "correlation": corr.tolist(),
            "n": int(g.shape[0])}


def input_gradient_distance_profile(model: nn.Module | ModelView, x: Tensor, y: Tensor, max_distance: Optional[int] = None,
                                    *, axis: Optional[int] = None, normalize: Optional[Callable] = None,
                                    batch_size: int = 256, device: Any = None) -> Dict[str, Any]:
    """The model's gradient-pair profile by pixel distance (:func:`gradient_distance_profile` of
    :func:`input_gradients`), plus ``grad_norm_mean`` / ``grad_norm_std`` of the per-sample L2 norms.

    The theory's pair term is ``sum_ab c(a, b) g_a g_b (x'_a - x_a)(x'_b - x_b)`` with ``c`` the mixer's
    coefficient (:func:`pair_split_probability`); see docs/analysis/gradients.md.
    """
    g = input_gradients(model, x, y, normalize=normalize, batch_size=batch_size, device=device)
    out = gradient_distance_profile(g, max_distance, axis=axis)
    norms = torch.linalg.vector_norm(g.double().flatten(1), dim=1)
    out["grad_norm_mean"] = float(norms.mean())
    out["grad_norm_std"] = float(norms.std()) if norms.numel() > 1 else 0.0
    return out


# ----------------------------------------------------------------------------- the mixer's pair coefficient
def _source_shares(res: Any) -> Tensor:
    """``(B, k, *spatial)`` float64 per-pixel share of each source; MixUp-like results broadcast their weights."""
    m = res.mask
    if m is None:
        w = res.weights.double()
        return w.reshape(*w.shape, *([1] * (res.inputs.ndim - 2))).expand(*w.shape, *res.inputs.shape[2:])
    return m.double()


def pair_split_probability(mixer: nn.Module, shape: Sequence[int], distances: Optional[Iterable[int]] = None, *,
                           n_masks: int = 2000, batch_size: int = 64, axis: Optional[int] = None,
                           x: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    """The mixer's pair coefficients by pixel distance, estimated from ``n_masks`` sampled masks.

    With ``s_ka`` the share of source ``k`` at pixel ``a`` (0 or 1 for hard masks, lambda for MixUp), for
    pairs ``b = a + d e_axis``:

    * ``split(d) = E[1 - sum_k s_ka s_kb]``: the probability that ``a`` and ``b`` come from different
      sources (each pixel drawing its source with its shares); MixUp: ``2 E[lam (1 - lam)]`` for every ``d``.
    * ``coupling(d) = E[(1 - s_0a)(1 - s_0b)]``: Park et al.'s coefficient of the pair, both pixels from
      the partner; MixUp ``E[(1 - lam)^2]``. For two sources ``split = E[1-s_0a] + E[1-s_0b] - 2 coupling``.

    Args:
        mixer: any mixer; it mixes ``x`` (default zeros of ``(batch_size, *shape)``) with ``generator``.
        shape: one sample's shape ``(C, *spatial)``.
        distances: offsets (default ``0..min(spatial) - 1``). axis: spatial axis (default: mean over all).
        n_masks: masks to draw (one per call in batch mode, ``batch_size`` per call otherwise).
        x: a batch to mix instead of zeros (for methods whose masks read the input).

    Returns:
        dict of lists: ``distance``, ``split``, ``split_se``, ``coupling``, ``coupling_se``; ``n_masks``.
    """
    g = default_generator(generator)
    if x is None:
        if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) < 2 or any(
                not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
            raise ValueError(f"shape must be one sample's (C, *spatial) positive ints, got {shape!r}")
        bs = check_batch_size(batch_size)
        x = torch.zeros(max(bs, 2), *shape, device=g.device)
    else:
        check_x(x)
        if x.shape[0] < 2:
            raise ValueError(f"x must hold at least 2 samples to mix, got shape {tuple(x.shape)}")
    if not isinstance(n_masks, int) or isinstance(n_masks, bool) or n_masks < 1:
        raise ValueError(f"n_masks must be a positive int, got {n_masks!r}")
    dims = _spatial_axes(x.ndim, axis)
    ds = _distances(distances, [x.shape[d] for d in dims])
    one_map = getattr(mixer, "mode", "sample") == "batch"
    splits, couplings, got = [], [], 0
    while got < n_masks:
        s = _source_shares(mixer.mix(x, generator=g))[: 1 if one_map else n_masks - got]
        splits.append(1.0 - _pair_means(s, lambda a, b: (a * b).sum(dim=1), dims, ds))
        other = 1.0 - s[:, :1]
        couplings.append(_pair_means(other, lambda a, b: a * b, dims, ds))
        got += s.shape[0]
    out: Dict[str, Any] = {"distance": ds}
    for name, rows in (("split", splits), ("coupling", couplings)):
        v = torch.cat(rows)
        se = v.std(dim=0) / math.sqrt(v.shape[0]) if v.shape[0] > 1 else torch.zeros(len(ds), dtype=v.dtype)
        out[name], out[name + "_se"] = v.mean(dim=0).tolist(), se.tolist()
    out["n_masks"] = got
    return out


def mixup_split_probability(alpha: float = 1.0) -> Dict[str, float]:
    """MixUp's pair coefficients for ``lam ~ Beta(alpha, alpha)``, the same at every distance:
    ``split = 2 E[lam (1 - lam)] = alpha / (2 alpha + 1)``, ``coupling = E[(1 - lam)^2] = (alpha + 1) / (2 (2 alpha + 1))``."""
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    a = float(alpha)
    return {"split": a / (2 * a + 1), "coupling": (a + 1) / (2 * (2 * a + 1))}


def _beta_cdf_sym(x: float, a: float) -> float:
    """Regularised incomplete beta ``I_x(a, a)`` (series ``x^a (1-x)^a / (a B) 2F1(2a, 1; a+1; x)`` for ``x <= 1/2``)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > 0.5:
        return 1.0 - _beta_cdf_sym(1.0 - x, a)
    log_front = a * math.log(x) + a * math.log1p(-x) - math.log(a) - (2 * math.lgamma(a) - math.lgamma(2 * a))
    term, total, n = 1.0, 1.0, 0
    while term > 1e-17 * total and n < 10_000:
        term *= (2 * a + n) / (a + 1 + n) * x
        total += term
        n += 1
    return min(1.0, math.exp(log_front) * total)


def cutmix_split_probability_1d(length: int, distances: Optional[Iterable[int]] = None, *,
                                alpha: float = 1.0) -> Dict[str, Any]:
    """Exact ``split(d)`` and ``coupling(d)`` of mixkit's 1-D CutMix box (one spatial axis of ``length`` L).

    The box has ``w = floor(L (1 - lam))`` pixels, ``lam ~ Beta(alpha, alpha)``, its centre ``p`` uniform
    in ``0..L-1``, ``[lo, hi) = clip([p - w//2, p - w//2 + w), 0, L)``. Of the ``L - d`` pairs ``(i, i + d)``,
    ``max(0, min(hi, L-d) - max(lo, hi-d)) + max(0, min(lo, hi-d) - max(0, lo-d))`` are split and
    ``max(0, hi - lo - d)`` lie both in the box; the expectation sums over ``w`` and ``p``.
    """
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    mixup_split_probability(alpha)  # checks alpha
    ds = _distances(distances, [length])
    L = length
    cdf = [_beta_cdf_sym(k / L, float(alpha)) for k in range(L + 1)]
    pw = torch.tensor([cdf[k + 1] - cdf[k] for k in range(L)], dtype=torch.float64)  # P(w = k), k < L
    w = torch.arange(L, dtype=torch.float64)[:, None]
    p = torch.arange(L, dtype=torch.float64)[None, :]
    start = p - torch.div(w, 2, rounding_mode="floor")
    lo, hi = start.clamp(0, L), (start + w).clamp(0, L)
    split, both = [], []
    for d in ds:
        c1 = (torch.minimum(hi, torch.full_like(hi, L - d)) - torch.maximum(lo, hi - d)).clamp(min=0)
        c2 = (torch.minimum(lo, hi - d) - (lo - d).clamp(min=0)).clamp(min=0)
        c3 = (hi - lo - d).clamp(min=0)
        split.append(float((pw[:, None] * (c1 + c2)).sum() / L / (L - d)))
        both.append(float((pw[:, None] * c3).sum() / L / (L - d)))
    return {"distance": ds, "split": split, "coupling": both}


# --------------------------------------------------------------------------------------- first-layer weights
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def first_layer_weight_norms(model: nn.Module, *, example: Optional[Tensor] = None) -> Dict[str, Any]:
    """L2 norms of the first conv / linear layer's weights: ``||W[o]||_2`` per output channel and ``||W||_F``.

    The first layer is the first ``Conv1d/2d/3d`` / ``Linear`` in ``model.modules()`` order, or with
    ``example`` (a batch the model accepts) the first one the forward pass calls.

    Returns:
        dict: ``layer`` (its name), ``type``, ``per_channel`` (list of floats), ``total`` (Frobenius norm),
        ``mean_per_channel``, ``max_per_channel``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names = {m: n for n, m in model.named_modules()}
    first: Optional[nn.Module] = None
    if example is not None:
        if not isinstance(example, Tensor):
            raise TypeError(f"example must be a tensor batch the model accepts, got {type(example).__name__}")
        called: List[nn.Module] = []

        def record(mod: nn.Module, _inputs: Any) -> None:
            called.append(mod)

        hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, _LAYERS)]
        try:
            with eval_mode(model), torch.no_grad():
                model(example)
        finally:
            for h in hooks:
                h.remove()
        first = called[0] if called else None
    else:
        first = next((m for m in model.modules() if isinstance(m, _LAYERS)), None)
    if first is None:
        raise ValueError("model has no Conv1d/Conv2d/Conv3d/Linear layer" + (" called by the example" if example is not None else ""))
    w = first.weight.detach().double()
    per = torch.linalg.vector_norm(w.flatten(1), dim=1)
    return {"layer": names[first] or "(model)", "type": type(first).__name__, "per_channel": per.tolist(),
            "total": float(torch.linalg.vector_norm(w)), "mean_per_channel": float(per.mean()),
            "max_per_channel": float(per.max())}

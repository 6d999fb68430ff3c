"""Occlusion robustness: accuracy as random blocks hide a growing share (0 to 100%) of every input.

The masks are exact (``round(fraction * area)`` pixels per sample) and nested across fractions;
they work for 1-D and 2-D inputs (3-D too). Hidden pixels are filled in pixel space, before the
model's normalisation.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .checks import check_x, check_y, default_generator
from .model import ModelView, Normalize, eval_mode

#: Occluded fractions used by :func:`occlusion_curve` by default: 0, 0.1, ..., 1.0.
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(i / 10 for i in range(11))


def _default_patch(spatial: Sequence[int]) -> int:
    return max(1, round(min(spatial) / 8))


def _n_covered(fraction: float, area: int) -> int:
    """``round(fraction * area)`` with halves rounded up (not to even)."""
    return min(area, max(0, int(math.floor(fraction * area + 0.5))))


def _check_spatial(spatial: Sequence[int]) -> tuple[int, ...]:
    spatial = tuple(int(s) for s in spatial)
    if not 1 <= len(spatial) <= 3 or any(s < 1 for s in spatial):
        raise ValueError(f"spatial must be 1 to 3 positive sizes, got {spatial}")
    return spatial


def occlusion_order(
    n: int,
    spatial: Sequence[int],
    *,
    patch: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random order in which :func:`occlusion_mask` covers the pixels of ``n`` samples.

    The spatial grid is cut into ``patch``-sized blocks (squares in 2-D, segments in 1-D; the
    blocks on the far borders are smaller when ``patch`` does not divide the size). Each sample
    gets its own random permutation of the blocks; pixels are covered block after block in that
    order, in raster order inside a block. Covering the first ``k`` pixels of this order therefore
    hides exactly ``k`` pixels: a union of whole random blocks plus the leading part of one more.
    Masks for growing ``k`` are nested.

    Args:
        n: number of samples.  spatial: ``(L,)`` or ``(H, W)`` (``(D, H, W)`` also works).
        patch: block side in pixels; default ``max(1, round(min(spatial) / 8))``
            (4 for 32x32 and 28x28 images, 5 for length-40 sequences).
        generator: source of the block permutations (default: torch's global generator).

    Returns:
        ``(n, prod(spatial))`` int64 flat pixel indices, on the generator's device.
    """
    spatial = _check_spatial(spatial)
    patch = _default_patch(spatial) if patch is None else int(patch)
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    gdev = generator.device if generator is not None else torch.device("cpu")
    coords = torch.meshgrid(*[torch.arange(s, device=gdev) for s in spatial], indexing="ij")
    n_blocks_per_dim = [math.ceil(s / patch) for s in spatial]
    block_id = torch.zeros(spatial, dtype=torch.long, device=gdev)
    local = torch.zeros(spatial, dtype=torch.long, device=gdev)
    for d, c in enumerate(coords):
        block_id = block_id * n_blocks_per_dim[d] + torch.div(c, patch, rounding_mode="floor")
        local = local * patch + c % patch
    n_blocks = math.prod(n_blocks_per_dim)
    perm_keys = torch.rand((n, n_blocks), generator=generator, device=gdev)
    block_rank = perm_keys.argsort(dim=1).argsort(dim=1)  # (n, n_blocks): random permutation ranks
    key = block_rank[:, block_id.flatten()] * patch ** len(spatial) + local.flatten()  # unique per row
    return key.argsort(dim=1)


def _mask_from_order(order: Tensor, k: int, spatial: Sequence[int]) -> Tensor:
    mask = torch.zeros(order.shape, dtype=torch.bool, device=order.device)
    if k > 0:
        mask.scatter_(1, order[:, :k], True)
    return mask.reshape(order.shape[0], *spatial)


def occlusion_mask(
    n: int,
    spatial: Sequence[int],
    fraction: float,
    *,
    patch: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Boolean occlusion masks ``(n, *spatial)``, ``True`` = occluded, built by :func:`occlusion_order`.

    Every sample has exactly ``round(fraction * prod(spatial))`` occluded pixels (halves rounded up):
    ``fraction=0`` hides nothing, ``fraction=1`` hides everything.
    """
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    spatial = _check_spatial(spatial)
    order = occlusion_order(n, spatial, patch=patch, generator=generator)
    return _mask_from_order(order, _n_covered(fraction, math.prod(spatial)), spatial)


def _auc(fractions: Sequence[float], accs: Sequence[float]) -> float:
    pts = sorted(zip(fractions, accs))
    if len(pts) == 1 or pts[-1][0] == pts[0][0]:
        return float(sum(a for _, a in pts) / len(pts))
    area = sum((f1 - f0) * (a0 + a1) / 2 for (f0, a0), (f1, a1) in zip(pts[:-1], pts[1:]))
    return float(area / (pts[-1][0] - pts[0][0]))


def occlusion_curve(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    normalize: Normalize | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    generator: torch.Generator | None = None,
    patch: int | None = None,
    fill: float | str = 0.0,
    **view_kw: Any,
) -> dict[str, Any]:
    """Accuracy as random blocks hide a growing share (0 to 100%) of every input.

    For each sample one covering order is drawn (:func:`occlusion_order`: random ``patch``-sized
    blocks, then the leading pixels of one more block), and for each ``fraction`` the first
    ``round(fraction * area)`` pixels of that order are replaced by ``fill`` in pixel space (all
    channels), before normalisation. The covered share is exact and the masks are nested across
    fractions, so the curve is monotone in what the model sees. Works for 1-D and 2-D inputs.

    Args:
        model, normalize, ``**view_kw``: the model as :meth:`ModelView.of` takes it (``mean``, ``std``,
            ``batch_size``, ``device``).
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        fractions: occluded shares in ``[0, 1]`` (default 0, 0.1, ..., 1.0).
        generator: randomness of the masks (default: a generator seeded with 0). The result is
            deterministic for a given seed and ``batch_size``.
        patch: block side in pixels (default ``max(1, round(min(spatial) / 8))``).
        fill: value of hidden pixels: a float (default ``0.0``, black) or ``"mean"`` (the
            per-channel mean of ``x``, i.e. roughly 0 after normalisation).

    Returns:
        ``{"curve": {fraction: accuracy}, "auc": float, "patch": int, "fill": fill}`` where ``auc``
        is the trapezoidal area under accuracy-vs-fraction divided by the fraction span (the mean
        accuracy over ``[0, 1]`` for the default fractions).
    """
    view = ModelView.of(model, normalize, **view_kw)
    check_x(x)
    if not 1 <= x.ndim - 2 <= 3:
        raise ValueError(f"x must have 1 to 3 spatial dims, got shape {tuple(x.shape)}")
    y = check_y(y, x.shape[0])
    fracs = [float(f) for f in fractions]
    if not fracs or any(not 0.0 <= f <= 1.0 for f in fracs):
        raise ValueError(f"fractions must be a non-empty sequence of values in [0, 1], got {list(fractions)}")
    g = default_generator(generator)
    spatial = tuple(x.shape[2:])
    area = math.prod(spatial)
    patch = _default_patch(spatial) if patch is None else int(patch)
    fill_shape = (1, x.shape[1]) + (1,) * len(spatial)
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be a float or 'mean', got {fill!r}")
        fill_t = x.double().mean(dim=(0, *range(2, x.ndim))).reshape(fill_shape).to(x.dtype)
    else:
        fill_t = torch.full(fill_shape, float(fill), dtype=x.dtype)
    fill_t = fill_t.to(x.device)
    ks = [_n_covered(f, area) for f in fracs]
    correct = [0] * len(fracs)
    with eval_mode(view.model), torch.no_grad():
        for sl in view.spans(x.shape[0]):
            xb, yb = x[sl], y[sl].cpu()
            order = occlusion_order(xb.shape[0], spatial, patch=patch, generator=g)
            for i, k in enumerate(ks):
                mask = _mask_from_order(order, k, spatial).to(xb.device).unsqueeze(1)
                correct[i] += view.n_correct(torch.where(mask, fill_t, xb), yb)
    accs = [c / x.shape[0] for c in correct]
    return {"curve": dict(zip(fracs, accs)), "auc": _auc(fracs, accs), "patch": patch, "fill": fill}

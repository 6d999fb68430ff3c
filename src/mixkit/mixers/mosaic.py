"""Mosaic: four images tiled around a random centre, labelled by area (YOLOv4's mosaic; kornia's RandomMosaic)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import sampling
from .._validate import check_range
from ..masks import box
from ..result import Lazy, MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["Mosaic"]


class Mosaic(Mixer):
    """Mosaic: a centre ``c`` splits the output into ``2**d`` quadrants (4 on images), each showing the corner of
    a different source that touches the centre; the label weights are the quadrants' areas.

    Per axis of size ``S``: ``v ~ U(center_range)``, ``c = ceil(v * S)``. Output cell ``t`` takes source
    ``q = sum_a [t_a >= c_a] * 2**a`` (axis 0 the first spatial axis; ``q = 0``, the top-left, is the sample itself)
    at ``(t - c) mod S``: the output is the ``S``-sized window at offset ``S - c`` of the ``2 x 2`` canvas of the
    sources, as kornia's ``RandomMosaic`` (``cropping_mode="slice"``, the default output size) takes it, so every
    pixel is a source's own pixel (no resize). Weight of source ``q``: the product over axes of ``c_a / S_a``
    (bit ``a`` of ``q`` unset) or ``1 - c_a / S_a`` (set).

    Args:
        center_range: the ``(min, max)`` range of the centre as a fraction of each side (default ``(0.3, 0.7)``,
            kornia's ``start_ratio_range``; kornia's ``(a, b)`` is ``(1 - b, 1 - a)`` here).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer` (``alpha`` is unused).

    ``MixResult.index`` ``(B, 2**d)``, ``weights`` the area shares, ``mask`` ``(B, 2**d, *spatial)``; ``lam`` is
    None; ``params["center"]`` ``(n, d)`` int64 (``n`` = 1 in batch mode, B in sample mode).

    See docs/methods/mosaic.md.
    """

    name = "mosaic"
    defaults = {"center_range": (0.3, 0.7)}
    summary = "four sources tiled around a random centre, label = area shares"
    paper = "Bochkovskiy et al., YOLOv4 (arXiv:2004.10934); kornia RandomMosaic"

    def __init__(self, center_range: Sequence[float] = (0.3, 0.7), **kw) -> None:
        if "alpha" in kw:
            raise TypeError("Mosaic draws no lambda: it takes no alpha (the centre is drawn from center_range)")
        super().__init__(1.0, **kw)
        self.center_range = check_range(center_range, "center_range")

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev, sizes = x.device, tuple(x.shape[2:])
        d = len(sizes)
        v = sampling.sample_uniform((self._n_draws(x), d), generator, *self.center_range).double()
        size_t = torch.tensor(sizes, dtype=torch.float64, device=v.device)
        center = torch.ceil(v * size_t).clamp_min(0).minimum(size_t).long().to(dev)
        index = sampling.k_way_index(x.shape[0], 2 ** d, generator, self.no_self_pairs).to(dev)
        return MixParams(active=active, draws={"center": center, "index": index})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        b, dev, sizes = x.shape[0], x.device, tuple(x.shape[2:])
        d, k = len(sizes), 2 ** len(sizes)
        center, index = params.draws["center"], params.draws["index"]
        size_t = torch.tensor(sizes, dtype=torch.long, device=dev)
        if params.active is not None:  # rows not selected by p: the centre at the far corner, all anchor
            center = torch.where(params.active.to(dev).unsqueeze(1), center.expand(b, d), size_t)
        shift = center.tolist()
        # the unshifted canvas: source q where, on every axis a, its bit says s_a < S_a - c_a
        canvas = _owner(center, sizes, size_t - center, below=True)
        out = x
        for q in range(1, k):
            out = torch.where(canvas.unsqueeze(1) == q, _ops.gather(x, index[:, q]), out)
        out = _roll(out, shift, sizes)
        out = _ops.keep_format(out, x) if out is not x else x.clone()
        if self.inplace:
            x.copy_(out)
            out = x
        owner = _owner(center, sizes, center, below=False)  # (n, *spatial), in output coordinates
        weights = _area_shares(center, size_t).float()
        weights = weights.expand(b, k).contiguous() if weights.shape[0] != b else weights
        mixed = torch.ones(b, dtype=torch.bool, device=dev) if params.active is None else params.active.to(dev)
        return MixResult(inputs=out, index=index, weights=weights, lam=None, mixed=mixed,
                         share_map=Lazy(box.owner_mask, owner, k, b), params={"center": center})

    def extra_repr(self) -> str:
        return super().extra_repr() + f", center_range={self.center_range}"


def _owner(center: Tensor, sizes: Sequence[int], split: Tensor, below: bool) -> Tensor:
    """``(n, *sizes)`` int64 quadrant of each cell: bit ``a`` set where ``t_a < split_a`` (``below``) or
    ``t_a >= split_a``."""
    n, d = center.shape
    owner = torch.zeros((n, *sizes), dtype=torch.long, device=center.device)
    for a, s in enumerate(sizes):
        ar = torch.arange(s, device=center.device)
        bit = (ar < split[:, a:a + 1]) if below else (ar >= split[:, a:a + 1])  # (n, s)
        shape = [n] + [1] * d
        shape[1 + a] = s
        owner = owner + bit.view(shape).long() * (2 ** a)
    return owner


def _roll(x: Tensor, shift, sizes: Sequence[int]) -> Tensor:
    """``out[..., t] = x[..., (t - shift) mod S]`` on every spatial axis: one shift for the batch (``shift`` a
    one-row list) or one per row."""
    if len(shift) == 1:
        return torch.roll(x, shifts=tuple(shift[0]), dims=tuple(range(2, 2 + len(sizes))))
    n, dev = x.shape[0], x.device
    shift_t = torch.tensor(shift, dtype=torch.long, device=dev)
    for a, s in enumerate(sizes):
        idx = (torch.arange(s, device=dev) - shift_t[:, a:a + 1]) % s  # (n, s)
        shape = [n] + [1] * (x.dim() - 1)
        shape[2 + a] = s
        x = torch.gather(x, 2 + a, idx.view(shape).expand(*x.shape[:2 + a], s, *x.shape[3 + a:]))
    return x


def _area_shares(center: Tensor, size_t: Tensor) -> Tensor:
    """``(n, 2**d)`` float64 area share of each quadrant (bit ``a`` of the column: past the centre on axis ``a``)."""
    n, d = center.shape
    lengths = torch.stack([center, size_t - center], -1)  # (n, d, 2): before / past the centre
    shares = torch.ones(n, 1, dtype=torch.float64, device=center.device)
    for a in range(d):  # column q = sum_a bit_a 2**a: axis a doubles the columns, its bit the high half
        part = lengths[:, a].double() / float(size_t[a])
        shares = torch.cat([shares * part[:, :1], shares * part[:, 1:]], 1)
    return shares

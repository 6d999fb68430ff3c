"""ResizeMix (Qin et al., "ResizeMix: Mixing Data with Preserved Object Information and True Labels",
arXiv 2012.11101; Computational Visual Media 2023)."""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import sampling
from ..masks import box
from ..result import MixResult
from . import _ops
from .base import Mixer
from .params import MixParams

__all__ = ["ResizeMix"]

_NEAREST = ("nearest", "nearest-exact")
_LINEAR = ("linear", "bilinear", "trilinear")
_INTERPOLATIONS = _NEAREST + _LINEAR + ("bicubic",)
_ROW_LOOP_CELLS = 1 << 15  # C * N from which the CPU pastes nearest patches row by row (the two cross near 3 x 112 x 112)


class ResizeMix(Mixer):
    """ResizeMix: paste the *whole* partner image, shrunk by a factor ``tau``, at a random location.

    ``tau ~ U(scale)`` (not a Beta); the patch has ``floor(size_i * tau)`` cells (at least 1) along every
    spatial dim, its corner is uniform over the positions that keep it fully inside (never clipped), and it
    holds ``F.interpolate(x[perm], size=patch, mode=interpolation)`` of the un-mixed partner. The anchor's
    label weight is exactly ``1 - |patch| / N``, its realised share. ``mode="batch"``: one ``tau`` and one
    location for the batch (as OpenMixup's port); ``"sample"``: both per row, vectorised.

    Args:
        scale: ``(min, max)`` of ``tau``, in ``(0, 1]`` (default ``(0.1, 0.8)``, the official config).
        use_alpha: draw ``tau ~ Beta(alpha, alpha)`` and re-draw it from ``U(scale)`` when it falls outside
            ``scale`` (OpenMixup's CIFAR configs); default False (the official uniform ``tau``).
        alpha: Beta concentration for ``use_alpha=True`` (default 1.0).
        interpolation: ``"nearest"`` (default, as the official code), ``"nearest-exact"``, ``"linear"`` /
            ``"bilinear"`` / ``"trilinear"`` (all three mean multilinear in every spatial dim) or ``"bicubic"``
            (2-D only).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    ``MixResult.lam`` is ``1 - tau ** d`` (the share before flooring the patch sides); ``params``: ``tau``
    ``(n,)`` float64 and ``box_lo``, ``box_hi`` ``(n, d)`` int64, the patch (``n`` = 1 in batch mode, B in
    sample mode).

    See docs/methods/resizemix.md.
    """

    name = "resizemix"
    defaults = {"scale": (0.1, 0.8)}
    summary = "paste the whole partner, shrunk by tau ~ U(0.1, 0.8)"
    paper = "Qin et al., arXiv:2012.11101 (CVMJ 2023)"

    def __init__(self, scale: Sequence[float] = (0.1, 0.8), *, use_alpha: bool = False, alpha: float = 1.0,
                 interpolation: str = "nearest", **kw) -> None:
        super().__init__(alpha, **kw)
        self.scale = self._check_scale(scale)
        if not isinstance(use_alpha, bool):
            raise TypeError(f"use_alpha must be a bool, got {type(use_alpha).__name__}")
        self.use_alpha = use_alpha
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
        self.interpolation = interpolation

    @staticmethod
    def _check_scale(scale) -> Tuple[float, float]:
        try:
            lo, hi = (float(v) for v in scale)
        except (TypeError, ValueError):
            raise TypeError(f"scale must be a pair (min, max) of numbers in (0, 1], got {scale!r} "
                            "(the Beta concentration is alpha=..., used with use_alpha=True)") from None
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got ({lo}, {hi})")
        return lo, hi

    def _check_input(self, x: Tensor) -> None:
        if self.interpolation == "bicubic" and x.dim() != 4:
            raise ValueError(f"interpolation='bicubic' needs 2 spatial dims, got x of shape {tuple(x.shape)}; "
                             "use 'linear' or 'nearest' for 1-D and 3-D data")

    def sample_tau(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        """``(n,)`` float64 resize factors: ``U(scale)``, or Beta re-drawn from ``U(scale)`` outside it."""
        lo, hi = self.scale
        u = torch.rand(n, generator=generator, device=sampling.gen_device(generator), dtype=torch.float64)
        u = lo + u * (hi - lo)
        if not self.use_alpha:
            return u
        t = sampling.sample_beta(self.alpha, self.alpha, (n,), generator, dtype=torch.float64)
        return torch.where((t < lo) | (t > hi), u, t)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        sizes = tuple(x.shape[2:])
        tau = self.sample_tau(self._n_draws(x), generator)
        size_t = torch.tensor(sizes, dtype=torch.float64, device=tau.device)
        lengths = torch.floor(tau.unsqueeze(1) * size_t).long().clamp(min=1)  # (n, d), <= size as tau <= 1
        lo, hi = box.place_inside(sizes, lengths, generator)
        partner = self._partner(x, generator)
        draws = {"tau": tau.to(dev), "box_lo": lo.to(dev), "box_hi": hi.to(dev), "patch_size": lengths.to(dev)}
        if self.mode == "batch":  # the box as ints, read where the draws live (the generator's device)
            draws["box_ints"] = (lo[0].tolist(), hi[0].tolist())
        lam = (1.0 - draws["tau"] ** len(sizes)).float()
        return MixParams(active=active, lam=lam, partner=partner, draws=draws)

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        d, patch, x_mix = params.draws, None, None
        if self.mode == "batch":  # the partners resized to the patch (one F.interpolate call), pasted at the box
            lo, hi = d["box_ints"]
            size = [z - a for a, z in zip(lo, hi)]
            patch = F.interpolate(x, size=size, mode=self._mode(x.dim() - 2), **self._corners())
            patch = patch.index_select(0, params.partner)
        else:
            x_mix = self._paste_rows(x, params.partner, d["box_lo"], d["patch_size"], params.active)
        return self._box_apply(x, params, params.lam, patch=patch, x_mix=x_mix, tau=d["tau"])

    def _mode(self, d: int) -> str:
        if self.interpolation in _LINEAR:
            return ("linear", "bilinear", "trilinear")[d - 1]
        return self.interpolation

    def _corners(self) -> dict:
        return {} if self.interpolation in _NEAREST else {"align_corners": False}

    # ------------------------------------------------------------------ sample mode
    def _paste_rows(self, x: Tensor, partner: Tensor, lo: Tensor, length: Tensor,
                    active: Optional[Tensor]) -> Tensor:
        """Paste row ``i``'s partner, resized to ``length[i]``, at ``lo[i]``: one gather and one scatter
        over the flat ``(B, C, N)`` batch.

        Every row works on a patch grid of the largest possible patch (``floor(size * scale[1])`` per
        axis, static, so nothing waits on the device); cells past a row's own patch repeat its last cell,
        so they write the same value to the same place and the scatter stays deterministic.
        """
        b, c = x.shape[:2]
        sizes = tuple(x.shape[2:])
        d, n = len(sizes), math.prod(sizes)
        dev = x.device
        nearest = self.interpolation in _NEAREST
        if nearest and dev.type == "cpu" and c * n >= _ROW_LOOP_CELLS:
            return self._paste_each(x, partner, lo, length, active)
        op = torch.float64 if (x.dtype == torch.float64 and dev.type == "cpu") else torch.float32
        cells, src, dst, stride, real = [None] * d, None, None, 1, None
        grad = torch.is_grad_enabled() and x.requires_grad
        for i in reversed(range(d)):  # flat cell offsets, the last axis fastest
            s = sizes[i]
            most = max(math.floor(s * self.scale[1]), 1)
            reach, near = _cell_tables(s, most, self.interpolation == "nearest-exact", op, dev)
            li = length[:, i].to(dev) - 1
            r = reach.index_select(0, li)  # (B, L_i): min(j, length - 1)
            shape = [b] + [1] * d
            shape[1 + i] = most
            cells[i] = (r, shape)
            dst_i = ((lo[:, i, None].to(dev) + r) * stride).view(shape)
            dst = dst_i if dst is None else dst + dst_i
            if grad:  # the cells of the row's own patch (the rest repeat its last cell)
                own_i = (torch.arange(most, device=dev) < length[:, i, None].to(dev)).view(shape)
                real = own_i if real is None else real & own_i
            if nearest:
                src_i = (near.index_select(0, li) * stride).view(shape)
                src = src_i if src is None else src + src_i
            stride *= s
        dst = dst.reshape(b, 1, -1)
        cols = dst.shape[2]
        if nearest:
            src = src.reshape(b, 1, -1)
            if active is not None:  # rows not selected by p copy their own pixels back
                keep = active.to(dev)
                partner = torch.where(keep, partner.to(dev), torch.arange(b, device=dev))
                src = torch.where(keep.view(b, 1, 1), src, dst)
            parts = x.index_select(0, partner.to(dev)).reshape(b, c, n)
            vals = parts.gather(2, src.expand(b, c, cols))  # (B, C, L)
        else:
            vals = self._sampled_cells(x, partner, cells, length).reshape(b, c, cols)
            if active is not None:
                own = x.reshape(b, c, n).gather(2, dst.expand(b, c, cols))
                vals = torch.where(active.to(dev).view(b, 1, 1), vals, own)
        if grad:  # repeated cells write into a spare cell past the end: one gradient per shown pixel
            dst = torch.where(real.reshape(b, 1, -1), dst, n)
            spare = torch.cat([x.reshape(b, c, n), x.new_zeros(b, c, 1)], 2)
            out = spare.scatter(2, dst.expand(b, c, cols), vals)[..., :n].reshape(x.shape)
            return x.copy_(out) if self.inplace else _ops.keep_format(out, x)
        flat = x.contiguous()  # `vals` is read first: the sources are un-mixed
        out = flat if (self.inplace or flat is not x) else flat.clone()
        out.view(b, c, n).scatter_(2, dst.expand(b, c, cols), vals)
        if self.inplace:
            return x if out is x else x.copy_(out)
        return _ops.keep_format(out, x)

    def _paste_each(self, x: Tensor, partner: Tensor, lo: Tensor, length: Tensor,
                    active: Optional[Tensor]) -> Tensor:
        """The nearest paste row by row (large images on the CPU, where moving only each row's own patch
        beats the padded batched grid): ``F.interpolate`` of the partner into its box, the rule the batched
        path reproduces. Every patch is read before anything is written."""
        rows = range(x.shape[0]) if active is None else [i for i, a in enumerate(active.tolist()) if a]
        js, los, lens = partner.tolist(), lo.tolist(), length.tolist()
        patches = [F.interpolate(x[js[i]:js[i] + 1], size=lens[i], mode=self.interpolation)[0] for i in rows]
        out = x if self.inplace else x.clone()
        for i, patch in zip(rows, patches):
            out[(i, slice(None)) + tuple(slice(a, a + z) for a, z in zip(los[i], lens[i]))] = patch
        return out

    def _sampled_cells(self, x: Tensor, partner: Tensor, cells, length: Tensor) -> Tensor:
        # grid_sample with align_corners=False reads input coordinate ((g + 1) * in - 1) / 2; choosing
        # g = 2 * (j + 0.5) / len - 1 for patch cell j gives (j + 0.5) * in / len - 0.5, F.interpolate's
        # source coordinate for align_corners=False. Border padding reproduces its clamping at the edges.
        b = x.shape[0]
        d = len(cells)
        work = torch.float32 if x.dtype in _ops._LOW else x.dtype
        src = _ops.gather(x, partner).to(work)
        grid_shape = [b] + [r.shape[1] for r, _ in cells]
        coords = []
        for i, (r, shape) in enumerate(cells):
            g = 2.0 * (r.to(work) + 0.5) / length[:, i, None].to(work) - 1.0  # (B, L_i)
            coords.append(g.view(shape).expand(grid_shape))
        grid = torch.stack(coords[::-1], dim=-1)  # grid_sample wants (x, y[, z]): last dim first
        mode = "bicubic" if self.interpolation == "bicubic" else "bilinear"
        if d == 1:  # as an image of height 1
            grid = torch.stack([grid[..., 0], torch.zeros_like(grid[..., 0])], -1).unsqueeze(1)
            out = F.grid_sample(src.unsqueeze(2), grid, mode=mode, padding_mode="border", align_corners=False).squeeze(2)
        else:
            out = F.grid_sample(src, grid, mode=mode, padding_mode="border", align_corners=False)
        return out.to(x.dtype)  # (B, C, *L)

    def extra_repr(self) -> str:
        extra = f", scale={self.scale}, interpolation={self.interpolation!r}"
        return super().extra_repr() + extra + (", use_alpha=True" if self.use_alpha else "")


@functools.lru_cache(maxsize=64)
def _cell_tables(size: int, most: int, exact: bool, op: torch.dtype, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Per-axis index maps ``(size, most)`` int64, row ``l - 1`` for a patch of ``l`` cells: ``min(j, l - 1)``
    (the patch cell, the last one repeated) and the partner cell it reads under the nearest rule.

    F.interpolate's nearest rule for an explicit output size: with scale = in / out, output cell j reads
    floor(j * scale) ("nearest") or floor((j + 0.5) * scale) ("nearest-exact"), capped at in - 1. torch
    computes this in float32, except for float64 inputs on the CPU, where scale and product are float64
    and the product is rounded to float32 before the floor; the same arithmetic is repeated here so the
    patch is bit-identical to F.interpolate.
    """
    lengths = torch.arange(1, size + 1, device=device).unsqueeze(1)  # (size, 1)
    reach = torch.minimum(torch.arange(most, device=device), lengths - 1)  # (size, most)
    scale = torch.tensor(float(size), dtype=op, device=device) / lengths.to(op)
    pos = reach.to(op) + 0.5 if exact else reach.to(op)
    near = torch.floor((pos * scale).float()).long().clamp(0, size - 1)
    return reach, near

"""Tensor operations shared by the mixers: gathering partners, interpolating, blending with masks,
pasting one box, and the k-source weighted blend.

Low-precision inputs (fp16/bf16) are blended in float32 and rounded once at the end, so the realised
share of each source equals the float32 label weight up to the output's own rounding.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

_LOW = (torch.float16, torch.bfloat16)


def keep_format(out: Tensor, like: Tensor) -> Tensor:
    """Give ``out`` the memory format of ``like`` (channels_last / channels_last_3d kept)."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last)
    if like.dim() == 5 and like.is_contiguous(memory_format=torch.channels_last_3d) and not like.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last_3d)
    return out


def gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` along the batch dim (a copy), keeping the memory format."""
    return keep_format(x.index_select(0, index.to(x.device)), x)


def rows_view(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-row vector ``(B,)`` (or scalar ``(1,)``) to broadcast against ``x``."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def lerp(x: Tensor, partner: Tensor, w: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """``w * x + (1 - w) * partner`` with ``w`` float32 broadcastable to ``x`` (a scalar, per-row or per-pixel share)."""
    w = w.to(x.device)
    if x.dtype in _LOW:
        res = torch.lerp(partner.float(), x.float(), w.float()).to(x.dtype)
        if out is not None:
            out.copy_(res)
            return out
        return keep_format(res, x)
    res = torch.lerp(partner, x, w.to(x.dtype), out=out)
    return keep_format(res, x) if out is None else res


def where(share_map: Tensor, x: Tensor, partner: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Hard mask blend: ``x`` where the bool ``share_map`` is True, ``partner`` elsewhere (broadcastable)."""
    share_map = share_map.to(x.device)
    if out is not None:
        return torch.where(share_map, x, partner, out=out)
    return keep_format(torch.where(share_map, x, partner), x)


def mix_pair(x: Tensor, partner_index: Tensor, share_map: Tensor, inplace: bool = False) -> Tensor:
    """``s * x + (1 - s) * x[partner_index]`` for the anchor's share map ``s``: the two-source blend every
    region method ends with.

    ``share_map`` is the anchor's share, float (per row or per pixel, broadcastable to ``x``) or bool
    (hard masks, True where the anchor stays: an exact copy of each pixel's source). The partner batch is gathered once and, being
    a fresh copy, the blend is written into it, so a call allocates one batch rather than two -- unless
    autograd has to record the blend (then a new tensor) or ``inplace`` (then ``x`` is overwritten).
    """
    partner = gather(x, partner_index)
    if inplace:
        out = x
    elif torch.is_grad_enabled() and x.requires_grad:
        out = None
    else:
        out = partner
    if share_map.dtype == torch.bool:
        return where(share_map, x, partner, out=out)
    return lerp(x, partner, share_map, out=out)


def paste_box(x: Tensor, partner_index: Tensor, lo: Sequence[int], hi: Sequence[int], patch: Optional[Tensor] = None,
              inplace: bool = False) -> Tensor:
    """``x`` with the box ``[lo, hi)`` (ints per spatial dim) of every row replaced: the batch-mode paste.

    The box holds the partners' own pixels there (``patch=None``: CutMix, SaliencyMix) or ``patch``
    ``(B, C, *box)`` (ResizeMix's resized partners). Only the box is copied from the partners; the patch
    is read before anything is written, so the sources are un-mixed also with ``inplace`` (then ``x`` is
    overwritten).
    """
    region = (slice(None), slice(None)) + tuple(slice(a, z) for a, z in zip(lo, hi))
    if patch is None:
        patch = x[region].index_select(0, partner_index)
    out = x if inplace else x.clone()  # clone keeps the memory format
    out[region] = patch
    return keep_format(out, x)


def blend(x: Tensor, index: Tensor, shares: Tensor, inplace: bool = False) -> Tensor:
    """``sum_j shares[:, j] * x[index[:, j]]``: the k-source weighted blend (DirichletMixUp, Co-Mixup).

    ``index`` ``(B, k)`` with column 0 the row itself; ``shares`` ``(B, k)`` (one weight per row and source)
    or ``(B, k, *spatial)`` (per-pixel shares). fp16/bf16 inputs accumulate in float32 and are rounded
    once at the end. A source contributes nothing where its share is 0 (not ``0 * x``, which is NaN
    for a NaN or infinite pixel of a source the output does not use).
    """
    calc = torch.promote_types(x.dtype, torch.float32)

    def share_of(j: int) -> Tensor:
        s = shares[:, j:j + 1]
        return s.reshape(*s.shape, *([1] * (x.dim() - s.dim()))).to(calc)

    def term(src: Tensor, j: int) -> Tensor:
        s = share_of(j)
        return torch.where(s != 0, src.to(calc) * s, torch.zeros((), dtype=calc, device=src.device))

    acc = term(x, 0)
    for j in range(1, index.shape[1]):
        acc = acc + term(gather(x, index[:, j]), j)
    out = acc.to(x.dtype)
    if inplace:
        x.copy_(out)
        out = x
    return keep_format(out, x)

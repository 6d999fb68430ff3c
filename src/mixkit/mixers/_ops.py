"""Tensor operations shared by the mixers: gathering partners, interpolating, blending with masks,
pasting one box, and the k-source weighted blend.

Low-precision inputs (fp16/bf16) are blended in float32 and rounded once at the end, so the realised
share of each source equals the float32 label weight up to the output's own rounding.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

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


_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}
# Per-row elements from which copying only the boxes beats blending the whole batch (CPU): the copy
# costs a Python step per row, the blend a pass over every pixel.
ROW_COPY_MIN = 1 << 15
# Batch bytes up to which the bit-select (three passes, in cache) beats ``torch.where`` (one pass) on CPU.
BITS_MAX_BYTES = 1 << 23


def select_bits(share_map: Tensor, x: Tensor, partner: Tensor, out: Tensor) -> Tensor:
    """:func:`where` written into ``out`` (``partner`` or ``x`` itself) with integer bit operations on the
    floats' bits: ``other ^ ((out ^ other) & m)``, ``m`` -1 where ``out`` keeps its pixel, 0 elsewhere. It copies each pixel's bits exactly (NaN, inf and
    signed zeros stay where they are) and, unlike ``torch.where``'s CPU kernel, its cost does not depend
    on the mask. Needs a floating ``x`` of 2, 4 or 8 bytes and no autograd."""
    it = _BITS[x.element_size()]
    m = share_map.to(x.device, it)  # 1 where the anchor stays
    if out is partner:
        m.sub_(1)  # -1 where the partner stays
        other = x
    else:
        m.neg_()  # -1 where the anchor stays
        other = partner
    o, v = out.view(it), other.view(it)
    o.bitwise_xor_(v).bitwise_and_(m).bitwise_xor_(v)
    return out


def paste_rows(x: Tensor, partner_index: Tensor, lo: Tensor, hi: Tensor, inplace: bool = False,
               under: Optional[Callable[[], Tensor]] = None) -> Tensor:
    """``x`` with row ``i``'s box ``[lo[i], hi[i])`` (``(n, d)`` ints, ``n`` = 1 or B) holding the pixels of
    row ``partner_index[i]``: the sample-mode paste, copying only the boxes (exact, also for NaN/inf,
    and differentiable). With ``inplace`` the boxes are read before any is written, then ``x`` is
    overwritten. ``under()``: the batch the boxes go onto (``x`` itself with ``inplace``), e.g. a blend."""
    b = x.shape[0]
    lo_l, hi_l, src = lo.tolist(), hi.tolist(), partner_index.tolist()
    if len(lo_l) == 1:
        lo_l, hi_l = lo_l * b, hi_l * b
    moves = []  # (size, offset in a row, row, source row): one strided view per box (cheaper than indexing)
    for i in range(b):
        size = (x.shape[1],) + tuple(z - a for a, z in zip(lo_l[i], hi_l[i]))
        if min(size) > 0:
            moves.append((size, lo_l[i], i, src[i]))

    def view(t: Tensor, st: Sequence[int], size, corner, row: int) -> Tensor:
        return t.as_strided(size, st[1:], t.storage_offset() + row * st[0] + sum(a * s for a, s in zip(corner, st[2:])))

    st_x = x.stride()
    patches = [view(x, st_x, size, c, j) for size, c, _, j in moves]
    if inplace:
        patches = [p.clone() for p in patches]  # read every box before any is written
    out = under() if under is not None else x if inplace else x.clone()  # clone keeps the memory format
    st_o = out.stride()
    for (size, c, i, _), patch in zip(moves, patches):
        view(out, st_o, size, c, i).copy_(patch)
    return out if inplace else keep_format(out, x)


def _may_have_ends(w: Tensor) -> bool:
    """Whether a share map in ``[0, 1]`` may hold an exact 0 or 1 (a source left out there): read for a
    scalar or per-row map on the CPU, assumed otherwise (no device sync)."""
    if w.numel() > 4096 or w.device.type != "cpu":
        return True
    vals = w.reshape(-1).tolist()
    return 0.0 in vals or 1.0 in vals


def _all_finite(t: Tensor) -> bool:
    """No NaN/inf in ``t`` (one reduction; a sum that overflows only sends the caller to its exact path)."""
    return t.numel() == 0 or bool(torch.isfinite(t.sum(dtype=torch.promote_types(t.dtype, torch.float32))))


def _lerp_safe(x: Tensor) -> bool:
    """No NaN/inf in ``x`` and no difference of two of its values overflows in the blend's precision: then
    ``torch.lerp`` with weight 0 (1) returns its start (end) exactly (0 * a finite difference)."""
    if x.numel() == 0:
        return True
    calc = torch.promote_types(x.dtype, torch.float32)
    return bool(torch.isfinite(x.amax().to(calc) - x.amin().to(calc)))


def _lerp_exact(x: Tensor, partner: Tensor, w: Tensor) -> Tensor:
    """:func:`lerp` that takes ``partner`` where ``w`` is 0 and ``x`` where it is 1, whatever the other holds."""
    w = w.to(x.device)
    res = torch.where(w == 0, partner, lerp(x, partner, w))
    return keep_format(torch.where(w == 1, x, res), x)


def copies_rows(x: Tensor, inplace: bool = False) -> bool:
    """Whether a box blend of ``x`` copies each row's box (:func:`paste_rows`: large CPU images) rather
    than reading a full-size share map."""
    grad = torch.is_grad_enabled() and x.requires_grad
    return x.device.type == "cpu" and math.prod(x.shape[1:]) >= ROW_COPY_MIN and not (inplace and grad)


def mix_pair(x: Tensor, partner_index: Tensor, share_map: Tensor, inplace: bool = False,
             box: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """``s * x + (1 - s) * x[partner_index]`` for the anchor's share map ``s``: the two-source blend every
    region method ends with.

    ``share_map`` is the anchor's share, float (per row or per pixel, broadcastable to ``x``) or bool
    (hard masks, True where the anchor stays: an exact copy of each pixel's source). The partner batch is gathered once and, being
    a fresh copy, the blend is written into it, so a call allocates one batch rather than two -- unless
    autograd has to record the blend (then a new tensor) or ``inplace`` (then ``x`` is overwritten).
    A float map with exact 0s or 1s on an input holding NaN/inf takes the left-out source's pixels out.
    ``box`` ``(lo, hi)``: the bool map is True outside one box per row (``(n, d)`` ints); large CPU
    images then copy only the boxes (:func:`paste_rows`).
    """
    grad = torch.is_grad_enabled() and x.requires_grad
    hard = share_map.dtype == torch.bool
    cpu = x.device.type == "cpu"
    if hard and box is not None and copies_rows(x, inplace):
        return paste_rows(x, partner_index, box[0], box[1], inplace)
    partner = gather(x, partner_index)
    if inplace:
        out = x
    elif grad:
        out = None
    else:
        out = partner
    if hard:
        if (out is not None and not grad and cpu and x.is_floating_point() and x.element_size() in _BITS
                and x.numel() * x.element_size() <= BITS_MAX_BYTES):
            return select_bits(share_map, x, partner, out)
        return where(share_map, x, partner, out=out)
    if not _may_have_ends(share_map):
        return lerp(x, partner, share_map, out=out)
    # A source left out somewhere (share 0 or 1) must not spread its NaN/inf there (0 * NaN): the blend is
    # exact wherever it comes out finite; otherwise it is redone from the sources. Accelerators blend
    # exactly at once (no device sync).
    if not cpu or (inplace and not _lerp_safe(x)):
        res = _lerp_exact(x, partner, share_map)
        return x.copy_(res) if inplace else res
    res = lerp(x, partner, share_map, out=out)
    if inplace or _all_finite(res):
        return res
    return _lerp_exact(x, gather(x, partner_index), share_map)


def lerp_paste(x: Tensor, partner_index: Tensor, share_map: Tensor, w: Tensor, lo: Tensor, hi: Tensor,
               inplace: bool = False) -> Tensor:
    """:func:`mix_pair` for a ``share_map`` that is ``w`` ``(n,)`` outside one box ``[lo, hi)`` per row and 0
    inside (HMix); large CPU images blend with the per-row ``w`` and copy the partners' boxes over it."""
    grad = torch.is_grad_enabled() and x.requires_grad
    if x.device.type != "cpu" or math.prod(x.shape[1:]) < ROW_COPY_MIN or (inplace and grad):
        return mix_pair(x, partner_index, share_map, inplace)
    w = rows_view(w.to(x.device, torch.float32), x)
    return paste_rows(x, partner_index, lo, hi, inplace, under=lambda: mix_pair(x, partner_index, w, inplace))


def paste_box(x: Tensor, partner_index: Tensor, lo: Sequence[int], hi: Sequence[int], patch: Optional[Tensor] = None,
              inplace: bool = False) -> Tensor:
    """``x`` with the box ``[lo, hi)`` (ints per spatial dim) of every row replaced: the batch-mode paste.

    The box holds the partners' own pixels there (``patch=None``: CutMix, SaliencyMix) or ``patch``
    ``(B, C, *box)`` (ResizeMix's resized partners). Only the box is copied from the partners; the patch
    is read before anything is written, so the sources are un-mixed also with ``inplace`` (then ``x`` is
    overwritten).
    """
    region = (slice(None), slice(None)) + tuple(slice(a, z) for a, z in zip(lo, hi))
    if patch is None and not inplace and not (torch.is_grad_enabled() and x.requires_grad):
        out = x.clone()  # keeps the memory format; the partners' boxes are gathered straight into it
        torch.index_select(x[region], 0, partner_index.to(x.device), out=out[region])
        return out
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

"""Saliency-driven block transport of PuzzleMix (Kim, Choo, Song, ICML 2020), batched in PyTorch.

After the labelling step, PuzzleMix moves the blocks of each source image so that its salient blocks land
where the mask keeps that image: ``cost[i, j] = eps * C[i, j] - s_i * [mask_j > 0]`` (``C`` the squared grid
distance between blocks ``i`` and ``j`` over ``(n - 1)**2`` for a grid side ``n``, :func:`transport_cost`;
``s`` the image's block saliency, summing to 1), assigned by the official greedy rounds
(:func:`greedy_assignment`) and completed into a permutation (:func:`complete_permutation`), so every block
is moved exactly once. How this differs from the official ``mask_transport`` / ``transport_image``, which
can drop blocks: docs/methods/puzzlemix.md.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["transport_cost", "greedy_assignment", "complete_permutation", "mask_transport",
           "permute_blocks"]


def transport_cost(grid: Tuple[int, int], device=None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(n, n)`` squared distances between the blocks of a ``(gh, gw)`` grid over ``(max(gh, gw) - 1)**2``.

    Row-major block order. For a square grid this is the official ``cost_matrix(width)``.
    """
    gh, gw = int(grid[0]), int(grid[1])
    side = max(gh, gw)
    r = torch.arange(gh, device=device, dtype=torch.float64).repeat_interleave(gw)
    c = torch.arange(gw, device=device, dtype=torch.float64).repeat(gh)
    d = (r[:, None] - r[None, :]).square() + (c[:, None] - c[None, :]).square()
    return (d / max(side - 1, 1) ** 2).to(dtype)


def greedy_assignment(cost: Tensor, n_iter: int) -> Tuple[Tensor, Tensor]:
    """The official greedy rounds on ``cost (B, n, n)`` (rows: source blocks, columns: destinations).

    Each round every source picks its cheapest destination; among the sources that picked the same one the
    cheapest wins (ties: the lowest index) and every loser's chosen entry is raised by 1 for the next round.
    Returns ``choice (B, n)`` int64 (the destination each source picked in the last round) and
    ``win (B, n)`` bool (whether it won that destination); the winners form a partial permutation.
    """
    return _greedy_inplace(cost.clone(memory_format=torch.contiguous_format), n_iter)


def _greedy_inplace(cost: Tensor, n_iter: int) -> Tuple[Tensor, Tensor]:
    """:func:`greedy_assignment` on a contiguous ``cost`` it may modify."""
    b, n, _ = cost.shape
    table = _Rows(cost.view(b * n, n))
    choice = table.data.argmin(-1)
    return _greedy_rounds(choice, table.data.gather(1, choice.unsqueeze(1)).squeeze(1), table, b, n, n_iter)


class _Rows:
    """The cost rows of the greedy rounds: all of them (``make=None``: row ``i`` at ``data[i]``), or only
    those built so far by ``make(rows)``, stored compactly at ``data[slot(rows)]``."""

    def __init__(self, data: Tensor, total: int = 0, make: Optional[Callable[[Tensor], Tensor]] = None) -> None:
        self.data, self.size, self.make = data, 0, make
        self.where = torch.full((total,), -1, dtype=torch.long, device=data.device)

    def slot(self, rows: Tensor) -> Tensor:
        if self.make is None:
            return rows
        fresh = rows[self.where.index_select(0, rows) < 0]
        k = int(fresh.numel())
        if k:
            if self.size + k > self.data.shape[0]:
                grown = self.data.new_empty(max(2 * self.data.shape[0], self.size + k), self.data.shape[1])
                grown[: self.size] = self.data[: self.size]
                self.data = grown
            self.data[self.size:self.size + k] = self.make(fresh)
            self.where[fresh] = torch.arange(self.size, self.size + k, device=rows.device)
            self.size += k
        return self.where.index_select(0, rows)


def _greedy_rounds(choice: Tensor, chosen: Tensor, table: _Rows, b: int, n: int,
                   n_iter: int) -> Tuple[Tensor, Tensor]:
    """The rounds of :func:`greedy_assignment` from the first picks ``choice (B * n,)`` (values ``chosen``)
    on the cost rows of ``table`` (updated in place).

    Only a loser's row changes in a round, so only the losers' rows are searched again (the same
    first-minimum ``argmin``, hence the same result as searching every row), and the rounds stop once a
    round has no loser (every later round would repeat it).
    """
    dev = choice.device
    ar = torch.arange(n, device=dev).expand(b, n)
    big = torch.full((b, n), n, dtype=torch.long, device=dev)
    inf = torch.full((b, n), float("inf"), dtype=chosen.dtype, device=dev)
    rounds = max(int(n_iter), 1)
    for it in range(rounds):
        c2, v2 = choice.view(b, n), chosen.view(b, n)
        best = inf.scatter_reduce(1, c2, v2, "amin", include_self=True)
        contender = v2 == best.gather(1, c2)
        first = big.scatter_reduce(1, c2, torch.where(contender, ar, big), "amin", include_self=True)
        win = first.gather(1, c2) == ar
        if it == rounds - 1:
            break
        lose = (~win).view(-1).nonzero().squeeze(1)
        if lose.numel() == 0:
            break
        sl = table.slot(lose)
        data = table.data.view(-1)
        at = sl * n + choice.index_select(0, lose)
        data.index_put_((at,), data.index_select(0, at) + 1.0)   # the loser's pick costs 1 more
        sub = table.data.index_select(0, sl)
        nc = sub.argmin(-1)
        choice[lose] = nc
        chosen[lose] = sub.gather(1, nc.unsqueeze(1)).squeeze(1)
    return choice.view(b, n), win


def complete_permutation(choice: Tensor, win: Tensor) -> Tensor:
    """Complete a partial assignment into a permutation ``dest (B, n)``: source ``i`` goes to ``dest[i]``.

    Winners keep their destination; an unassigned source whose own position is free stays in place;
    the remaining unassigned sources fill the remaining free positions in increasing index order.
    """
    b, n = choice.shape
    dev = choice.device
    ar = torch.arange(n, device=dev).expand(b, n)
    dest = torch.where(win, choice, torch.full_like(choice, -1))
    taken = torch.zeros(b, n, dtype=torch.int32, device=dev).scatter_add_(1, choice, win.to(torch.int32)) > 0
    stay = (dest < 0) & ~taken
    dest = torch.where(stay, ar, dest)
    taken = taken | stay
    src_left = dest < 0
    m = src_left.sum(1, keepdim=True)
    src_order = torch.argsort(torch.where(src_left, ar, ar + n), dim=1, stable=True)
    dst_order = torch.argsort(torch.where(~taken, ar, ar + n), dim=1, stable=True)
    fill = torch.where(ar < m, dst_order, dest.gather(1, src_order))
    return dest.scatter(1, src_order, fill)


def mask_transport(mask: Tensor, saliency: Tensor, eps: float = 0.8, n_iter: Optional[int] = None) -> Tensor:
    """Block permutation ``dest (B, gh * gw)`` int64 for one source image per row.

    Args:
        mask: ``(B, gh, gw)`` share of this image at each block (> 0 means the image is visible there).
        saliency: ``(B, gh, gw)`` block saliency of this image, normalised per sample (sum 1).
        eps: weight of the move-distance cost (official ``t_eps``, default 0.8).
        n_iter: greedy rounds; default the grid side ``max(gh, gw)`` as the official code.
    """
    b, gh, gw = mask.shape
    n = gh * gw
    ec = eps * transport_cost((gh, gw), device=mask.device, dtype=torch.float32)
    z = (mask.reshape(b, n) > 0).to(torch.float32)
    s = saliency.reshape(b, n).to(torch.float32)
    # cost[b, i, j] = ec[i, j] - s[b, i] * z[b, j] is never built whole, only the rows searched (the same
    # float32 values, so the same result): a row whose block is kept (z = 1) picks its own place i (cost
    # -s[b, i]) when every move costs more (checked in float32 below); the other rows are searched chunk by
    # chunk, and a row again only when it loses a round.
    sf, zf = s.reshape(-1), z.reshape(-1)

    def make(rows: Tensor) -> Tensor:
        return ec.index_select(0, rows % n) - sf.index_select(0, rows).unsqueeze(1) * z.index_select(0, rows // n)

    diag = ec.diagonal().repeat(b)
    off = ec + torch.diag(torch.full((n,), float("inf"), device=ec.device))
    move = off.amin(1).repeat(b)                                    # the cheapest move of each row
    stay = (zf > 0) & (sf >= 0) & (diag == 0) & (move - sf > diag - sf)
    choice = torch.arange(n, device=mask.device).repeat(b)
    chosen = diag - sf * zf
    rest = (~stay).nonzero().squeeze(1)
    step = max(1, (1 << 18) // n)
    for r0 in range(0, int(rest.numel()), step):
        rows = rest[r0:r0 + step]
        blk = make(rows)
        i = blk.argmin(-1)
        choice[rows] = i
        chosen[rows] = blk.gather(1, i.unsqueeze(1)).squeeze(1)
    table = _Rows(ec.new_empty(min(b * n, 1024), n), b * n, make)
    choice, win = _greedy_rounds(choice, chosen, table, b, n, max(gh, gw) if n_iter is None else n_iter)
    return complete_permutation(choice, win)


def permute_blocks(x: Tensor, dest: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Move block ``i`` of ``x (B, C, H, W)`` (a ``(gh, gw)`` grid, row-major) to position ``dest[:, i]``.

    ``dest`` must hold a permutation per row; the result is a new tensor with the same blocks.
    """
    b, ch, h, w = x.shape
    gh, gw = int(grid[0]), int(grid[1])
    if h % gh or w % gw:
        raise ValueError(f"the transport grid {(gh, gw)} does not divide the image size {(h, w)}")
    th, tw = h // gh, w // gw
    n = gh * gw
    src = torch.empty_like(dest).scatter_(1, dest, torch.arange(n, device=dest.device).expand(b, n))
    blocks = x.reshape(b, ch, gh, th, gw, tw).permute(0, 2, 4, 1, 3, 5).reshape(b, n, ch, th, tw)
    moved = blocks[torch.arange(b, device=x.device).unsqueeze(1), src.to(x.device)]
    return moved.reshape(b, gh, gw, ch, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(b, ch, h, w)

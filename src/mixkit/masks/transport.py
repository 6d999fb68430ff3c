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

from typing import Optional, Tuple

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
    b, n, _ = cost.shape
    cost = cost.clone()
    ar = torch.arange(n, device=cost.device).expand(b, n)
    big = torch.full((b, n), n, dtype=torch.long, device=cost.device)
    inf = torch.full((b, n), float("inf"), dtype=cost.dtype, device=cost.device)
    choice = cost.argmin(-1)
    win = torch.ones(b, n, dtype=torch.bool, device=cost.device)
    for _ in range(max(int(n_iter), 1)):
        choice = cost.argmin(-1)
        chosen = cost.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        best = inf.scatter_reduce(1, choice, chosen, "amin", include_self=True)
        contender = chosen == best.gather(1, choice)
        first = big.scatter_reduce(1, choice, torch.where(contender, ar, big), "amin", include_self=True)
        win = first.gather(1, choice) == ar
        cost.scatter_add_(-1, choice.unsqueeze(-1), (~win).to(cost.dtype).unsqueeze(-1))
    return choice, win


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
    c = transport_cost((gh, gw), device=mask.device, dtype=torch.float32)
    z = (mask.reshape(b, 1, n) > 0).to(torch.float32)
    cost = eps * c.unsqueeze(0) - saliency.reshape(b, n, 1).to(torch.float32) * z
    choice, win = greedy_assignment(cost, max(gh, gw) if n_iter is None else n_iter)
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

"""A batched solver for small multi-label grid MRFs on 1-, 2- and 3-D grids (Co-Mixup's labelling step).

It minimises ``sum_p U[p, x_p] + beta * sum_{p~q} V[x_p, x_q]`` over the 2-/4-/6-neighbourhood of a
grid, for a batch of problems that each have their own label-pair costs ``V``, in pure PyTorch on any
device. The method is a descent (exact line by line, not a global minimum): see :func:`solve_grid_mrf`.
:mod:`mixkit.masks.graphcut` holds the exact 2-D solvers PuzzleMix uses.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["solve_grid_mrf", "grid_energy"]


def solve_grid_mrf(unary: Tensor, pairwise: Tensor, beta: float, *, sweeps: int = 8,
                   init: Optional[Tensor] = None) -> Tensor:
    """Approximately minimise ``sum_p U[p, x_p] + beta * sum_{p~q} V[x_p, x_q]`` on grids, batched.

    Args:
        unary: ``(P, *grid, L)`` costs (1 to 3 grid dims), any float dtype.
        pairwise: ``(P, L, L)`` symmetric label-pair costs (or ``(L, L)`` shared).
        beta: edge weight (every edge of the 4-/6-neighbourhood).
        sweeps: maximum number of sweeps (stops earlier when no label changes).
        init: optional ``(P, *grid)`` starting labelling; by default two starts are run (the unary
            minimiser and the best single label for the whole grid) and the lower energy is kept.

    Method: block coordinate descent with grid lines as blocks. For each axis, the lines of even
    parity (sum of the other coordinates) are re-labelled jointly and exactly by Viterbi given their
    (fixed) neighbours on the other lines, then the odd ones. Lines of one parity do not touch, so each
    step is an exact minimisation and the energy never increases. A 1-D grid is solved exactly.

    Returns the labels ``(P, *grid)`` int64.
    """
    P = unary.shape[0]
    grid = tuple(unary.shape[1:-1])
    L = unary.shape[-1]
    if pairwise.dim() == 2:
        pairwise = pairwise.expand(P, L, L)
    bp = beta * pairwise.to(unary.dtype)
    if init is not None:
        x = _chain_icm(unary, bp, init.long(), sweeps)
        return x
    flat = unary.reshape(P, -1, L)
    x1 = unary.argmin(-1)
    x2 = flat.sum(1).argmin(-1).view(P, *([1] * len(grid))).expand(P, *grid).contiguous()
    U2 = torch.cat([unary, unary], 0)
    V2 = torch.cat([bp, bp], 0)
    x = _chain_icm(U2, V2, torch.cat([x1, x2], 0), sweeps)
    e = grid_energy(U2, V2, x, 1.0)
    take2 = e[P:] < e[:P]
    return torch.where(take2.view(P, *([1] * len(grid))), x[P:], x[:P])


def grid_energy(unary: Tensor, pairwise: Tensor, x: Tensor, beta: float = 1.0) -> Tensor:
    """Energy ``(P,)`` of labellings ``x`` ``(P, *grid)`` (see :func:`solve_grid_mrf`)."""
    P = unary.shape[0]
    L = unary.shape[-1]
    if pairwise.dim() == 2:
        pairwise = pairwise.expand(P, L, L)
    e = unary.gather(-1, x.unsqueeze(-1)).squeeze(-1).reshape(P, -1).sum(1)
    for ax in range(1, x.dim()):
        n = x.shape[ax]
        if n < 2:
            continue
        a = x.narrow(ax, 0, n - 1).reshape(P, -1)
        b = x.narrow(ax, 1, n - 1).reshape(P, -1)
        e = e + beta * pairwise[torch.arange(P, device=x.device).unsqueeze(1), a, b].sum(1)
    return e


def _chain_icm(unary: Tensor, bp: Tensor, x: Tensor, sweeps: int) -> Tensor:
    grid = tuple(unary.shape[1:-1])
    d = len(grid)
    dev = unary.device
    # parity of the coordinates other than each axis, for every node: the (axis, lines) moves of a sweep
    coords = torch.meshgrid(*[torch.arange(s, device=dev) for s in grid], indexing="ij")
    total = sum(coords) if d > 1 else torch.zeros(grid, dtype=torch.long, device=dev)
    moves = []
    for ax in [ax for ax in range(d) if grid[ax] > 1] or [0]:
        par = (total - coords[ax]) % 2 if d > 1 else total
        for parity in ((0, 1) if d > 1 else (0,)):
            lines = par == parity  # (*grid) nodes on the lines being updated
            if bool(lines.any()):
                moves.append((ax, lines.unsqueeze(0)))
    for _ in range(sweeps):
        changed = torch.zeros((), dtype=torch.bool, device=dev)
        for ax, lines in moves:
            xn = _viterbi(unary + _neighbour_cost(x, bp, ax), bp, ax)
            xn = torch.where(lines, xn, x)
            changed = changed | (xn != x).any()
            x = xn
        if not bool(changed):
            break
    return x


def _neighbour_cost(x: Tensor, bp: Tensor, skip_ax: int) -> Tensor:
    """``(P, *grid, L)``: sum over the neighbours off the lines along ``skip_ax`` of ``bp[:, l, x_nbr]``."""
    P = x.shape[0]
    L = bp.shape[-1]
    grid = tuple(x.shape[1:])
    out = torch.zeros(P, *grid, L, dtype=bp.dtype, device=x.device)
    for ax in range(len(grid)):
        if ax == skip_ax or grid[ax] < 2:
            continue
        dim = ax + 1
        n = grid[ax]
        rows = bp.gather(1, x.reshape(P, -1, 1).expand(-1, -1, L)).view(P, *grid, L)  # bp[:, x_q, :] = bp[:, :, x_q]
        out.narrow(dim, 1, n - 1).add_(rows.narrow(dim, 0, n - 1))  # neighbour before
        out.narrow(dim, 0, n - 1).add_(rows.narrow(dim, 1, n - 1))  # neighbour after
    return out


def _viterbi(u: Tensor, bp: Tensor, ax: int) -> Tensor:
    """Exact labelling of every line along grid axis ``ax`` for unaries ``u`` ``(P, *grid, L)``."""
    P = u.shape[0]
    L = u.shape[-1]
    dim = ax + 1
    uu = u.movedim(dim, -2)  # (P, *rest, n, L)
    n = uu.shape[-2]
    rest = uu.shape[1:-2]
    V = bp.view(P, *([1] * len(rest)), L, L)  # symmetric: V[l, l_prev] = V[l_prev, l]
    m = uu[..., 0, :]
    back = []
    for j in range(1, n):
        cand = m.unsqueeze(-2) + V  # (P, *rest, L, L_prev): reduce over the contiguous last dim
        best, arg = cand.min(-1)
        m = best + uu[..., j, :]
        back.append(arg)
    lab = [m.argmin(-1)]
    for arg in reversed(back):
        lab.append(arg.gather(-1, lab[-1].unsqueeze(-1)).squeeze(-1))
    path = torch.stack(lab[::-1], -1)  # (P, *rest, n)
    return path.movedim(-1, dim)

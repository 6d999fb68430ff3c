"""Co-Mixup's joint labelling of the outputs of each group (official ``get_onehot_matrix``), batched.

The objective is :class:`mixkit.mixers.comixup.CoMixup`'s; each output's grid labelling is solved by
:func:`mixkit.masks.grid_mrf.solve_grid_mrf`.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import sampling
from .grid_mrf import solve_grid_mrf

__all__ = ["co_mixup_labeling", "modular_penalty"]

_PENALTY_FORMS = ("official", "elementwise")

_BIG = 1.0e4  # unary cost of a label that must not be chosen (finite: no inf - inf)
_HALF_BONUS = 5e-4  # the official code makes a half-half label slightly cheaper than its mean cost


def co_mixup_labeling(cost: Tensor, A: Tensor, valid: Tensor, *, beta: float = 0.32, gamma: float = 1.0,
                      eta: float = 0.05, thres: float = 0.83, thres_type: str = "hard", alpha: float = 2.0,
                      niter: int = 4, set_resolve: bool = True, sweeps: int = 8,
                      generator: Optional[torch.Generator] = None,
                      penalty: str = "official") -> Tuple[Tensor, Tensor, Tensor]:
    """Co-Mixup's joint labelling of ``G`` independent groups (official ``get_onehot_matrix``), batched.

    Args:
        cost: ``(G, n, *grid)`` unary cost of each input per block (``-`` normalised saliency).
        A: ``(G, n, n)`` compatibility matrix.
        valid: ``(G, n)`` bool, the real members of each group (the rest is padding).
        beta, gamma, eta, thres, thres_type, alpha, niter, set_resolve: see :class:`~mixkit.mixers.comixup.CoMixup`
            (unscaled: they are divided by the number of blocks here).
        sweeps: maximum sweeps of the grid solver.
        penalty: the hard-threshold modular penalty, ``"official"`` or ``"elementwise"``: see
            :func:`modular_penalty`.

    Returns ``(z, prior, objective)``: ``z`` ``(G, n_out, *grid, n_in)`` float block shares
    (one-hot or two halves per block; all zero for padding outputs), the Dirichlet prior ``(G, n)`` and
    the final objective ``(G,)`` (float64, ``obj_fn`` of the official code).
    """
    if penalty not in _PENALTY_FORMS:
        raise ValueError(f"penalty must be one of {_PENALTY_FORMS}, got {penalty!r}")
    G, n = cost.shape[:2]
    grid = tuple(cost.shape[2:])
    nb = math.prod(grid)
    dev = cost.device
    thres_s, beta_s, gamma_s, eta_s = thres * nb, beta / nb, gamma / nb, eta / nb
    cost = cost.double()
    A = A.double()
    validf = valid.double()

    # prior pi ~ Dir(alpha) over the real members of each group
    gdev = sampling.gen_device(generator)
    gam = sampling.sample_gamma(alpha, (G, n), generator).double().to(dev) * validf
    prior = gam / gam.sum(1, keepdim=True).clamp_min(1e-300)
    prior = torch.where(gam.sum(1, keepdim=True) > 0, prior, validf / validf.sum(1, keepdim=True))
    cost = cost - eta_s * torch.log(prior + 1e-8).view(G, n, *([1] * len(grid)))
    cost_nodes = cost.flatten(2).transpose(1, 2)  # (G, N, n)

    # random initial labelling (uniform over the group's members)
    nv = valid.sum(1).to(dev)
    u = torch.rand(G, n, nb, generator=generator, device=gdev, dtype=torch.float64).to(dev)
    lab0 = torch.floor(u * nv.view(G, 1, 1)).long().minimum(nv.view(G, 1, 1) - 1)
    z = F.one_hot(lab0, n).double() * validf.view(G, n, 1, 1)  # (G, O, N, n); padding outputs all 0
    penalty = z.sum((1, 2))  # (G, n)

    edges = _grid_edges(grid, dev)
    loss_prev = _objective(cost_nodes, z, edges, beta_s, gamma_s)
    running = torch.ones(G, dtype=torch.bool, device=dev)
    add_cost = None
    ar = torch.arange(n, device=dev)
    pot = 1.0 - torch.eye(n + 3, dtype=torch.float64, device=dev)
    for it in range(niter):
        for o in range(n):
            upd = running & valid[:, o]
            zo = z[:, o]  # (G, N, n)
            count = zo.sum(1)  # (G, n)
            rest = penalty - count
            mod = modular_penalty(A, rest, thres_s, gamma_s, thres_type, penalty)
            un = cost_nodes + mod.unsqueeze(1)
            if add_cost is not None:
                un = un + gamma_s * add_cost[:, o].unsqueeze(1)
            un = torch.where(valid.unsqueeze(1), un, torch.full_like(un, _BIG))
            # half-half labels (from the second iteration on, for outputs using >= 2 inputs)
            used = count > 0
            n_used = used.sum(1)
            key = torch.where(used, count, torch.full_like(count, -1.0))
            top = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :3]  # most used first
            top = torch.sort(top, 1).values if n >= 3 else top  # official order: by input index
            if n < 3:
                top = torch.cat([top, top[:, :1].expand(-1, 3 - top.shape[1])], 1)
            two = n_used == 2
            # for exactly two used inputs the pair is (smaller, larger) index of the used ones
            pair2 = torch.sort(torch.where(used, ar.expand(G, -1), torch.full_like(top[:, :1], n).expand(G, -1)), 1).values[:, :2]
            pa = torch.stack([torch.where(two, pair2[:, 0], top[:, 0]), top[:, 0], top[:, 1]], 1)  # (G, 3)
            pb = torch.stack([torch.where(two, pair2[:, 1], top[:, 1]), top[:, 2], top[:, 2]], 1)
            pa, pb = pa.clamp_max(n - 1), pb.clamp_max(n - 1)
            on = torch.stack([n_used >= 2, n_used >= 3, n_used >= 3], 1) & (it > 0)  # (G, 3)
            ua = un.gather(2, pa.unsqueeze(1).expand(-1, nb, -1))
            ub = un.gather(2, pb.unsqueeze(1).expand(-1, nb, -1))
            uh = 0.5 * (ua + ub) - _HALF_BONUS
            uh = torch.where(on.unsqueeze(1), uh, torch.full_like(uh, _BIG))
            unary = torch.cat([un, uh], 2)  # (G, N, n + 3)
            pw = pot.expand(G, -1, -1).clone()
            gi = torch.arange(G, device=dev)
            for h in range(3):
                for c in (pa[:, h], pb[:, h]):
                    val = torch.where(on[:, h], torch.full_like(pw[:, 0, 0], 0.25), pw[gi, n + h, c])
                    pw[gi, n + h, c] = val
                    pw[gi, c, n + h] = val
            lab = solve_grid_mrf(unary.view(G, *grid, n + 3), pw, beta_s, sweeps=sweeps)  # (G, *grid)
            lab = lab.view(G, nb)
            # labels -> block shares over the inputs
            zn = F.one_hot(lab.clamp_max(n - 1), n).double() * (lab < n).unsqueeze(2)
            is_half = lab >= n
            hidx = (lab - n).clamp(0, 2)
            ha = pa.gather(1, hidx)
            hb = pb.gather(1, hidx)
            zh = 0.5 * (F.one_hot(ha, n).double() + F.one_hot(hb, n).double())
            zn = torch.where(is_half.unsqueeze(2), zh, zn)
            zo = torch.where(upd.view(G, 1, 1), zn, zo)
            z[:, o] = zo
            penalty = rest + zo.sum(1)
        if it == niter - 2 and set_resolve:
            add_cost = _resolve(z, valid)
        loss = _objective(cost_nodes, z, edges, beta_s, gamma_s)
        rel = (loss_prev - loss).abs() / loss.abs().clamp_min(1e-300)
        running = running & ~(rel < 1e-6)
        loss_prev = loss
        if not bool(running.any()):
            break
    z = z.view(G, n, *grid, n)
    return z, prior, loss_prev


def _resolve(z: Tensor, valid: Tensor) -> Tensor:
    """Official ``resolve_label``: outputs with the same set of inputs get a unit cost on one input each."""
    G, O, _, n = z.shape
    S = (z.sum(2) > 0).double()  # (G, O, n)
    dist = (S.unsqueeze(2) - S.unsqueeze(1)).abs().sum(-1)
    vv = valid.unsqueeze(2) & valid.unsqueeze(1)
    later = torch.triu(torch.ones(O, O, dtype=torch.bool, device=z.device), diagonal=1)
    coincide = (dist == 0) & vv & later  # (G, i1, i2) with i1 < i2
    multi = S.sum(-1) > 1
    first = S.argmax(-1)  # first input of the support
    S2 = S.clone()
    S2.scatter_(2, first.unsqueeze(2), 0.0)
    second = S2.argmax(-1)
    add = torch.zeros_like(S)
    a1 = (coincide.any(2) & multi).double()  # has a later twin: cost on the first input
    a2 = (coincide.any(1) & multi).double()  # has an earlier twin: cost on the second input
    add.scatter_(2, first.unsqueeze(2), a1.unsqueeze(2))
    add = torch.maximum(add, torch.zeros_like(add).scatter_(2, second.unsqueeze(2), a2.unsqueeze(2)))
    return add


def _grid_edges(grid, device) -> Tensor:
    """``(E, 2)`` node pairs of the 4-/6-neighbourhood of a grid (row-major node ids)."""
    ids = torch.arange(math.prod(grid), device=device).view(grid)
    pairs = []
    for ax in range(len(grid)):
        if grid[ax] < 2:
            continue
        a = ids.narrow(ax, 0, grid[ax] - 1).reshape(-1)
        b = ids.narrow(ax, 1, grid[ax] - 1).reshape(-1)
        pairs.append(torch.stack([a, b], 1))
    if not pairs:
        return torch.zeros(0, 2, dtype=torch.long, device=device)
    return torch.cat(pairs, 0)


def modular_penalty(A: Tensor, p: Tensor, thres: float, gamma: float, thres_type: str = "hard",
                    form: str = "official") -> Tensor:
    """Co-Mixup's thresholded modular approximation of the diversity penalty, ``(G, n)`` for ``A``
    ``(G, n, n)`` and the other outputs' label counts ``p`` ``(G, n)``.

    The official ``get_onehot_matrix`` writes the hard form as ``2 * gamma * (A @ p > thres) * A @ p``,
    which Python parses as ``((2 * gamma * mask) * A) @ p``: the mask ``(n,)`` broadcasts over A's
    *columns*, so entry ``i`` is ``2 gamma sum_j A_ij mask_j p_j`` (``form="official"``, the default).
    ``form="elementwise"`` gives what the paper's formula reads as, ``2 gamma mask_i (A p)_i``. With the
    default ``omega = 0.001``, ``A`` is nearly diagonal and the two differ little. The soft form,
    ``mask_i * ((A p)_i - thres)``, is parenthesised in the official code and is the same in both.
    """
    ap = torch.einsum("gij,gj->gi", A.to(p.dtype), p)
    over = (ap > thres).to(p.dtype)
    if thres_type != "hard":
        return 2.0 * gamma * over * (ap - thres)
    if form == "official":
        return 2.0 * gamma * torch.einsum("gij,gj->gi", A.to(p.dtype), over * p)
    return 2.0 * gamma * over * ap


def _objective(cost_nodes: Tensor, z: Tensor, edges: Tensor, beta: float, gamma: float) -> Tensor:
    """Official ``obj_fn`` (without thresholding) per group: ``(G,)`` float64."""
    unary = (cost_nodes.unsqueeze(1) * z).sum((1, 2, 3))
    if edges.numel():
        diff = z[:, :, edges[:, 0]] - z[:, :, edges[:, 1]]
        smooth = beta / 2 * (diff ** 2).sum((1, 2, 3))
    else:
        smooth = torch.zeros_like(unary)
    cnt = z.sum(2)  # (G, O, n)
    tot = cnt.sum(1)
    div = gamma * ((tot ** 2).sum(1) - (cnt ** 2).sum((1, 2)))
    return unary + smooth + div

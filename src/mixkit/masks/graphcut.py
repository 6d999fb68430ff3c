"""Batched, exact solvers for small multi-label grid MRFs (PuzzleMix's labelling step), in PyTorch.

They replace the official pyGCO alpha-beta swap (a local minimum on int32-scaled costs, one CPU call per
sample, see docs/methods/puzzlemix.md) by solvers that run batched on any device and return a *global*
minimum, never an energy above pyGCO's (``tests/test_graphcut.py``, ``benchmarks/graphcut_vs_gco.py``).
The energy, the same for every solver here and for pyGCO's ``cut_grid_graph``::

    E(x) = sum_{r,c} unary[r, c, x[r,c]]
         + sum_{r,c} w_v[r, c] * pairwise[x[r,c], x[r+1,c]]      (vertical edges,   w_v: (H-1, W))
         + sum_{r,c} w_h[r, c] * pairwise[x[r,c], x[r,c+1]]      (horizontal edges, w_h: (H, W-1))

with a batch dimension in front of ``unary (B, H, W, L)``, ``w_v (B, H-1, W)``, ``w_h (B, H, W-1)``,
a shared ``pairwise (L, L)`` and integer labels ``x (B, H, W)``; :func:`energy` evaluates it in float64.
Solvers (:func:`solve_grid` picks one with ``method="auto"``):

* :func:`solve_dp` -- **exact for any costs**: dynamic programming over the cells in row-major order with
  a frontier of the last ``W`` labels (``L**W`` states, ``W`` the shorter side), ``O(H W L**(W+1))``.
  ``auto`` uses it for ``L**W <= 81`` (PuzzleMix's 2x2 and 4x4 grids) and, for costs the min-cut does
  not cover, up to ``max_states`` (default 3**8 = 6561: 8x8 grids with 3 labels).
* :func:`solve_mincut` -- **exact when** ``pairwise[i, j] = f(i - j)`` with ``f`` convex (PuzzleMix's
  ``(i - j)**2 / (L - 1)**2`` is) **and every edge weight is >= 0** (PuzzleMix's are whenever
  ``gamma <= 1`` and the de-normalised images lie in [0, 1]): Ishikawa's construction (TPAMI 2003), one
  s-t minimum cut on ``L - 1`` layers of the grid in exact integer arithmetic (costs scaled per sample by
  a power of two and rounded), by a batched synchronous push-relabel with global relabelling (Goldberg &
  Tarjan 1988; the grid form of Vineet & Narayanan's "CUDA cuts"), or on the CPU by PyMaxflow's
  Boykov-Kolmogorov max-flow when that optional package is installed (``pip install mixkit[fast]``).
* :func:`refine_strips` -- a descent for the costs neither exact solver covers (non-convex ``pairwise``,
  or negative weights on a grid too wide for the DP): exact DP moves on whole strips of rows or columns,
  started from the min-cut of the weights clamped at 0 (or the unary minimum); never optimal for sure.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ["label_cost", "energy", "solve_grid", "solve_dp", "solve_mincut", "refine_strips", "is_convex_pairwise"]

_METHODS = ("auto", "dp", "mincut", "strips")
_BACKENDS = ("auto", "torch", "pymaxflow")
_SCALE_BITS = 36


# ----------------------------------------------------------------------------------------- costs
def label_cost(n_labels: int, device=None, dtype: torch.dtype = torch.float64) -> Tensor:
    """PuzzleMix's label-pair cost ``(i - j)**2 / (n_labels - 1)**2`` as an ``(L, L)`` matrix."""
    if int(n_labels) < 2:
        raise ValueError(f"n_labels must be >= 2, got {n_labels}")
    i = torch.arange(int(n_labels), device=device, dtype=dtype)
    return (i[:, None] - i[None, :]).square() / float((int(n_labels) - 1) ** 2)


def _check(unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Tensor) -> Tuple[int, int, int, int]:
    if not isinstance(unary, Tensor) or unary.dim() != 4:
        raise ValueError(f"unary must be a tensor of shape (B, H, W, L), got {getattr(unary, 'shape', type(unary))}")
    b, h, w, n = unary.shape
    if h < 1 or w < 1 or n < 1:
        raise ValueError(f"unary must have H, W, L >= 1, got shape {tuple(unary.shape)}")
    for name, t, want, sym in (("w_v", w_v, (b, h - 1, w), "(B, H-1, W)"), ("w_h", w_h, (b, h, w - 1), "(B, H, W-1)"),
                               ("pairwise", pairwise, (n, n), "(L, L)")):
        if tuple(t.shape) != want:
            raise ValueError(f"{name} must have shape {sym} = {want}, got {tuple(t.shape)}")
    return b, h, w, n


def _f64(*ts: Tensor, device) -> Tuple[Tensor, ...]:
    return tuple(t.to(device=device, dtype=torch.float64) for t in ts)


def energy(labels: Tensor, unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Tensor) -> Tensor:
    """Energy ``(B,)`` float64 of integer ``labels (B, H, W)`` (see the module docstring for the formula)."""
    b, h, w, n = _check(unary, w_v, w_h, pairwise)
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(f"labels must have shape (B, H, W) = {(b, h, w)}, got {tuple(labels.shape)}")
    dev = unary.device
    u, wv, wh, v = _f64(unary, w_v, w_h, pairwise, device=dev)
    x = labels.to(dev, torch.long)
    e = u.gather(3, x.unsqueeze(3)).squeeze(3).sum((1, 2))
    if h > 1:
        e = e + (wv * v[x[:, :-1, :], x[:, 1:, :]]).sum((1, 2))
    if w > 1:
        e = e + (wh * v[x[:, :, :-1], x[:, :, 1:]]).sum((1, 2))
    return e


def is_convex_pairwise(pairwise: Tensor, tol: float = 0.0) -> bool:
    """True if ``pairwise[i, j] = f(i - j)`` for a convex ``f`` (the condition of :func:`solve_mincut`)."""
    v = pairwise.detach().double().cpu()
    n = v.shape[0]
    if n == 1:
        return True
    f = {}
    for i, j in ((i, j) for i in range(n) for j in range(n)):   # f[d] from the first entry with i - j = d
        if abs(float(v[i, j]) - f.setdefault(i - j, float(v[i, j]))) > tol:
            return False
    vals = [f[d] for d in range(-(n - 1), n)]
    return all(vals[k - 1] - 2 * vals[k] + vals[k + 1] >= -tol for k in range(1, len(vals) - 1))


# ------------------------------------------------------------------------------- frontier DP
def solve_dp(unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Tensor) -> Tensor:
    """Exact minimiser ``(B, H, W)`` int64 by frontier dynamic programming (any costs).

    Memory and time grow as ``L ** min(H, W)``; :func:`solve_grid` uses it up to ``max_states``.
    Ties are broken towards the lowest label in a fixed order, so the result is deterministic.
    """
    b, h, w, n = _check(unary, w_v, w_h, pairwise)
    if w > h:  # keep the frontier on the shorter side
        lab = solve_dp(unary.transpose(1, 2), w_h.transpose(1, 2), w_v.transpose(1, 2), pairwise)
        return lab.transpose(1, 2).contiguous()
    dev = unary.device
    u, wv, wh, v = _f64(unary, w_v, w_h, pairwise, device=dev)
    n_states = n ** w
    d = torch.zeros(b, n_states, dtype=torch.float64, device=dev)
    zero = torch.zeros(b, dtype=torch.float64, device=dev)
    if n > 255:
        raise ValueError(f"solve_dp supports at most 255 labels, got {n}")
    v_old_new = v.reshape(1, 1, n, n, 1)          # [o, l]: o = label above, l = new label
    v_new_left = v.t().reshape(1, 1, n, n, 1)     # [l, d]: d = label on the left
    back = []
    for r in range(h):
        for c in range(w):
            hi, lo = n ** (w - 1 - c), n ** c
            wvert = wv[:, r - 1, c] if r > 0 else zero
            dv = d.view(b, hi, n, 1, lo)
            trans = wvert.view(b, 1, 1, 1, 1) * v_old_new                 # (b, 1, o, l, 1)
            # min over the label o leaving the frontier; strict < keeps the lowest o on ties (any device)
            best = dv[:, :, 0] + trans[:, :, 0]                            # (b, hi, n(new), lo)
            arg = torch.zeros(best.shape, dtype=torch.uint8, device=dev)
            for o in range(1, n):
                cand = dv[:, :, o] + trans[:, :, o]
                better = cand < best
                best = torch.where(better, cand, best)
                arg.masked_fill_(better, o)
            if c > 0:
                best = best.view(b, hi, n, n, lo // n) + wh[:, r, c - 1].view(b, 1, 1, 1, 1) * v_new_left
            best = best.view(b, hi, n, lo) + u[:, r, c, :].view(b, 1, n, 1)
            d = best.reshape(b, n_states)
            back.append(arg.reshape(b, n_states))
    s = d.argmin(1)
    labels = torch.empty(b, h, w, dtype=torch.long, device=dev)
    for r in range(h - 1, -1, -1):
        for c in range(w - 1, -1, -1):
            p = n ** c
            cur = torch.div(s, p, rounding_mode="floor") % n
            labels[:, r, c] = cur
            old = back.pop().gather(1, s.unsqueeze(1)).squeeze(1).long()
            s = s + (old - cur) * p
    return labels


# ------------------------------------------------------------------------ Ishikawa + max-flow
def _ishikawa_terms(pairwise: Tensor) -> Tuple[Tensor, Tensor]:
    """``gamma (2L-3,)`` and ``psi (L,)`` with ``f(x-y) = sum_{k,l} gamma[k-l] |[x>k]-[y>l]| + psi(x) + psi(y)``.

    ``k, l`` run over the ``L - 1`` layers; ``gamma[d]`` is half the second difference of ``f`` (>= 0
    for convex ``f``). ``psi`` is recovered from the residual and the identity is verified.
    """
    v = pairwise.detach().double().cpu()
    n = v.shape[0]
    f = {i - j: float(v[i, j]) for i in range(n) for j in range(n)}
    ks = range(-(n - 2), n - 1)
    gamma = torch.tensor([(f[d + 1] - 2 * f[d] + f[d - 1]) / 2 for d in ks], dtype=torch.float64)
    lev = torch.arange(n)
    a = (lev[:, None] > torch.arange(n - 1)[None, :]).double()          # a[x, k] = [x > k]
    kk = torch.arange(n - 1)
    gmat = gamma[(kk[:, None] - kk[None, :]) + (n - 2)]                # gamma[k - l], (K, K)
    g = (gmat[None, None] * (a[:, None, :, None] - a[None, :, None, :]).abs()).sum((2, 3))
    rmat = v - g
    psi = rmat[:, 0] - rmat[0, 0] / 2
    if not torch.allclose(rmat, psi[:, None] + psi[None, :], atol=1e-9 * (1 + v.abs().max().item())):
        raise ValueError("pairwise is not convex in the label difference; solve_mincut does not apply")
    return gamma, psi


def _chain_slots(k: int) -> Tuple[Optional[int], Optional[int], int]:
    """Slots of the layer edges (to ``k + 1``, to ``k - 1``) and the degree, for ``K`` layers."""
    if k == 1:
        return None, None, 5
    if k == 2:  # layer 0 only goes up, layer 1 only down: one shared slot
        return 8, 8, 10
    return 4 * k, 4 * k + 1, 4 * k + 3


@lru_cache(maxsize=32)
def _graph_index(k: int, h: int, w: int, device: str) -> Tuple[Tensor, Tensor, Tensor]:
    """Edge targets, reverse-edge indices and validity of one layered grid graph (shared by the batch).

    Local node ``(k * H + r) * W + c``, the sink ``n = K H W``. Slots (fixed degree ``D``): ``dir * K + l``
    to layer ``l`` of the neighbour in direction ``dir`` (down, up, right, left), the layer edges of the
    cell (:func:`_chain_slots`), the sink (last). ``rev[slot, node]`` = flat index ``slot' * (n + 1) +
    node'`` of the reverse edge. Missing edges: to the sink, capacity 0, a dummy reverse (never read).
    """
    dev = torch.device(device)
    n = k * h * w
    n1 = n + 1
    s_up, s_down, deg = _chain_slots(k)
    kk, rr, cc = torch.meshgrid(*(torch.arange(s, device=dev) for s in (k, h, w)), indexing="ij")
    idx = torch.arange(n, device=dev).view(k, h, w)
    tgt = torch.full((deg, n1), n, dtype=torch.long, device=dev)
    rev = torch.full((deg, n1), n, dtype=torch.long, device=dev)   # slot 0 of the sink column
    valid = torch.zeros((deg, n1), dtype=torch.bool, device=dev)
    for di, (dr, dc) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
        r2, c2 = rr + dr, cc + dc
        ok = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
        src = idx[ok]
        for l in range(k):
            dst = (l * h + r2[ok]) * w + c2[ok]
            slot = di * k + l
            tgt[slot, src] = dst
            rev[slot, src] = ((di ^ 1) * k + kk[ok]) * n1 + dst
            valid[slot, src] = True
    if k > 1:
        src = idx[:-1].reshape(-1)
        dst = src + h * w
        tgt[s_up, src], rev[s_up, src], valid[s_up, src] = dst, s_down * n1 + dst, True
        tgt[s_down, dst], rev[s_down, dst], valid[s_down, dst] = src, s_up * n1 + src, True
    valid[deg - 1, :n] = True
    return tgt, rev, valid


def _pow2_scale(mag: Tensor) -> Tensor:
    """Per-sample power of two ``s`` with ``mag * s`` in [2**(bits-1), 2**bits) (1 where ``mag`` is 0)."""
    _, e = torch.frexp(mag)
    s = torch.ldexp(torch.ones_like(mag), (_SCALE_BITS - e).to(torch.int32))
    return torch.where(mag > 0, s, torch.ones_like(mag))


def _distances(res: Tensor, tgt_flat: Tensor, hmax: int) -> Tensor:
    """Residual breadth-first distance ``(B, n + 1)`` int32 of every node to the sink (``hmax`` if none)."""
    b, deg, n1 = res.shape
    pen = (res <= 0).to(torch.int32) * hmax
    d = torch.full((b, n1), hmax, dtype=torch.int32, device=res.device)
    d[:, -1] = 0
    while True:
        nd = (d.index_select(1, tgt_flat).view(b, deg, n1) + pen).amin(1) + 1
        nd = torch.minimum(nd, d)
        nd[:, -1] = 0
        if torch.equal(nd, d):
            return d
        d = nd


def _source_side(height: Tensor, hmax: int) -> Tensor:
    """Source side ``(B, n)`` of a minimum cut from the heights of a maximum preflow.

    With ``g`` the lowest empty height level >= 1 (one exists: ``n`` nodes, ``n + 1`` levels), no
    residual edge leaves ``{v : h(v) > g}`` (a valid labelling drops by at most 1 along a residual
    edge) and that set holds every node with excess, so it is the source side of a minimum cut.
    """
    b, n1 = height.shape
    cnt = torch.zeros(b, hmax + 1, dtype=torch.int32, device=height.device)
    cnt.scatter_add_(1, height.long(), torch.ones_like(height))
    cnt[:, 0] = 1
    g = (cnt == 0).to(torch.int32).argmax(1)
    return height[:, :-1] > g.unsqueeze(1)


def _min_cut(res: Tensor, excess: Tensor, tgt: Tensor, rev: Tensor, period: int) -> Tensor:
    """Source side ``(B, n)`` bool of a minimum s-t cut, by batched synchronous push-relabel.

    ``res (B, D, n + 1)`` float64 residual capacities holding integers (modified in place),
    ``excess (B, n + 1)`` float64 initial excess (the saturated source edges); all sums stay below
    2**53, so the arithmetic is exact. Each round, every active node (excess > 0, height < n + 2)
    pushes along its admissible edges in slot order (``h(u) = h(v) + 1``, residual > 0), then the
    nodes that keep excess are relabelled to ``1 + min`` over residual neighbours; every ``period``
    rounds all heights are reset to exact breadth-first distances to the sink. Samples with no active
    node have a maximum preflow: their cut is read from the heights and they leave the working batch.
    """
    b, deg, n1 = res.shape
    n, dev = n1 - 1, res.device
    hmax = n + 2
    tgt_flat, rev_flat = tgt.reshape(-1), rev.reshape(-1)
    out = torch.zeros(b, n, dtype=torch.bool, device=dev)
    ids = torch.arange(b, device=dev)
    height = _distances(res, tgt_flat, hmax)
    it = 0
    while True:
        active = (excess > 0) & (height < hmax)
        active[:, -1] = False
        alive = active.any(1)
        if not bool(alive.all()):
            done = ~alive
            out[ids[done]] = _source_side(height[done], hmax)
            if not bool(alive.any()):
                return out
            res, excess, height, active, ids = res[alive], excess[alive], height[alive], active[alive], ids[alive]
        bw = res.shape[0]
        it += 1
        if it > 4 * n1 * n1 + 1000:  # pragma: no cover - a bound of the algorithm, never reached
            raise RuntimeError("push-relabel did not terminate; please report this input")
        # admissible: residual > 0 and h(v) = h(u) - 1 (inactive nodes get an impossible target height)
        hm1 = torch.where(active, height - 1, -7)
        ht = height.index_select(1, tgt_flat).view(bw, deg, n1)
        pushed = (res * (ht == hm1.unsqueeze(1))).cumsum_(1)   # cumulative admissible capacity per slot
        torch.minimum(pushed, excess.unsqueeze(1), out=pushed)   # cumulative amount pushed
        delta = pushed.clone()
        delta[:, 1:] -= pushed[:, :-1]
        res -= delta
        res.view(bw, -1).index_add_(1, rev_flat, delta.view(bw, -1))
        excess -= pushed[:, -1]
        excess.index_add_(1, tgt_flat, delta.view(bw, -1))
        if it % period == 0:
            height = _distances(res, tgt_flat, hmax)
        else:
            still = (excess > 0) & (height < hmax)
            still[:, -1] = False
            hmin = (ht.masked_fill_(res <= 0, hmax).amin(1) + 1).clamp_(max=hmax)
            height = torch.where(still, torch.maximum(height, hmin), height)


@lru_cache(maxsize=1)
def _pymaxflow():
    """PyMaxflow's ``maxflow`` module (``pip install mixkit[fast]``) if its ``GraphInt`` holds int64, or None."""
    try:
        import maxflow
        g = maxflow.GraphInt()
        g.add_nodes(1)
        g.add_tedge(0, 2 ** 40 + 1, 2 ** 41)
        return maxflow if g.maxflow() == 2 ** 40 + 1 else None
    except Exception:  # not installed, another package named maxflow, or 32-bit capacities
        return None


def _min_cut_bk(theta: Tensor, nb: Tensor) -> Tensor:
    """Source side ``(B, K, H, W)`` bool of the graph of :func:`solve_mincut` (integer capacities ``theta
    (B, K, H, W)``, ``nb (B, 4, K, K, H, W)``) by PyMaxflow's Boykov-Kolmogorov max-flow in int64 on the
    CPU, one graph for the batch (the samples are disjoint parts of it). The source side is the set of
    nodes that cannot reach the sink in the final residual graph (the largest minimum cut)."""
    b, k, h, w = theta.shape
    ids, nb = torch.arange(b * k * h * w).view(b, k, h, w), nb.to(torch.int64)
    tail, head, cap, rcap = [], [], [], []
    for l1 in range(k):
        for l2 in range(k):   # down / right edges; their reverse capacities are in the up / left slots
            tail += [ids[:, l1, :-1], ids[:, l1, :, :-1]]
            head += [ids[:, l2, 1:], ids[:, l2, :, 1:]]
            cap += [nb[:, 0, l1, l2, :-1], nb[:, 2, l1, l2, :, :-1]]
            rcap += [nb[:, 1, l2, l1, 1:], nb[:, 3, l2, l1, :, 1:]]
    if k > 1:   # layer l -> l - 1, "infinite": keeps the layers ordered
        tail, head = tail + [ids[:, 1:]], head + [ids[:, :-1]]
        cap, rcap = cap + [torch.full_like(ids[:, 1:], 2 ** 51)], rcap + [torch.zeros_like(ids[:, 1:])]
    tail, head, cap, rcap = (torch.cat([t.reshape(-1) for t in ts]).numpy() for ts in (tail, head, cap, rcap))
    g = _pymaxflow().GraphInt(ids.numel(), len(tail))
    nodes = g.add_nodes(ids.numel())   # ids 0 .. n - 1, as ``ids``
    g.add_edges(tail, head, cap, rcap)
    th = theta.to(torch.int64).reshape(-1)
    g.add_grid_tedges(nodes, (-th).clamp(min=0).numpy(), th.clamp(min=0).numpy())   # source, sink capacities
    g.maxflow()
    return ~torch.from_numpy(g.get_grid_segments(nodes)).view(b, k, h, w)


def solve_mincut(unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Tensor, *,
                 global_relabel_every: Optional[int] = None, backend: str = "auto") -> Tensor:
    """Exact minimiser ``(B, H, W)`` int64 for convex ``pairwise`` and non-negative edge weights.

    Builds Ishikawa's layered graph (one node per cell and layer ``k`` = "label > k", infinite edges
    keeping the layers ordered, terminal edges from the label increments of the unary, edges of weight
    ``w * gamma[k - l]`` between layer ``k`` of a cell and layer ``l`` of each neighbour) with integer
    capacities held in float64 (each sample scaled by a power of two to a largest magnitude of about
    2**36 and rounded: integer costs below 2**34 are solved exactly, float costs up to a relative 2**-36),
    and cuts it. ``backend``: ``"torch"``, the batched push-relabel of :func:`_min_cut` (global relabel
    every ``global_relabel_every`` rounds, default ``H + W``; any device); ``"pymaxflow"``, the same
    integer graph by :func:`_min_cut_bk` (CPU, several times faster); ``"auto"`` (default), PyMaxflow
    where it is installed and the costs are on the CPU, else torch. Both give a minimum cut, so the same
    energy; where several labellings have the minimum energy they may pick different ones.

    Raises:
        ValueError: ``pairwise`` not convex in the label difference, or a negative edge weight.
    """
    b, h, w, n = _check(unary, w_v, w_h, pairwise)
    dev = unary.device
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "pymaxflow" and (_pymaxflow() is None or dev.type != "cpu"):
        raise ValueError("backend='pymaxflow' needs the PyMaxflow package (pip install PyMaxflow) and CPU tensors")
    if n == 1:
        return torch.zeros(b, h, w, dtype=torch.long, device=dev)
    gamma, psi = _ishikawa_terms(pairwise)
    if (gamma < 0).any():
        raise ValueError("pairwise is not convex in the label difference; solve_mincut does not apply")
    u, wv, wh = _f64(unary, w_v, w_h, device=dev)
    if (wv < 0).any() or (wh < 0).any():
        raise ValueError("solve_mincut needs non-negative edge weights w_v, w_h")
    k, gamma, psi = n - 1, gamma.to(dev), psi.to(dev)
    # neighbour weight per direction (down, up, right, left) at each cell; 0 across the border
    wdir = torch.zeros(b, 4, h, w, dtype=torch.float64, device=dev)
    wdir[:, 0, :-1, :], wdir[:, 1, 1:, :] = wv, wv
    wdir[:, 2, :, :-1], wdir[:, 3, :, 1:] = wh, wh
    up = u + psi.view(1, 1, 1, n) * wdir.sum(1).unsqueeze(-1)       # unary with the Ishikawa correction
    theta = (up[..., 1:] - up[..., :-1]).permute(0, 3, 1, 2)           # (b, k, h, w): cost of layer k = 1
    kk = torch.arange(k, device=dev)
    gk = gamma[(kk[:, None] - kk[None, :]) + (n - 2)]                  # (k, l)
    nb = wdir[:, :, None, None] * gk.view(1, 1, k, k, 1, 1)            # (b, dir, k, l, h, w)
    mag = torch.maximum(theta.abs().amax((1, 2, 3)), nb.abs().amax((1, 2, 3, 4, 5)))
    s = _pow2_scale(mag)   # per-sample power-of-two scale, then integers (exact in float64)
    theta_i = torch.round(theta * s.view(b, 1, 1, 1))
    nb_i = torch.round(nb * s.view(b, 1, 1, 1, 1, 1))
    if backend == "pymaxflow" or (backend == "auto" and dev.type == "cpu" and _pymaxflow() is not None):
        return _min_cut_bk(theta_i, nb_i).long().sum(1)
    tgt, rev, valid = _graph_index(k, h, w, str(dev))
    nn_, (s_up, s_down, deg) = k * h * w, _chain_slots(k)
    res = torch.zeros(b, deg, nn_ + 1, dtype=torch.float64, device=dev)
    res[:, : 4 * k, :nn_] = nb_i.permute(0, 1, 3, 2, 4, 5).reshape(b, 4 * k, nn_)   # slot dir*K + l
    if k > 1:
        res[:, s_down, h * w:nn_] = float(2 ** 51)                     # layer k -> k-1 keeps layers ordered
    res[:, deg - 1, :nn_] = theta_i.clamp(min=0).reshape(b, nn_)
    res *= valid
    excess = torch.zeros(b, nn_ + 1, dtype=torch.float64, device=dev)
    excess[:, :nn_] = (-theta_i).clamp(min=0).reshape(b, nn_)
    on_s = _min_cut(res, excess, tgt, rev, global_relabel_every or (h + w))
    return on_s.view(b, k, h, w).long().sum(1)


# --------------------------------------------------------------------------- strip descent
def _strip_unary(labels: Tensor, u: Tensor, wv: Tensor, wh: Tensor, v: Tensor, r0: int, r1: int) -> Tensor:
    """Unary of rows ``[r0, r1)`` with the fixed rows above/below folded in."""
    su = u[:, r0:r1].clone()
    if r0 > 0:
        su[:, 0] += wv[:, r0 - 1].unsqueeze(-1) * v[labels[:, r0 - 1]]          # v[above, new]
    if r1 < u.shape[1]:
        su[:, -1] += wv[:, r1 - 1].unsqueeze(-1) * v.t()[labels[:, r1]]         # v[new, below]
    return su


def refine_strips(labels: Tensor, unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Tensor, *,
                  strip: int = 4, max_rounds: int = 20) -> Tensor:
    """Block-coordinate descent from ``labels``: re-solve strips of ``strip`` rows, then columns, exactly.

    Each move is an exact DP over a ``strip x W`` (or ``H x strip``) sub-grid given the labels around
    it, so the energy never increases; rounds alternate two strip offsets and stop when a round changes
    nothing. Works for any costs (used where the exact solvers do not apply).
    """
    b, h, w, n = _check(unary, w_v, w_h, pairwise)
    dev = unary.device
    u, wv, wh, v = _f64(unary, w_v, w_h, pairwise, device=dev)
    x = labels.to(dev, torch.long).clone()
    best = energy(x, u, wv, wh, v)
    for _ in range(max_rounds):
        start = best.clone()
        for transpose in (False, True):
            uu, a, bb_, xx = (u, wv, wh, x) if not transpose else (u.transpose(1, 2), wh.transpose(1, 2), wv.transpose(1, 2), x.transpose(1, 2))
            hh = uu.shape[1]
            st = max(1, min(strip, hh))
            for off in (0, st // 2):
                for r0 in range(-off if off else 0, hh, st):
                    lo, hi_ = max(r0, 0), min(r0 + st, hh)
                    if hi_ > lo:
                        su = _strip_unary(xx, uu, a, bb_, v, lo, hi_)
                        xx[:, lo:hi_] = solve_dp(su, a[:, lo:hi_ - 1], bb_[:, lo:hi_], v)
            x = xx if not transpose else xx.transpose(1, 2)
        best = energy(x, u, wv, wh, v)
        if not bool((best < start - 1e-12 * (1 + start.abs())).any()):
            break
    return x.contiguous()


# ------------------------------------------------------------------------------- dispatcher
def solve_grid(unary: Tensor, w_v: Tensor, w_h: Tensor, pairwise: Optional[Tensor] = None, *,
               method: str = "auto", max_states: int = 6561, backend: str = "auto") -> Tensor:
    """Minimise the grid energy for ``B`` independent grids; returns labels ``(B, H, W)`` int64.

    Args:
        unary: ``(B, H, W, L)`` float (or int) costs.
        w_v: ``(B, H-1, W)`` vertical edge weights; ``w_h``: ``(B, H, W-1)`` horizontal edge weights.
        pairwise: ``(L, L)`` label-pair cost; default PuzzleMix's :func:`label_cost`.
        method: ``"auto"`` (default; exact whenever possible): for convex ``pairwise`` and non-negative
            weights (PuzzleMix) the DP if ``L ** min(H, W) <= 81`` else the min-cut; otherwise the DP if
            ``L ** min(H, W) <= max_states`` else strip descent. ``"dp"``, ``"mincut"`` and ``"strips"``
            force one solver (``"strips"`` starts from the min-cut of the clamped weights when
            ``pairwise`` is convex, else from the unary minimum).
        max_states: the largest DP frontier ``auto`` uses on problems the min-cut does not cover
            (default ``3**8``).
        backend: the max-flow of the min-cut, see :func:`solve_mincut` (default ``"auto"``).
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if pairwise is None:
        pairwise = label_cost(unary.shape[-1], device=unary.device)
    b, h, w, n = _check(unary, w_v, w_h, pairwise)
    if b == 0:
        return torch.zeros(0, h, w, dtype=torch.long, device=unary.device)
    if method == "dp":
        return solve_dp(unary, w_v, w_h, pairwise)
    if method == "mincut":
        return solve_mincut(unary, w_v, w_h, pairwise, backend=backend)
    convex = is_convex_pairwise(pairwise)
    nonneg = bool((w_v >= 0).all()) and bool((w_h >= 0).all())
    states = n ** min(h, w)
    if method == "auto":
        if convex and nonneg and states > 81:  # both exact; the DP is faster on PuzzleMix's 2x2 and 4x4 grids
            return solve_mincut(unary, w_v, w_h, pairwise, backend=backend)
        if states <= (81 if convex and nonneg else max_states):
            return solve_dp(unary, w_v, w_h, pairwise)
    init = (solve_mincut(unary, w_v.clamp(min=0), w_h.clamp(min=0), pairwise, backend=backend) if convex
            else unary.argmin(-1))
    return refine_strips(init, unary, w_v, w_h, pairwise)

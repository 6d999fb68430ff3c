"""The fast paths of the model-aware solvers give the results of the plain code they replace.

* PuzzleMix's block transport (:mod:`mixkit.masks.transport`) against the plain greedy rounds on the whole
  ``(B, n, n)`` cost: the same permutations, bit for bit (ties, zero or negative ``eps``, NaN included).
* The optional PyMaxflow max-flow of :func:`mixkit.masks.graphcut.solve_mincut` against the torch
  push-relabel: the same minimum energy on random graphs (the labelling may differ only between optima).
"""
from __future__ import annotations

import itertools

import pytest
import torch

from mixkit.masks import graphcut as G
from mixkit.masks import transport as T

HAS_MAXFLOW = G._pymaxflow() is not None
needs_maxflow = pytest.mark.skipif(not HAS_MAXFLOW, reason="PyMaxflow is not installed")


# ------------------------------------------------------------------------------------ transport
def _greedy_reference(cost, n_iter):
    """The plain greedy rounds (every row searched every round)."""
    b, n, _ = cost.shape
    cost = cost.clone()
    ar = torch.arange(n).expand(b, n)
    big = torch.full((b, n), n, dtype=torch.long)
    inf = torch.full((b, n), float("inf"), dtype=cost.dtype)
    for _ in range(max(int(n_iter), 1)):
        choice = cost.argmin(-1)
        chosen = cost.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        best = inf.scatter_reduce(1, choice, chosen, "amin", include_self=True)
        contender = chosen == best.gather(1, choice)
        first = big.scatter_reduce(1, choice, torch.where(contender, ar, big), "amin", include_self=True)
        win = first.gather(1, choice) == ar
        cost.scatter_add_(-1, choice.unsqueeze(-1), (~win).to(cost.dtype).unsqueeze(-1))
    return choice, win


def _transport_reference(mask, sal, eps, n_iter=None):
    b, gh, gw = mask.shape
    n = gh * gw
    c = T.transport_cost((gh, gw), dtype=torch.float32)
    z = (mask.reshape(b, 1, n) > 0).to(torch.float32)
    cost = eps * c.unsqueeze(0) - sal.reshape(b, n, 1).to(torch.float32) * z
    return T.complete_permutation(*_greedy_reference(cost, max(gh, gw) if n_iter is None else n_iter))


def _transport_case(gen, b, grid, kind):
    mask = torch.randint(0, 3, (b, *grid), generator=gen).float() / 2
    if kind == "ties":
        sal = torch.randint(0, 3, (b, *grid), generator=gen).float()
    else:
        sal = torch.rand(b, *grid, generator=gen) ** 4
    sal = sal / sal.sum((1, 2), keepdim=True).clamp_min(1e-9)
    if kind == "nan":
        sal[0, 0, 0] = float("nan")
    if kind == "all_kept":
        mask = torch.ones_like(mask)
    return mask, sal


@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (4, 4), (8, 8), (16, 16), (3, 5), (1, 7)])
@pytest.mark.parametrize("kind", ["float", "ties", "nan", "all_kept"])
def test_mask_transport_matches_the_plain_greedy_rounds(grid, kind):
    gen = torch.Generator().manual_seed(100 * grid[0] + 10 * grid[1] + len(kind))
    for eps in (0.8, 0.0, 0.3, -0.5, 5.0):
        for n_iter in (None, 1, 2, 5):
            mask, sal = _transport_case(gen, 6, grid, kind)
            assert torch.equal(T.mask_transport(mask, sal, eps, n_iter), _transport_reference(mask, sal, eps, n_iter))


@pytest.mark.parametrize("n", [1, 3, 16, 64])
def test_greedy_assignment_matches_the_plain_rounds(n):
    gen = torch.Generator().manual_seed(n)
    for dtype, integer in ((torch.float32, True), (torch.float32, False), (torch.float64, False)):
        cost = torch.randn(5, n, n, generator=gen, dtype=dtype)
        cost = cost.round() if integer else cost
        for view in (cost, cost.transpose(1, 2)):   # a non-contiguous input too
            before = view.clone()
            for n_iter in (1, 4, 3 * n):
                got = T.greedy_assignment(view, n_iter)
                ref = _greedy_reference(view, n_iter)
                assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
            assert torch.equal(view, before)   # the input is left as it was


# ------------------------------------------------------------------------------------ min-cut
def _problem(gen, b, h, w, n, integer):
    u = torch.randn(b, h, w, n, generator=gen, dtype=torch.float64)
    wv = torch.rand(b, h - 1, w, generator=gen, dtype=torch.float64)
    wh = torch.rand(b, h, w - 1, generator=gen, dtype=torch.float64)
    if integer:   # many ties between labellings
        u, wv, wh = u.round(), (3 * wv).round(), (3 * wh).round()
    return u, wv, wh


@needs_maxflow
@pytest.mark.parametrize("integer", [False, True])
def test_pymaxflow_backend_gives_the_torch_energy(integer):
    gen = torch.Generator().manual_seed(1 + integer)
    shapes = [(3, 5), (8, 8), (16, 16), (1, 6), (6, 1), (2, 9), (1, 1)]
    for (h, w), n in itertools.product(shapes, (2, 3, 4, 5)):
        u, wv, wh = _problem(gen, 6, h, w, n, integer)
        for v in (G.label_cost(n), (torch.arange(n)[:, None] - torch.arange(n)[None]).abs().double()):
            a = G.solve_mincut(u, wv, wh, v, backend="torch")
            c = G.solve_mincut(u, wv, wh, v, backend="pymaxflow")
            assert c.dtype == torch.long and c.shape == a.shape
            ea, ec = G.energy(a, u, wv, wh, v), G.energy(c, u, wv, wh, v)
            if integer:
                assert torch.equal(ea, ec)
            else:
                assert torch.allclose(ea, ec, rtol=1e-9, atol=1e-9)


@needs_maxflow
def test_pymaxflow_backend_is_exact_on_small_grids():
    gen = torch.Generator().manual_seed(5)
    for (h, w), n in itertools.product([(2, 2), (2, 3), (3, 3)], (2, 3)):
        u, wv, wh = _problem(gen, 3, h, w, n, False)
        v = G.label_cost(n)
        allx = torch.tensor(list(itertools.product(range(n), repeat=h * w))).view(-1, h, w)
        k = allx.shape[0]
        lab = G.solve_mincut(u, wv, wh, v, backend="pymaxflow")
        for i in range(3):
            best = G.energy(allx, u[i:i + 1].expand(k, -1, -1, -1), wv[i:i + 1].expand(k, -1, -1),
                            wh[i:i + 1].expand(k, -1, -1), v).min()
            got = G.energy(lab[i:i + 1], u[i:i + 1], wv[i:i + 1], wh[i:i + 1], v)
            assert float(got) == pytest.approx(float(best), rel=1e-9, abs=1e-12)


def test_auto_backend_falls_back_to_torch_without_pymaxflow(monkeypatch):
    gen = torch.Generator().manual_seed(2)
    u, wv, wh = _problem(gen, 4, 8, 8, 3, False)
    v = G.label_cost(3)
    ref = G.solve_mincut(u, wv, wh, v, backend="torch")
    monkeypatch.setattr(G, "_pymaxflow", lambda: None)
    assert torch.equal(G.solve_mincut(u, wv, wh, v), ref)
    assert torch.equal(G.solve_grid(u.float(), wv.float(), wh.float()), G.solve_grid(u.float(), wv.float(), wh.float(),
                                                                                    backend="torch"))
    with pytest.raises(ValueError, match="PyMaxflow"):
        G.solve_mincut(u, wv, wh, v, backend="pymaxflow")


def test_backend_is_checked():
    u = torch.zeros(1, 2, 2, 3)
    with pytest.raises(ValueError, match="backend"):
        G.solve_mincut(u, torch.zeros(1, 1, 2), torch.zeros(1, 2, 1), G.label_cost(3), backend="gco")
    with pytest.raises(ValueError, match="backend"):
        G.solve_grid(u, torch.zeros(1, 1, 2), torch.zeros(1, 2, 1), backend="gco")


@needs_maxflow
@pytest.mark.parametrize("block_num", [8, 16])
def test_puzzlemix_masks_agree_across_min_cut_backends(monkeypatch, block_num):
    """On PuzzleMix's own (float) costs the minimum is unique in practice: both backends give one mask."""
    from mixkit.bench.models import build_model
    from mixkit.mixers.puzzlemix import PuzzleMix

    torch.manual_seed(0)
    model = build_model("resnet8", 10, 3, 2)
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    mixer = PuzzleMix(model, block_num=block_num, num_classes=10)
    fast = mixer.mix(x, y, generator=torch.Generator().manual_seed(7))
    monkeypatch.setattr(G, "_pymaxflow", lambda: None)
    plain = mixer.mix(x, y, generator=torch.Generator().manual_seed(7))
    assert torch.equal(fast.share_map, plain.share_map)
    assert torch.equal(fast.inputs, plain.inputs)

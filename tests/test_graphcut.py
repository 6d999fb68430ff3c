"""The batched grid-MRF solvers of mixkit.masks.graphcut: exactness and the cross-check against pyGCO."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
from pathlib import Path

import pytest
import torch

from mixkit.masks import graphcut as G


def _random_problem(b, h, w, n, gen, *, convex=True, nonneg=True, integer=False):
    u = torch.rand(b, h, w, n, generator=gen, dtype=torch.float64)
    wv = torch.rand(b, h - 1, w, generator=gen, dtype=torch.float64) * 0.6
    wh = torch.rand(b, h, w - 1, generator=gen, dtype=torch.float64) * 0.6
    if not nonneg:
        wv, wh = wv - 0.3, wh - 0.3
    if convex:
        v = G.label_cost(n)
    else:
        v = torch.rand(n, n, generator=gen, dtype=torch.float64)
        v = v + v.t()
    if integer:
        u, wv, wh = (u * 1000).round(), (wv * 1000).round(), (wh * 1000).round()
    return u, wv, wh, v


def _brute_force(u, wv, wh, v):
    b, h, w, n = u.shape
    allx = torch.tensor(list(itertools.product(range(n), repeat=h * w))).view(-1, h, w)
    k = allx.shape[0]
    e = torch.stack([G.energy(allx, u[i:i + 1].expand(k, -1, -1, -1), wv[i:i + 1].expand(k, -1, -1),
                              wh[i:i + 1].expand(k, -1, -1), v) for i in range(b)])
    return e.min(1).values


def test_energy_matches_definition():
    gen = torch.Generator().manual_seed(0)
    u, wv, wh, v = _random_problem(2, 3, 4, 3, gen, convex=False, nonneg=False)
    x = torch.randint(0, 3, (2, 3, 4), generator=gen)
    e = G.energy(x, u, wv, wh, v)
    for i in range(2):
        ref = sum(float(u[i, r, c, x[i, r, c]]) for r in range(3) for c in range(4))
        ref += sum(float(wv[i, r, c] * v[x[i, r, c], x[i, r + 1, c]]) for r in range(2) for c in range(4))
        ref += sum(float(wh[i, r, c] * v[x[i, r, c], x[i, r, c + 1]]) for r in range(3) for c in range(3))
        assert e[i].item() == pytest.approx(ref, rel=1e-12)


def test_label_cost_is_puzzlemix_matrix():
    assert torch.equal(G.label_cost(3), torch.tensor([[0, .25, 1], [.25, 0, .25], [1, .25, 0]], dtype=torch.float64))
    assert G.is_convex_pairwise(G.label_cost(4))
    assert not G.is_convex_pairwise(torch.tensor([[0., 1, 1], [1, 0, 1], [1, 1, 0]]))  # Potts is not convex


@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (3, 3), (3, 2), (1, 5), (4, 1)])
@pytest.mark.parametrize("n_labels", [2, 3])
def test_dp_is_exact_for_any_costs(shape, n_labels):
    gen = torch.Generator().manual_seed(hash((shape, n_labels)) % 1000)
    u, wv, wh, v = _random_problem(12, *shape, n_labels, gen, convex=False, nonneg=False)
    x = G.solve_dp(u, wv, wh, v)
    assert x.shape == (12, *shape) and x.dtype == torch.long
    assert torch.allclose(G.energy(x, u, wv, wh, v), _brute_force(u, wv, wh, v), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (3, 3), (1, 4)])
@pytest.mark.parametrize("n_labels", [2, 3, 4])
def test_mincut_is_exact_for_convex_costs(shape, n_labels):
    if n_labels ** (shape[0] * shape[1]) > 20000:
        pytest.skip("brute force too large")
    gen = torch.Generator().manual_seed(7 * n_labels + shape[1])
    u, wv, wh, v = _random_problem(12, *shape, n_labels, gen)
    x = G.solve_mincut(u, wv, wh, v)
    assert torch.allclose(G.energy(x, u, wv, wh, v), _brute_force(u, wv, wh, v), rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", [(4, 4), (5, 5), (3, 7), (6, 4)])
@pytest.mark.parametrize("integer", [False, True])
def test_mincut_matches_dp_on_larger_grids(shape, integer):
    gen = torch.Generator().manual_seed(shape[0] * 10 + shape[1] + int(integer))
    u, wv, wh, v = _random_problem(40, *shape, 3, gen, integer=integer)
    e_dp = G.energy(G.solve_dp(u, wv, wh, v), u, wv, wh, v)
    e_mc = G.energy(G.solve_mincut(u, wv, wh, v), u, wv, wh, v)
    if integer:
        assert torch.equal(e_mc, e_dp)
    else:
        assert torch.allclose(e_mc, e_dp, rtol=0, atol=1e-9)


def test_solvers_accept_float32_and_int_costs_and_are_deterministic():
    gen = torch.Generator().manual_seed(3)
    u, wv, wh, v = _random_problem(8, 8, 8, 3, gen, integer=True)
    xs = [G.solve_grid(u.to(dt), wv.to(dt), wh.to(dt), v) for dt in (torch.float32, torch.int32, torch.float64)]
    assert all(torch.equal(xs[0], x) for x in xs[1:])
    assert torch.equal(G.solve_grid(u, wv, wh, v), xs[0])


def test_zero_weights_give_the_unary_minimum():
    gen = torch.Generator().manual_seed(4)
    u, wv, wh, v = _random_problem(5, 16, 16, 3, gen)
    x = G.solve_grid(u, wv * 0, wh * 0, v)
    assert torch.equal(x, u.argmin(-1))


def test_strong_smoothness_gives_a_constant_labelling():
    gen = torch.Generator().manual_seed(5)
    u, wv, wh, v = _random_problem(5, 8, 8, 3, gen)
    x = G.solve_grid(u, wv * 0 + 100, wh * 0 + 100, v)
    assert (x == x[:, :1, :1]).all()
    assert torch.equal(x[:, 0, 0], u.sum((1, 2)).argmin(-1))


def test_strip_descent_never_increases_energy_on_nonconvex_costs():
    gen = torch.Generator().manual_seed(6)
    u, wv, wh, v = _random_problem(10, 9, 9, 3, gen, convex=False, nonneg=False)
    init = u.argmin(-1)
    x = G.refine_strips(init, u, wv, wh, v)
    e0, e1 = G.energy(init, u, wv, wh, v), G.energy(x, u, wv, wh, v)
    assert (e1 <= e0 + 1e-12).all() and (e1 < e0).any()
    # on a grid the DP can still solve, the descent is never better than the optimum
    u, wv, wh, v = _random_problem(10, 4, 5, 3, gen, convex=False, nonneg=False)
    e_opt = G.energy(G.solve_dp(u, wv, wh, v), u, wv, wh, v)
    e_str = G.energy(G.solve_grid(u, wv, wh, v, method="strips"), u, wv, wh, v)
    assert (e_str >= e_opt - 1e-12).all()


def test_auto_falls_back_for_negative_weights():
    gen = torch.Generator().manual_seed(8)
    u, wv, wh, v = _random_problem(6, 10, 10, 3, gen, nonneg=False)
    with pytest.raises(ValueError, match="non-negative"):
        G.solve_mincut(u, wv, wh, v)
    x = G.solve_grid(u, wv, wh, v)
    init = G.solve_mincut(u, wv.clamp(min=0), wh.clamp(min=0), v)
    assert (G.energy(x, u, wv, wh, v) <= G.energy(init, u, wv, wh, v) + 1e-12).all()


def test_bad_arguments():
    u = torch.rand(2, 3, 3, 3)
    with pytest.raises(ValueError, match="w_v"):
        G.solve_grid(u, torch.rand(2, 3, 3), torch.rand(2, 3, 2))
    with pytest.raises(ValueError, match="pairwise"):
        G.solve_grid(u, torch.rand(2, 2, 3), torch.rand(2, 3, 2), torch.rand(2, 2))
    with pytest.raises(ValueError, match="method"):
        G.solve_grid(u, torch.rand(2, 2, 3), torch.rand(2, 3, 2), method="swap")
    with pytest.raises(ValueError, match="convex"):
        G.solve_mincut(u, torch.rand(2, 2, 3), torch.rand(2, 3, 2), 1 - torch.eye(3))


# ----------------------------------------------------------------------------------- pyGCO
_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "graphcut_vs_gco.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("_graphcut_vs_gco_under_test", _BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def puzzlemix_like_costs(b, block_num, gen):
    """Official-style int32 costs (x 1000 * block_num**2), the benchmark's generator."""
    return _bench_module().puzzlemix_like_costs(b, block_num, gen)


def test_energy_convention_matches_pygco():
    gco = pytest.importorskip("gco")
    import numpy as np
    gen = torch.Generator().manual_seed(9)
    h, w, n = 4, 5, 3
    u = torch.randint(0, 50, (h, w, n), generator=gen, dtype=torch.int32)
    wv = torch.randint(0, 20, (h - 1, w), generator=gen, dtype=torch.int32)
    wh = torch.randint(0, 20, (h, w - 1), generator=gen, dtype=torch.int32)
    v = torch.tensor([[0, 1, 4], [1, 0, 1], [4, 1, 0]], dtype=torch.int32)
    x = torch.randint(0, n, (h, w), generator=gen)
    g = gco.GCO()
    g.create_general_graph(h * w, n, False)
    g.set_data_cost(u.reshape(-1, n).numpy())
    vf, hf, vt, ht = gco.pygco.get_images_edges_vh(h, w)
    g.set_all_neighbors(np.r_[vf, hf], np.r_[vt, ht], np.r_[wv.reshape(-1).numpy(), wh.reshape(-1).numpy()])
    g.set_smooth_cost(v.numpy())
    for i, lab in enumerate(x.reshape(-1).tolist()):
        g.init_label_at_site(i, lab)
    e_gco = g.compute_energy()
    g.destroy_graph()
    assert G.energy(x[None], u[None], wv[None], wh[None], v).item() == e_gco


@pytest.mark.parametrize("block_num,count", [(2, 60), (4, 60), (8, 60), (16, 30)])
def test_energy_never_above_pygco_swap(block_num, count):
    gco = pytest.importorskip("gco")
    import numpy as np
    gen = torch.Generator().manual_seed(100 + block_num)
    u, wv, wh = puzzlemix_like_costs(count, block_num, gen)
    v = G.label_cost(3)
    v32 = v.float().numpy()
    ref = np.stack([gco.cut_grid_graph(u[i].numpy(), v32, wv[i].numpy(), wh[i].numpy(), algorithm="swap")
                    for i in range(count)]).reshape(count, block_num, block_num)
    e_gco = G.energy(torch.from_numpy(ref).long(), u, wv, wh, v)
    e_ours = G.energy(G.solve_grid(u, wv, wh, v), u, wv, wh, v)
    assert (e_ours <= e_gco).all(), (e_gco - e_ours).min()
    if block_num == 2:
        # a 2x2 grid has 81 labellings: ours is the brute-force optimum
        assert torch.equal(e_ours, _brute_force(u.double(), wv.double(), wh.double(), v))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(11)
    for bn in (4, 8, 16):
        u, wv, wh, v = _random_problem(20, bn, bn, 3, gen, integer=True)
        x_cpu = G.solve_grid(u, wv, wh, v)
        x_gpu = G.solve_grid(u.cuda(), wv.cuda(), wh.cuda(), v.cuda())
        assert torch.equal(x_gpu.cpu(), x_cpu)


def test_benchmark_script_tiny_run():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert _bench_module().main(["--batch", "3", "--blocks", "2,8", "--repeats", "1"]) == 0
    rows = [ln for ln in buf.getvalue().splitlines() if ln.startswith(("| 2 |", "| 8 |"))]
    assert len(rows) == 2 and "| dp |" in rows[0] and "| mincut |" in rows[1]

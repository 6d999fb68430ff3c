"""Tests for mixkit.bench.metrics: accuracy / NLL / Brier, ECE and reliability, FGSM / PGD, occlusion, evaluate."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixkit.bench.eval import (
    accuracy,
    brier,
    ece,
    evaluate,
    fgsm_accuracy,
    fgsm_attack,
    make_normalize,
    nll,
    occlusion_curve,
    occlusion_mask,
    occlusion_order,
    pgd_accuracy,
    pgd_attack,
    plot_reliability,
    predict,
    reliability,
)

EPS = 8 / 255


# --------------------------------------------------------------------------------------------------
# a small trained model: MLP on scikit-learn digits (8x8, pixel space [0, 1]), > 90% test accuracy
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1200], perm[1200:]
    mean, std = (float(x[tr].mean()),), (float(x[tr].std()),)
    norm = make_normalize(mean, std)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            opt.zero_grad()
            F.cross_entropy(model(norm(x[tr])), y[tr]).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    model.train()  # left in train mode on purpose: the metrics must switch to eval and back
    return {"model": model, "x": x[te], "y": y[te], "mean": mean, "std": std, "norm": norm}


def _state(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
    )


def _assert_same_state(model: nn.Module, before) -> None:
    training, req, grads = _state(model)
    assert training == before[0]
    assert req == before[1]
    for g0, g1 in zip(before[2], grads):
        if g0 is None:
            assert g1 is None
        else:
            assert g1 is not None and torch.equal(g0, g1)


# --------------------------------------------------------------------------------------------------
# predict / accuracy / NLL / Brier
# --------------------------------------------------------------------------------------------------
def test_trained_model_is_accurate_and_predict_is_deterministic(digits):
    m, x, y = digits["model"], digits["x"], digits["y"]
    logits = predict(m, x, digits["norm"])
    assert logits.shape == (len(y), 10) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    assert accuracy(logits, y) > 0.9
    # eval mode (dropout off): repeatable, independent of the batch size up to float noise
    assert torch.equal(logits, predict(m, x, digits["norm"]))
    torch.testing.assert_close(predict(m, x, digits["norm"], batch_size=7), logits, rtol=1e-5, atol=1e-5)
    # mean=/std= equals the callable
    assert torch.equal(predict(m, x, mean=digits["mean"], std=digits["std"]), logits)


def test_predict_restores_per_module_modes(digits):
    m = digits["model"]
    m.train()
    m[3].eval()  # a mixed state must come back exactly
    before = _state(m)
    predict(m, digits["x"][:10], digits["norm"])
    _assert_same_state(m, before)
    m.train()


def test_predict_bad_input():
    model = nn.Linear(4, 2)
    with pytest.raises(TypeError, match="float"):
        predict(model, torch.zeros(2, 1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="spatial"):
        predict(model, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="either"):
        predict(model, torch.zeros(2, 1, 4), lambda t: t, mean=(0.0,), std=(1.0,))
    with pytest.raises(ValueError, match="channels"):
        predict(nn.Flatten(), torch.zeros(2, 3, 4), mean=(0.0, 0.0), std=(1.0, 1.0))


def test_accuracy_simple():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])) == 0.75
    assert accuracy(logits, torch.tensor([1, 0, 0, 1])) == 0.0
    with pytest.raises(ValueError, match="labels"):
        accuracy(logits, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="shape"):
        accuracy(logits, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        accuracy(logits, torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_nll_equals_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 7, generator=g) * 4
    y = torch.randint(0, 7, (500,), generator=g)
    assert nll(logits, y) == pytest.approx(F.cross_entropy(logits.double(), y).item(), abs=1e-12)
    assert nll(logits, y) == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    # extreme logits stay finite in float64
    big = torch.tensor([[1000.0, -1000.0]])
    assert nll(big, torch.tensor([1])) == pytest.approx(2000.0)


def test_brier_hand_values():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # (0) + (0.25 + 0.25) + (1 + 1) = 2.5 -> / 3
    assert brier(probs, torch.tensor([0, 1, 0])) == pytest.approx(2.5 / 3)
    logits = torch.zeros(2, 4)  # uniform: (0.75^2 + 3 * 0.25^2) = 0.75
    assert brier(logits, torch.tensor([0, 3]), from_logits=True) == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------------
# ECE / reliability
# --------------------------------------------------------------------------------------------------
def _ece_loop(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """Straightforward reference: per sample, per bin, left-open right-closed bins, 0 in the first bin."""
    n = probs.shape[0]
    sums = [[0, 0.0, 0.0] for _ in range(n_bins)]
    for i in range(n):
        row = probs[i].tolist()
        conf = max(row)
        pred = row.index(conf)
        for b in range(n_bins):
            lo, hi = b / n_bins, (b + 1) / n_bins
            if lo < conf <= hi or (b == 0 and conf == 0.0):
                sums[b][0] += 1
                sums[b][1] += float(pred == int(y[i]))
                sums[b][2] += conf
                break
    return sum(abs(acc - conf) / n for _, acc, conf in sums)


def test_ece_perfectly_calibrated_is_zero():
    # bin with confidence 0.8: 8 of 10 right; bin with confidence 0.6: 3 of 5 right
    probs = torch.tensor([[0.8, 0.2]] * 10 + [[0.6, 0.4]] * 5, dtype=torch.float64)
    y = torch.tensor([0] * 8 + [1] * 2 + [0] * 3 + [1] * 2)
    assert ece(probs, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_confident_and_wrong():
    onehot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert ece(onehot, torch.tensor([1, 2])) == pytest.approx(1.0)
    probs = torch.tensor([[0.9, 0.1]] * 4)
    assert ece(probs, torch.tensor([1] * 4)) == pytest.approx(0.9)


def test_ece_three_sample_hand_example():
    probs = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.5, 0.5]])
    y = torch.tensor([0, 1, 0])
    # bin (14/15, 1]: conf 0.95, acc 1/2 -> 2/3 * 0.45 = 0.3
    # bin (7/15, 8/15]: conf 0.5, acc 1 -> 1/3 * 0.5
    expected = 2 / 3 * 0.45 + 1 / 3 * 0.5
    assert ece(probs, y) == pytest.approx(expected, abs=1e-7)
    rel = reliability(probs, y)
    assert rel["bin_count"][14] == 2 and rel["bin_count"][7] == 1 and sum(rel["bin_count"]) == 3
    assert rel["bin_acc"][14] == pytest.approx(0.5) and rel["bin_conf"][7] == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ece_bin_boundaries(dtype):
    # confidence exactly 1 -> last bin
    rel = reliability(torch.tensor([[1.0, 0.0]], dtype=dtype), torch.tensor([0]))
    assert rel["bin_count"][14] == 1
    # confidence exactly 1/15 (15 equal classes) -> the first bin (0, 1/15], not the second
    rel = reliability(torch.full((1, 15), 1 / 15, dtype=dtype), torch.tensor([0]))
    assert rel["bin_count"][0] == 1
    # confidence exactly 2/15 -> bin (1/15, 2/15]
    probs = torch.tensor([[2 / 15] * 7 + [1 / 15]], dtype=dtype)
    rel = reliability(probs, torch.tensor([0]))
    assert rel["bin_count"][1] == 1
    # the same through logits: 15 equal logits -> confidence 1/15 -> first bin
    rel = reliability(torch.zeros(1, 15, dtype=dtype), torch.tensor([3]), from_logits=True)
    assert rel["bin_count"][0] == 1
    assert rel["bin_edges"][0] == 0.0 and rel["bin_edges"][-1] == 1.0 and len(rel["bin_edges"]) == 16


def test_ece_matches_loop_reference_and_counts_sum_to_n():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3000, 10, generator=g, dtype=torch.float64) * 3
    y = torch.where(torch.rand(3000, generator=g) < 0.6, logits.argmax(1), torch.randint(0, 10, (3000,), generator=g))
    probs = torch.softmax(logits, 1)
    ref = _ece_loop(probs, y)
    assert ece(logits, y) == pytest.approx(ref, abs=1e-12)  # logits detected as logits
    assert ece(probs, y) == pytest.approx(ref, abs=1e-12)  # probabilities detected as probabilities
    assert ece(probs.float(), y) == pytest.approx(ref, abs=1e-5)
    rel = reliability(logits, y)
    assert sum(rel["bin_count"]) == 3000 and rel["n"] == 3000
    manual = sum(c / 3000 * abs(a - f) for c, a, f in zip(rel["bin_count"], rel["bin_acc"], rel["bin_conf"]))
    assert rel["ece"] == pytest.approx(manual, abs=1e-12) and rel["ece"] == pytest.approx(ref, abs=1e-12)
    assert reliability(logits, y, n_bins=10)["bin_count"].__len__() == 10
    with pytest.raises(ValueError, match="probabilities"):
        ece(logits, y, from_logits=False)
    with pytest.raises(ValueError, match="n_bins"):
        ece(logits, y, n_bins=0)


def test_plot_reliability_draws_nonempty_bins():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(400, 5, generator=g) * 2
    y = torch.randint(0, 5, (400,), generator=g)
    rel = reliability(logits, y)
    fig, ax = plt.subplots()
    try:
        out = plot_reliability(ax, rel, "random")
        assert out is ax and ax.get_title() == "random"
        n_nonempty = sum(c > 0 for c in rel["bin_count"])
        assert len(ax.patches) == 2 * n_nonempty
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------------
# FGSM / PGD
# --------------------------------------------------------------------------------------------------
def test_fgsm_lowers_accuracy_and_eps0_is_clean(digits):
    m, x, y, norm = digits["model"], digits["x"], digits["y"], digits["norm"]
    clean = accuracy(predict(m, x, norm), y)
    adv = fgsm_accuracy(m, x, y, EPS, norm)
    assert adv < clean
    assert fgsm_accuracy(m, x, y, 4 * EPS, norm) < adv
    assert fgsm_accuracy(m, x, y, 0.0, norm) == clean
    assert fgsm_accuracy(m, x, y, 0.0, mean=digits["mean"], std=digits["std"], batch_size=100) == accuracy(
        predict(m, x, norm, batch_size=100), y
    )
    assert torch.equal(fgsm_attack(m, x, y, 0.0, norm), x)


def test_fgsm_restores_model_state(digits):
    m = copy.deepcopy(digits["model"])
    m.train()
    params = list(m.parameters())
    params[0].grad = torch.full_like(params[0], 7.0)  # a stale gradient must survive untouched
    params[1].requires_grad_(False)  # and a frozen parameter must stay frozen
    before = _state(m)
    fgsm_accuracy(m, digits["x"], digits["y"], EPS, digits["norm"])
    fgsm_attack(m, digits["x"][:50], digits["y"][:50], EPS, digits["norm"])
    pgd_attack(m, digits["x"][:50], digits["y"][:50], EPS, steps=2, normalize=digits["norm"])
    _assert_same_state(m, before)


def test_fgsm_perturbation_is_eps_in_pixel_space(digits):
    m, x, y, norm = digits["model"], digits["x"][:200], digits["y"][:200], digits["norm"]
    assert digits["std"][0] < 0.5  # normalisation scales a lot: an eps applied after it would be visible
    x_adv = fgsm_attack(m, x, y, EPS, norm)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    delta = (x_adv - x).abs()
    assert float(delta.max()) <= EPS + 1e-6
    interior = (x_adv > 0) & (x_adv < 1)  # not clamped
    moved = interior & (delta > 0)
    assert moved.float().mean() > 0.3
    torch.testing.assert_close(delta[moved], torch.full_like(delta[moved], EPS), rtol=0, atol=1e-6)
    # reference: gradient through the normalisation, by hand
    ref_model = copy.deepcopy(m).eval()
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(ref_model(norm(xr)), y, reduction="sum").backward()
    x_ref = (x + EPS * xr.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(x_adv, x_ref, rtol=0, atol=1e-6)


def test_pgd_stays_in_ball_and_is_deterministic(digits):
    m, x, y, norm = digits["model"], digits["x"][:200], digits["y"][:200], digits["norm"]
    a = pgd_attack(m, x, y, EPS, 2 / 255, 5, norm, generator=torch.Generator().manual_seed(3))
    b = pgd_attack(m, x, y, EPS, 2 / 255, 5, norm, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert float((a - x).abs().max()) <= EPS + 1e-6 and float(a.min()) >= 0 and float(a.max()) <= 1
    clean = accuracy(predict(m, x, norm), y)
    assert pgd_accuracy(m, x, y, EPS, 2 / 255, 5, norm) < clean
    assert pgd_accuracy(m, x, y, EPS, 2 / 255, 0, norm, random_start=False) == clean


# --------------------------------------------------------------------------------------------------
# occlusion
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spatial", [(8, 8), (32, 32), (7, 9), (40,), (13,)])
def test_occlusion_mask_covers_exact_fraction_and_is_nested(spatial):
    area = math.prod(spatial)
    prev = None
    for f in (0.0, 0.1, 0.25, 1 / 3, 0.5, 0.77, 0.9, 1.0):
        mask = occlusion_mask(5, spatial, f, generator=torch.Generator().manual_seed(0))
        assert mask.shape == (5, *spatial) and mask.dtype == torch.bool
        counts = mask.reshape(5, -1).sum(1)
        assert torch.all(counts == math.floor(f * area + 0.5)), (f, counts)
        if prev is not None:
            assert torch.all(mask | ~prev) and torch.all(prev <= mask)  # nested
        prev = mask
    assert bool(prev.all())  # fraction 1 hides everything
    a = occlusion_mask(5, spatial, 0.5, generator=torch.Generator().manual_seed(1))
    b = occlusion_mask(5, spatial, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_occlusion_mask_is_made_of_blocks():
    g = torch.Generator().manual_seed(0)
    order = occlusion_order(6, (32, 32), patch=4, generator=g)
    assert order.shape == (6, 1024) and torch.equal(order.sort(1).values, torch.arange(1024).expand(6, -1))
    mask = occlusion_mask(6, (32, 32), 10 * 16 / 1024, patch=4, generator=torch.Generator().manual_seed(0))
    blocks = mask.reshape(6, 8, 4, 8, 4).permute(0, 1, 3, 2, 4).reshape(6, 64, 16)
    full, empty = blocks.all(-1), ~blocks.any(-1)
    assert torch.all(full | empty) and torch.all(full.sum(1) == 10)
    # samples get different blocks
    assert not torch.equal(mask[0], mask[1])
    with pytest.raises(ValueError, match="fraction"):
        occlusion_mask(2, (8, 8), 1.5)


def test_occlusion_curve_endpoints_and_determinism(digits):
    m, x, y, norm = digits["model"], digits["x"], digits["y"], digits["norm"]
    clean = accuracy(predict(m, x, norm), y)
    r1 = occlusion_curve(m, x, y, norm, generator=torch.Generator().manual_seed(5))
    r2 = occlusion_curve(m, x, y, norm, generator=torch.Generator().manual_seed(5))
    assert r1 == r2
    curve = r1["curve"]
    assert list(curve) == [i / 10 for i in range(11)]
    assert curve[0.0] == clean
    const_pred = predict(m, torch.zeros(1, 1, 8, 8), norm).argmax(1)
    assert curve[1.0] == pytest.approx(float((y == const_pred).double().mean()))
    assert curve[1.0] < curve[0.5] < curve[0.0]
    f, a = list(curve), list(curve.values())
    trapz = sum((f[i + 1] - f[i]) * (a[i] + a[i + 1]) / 2 for i in range(10))
    assert r1["auc"] == pytest.approx(trapz)
    # fill with the per-channel mean of x
    r3 = occlusion_curve(m, x, y, norm, (0.0, 1.0), fill="mean")
    mean_img = x.mean().expand(1, 1, 8, 8)
    assert r3["curve"][1.0] == pytest.approx(float((y == predict(m, mean_img, norm).argmax(1)).double().mean()))
    assert m.training  # restored


def test_occlusion_curve_1d():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 40, 3))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 2, 40, generator=g)
    y = torch.randint(0, 3, (30,), generator=g)
    clean = accuracy(predict(model, x), y)
    r = occlusion_curve(model, x, y, fractions=(0.0, 0.3, 1.0), generator=torch.Generator().manual_seed(1))
    assert r["curve"][0.0] == clean and r["patch"] == 5
    assert r == occlusion_curve(model, x, y, fractions=(0.0, 0.3, 1.0), generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------
def test_evaluate_bundles_everything(digits):
    m, x, y, norm = digits["model"], digits["x"], digits["y"], digits["norm"]
    r = evaluate(m, x, y, norm, max_eval=150, generator=torch.Generator().manual_seed(0))
    logits = predict(m, x, norm)
    assert r["n"] == len(y) and r["n_robust"] == 150
    assert r["top1"] == accuracy(logits, y) and r["nll"] == pytest.approx(nll(logits, y))
    assert r["ece"] == pytest.approx(ece(logits, y)) and sum(r["reliability"]["bin_count"]) == len(y)
    assert 0 <= r["fgsm_acc"] <= 1 and 0 <= r["mean_corruption_acc"] <= 1 and 0 <= r["occlusion_auc"] <= 1
    assert "saturate" not in r["corruption"]["per"] and "motion_blur" in r["corruption"]["per"]
    assert r["occlusion"]["curve"][0.0] == r["robust_top1"]
    assert m.training
    # switched-off pieces are None; the remaining randomness does not depend on them
    r2 = evaluate(
        m, x, y, norm, corruptions=False, fgsm_eps=None, max_eval=150, generator=torch.Generator().manual_seed(0)
    )
    assert r2["corruption"] is None and r2["mean_corruption_acc"] is None and r2["fgsm_acc"] is None
    assert r2["occlusion"] == r["occlusion"] and r2["robust_top1"] == r["robust_top1"]
    r3 = evaluate(m, x, y, mean=digits["mean"], std=digits["std"], corruptions=["contrast"], occlusion=False)
    assert list(r3["corruption"]["per"]) == ["contrast"] and r3["occlusion"] is None and r3["n_robust"] == len(y)


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu(digits):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    m_cpu, x, y, norm = digits["model"], digits["x"], digits["y"], digits["norm"]
    m = copy.deepcopy(m_cpu).cuda()
    logits = predict(m, x, norm)
    assert logits.device.type == "cpu"
    torch.testing.assert_close(logits, predict(m_cpu, x, norm), rtol=1e-4, atol=1e-4)
    assert predict(m, x.cuda(), norm).device.type == "cpu"
    x_adv = fgsm_attack(m, x.cuda(), y.cuda(), EPS, norm)
    assert x_adv.device.type == "cuda" and float((x_adv.cpu() - x).abs().max()) <= EPS + 1e-6
    a = occlusion_curve(m, x, y, norm, generator=torch.Generator().manual_seed(0))
    b = occlusion_curve(m_cpu, x, y, norm, generator=torch.Generator().manual_seed(0))
    assert all(abs(a["curve"][f] - b["curve"][f]) < 0.01 for f in a["curve"])
    r = evaluate(m, x, y, norm, max_eval=100)
    assert 0 <= r["mean_corruption_acc"] <= 1

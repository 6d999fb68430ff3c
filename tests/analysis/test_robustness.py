"""Tests for mixkit.analysis.robustness: DeepFool against the closed-form distance of linear classifiers,
its sanity on a small CNN, its summary, and the uniform-noise curve against a closed-form accuracy."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixkit.analysis.robustness import STEP_MARGIN, deepfool, deepfool_summary, uniform_noise_curve
from mixkit.bench.eval import accuracy, fgsm_attack, predict

D, K = 12, 5


def linear(d: int = D, k: int = K, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, k)).double()


def closed_form(model: nn.Module, x: torch.Tensor, norm: str, *, scale: float = 1.0, shift: float = 0.0,
                candidates: torch.Tensor | None = None) -> torch.Tensor:
    """min_k |f_k - f_y| / ||w_k - w_y||_q over the classes k != y (q = 2 for L2, 1 for L-inf), in pixel
    space for a model fed (x - shift) / scale; y = the prediction. A single logit f is read as (0, f)."""
    lin = model[1]
    w, b = lin.weight / scale, lin.bias - (lin.weight * shift / scale).sum(dim=1)
    if w.shape[0] == 1:
        w, b = torch.cat([torch.zeros_like(w), w]), torch.cat([torch.zeros_like(b), b])
    f = x.flatten(1) @ w.T + b
    y = f.argmax(dim=1)
    dw = w[None] - w[y][:, None]
    dn = dw.norm(p=2 if norm == "l2" else 1, dim=2)
    d = (f - f.gather(1, y[:, None])).abs() / dn
    d = d.scatter(1, y[:, None], math.inf)
    if candidates is not None:
        d = torch.where(candidates, d, torch.full_like(d, math.inf))
    return d.min(dim=1).values.detach()


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("k", [1, 2, K])
def test_deepfool_on_a_linear_classifier_is_the_closed_form_distance(norm, k):
    model = linear(k=k)
    x = torch.rand(40, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    d = closed_form(model, x, norm)
    for overshoot in (0.0, 0.02):
        res = deepfool(model, x, norm=norm, overshoot=overshoot, clip=False)
        torch.testing.assert_close(res["norm"], (d + STEP_MARGIN) * (1 + overshoot), rtol=1e-9, atol=1e-12)
        assert res["iterations"].tolist() == [1] * 40
        assert bool(res["flipped"].all()) and bool(res["attacked"].all())
        logits = model(res["x_adv"])
        pred = (logits[:, 0] > 0).long() if k == 1 else logits.argmax(1)  # one logit f: class 1 iff f > 0
        assert bool((pred != res["label"]).all())  # the label really flips
        assert not res["norm"].requires_grad


def test_deepfool_with_normalisation_is_in_pixel_units():
    model = linear()
    x = torch.rand(30, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for norm in ("l2", "linf"):
        res = deepfool(model, x, norm=norm, overshoot=0.0, clip=False, mean=(0.5,), std=(0.25,))
        d = closed_form(model, x, norm, scale=0.25, shift=0.5)
        torch.testing.assert_close(res["norm"], d + STEP_MARGIN, rtol=1e-9, atol=1e-12)


def test_deepfool_candidate_classes_restrict_to_the_top_logits():
    model = linear(k=8)
    x = torch.rand(30, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    top = model(x).topk(3, dim=1).indices
    cand = torch.zeros(30, 8, dtype=torch.bool).scatter(1, top, True)
    res = deepfool(model, x, norm="l2", overshoot=0.0, clip=False, num_classes=3)
    d3 = closed_form(model, x, "l2", candidates=cand)
    torch.testing.assert_close(res["norm"], d3 + STEP_MARGIN, rtol=1e-9, atol=1e-12)
    assert bool((res["norm"] >= closed_form(model, x, "l2")).all())  # fewer candidates: never closer


def test_deepfool_with_true_labels_skips_the_misclassified():
    model = linear()
    x = torch.rand(20, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    pred = model(x).argmax(1)
    y = pred.clone()
    y[:5] = (pred[:5] + 1) % K
    res = deepfool(model, x, y, clip=False)
    assert res["attacked"].tolist() == [False] * 5 + [True] * 15
    assert res["norm"][:5].tolist() == [0.0] * 5 and res["iterations"][:5].tolist() == [0] * 5
    torch.testing.assert_close(res["norm"][5:], (closed_form(model, x, "l2")[5:] + STEP_MARGIN) * 1.02)
    s = deepfool_summary(res, eps=[0.0, 1e9])
    assert (s["n"], s["n_attacked"], s["n_flipped"]) == (20, 15, 15)
    assert s["robust_accuracy"] == [0.75, 0.0]


def small_cnn(dims: int = 2, seed: int = 0, k: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    pool = nn.AdaptiveAvgPool2d(2) if dims == 2 else nn.AdaptiveAvgPool1d(4)
    return nn.Sequential(conv(1, 8, 3, padding=1), nn.ReLU(), conv(8, 8, 3, padding=1), nn.ReLU(), pool,
                         nn.Flatten(), nn.Linear(32, k))


def quadrants(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images in [0, 1]; the class is the brightest of the four 4x4 quadrants."""
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return x, F.avg_pool2d(x, 4).flatten(1).argmax(1)


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained a few steps on :func:`quadrants` (about 80% test accuracy, a second on a CPU)."""
    model = small_cnn(k=4)
    x, y = quadrants(2048, 0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, 2048, (128,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    xt, yt = quadrants(200, 1)
    assert accuracy(predict(model, xt), yt) > 0.6
    return model, xt, yt


def test_deepfool_on_a_cnn_flips_with_less_than_the_fgsm_radius(trained):
    """Sanity on a non-linear model: every returned input is misclassified, half the perturbation
    mostly is not, and the L-inf norm is below the smallest FGSM budget that flips the sample."""
    model, x, _ = trained
    x = x[:24]
    res = deepfool(model, x, norm="linf", max_iter=50)
    pred = predict(model, x).argmax(1)
    assert bool(res["flipped"].all())
    assert bool((predict(model, res["x_adv"]).argmax(1) != pred).all())
    half = x + 0.5 * (res["x_adv"] - x)
    assert float((predict(model, half).argmax(1) != pred).float().mean()) <= 0.25
    step = 0.001
    grid = torch.arange(1, 301) * step
    radius = torch.full((24,), math.inf)
    for e in grid.flip(0):  # the smallest budget on the grid at which FGSM flips the sample
        flips = predict(model, fgsm_attack(model, x, pred, eps=float(e))).argmax(1) != pred
        radius[flips] = float(e)
    assert bool(torch.isfinite(radius).all())
    assert float((res["norm"].float() <= radius + step).float().mean()) >= 0.9
    assert float(res["norm"].median()) <= float(radius.median())
    torch.testing.assert_close(res["norm"], (res["x_adv"] - x).flatten(1).abs().amax(1).double())


def test_deepfool_l2_on_1d_and_flat_inputs_and_batching():
    model = small_cnn(dims=1).double()
    x = torch.rand(10, 1, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    a = deepfool(model, x, batch_size=3)
    b = deepfool(model, [(x[:4], torch.zeros(4, dtype=torch.long)), (x[4:],)])
    c = deepfool(model, x)
    assert bool(a["flipped"].all())
    for key in ("norm", "iterations", "pred"):
        torch.testing.assert_close(a[key], c[key])
    torch.testing.assert_close(b["norm"][4:], c["norm"][4:])
    flat = deepfool(linear(), torch.rand(6, D, dtype=torch.float64), clip=False)
    assert flat["x_adv"].shape == (6, D) and bool(flat["flipped"].all())


def test_deepfool_clip_keeps_inputs_in_the_unit_box():
    model = linear()
    x = torch.rand(40, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    res = deepfool(model, x, norm="l2")
    assert float(res["x_adv"].min()) >= 0.0 and float(res["x_adv"].max()) <= 1.0
    assert bool((res["norm"] >= closed_form(model, x, "l2") - 1e-12).all())  # never below the minimum
    assert deepfool(model, x, keep_inputs=False)["x_adv"] is None


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Flatten(), nn.Linear(4 * 36, 3))

    def forward(self, x):
        return self.body(x)


def test_eval_mode_is_used_and_every_flag_and_grad_restored():
    torch.manual_seed(0)
    model = Noisy()
    model.train()
    model.body[1].eval()  # a submodule's own flag must come back as it was
    flags = [m.training for m in model.modules()]
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(8))
    y = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(9))
    ref = copy.deepcopy(model).eval()
    a, b = deepfool(model, x), deepfool(ref, x)
    torch.testing.assert_close(a["norm"], b["norm"])
    assert uniform_noise_curve(model, x, y, repeats=2) == uniform_noise_curve(ref, x, y, repeats=2)
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_summary_is_the_mean_ratio_of_norms(trained):
    model, x, _ = trained
    x = x[:16]
    res = deepfool(model, x)
    s = deepfool_summary(res, eps=[0.0, float(res["norm"].median()), 1e9])
    rho = res["norm"] / res["input_norm"]
    assert s["rho_mean"] == pytest.approx(float(rho.mean()))
    assert s["rho_median"] == pytest.approx(float(torch.quantile(rho, 0.5)))
    assert s["robust_accuracy"][0] == 1.0 and s["robust_accuracy"][2] == 0.0
    assert s["robust_accuracy"][1] == pytest.approx(0.5)
    direct = deepfool_summary(model, x, norm="l2")
    assert direct["rho_mean"] == pytest.approx(s["rho_mean"]) and "robust_accuracy" not in direct


def threshold_model(c: float) -> nn.Module:
    """One pixel, one logit: class 1 iff x > 0.5 - c."""
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(-(0.5 - c))
    return nn.Sequential(nn.Flatten(), lin)


def test_uniform_noise_accuracy_is_the_closed_form():
    """x = 0.5, class 1 iff x + eps * u > 0.5 - c: accuracy P(u > -c / eps) = (1 + c / eps) / 2 for eps > c."""
    c, n = 0.1, 4000
    x, y = torch.full((n, 1, 1), 0.5), torch.ones(n, dtype=torch.long)
    eps = [0.0, 0.05, 0.2, 0.4]
    out = uniform_noise_curve(threshold_model(c), x, y, eps, repeats=2, generator=torch.Generator().manual_seed(0))
    assert out["accuracy"][:2] == [1.0, 1.0]
    for e, acc in zip(eps[2:], out["accuracy"][2:]):
        p = (1 + c / e) / 2
        assert abs(acc - p) < 4 * math.sqrt(p * (1 - p) / (2 * n))
    assert out["accuracy"][2] > out["accuracy"][3]


def test_uniform_noise_at_zero_is_clean_accuracy_and_deterministic(trained):
    model, x, y = trained
    x, y = x[:50], y[:50]
    out = uniform_noise_curve(model, x, y, eps=(0.0, 0.1, 0.5), repeats=3,
                              generator=torch.Generator().manual_seed(3))
    assert out["per_repeat"][0][0] == out["per_repeat"][2][0] == accuracy(predict(model, x), y)
    again = uniform_noise_curve(model, x, y, eps=(0.0, 0.1, 0.5), repeats=3,
                                generator=torch.Generator().manual_seed(3))
    other = uniform_noise_curve(model, x, y, eps=(0.0, 0.1, 0.5), repeats=3,
                                generator=torch.Generator().manual_seed(4))
    assert out == again and out["per_repeat"] != other["per_repeat"]
    assert uniform_noise_curve(model, x, y) == uniform_noise_curve(model, x, y)  # default seed
    assert len(out["accuracy_std"]) == 3 and out["n"] == 50
    loader = [(x[:20], y[:20]), (x[20:], y[20:])]
    assert uniform_noise_curve(model, loader, eps=0.0)["accuracy"] == [out["accuracy"][0]]


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: deepfool(m, x, norm="l3"), "norm must be one of"),
    (lambda m, x, y: deepfool(m, x, max_iter=0), "max_iter"),
    (lambda m, x, y: deepfool(m, x, overshoot=-0.1), "overshoot"),
    (lambda m, x, y: deepfool(m, x, num_classes=1), "num_classes"),
    (lambda m, x, y: deepfool(m, x.numpy()), "x must be a torch.Tensor"),
    (lambda m, x, y: deepfool(m, x.long()), "float tensor"),
    (lambda m, x, y: deepfool(m, x, y[:3]), "y must have shape"),
    (lambda m, x, y: deepfool(m, x, y + 10), r"y must lie in \[0, 5\)"),
    (lambda m, x, y: deepfool(m, x * 3), r"\[0, 1\] when clip=True"),
    (lambda m, x, y: deepfool(m, [(x, y)], y), "pass y only with a tensor x"),
    (lambda m, x, y: deepfool(m, []), "empty iterable"),
    (lambda m, x, y: deepfool_summary(m), "x is required"),
    (lambda m, x, y: deepfool_summary(deepfool(m, x), x), "either a deepfool"),
    (lambda m, x, y: deepfool_summary({"norm": 1}), "not a deepfool"),
    (lambda m, x, y: deepfool_summary(deepfool(m, x), eps=[-1]), "eps must be"),
    (lambda m, x, y: uniform_noise_curve(m, x), "y .* is required"),
    (lambda m, x, y: uniform_noise_curve(m, x, y, eps=[-0.1]), "eps must be"),
    (lambda m, x, y: uniform_noise_curve(m, x, y, eps=[]), "eps must be"),
    (lambda m, x, y: uniform_noise_curve(m, x, y, repeats=0), "repeats"),
    (lambda m, x, y: uniform_noise_curve(m, x, y, generator=0), "generator"),
    (lambda m, x, y: uniform_noise_curve(m, x, y + 10), r"y must lie in \[0, 5\)"),
    (lambda m, x, y: uniform_noise_curve(m, [x], eps=0.1), "has no labels"),
])
def test_bad_input_is_named(call, match):
    model = linear().float()
    x = torch.rand(6, 1, D)
    y = torch.zeros(6, dtype=torch.long)
    with pytest.raises((ValueError, TypeError), match=match):
        call(model, x, y)


@pytest.mark.gpu
def test_deepfool_and_noise_on_cuda_match_the_cpu():
    model = linear()
    x = torch.rand(20, 1, D, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    cpu = deepfool(model, x, clip=False)
    gpu = deepfool(copy.deepcopy(model).cuda(), x.cuda(), clip=False)
    assert gpu["x_adv"].is_cuda
    torch.testing.assert_close(gpu["norm"], cpu["norm"])
    y = model(x).argmax(1)
    g = uniform_noise_curve(copy.deepcopy(model).cuda(), x.cuda(), y.cuda(), generator=torch.Generator().manual_seed(0))
    assert g == uniform_noise_curve(model, x, y, generator=torch.Generator().manual_seed(0))

"""Tests for mixkit.bench.corruptions: the contract of every corruption, a few exact semantics, corruption_accuracy."""
from __future__ import annotations

import colorsys
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixkit.bench.eval import (
    CORRUPTIONS,
    SEVERITIES,
    available_corruptions,
    corrupt,
    corruption_accuracy,
    corruption_error,
)

NAMES_2D = [n for n, c in CORRUPTIONS.items() if 2 in c.dims]
NAMES_1D = [n for n, c in CORRUPTIONS.items() if 1 in c.dims]
CASES = [(n, 2) for n in NAMES_2D] + [(n, 1) for n in NAMES_1D]


def smooth_input(n: int, channels: int, spatial: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """Image-like test data: smooth random structure plus a little fine detail, strictly inside (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, *[max(2, s // 6) for s in spatial], generator=g)
    mode = "linear" if len(spatial) == 1 else "bilinear"
    x = F.interpolate(low, size=spatial, mode=mode, align_corners=False)
    x = 0.05 + 0.85 * x + 0.08 * torch.rand(x.shape, generator=g)
    return x.clamp(0.01, 0.99).to(dtype)


def case_input(name: str, nd: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    channels = CORRUPTIONS[name].channels or (3 if nd == 2 else 2)
    spatial = (32, 32) if nd == 2 else (64,)
    return smooth_input(8 if nd == 2 else 16, channels, spatial, seed, dtype)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------
def test_registry():
    assert len(NAMES_2D) >= 10 and len(NAMES_1D) >= 8
    for name, c in CORRUPTIONS.items():
        assert c.name == name and len(c.params) == 5 and c.dims <= {1, 2} and c.description
    for name in ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "cutout", "quantize", "shift"):
        assert 1 in CORRUPTIONS[name].dims
    assert available_corruptions(torch.zeros(2, 1, 28, 28)) == [n for n in NAMES_2D if n != "saturate"]
    assert available_corruptions((2, 3, 32, 32)) == NAMES_2D
    assert available_corruptions((2, 1, 40)) == NAMES_1D
    assert SEVERITIES == (1, 2, 3, 4, 5)


# --------------------------------------------------------------------------------------------------
# the contract, for every corruption at every severity
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,nd", CASES)
def test_contract(name, nd):
    cor = CORRUPTIONS[name]
    x = case_input(name, nd)
    x0 = x.clone()
    for sev in SEVERITIES:
        out = cor(x, sev, gen(1))
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and bool(torch.isfinite(out).all())
        assert torch.equal(out, cor(x, sev, gen(1))), "not deterministic under a seed"
        assert not torch.equal(out, x), f"severity {sev} is the identity"
        assert torch.equal(x, x0), "input modified in place"
    if cor.stochastic:
        assert not torch.equal(cor(x, 3, gen(1)), cor(x, 3, gen(2)))
    else:
        assert torch.equal(cor(x, 3, gen(1)), cor(x, 3, gen(2)))
    assert torch.equal(corrupt(x, name, 2, gen(4)), cor(x, 2, gen(4)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name,nd", CASES)
def test_dtype_kept(name, nd, dtype):
    x = case_input(name, nd, dtype=dtype)
    out = CORRUPTIONS[name](x, 3, gen(0))
    assert out.dtype == dtype and out.shape == x.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    ref = CORRUPTIONS[name](x.float(), 3, gen(0))
    if dtype != torch.float64:  # half inputs are computed in float32: same result up to rounding
        torch.testing.assert_close(out.float(), ref.to(dtype).float(), rtol=0, atol=1e-2)


@pytest.mark.parametrize("name,nd", [c for c in CASES if CORRUPTIONS[c[0]].monotone])
def test_distortion_grows_with_severity(name, nd):
    cor = CORRUPTIONS[name]
    d = []
    for sev in SEVERITIES:
        errs = [float((cor(x, sev, gen(s)) - x).abs().mean()) for s in range(3) for x in [case_input(name, nd, s)]]
        d.append(sum(errs) / len(errs))
    for a, b in zip(d[:-1], d[1:]):
        assert b >= 0.9 * a - 1e-4, d
    assert d[-1] > d[0], d


def test_non_monotone_is_declared_only_where_needed():
    assert [n for n, c in CORRUPTIONS.items() if not c.monotone] == ["saturate"]


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if 1 not in CORRUPTIONS[n].dims])
def test_unsupported_1d_raises(name):
    with pytest.raises(ValueError, match=name):
        CORRUPTIONS[name](torch.rand(2, 3, 40), 1, gen())


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_bad_input_raises(name):
    cor = CORRUPTIONS[name]
    with pytest.raises(ValueError, match="spatial"):
        cor(torch.rand(2, 3, 4, 4, 4), 1, gen())  # 3 spatial dims
    with pytest.raises(ValueError, match="spatial"):
        cor(torch.rand(2, 3), 1, gen())
    with pytest.raises(TypeError, match="float"):
        cor(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 1, gen())
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="severity"):
            cor(torch.rand(2, 3, 8, 8), bad, gen())


def test_saturate_needs_rgb_and_unknown_name():
    with pytest.raises(ValueError, match="3 channels"):
        CORRUPTIONS["saturate"](torch.rand(2, 1, 8, 8), 1, gen())
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(torch.rand(2, 1, 8, 8), "snow", 1)


# --------------------------------------------------------------------------------------------------
# exact semantics of some corruptions
# --------------------------------------------------------------------------------------------------
def _hsv_reference(x: torch.Tensor, fn) -> torch.Tensor:
    out = torch.empty_like(x, dtype=torch.float64)
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].double().tolist())
                out[n, :, i, j] = torch.tensor(colorsys.hsv_to_rgb(*fn(h, s, v)), dtype=torch.float64)
    return out.clamp(0, 1)


@pytest.mark.parametrize("sev", SEVERITIES)
def test_brightness_and_saturate_match_hsv(sev):
    g = gen(sev)
    x = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64)
    x[0, :, 0, 0] = 0.4  # grey pixel
    x[0, :, 0, 1] = 0.0  # black pixel
    x[1, :, 1, 1] = torch.tensor([0.2, 0.9, 0.9], dtype=torch.float64)  # a tie for the max
    c = CORRUPTIONS["brightness"].params[sev - 1]
    ref = _hsv_reference(x, lambda h, s, v: (h, s, min(max(v + c, 0.0), 1.0)))
    torch.testing.assert_close(CORRUPTIONS["brightness"](x, sev), ref, rtol=0, atol=1e-12)
    a, b = CORRUPTIONS["saturate"].params[sev - 1]
    ref = _hsv_reference(x, lambda h, s, v: (h, min(max(s * a + b, 0.0), 1.0), v))
    torch.testing.assert_close(CORRUPTIONS["saturate"](x, sev), ref, rtol=0, atol=1e-12)


def test_brightness_single_channel_is_additive():
    x = torch.rand(3, 1, 6, 6, generator=gen())
    for sev in SEVERITIES:
        c = CORRUPTIONS["brightness"].params[sev - 1]
        torch.testing.assert_close(CORRUPTIONS["brightness"](x, sev), (x + c).clamp(0, 1))


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "pixelate", "contrast"])
def test_constant_images_are_fixed_points(name):
    x = torch.full((2, 3, 16, 16), 0.37)
    for sev in SEVERITIES:
        torch.testing.assert_close(CORRUPTIONS[name](x, sev, gen()), x, rtol=0, atol=1e-6)


def test_blur_kernels_preserve_mean_away_from_borders():
    x = smooth_input(4, 3, (32, 32))
    for name in ("gaussian_blur", "defocus_blur"):
        out = CORRUPTIONS[name](x, 5)
        # the kernel sums to 1: the global mean barely moves (replicate borders)
        assert abs(float(out.mean() - x.mean())) < 2e-3


def test_noise_statistics():
    x = torch.full((1, 1, 100, 100), 0.5)
    for sev in SEVERITIES:
        c = CORRUPTIONS["gaussian_noise"].params[sev - 1]
        std = float((CORRUPTIONS["gaussian_noise"](x, sev, gen(sev)) - x).std())
        assert abs(std / c - 1) < 0.05
        p = CORRUPTIONS["impulse_noise"].params[sev - 1]
        out = CORRUPTIONS["impulse_noise"](x, sev, gen(sev))
        changed = float((out != x).double().mean())
        assert abs(changed - p) < 5 * math.sqrt(p * (1 - p) / 1e4)
        assert set(out[out != x].unique().tolist()) <= {0.0, 1.0}
        lam = CORRUPTIONS["shot_noise"].params[sev - 1]
        out = CORRUPTIONS["shot_noise"](x, sev, gen(sev))
        assert abs(float(out.mean()) - 0.5) < 0.01 and abs(float(out.var()) / (0.5 / lam) - 1) < 0.1


def test_quantize_levels():
    x = torch.linspace(0, 1, 1001).reshape(1, 1, 1001)
    for sev, bits in zip(SEVERITIES, CORRUPTIONS["quantize"].params):
        out = CORRUPTIONS["quantize"](x, sev)
        assert out.unique().numel() == 2**bits and float(out.min()) == 0 and float(out.max()) == 1
        assert float((out - x).abs().max()) <= 0.5 / (2**bits - 1) + 1e-6


@pytest.mark.parametrize("spatial", [(32, 32), (20, 28), (64,)])
def test_cutout_area_exact(spatial):
    x = torch.full((5, 2, *spatial), 0.5)
    for sev, a in zip(SEVERITIES, CORRUPTIONS["cutout"].params):
        out = CORRUPTIONS["cutout"](x, sev, gen(sev))
        zeros = (out[:, 0] == 0).reshape(5, -1).sum(1)
        if len(spatial) == 2:
            expected = round(math.sqrt(a) * spatial[0]) * round(math.sqrt(a) * spatial[1])
        else:
            expected = round(a * spatial[0])
        assert torch.all(zeros == expected)
        assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)  # the same box in every channel


def test_shift_translates_with_zero_fill():
    x = torch.rand(6, 2, 40, generator=gen()) * 0.9 + 0.05
    out = CORRUPTIONS["shift"](x, 3, gen(1))  # round(0.10 * 40) = 4 px
    for n in range(6):
        if bool((out[n, :, :4] == 0).all()):
            torch.testing.assert_close(out[n, :, 4:], x[n, :, :-4])
        else:
            assert bool((out[n, :, -4:] == 0).all())
            torch.testing.assert_close(out[n, :, :-4], x[n, :, 4:])


def test_pixelate_is_blocky():
    x = smooth_input(2, 1, (32, 32))
    out = CORRUPTIONS["pixelate"](x, 5)  # 32 -> 20 -> 32 pixels per axis
    assert out[0, 0].unique(dim=0).shape[0] <= 20 and out[0, 0].unique(dim=1).shape[1] <= 20


# --------------------------------------------------------------------------------------------------
# corruption_accuracy / corruption_error
# --------------------------------------------------------------------------------------------------
class _Constant(nn.Module):
    def __init__(self, k: int = 3, cls: int = 1):
        super().__init__()
        self.bias = nn.Parameter(F.one_hot(torch.tensor(cls), k).float())

    def forward(self, x):
        return self.bias.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_corruption_accuracy_structure_and_determinism():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))
    model.train()
    x = smooth_input(20, 3, (16, 16))
    y = torch.randint(0, 4, (20,), generator=gen())
    r = corruption_accuracy(model, x, y, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), generator=gen(3), batch_size=8)
    assert r["names"] == NAMES_2D and list(r["per"]) == NAMES_2D and r["severities"] == [1, 2, 3, 4, 5]
    for name, d in r["per"].items():
        assert list(d) == [1, 2, 3, 4, 5] and all(0 <= v <= 1 for v in d.values())
        assert r["per_corruption"][name] == pytest.approx(sum(d.values()) / 5)
    assert r["mean"] == pytest.approx(sum(r["per_corruption"].values()) / len(NAMES_2D))
    assert model.training
    r2 = corruption_accuracy(model, x, y, mean=(0.5,) * 3, std=(0.25,) * 3, generator=gen(3), batch_size=8)
    assert r2 == r
    # one (corruption, severity) pair does not depend on which others are evaluated
    r3 = corruption_accuracy(model, x, y, None, (3,), ["gaussian_noise"], mean=(0.5,) * 3, std=(0.25,) * 3,
                             generator=gen(3), batch_size=8)
    assert r3["per"]["gaussian_noise"][3] == r["per"]["gaussian_noise"][3]


def test_corruption_accuracy_constant_model_and_1d():
    x = smooth_input(12, 2, (40,))
    y = torch.tensor([1, 0, 2] * 4)
    r = corruption_accuracy(_Constant(3, 1), x, y)
    assert r["names"] == NAMES_1D
    assert all(v == pytest.approx(1 / 3) for d in r["per"].values() for v in d.values())
    with pytest.raises(ValueError, match="motion_blur"):
        corruption_accuracy(_Constant(), x, y, names=["motion_blur"])
    with pytest.raises(ValueError, match="unknown"):
        corruption_accuracy(_Constant(), x, y, names=["frost"])
    with pytest.raises(ValueError, match="severity"):
        corruption_accuracy(_Constant(), x, y, severities=(0,))


def test_corruption_error_hand_values():
    res = {"per": {"a": {1: 0.8, 2: 0.6}, "b": {1: 0.5, 2: 0.5}}}
    base = {"per": {"a": {1: 0.6, 2: 0.4}, "b": {1: 0.5, 2: 0.5}}}
    out = corruption_error(res, base, clean_acc=0.9, baseline_clean_acc=0.8)
    assert out["ce"]["a"] == pytest.approx(0.6 / 1.0) and out["ce"]["b"] == pytest.approx(1.0)
    assert out["mce"] == pytest.approx(0.8)
    assert out["relative_ce"]["a"] == pytest.approx((0.1 + 0.3) / (0.2 + 0.4))


@pytest.mark.gpu
def test_cuda_matches_cpu_under_a_cpu_generator():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    for name, nd in CASES:
        x = case_input(name, nd)
        a = CORRUPTIONS[name](x, 3, gen(0))
        b = CORRUPTIONS[name](x.cuda(), 3, gen(0))
        assert b.device.type == "cuda" and b.dtype == x.dtype
        torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-4, msg=name)

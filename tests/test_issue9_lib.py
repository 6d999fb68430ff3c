"""Regression tests of issue 9, the library half (items 10-17): one test per defect, named after it."""
from __future__ import annotations

import math

import pytest
import torch

import mixkit
from mixkit import sampling
from tvlike import ImageLike


# ---------------------------------------------------------------- item 10: tiny alpha
def _binomial_ok(k: int, n: int, p: float, z: float = 5.0) -> bool:
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_tiny_alpha_dirichlet_weights_sum_to_one():
    g = torch.Generator().manual_seed(0)
    w = sampling.sample_dirichlet(1e-4, 3, (4000,), g)
    assert torch.allclose(w.sum(-1), torch.ones(4000), atol=1e-6)
    top = w.argmax(-1)  # the small-alpha limit: all the weight on one source, uniformly chosen
    assert (w.amax(-1) > 0.99).float().mean() > 0.99
    for j in range(3):
        assert _binomial_ok(int((top == j).sum()), 4000, 1 / 3)
    x = torch.rand(8, 3, 6, 6)
    res = mixkit.DirichletMixUp(alpha=1e-4).mix(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(res.weights.sum(1), torch.ones(8), atol=1e-6)
    assert res.inputs.abs().sum() > 0.5 * x.abs().sum()  # not a blank batch


@pytest.mark.parametrize("alpha", [1e-4, 1e-12, 1e-200])
def test_tiny_alpha_beta_is_half_zero_half_one(alpha):
    n = 4000
    lam = sampling.sample_beta(alpha, alpha, (n,), torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.isfinite(lam).all()
    near_one, near_zero = int((lam > 1 - 1e-6).sum()), int((lam < 1e-6).sum())
    assert near_one + near_zero >= 0.99 * n
    assert _binomial_ok(near_one, n, 0.5)
    # the reformulated Beta(alpha + 1, alpha): lambda -> 1 as alpha -> 0
    r = sampling.sample_beta(alpha + 1, alpha, (n,), torch.Generator().manual_seed(3), dtype=torch.float64)
    assert (r > 1 - 1e-6).float().mean() > 0.99
    w = sampling.sample_normalized_betas(alpha, 3, (n,), torch.Generator().manual_seed(4))
    assert torch.allclose(w.sum(-1), torch.ones(n), atol=1e-6)


# ---------------------------------------------------------------- item 11: CutMix minmax label
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cutmix_minmax_label_is_box_share_without_correct_lam(mode):
    x = torch.rand(6, 3, 16, 16)
    m = mixkit.CutMix(minmax=(0.2, 0.6), correct_lam=False, mode=mode)
    res = m.mix(x, generator=torch.Generator().manual_seed(0))
    share = res.share_map.float().flatten(1).mean(1).expand(6)
    assert torch.allclose(res.weights[:, 0], share, atol=1e-6)


# ---------------------------------------------------------------- item 12: model-aware mixers
def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))


def _model_mixers(net):
    return [mixkit.PuzzleMix(net, num_classes=5), mixkit.CoMixup(net, num_classes=5),
            mixkit.ManifoldMixup(net, layers=["0", "2"], num_classes=5),
            mixkit.PatchUp(net, layers=["0", "2"], num_classes=5)]


def test_puzzlemix_input_requiring_grad_is_mixed_and_differentiable():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    res = mixkit.PuzzleMix(_net(), num_classes=5).mix(x, torch.arange(4), generator=torch.Generator().manual_seed(0))
    res.inputs.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_comixup_label_beyond_the_logits_is_a_value_error():
    x = torch.rand(4, 3, 16, 16)
    with pytest.raises(ValueError, match="class ids"):
        mixkit.CoMixup(_net()).mix(x, torch.tensor([0, 1, 2, 7]), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cls", [mixkit.ManifoldMixup, mixkit.PatchUp])
def test_hidden_mixers_refuse_y_shorter_than_x(cls):
    m = cls(_net(), layers=["0", "2"], num_classes=5)
    with pytest.raises(ValueError, match="rows"):
        m.mix(torch.rand(4, 3, 16, 16), torch.arange(2), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_model_aware_mixers_accept_any_float_dtype(dtype):
    x = torch.rand(4, 3, 16, 16).to(dtype)
    for m in _model_mixers(_net()):
        x_out, y_soft = m(x, torch.arange(4), generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(x_out.float()).all() and torch.allclose(y_soft.sum(1), torch.ones(4))
        if not m.runs_model:
            assert x_out.dtype == dtype  # the mixing keeps the input's dtype


def test_comixup_nan_pixel_does_not_leak_into_outputs_that_do_not_use_it():
    x = torch.rand(4, 3, 16, 16)
    x[1, 0, 3, 3] = float("nan")
    res = mixkit.CoMixup(_net(), num_classes=5).mix(x, torch.arange(4), generator=torch.Generator().manual_seed(0))
    for o in range(4):
        uses = any(int(res.index[o, j]) == 1 and bool(res.share_map[o, j].sum() > 0) for j in range(res.index.shape[1]))
        if not uses:
            assert not res.inputs[o].isnan().any(), f"output {o} does not use input 1 but holds its NaN"


# ---------------------------------------------------------------- item 13: (C, H, W) without batch dim
def test_unbatched_chw_image_is_refused_as_ambiguous():
    x, y = torch.rand(3, 32, 32), torch.arange(3)
    for m in (mixkit.MixUp(num_classes=3), mixkit.CutMix(num_classes=3), mixkit.FMix(num_classes=3)):
        with pytest.raises(ValueError, match="ambiguous"):
            m(x, y, generator=torch.Generator().manual_seed(0))
    x_mix, _ = mixkit.MixUp(num_classes=3, spatial_dims=1)(x, y, generator=torch.Generator().manual_seed(0))
    assert x_mix.shape == x.shape  # said to be a (B, C, L) batch: mixed as one
    with pytest.raises(ValueError, match="spatial_dims"):
        mixkit.MixUp(spatial_dims=4)
    mixkit.MixUp(num_classes=3)(torch.rand(3, 8, 20), y)  # a plain sequence batch is not ambiguous


# ---------------------------------------------------------------- item 14: tensor subclass kept
@pytest.mark.parametrize("make", [lambda: mixkit.MixUp(num_classes=4), lambda: mixkit.CutMix(num_classes=4),
                                  lambda: mixkit.CutMix(num_classes=4, mode="sample"),
                                  lambda: mixkit.FMix(num_classes=4), lambda: mixkit.DirichletMixUp(num_classes=4),
                                  lambda: mixkit.MixUp(num_classes=4, p=0.0)])
def test_mixed_batch_keeps_the_input_tensor_subclass(make):
    x = torch.rand(4, 3, 16, 16).as_subclass(ImageLike)
    x_mix, _ = make()(x, torch.arange(4), generator=torch.Generator().manual_seed(0))
    assert type(x_mix) is ImageLike
    assert type(make().mix(x, generator=torch.Generator().manual_seed(0)).inputs) is ImageLike


# ---------------------------------------------------------------- item 16: Co-Mixup's penalty as the official code parses it
def test_comixup_hard_penalty_follows_the_official_operator_precedence():
    np = pytest.importorskip("numpy")
    from mixkit.masks.comixup_labeling import modular_penalty
    A = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 2.0], [0.0, 2.0, 1.0]])
    p = np.array([3.0, 1.0, 0.0])
    thres, gamma = 2.0, 0.5
    official = 2 * gamma * (A @ p > thres).astype(float) * A @ p  # verbatim: ((2g * mask) * A) @ p
    # A p = [3.5, 2.5, 2.0], mask = [1, 1, 0]: the mask weighs A's columns, so entry 2 (mask 0) is not 0
    assert np.allclose(official, [3.5, 2.5, 2.0])
    elementwise = 2 * gamma * (A @ p > thres).astype(float) * (A @ p)
    assert not np.allclose(official, elementwise)
    At, pt = torch.tensor(A)[None], torch.tensor(p)[None]
    got = modular_penalty(At, pt, thres, gamma, "hard")[0].numpy()
    assert np.allclose(got, official)
    assert np.allclose(modular_penalty(At, pt, thres, gamma, "hard", "elementwise")[0].numpy(), elementwise)
    soft = 2 * gamma * ((A @ p > thres).astype(float) * (A @ p - thres))
    assert np.allclose(modular_penalty(At, pt, thres, gamma, "soft")[0].numpy(), soft)
    x = torch.rand(4, 3, 16, 16)
    for form in ("official", "elementwise"):
        mixkit.CoMixup(_net(), num_classes=5, m_penalty=form).mix(x, torch.arange(4), generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- item 15: FMix's official spectrum
def test_fmix_official_spectrum_reproduces_the_official_indexing():
    np = pytest.importorskip("numpy")
    from mixkit.masks import fourier
    for shape in ((12,), (8, 10), (8, 9)):
        grid = fourier._official_grid(shape)
        noise = torch.randn(1, *grid.shape, 2, dtype=torch.float64)
        spectrum = noise.numpy()  # the official (ch=1, *grid, 2) scaled noise
        spectrum = spectrum[:, 0] + 1j * spectrum[:, 1]  # verbatim official line
        official = np.real(np.fft.irfftn(spectrum, shape, axes=tuple(range(-len(shape), 0))))
        official = official[(slice(0, 1),) + tuple(slice(0, s) for s in shape)]
        got = fourier._official_images(noise, shape).double().numpy() / np.prod(shape)  # norm="forward" scale
        assert np.allclose(got, official, atol=1e-6)
    g = torch.Generator().manual_seed(0)
    img2 = fourier.low_freq_images(64, (32, 32), 3.0, g, spectrum="official")
    power = (torch.fft.fft2(img2 - img2.mean((1, 2), keepdim=True)).abs() ** 2).sum(0)
    fx = torch.fft.fftfreq(32) * 32
    assert power[:, fx.abs() > 1].max() < 1e-6 * power.max()  # only last-axis frequencies -1, 0, 1
    paper = fourier.low_freq_images(64, (32, 32), 3.0, g)
    pp = (torch.fft.fft2(paper - paper.mean((1, 2), keepdim=True)).abs() ** 2).sum(0)
    assert pp[:, fx.abs() > 1].sum() > 1e-2 * pp.sum()  # the paper's spectrum has power there (3% at decay 3)
    for decay in (1.0, 6.0):  # 1-D: one cosine whatever decay_power
        img1 = fourier.low_freq_images(32, (64,), decay, g, spectrum="official")
        p1 = (torch.fft.fft(img1 - img1.mean(1, keepdim=True)).abs() ** 2).sum(0)
        f1 = torch.fft.fftfreq(64) * 64
        assert p1[f1.abs() != 1].max() < 1e-6 * p1.max()
    x = torch.rand(4, 3, 32, 32)
    res = mixkit.FMix(spectrum="official").mix(x, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(res.weights.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="spectrum"):
        mixkit.FMix(spectrum="numpy")


def test_comixup_clean_lam_leaves_an_eval_mode_models_batchnorm_alone():
    from mixkit import CoMixup

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5))
    net.eval()
    before = {k: v.clone() for k, v in net[1].state_dict().items()}
    m = CoMixup(net, num_classes=5, clean_lam=1.0, m_block_num=2, m_part=4)
    m.mix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]), generator=torch.Generator().manual_seed(0))
    assert not net.training
    for k, v in net[1].state_dict().items():
        assert torch.equal(v, before[k]), f"BatchNorm {k} changed on a model in eval mode"

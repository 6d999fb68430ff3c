"""One test per correctness bug seen in peer libraries (reference/user-needs.md §3), named after it.

Several of these properties are also checked more broadly elsewhere (tests/test_contract.py runs the
pixel-provenance check for every mixer); here each bug has its own small, explicit regression test.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mixkit
from mixkit.masks import box
from mixkit.masks.fourier import binarise

stats = pytest.importorskip("scipy.stats")


def _provenance(b, spatial):
    x = torch.zeros(b, b, *spatial)
    x[torch.arange(b), torch.arange(b)] = 1
    return x


def test_b01_cutmix_lambda_is_corrected_for_the_clipped_box():
    g = torch.Generator().manual_seed(0)
    for size in ((32, 32), (17, 41), (224, 224)):
        res = mixkit.CutMix(mode="sample").mix(torch.zeros(200, 1, *size), generator=g)
        lo, hi = res.params["box_lo"], res.params["box_hi"]
        assert (lo >= 0).all() and (hi <= torch.tensor(size)).all()
        pasted = (~res.share_map).flatten(1).sum(1).double()
        assert torch.allclose(res.weights[:, 0].double(), 1 - pasted / math.prod(size), atol=1e-6)
    off = mixkit.CutMix(mode="sample", correct_lam=False).mix(torch.zeros(50, 1, 8, 8), generator=g)
    assert torch.equal(off.weights[:, 0], off.lam)  # the flag exists and does what it says


@pytest.mark.parametrize("name", ["CutMix", "FMix", "HMix", "GMix", "ResizeMix", "SmoothMix", "GridMix"])
def test_b02_mask_area_equals_reported_lambda(name):
    res = getattr(mixkit, name)(mode="sample").mix(_provenance(16, (12, 20)), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(res.mask[:, 0].flatten(1).mean(1), res.weights[:, 0], atol=2e-6, rtol=0)


def test_b02_degenerate_lambda_is_an_exact_identity_or_swap():
    x = torch.randn(4, 3, 8, 8)
    partner = x.flip(0)
    w1 = torch.ones(4, 1, 1, 1)
    assert torch.equal(torch.lerp(partner, x, w1), x) and torch.equal(torch.lerp(partner, x, 0 * w1), partner)
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 8, 8)
    assert binarise(noise, torch.tensor([0.0, 1.0]), generator=g).flatten(1).mean(1).tolist() == [0.0, 1.0]
    lo, hi = box.sample_boxes((8, 8), torch.tensor([1.0]), g)
    assert box.box_volume(lo, hi).item() == 0  # lambda 1: nothing pasted
    assert box.cut_lengths((8, 8), torch.tensor([0.0])).tolist() == [[8, 8]]  # lambda 0: a full-size box


def test_b03_height_and_width_are_not_swapped_on_non_square_inputs():
    g = torch.Generator().manual_seed(2)
    res = mixkit.CutMix(mode="sample").mix(torch.zeros(500, 1, 17, 41), generator=g)
    side = (res.params["box_hi"] - res.params["box_lo"]).double()
    full = ((res.params["box_lo"] > 0) & (res.params["box_hi"] < torch.tensor([17, 41]))).all(1)  # unclipped
    expect = torch.floor(torch.sqrt(1 - res.lam.double())[:, None] * torch.tensor([17.0, 41.0]))
    assert full.sum() > 20 and torch.equal(side[full], expect[full])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_b04_beta_sampler_is_parameterised_correctly(alpha):
    s = mixkit.sampling.sample_beta(alpha, alpha, (20000,), torch.Generator().manual_seed(3), dtype=torch.float64)
    assert stats.kstest(s.numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    r = mixkit.sampling.sample_beta(alpha + 1, alpha, (20000,), torch.Generator().manual_seed(4), dtype=torch.float64)
    assert stats.kstest(r.numpy(), stats.beta(alpha + 1, alpha).cdf).pvalue > 1e-3


def test_b05_each_method_gets_its_own_alpha():
    mixer = mixkit.RandomChoice([mixkit.MixUp(alpha=0.1), mixkit.CutMix(alpha=50.0)], probs=[0.5, 0.5])
    g = torch.Generator().manual_seed(5)
    lams = {"MixUp": [], "CutMix": []}
    for _ in range(200):
        res = mixer.mix(torch.zeros(4, 1, 8, 8), generator=g)
        lams[res.params["method"]].append(float(res.lam[0]))
    mix_lam, cut_lam = torch.tensor(lams["MixUp"]), torch.tensor(lams["CutMix"])
    assert ((mix_lam < 0.1) | (mix_lam > 0.9)).float().mean() > 0.6  # Beta(0.1): U-shaped
    assert ((cut_lam - 0.5).abs() < 0.15).float().mean() > 0.9  # Beta(50): concentrated at 0.5
    assert mixkit.CutMix(alpha=2).alpha == 2.0  # an integer alpha is accepted


@pytest.mark.parametrize("name", ["MixUp", "CutMix", "FMix", "ResizeMix", "GridMix"])
def test_b06_images_and_labels_use_the_same_permutation(name):
    b = 10
    x_mix, y_soft = getattr(mixkit, name)(mode="sample", num_classes=b)(
        _provenance(b, (16, 16)), torch.arange(b), generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(y_soft, x_mix.flatten(2).mean(2), atol=2e-6, rtol=0)


def test_b07_no_aliasing_and_the_input_is_not_modified():
    x = torch.randn(8, 3, 6, 6)
    keep = x.clone()
    res = mixkit.MixUp(mode="sample").mix(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(x, keep)
    lam = res.lam.view(-1, 1, 1, 1)
    torch.testing.assert_close(res.inputs, lam * keep + (1 - lam) * keep[res.index[:, 1]])


@pytest.mark.parametrize("b", [1, 2, 3, 7, 8])
def test_b08_odd_last_and_single_batches(b):
    for name in ("MixUp", "CutMix", "FMix"):
        res = getattr(mixkit, name)(mode="sample").mix(torch.randn(b, 3, 8, 8), generator=torch.Generator().manual_seed(b))
        assert res.inputs.shape == (b, 3, 8, 8) and torch.allclose(res.weights.sum(1), torch.ones(b))
        if b == 1:
            assert res.weights.tolist() == [[1.0]]


def test_b09_integer_and_binary_labels_become_float_targets():
    res = mixkit.MixUp(mode="sample", no_self_pairs=True).mix(torch.randn(4, 1, 4, 4), generator=torch.Generator().manual_seed(9))
    for y in (torch.tensor([0, 1, 2, 1], dtype=torch.int32), torch.tensor([0, 1, 2, 1], dtype=torch.uint8)):
        t = mixkit.soft_targets(y, res, num_classes=3)
        assert t.dtype == torch.float32 and torch.allclose(t.sum(1), torch.ones(4)) and (t > 0).sum() > 4
    multi = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.int64)
    t = mixkit.soft_targets(multi, res)
    assert t.dtype == torch.float32 and (t > 0).any() and (t < 1).any()


def test_b10_the_loss_is_weighted_per_sample_before_reduction():
    g = torch.Generator().manual_seed(10)
    y = torch.randint(0, 5, (9,), generator=g)
    res = mixkit.CutMix(mode="sample").mix(torch.randn(9, 3, 8, 8), generator=g)
    logits = torch.randn(9, 5, generator=g)
    per = lambda t: F.cross_entropy(logits, t, reduction="none")
    expect = (res.weights[:, 0] * per(y) + res.weights[:, 1] * per(y[res.index[:, 1]])).mean()
    assert torch.allclose(mixkit.mixed_loss(nn.CrossEntropyLoss(reduction="none"), logits, y, res), expect, atol=1e-6)
    with pytest.raises(ValueError, match="one loss per sample"):
        mixkit.mixed_loss(nn.CrossEntropyLoss(), logits, y, res)


def test_b11_p_is_applied_once():
    g = torch.Generator().manual_seed(11)
    m = mixkit.CutMix(mode="sample", p=0.4)
    rate = torch.cat([m.mix(torch.zeros(50, 1, 4, 4), generator=g).mixed for _ in range(100)]).float().mean().item()
    assert abs(rate - 0.4) < 4.5 * math.sqrt(0.4 * 0.6 / 5000)


def test_b12_box_placement_differs_per_row_and_every_position_is_reachable():
    g = torch.Generator().manual_seed(12)
    res = mixkit.CutMix(mode="sample", minmax=(0.5, 0.5)).mix(torch.zeros(3000, 1, 8, 8), generator=g)
    lo = res.params["box_lo"]
    counts = torch.bincount(lo[:, 0] * 5 + lo[:, 1], minlength=25).double()  # side 4: lo in 0..4 per axis
    assert (counts > 0).all()
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3


def test_b13_dtypes_kept_targets_float32_and_large_class_ids_exact():
    for dtype in (torch.float16, torch.bfloat16):
        m = mixkit.MixUp(num_classes=1000, no_self_pairs=True)
        x_mix, y_soft = m(torch.randn(4, 3, 8, 8, dtype=dtype), torch.tensor([999, 513, 257, 0]),
                          generator=torch.Generator().manual_seed(13))
        assert x_mix.dtype == dtype and y_soft.dtype == torch.float32
        cols = y_soft[:, [999, 513, 257, 0]]
        assert torch.allclose(cols.sum(1), torch.ones(4)) and (cols > 0).sum() == 8  # ids kept exactly
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_mix, y_soft = mixkit.CutMix(num_classes=10)(torch.randn(4, 3, 8, 8), torch.tensor([1, 2, 3, 4]))
    assert x_mix.dtype == torch.float32 and y_soft.dtype == torch.float32


def test_b14_segmentation_maps_get_the_same_randomness_as_the_image():
    b = 6
    x = _provenance(b, (12, 16))
    seg = torch.arange(b).view(b, 1, 1).expand(b, 12, 16).clone()
    res = mixkit.FMix(mode="sample").mix(x, generator=torch.Generator().manual_seed(14))
    assert torch.equal(res.mix_dense(seg), res.inputs.argmax(1))


def test_b15_a_feature_hook_really_replaces_the_hidden_state():
    from mixkit.hooks import mix_at

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(3, 4)
    plain = model(x)
    with mix_at(model, "0", lambda h: h * 0 + 1) as handle:
        hooked = model(x)
    assert handle.replaced and not torch.allclose(hooked, plain)
    assert not model[0]._forward_hooks  # removed afterwards


def test_b17_no_hidden_defaults():
    m = mixkit.CutMix()
    assert m.smoothing == 0.0 and m.num_classes is None and m.p == 1.0
    with pytest.raises(ValueError, match="num_classes"):
        m(torch.randn(2, 1, 4, 4), torch.tensor([0, 1]))


def test_b18_lambda_weights_the_anchor_sample():
    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    res = mixkit.MixUp(no_self_pairs=True).mix(x, generator=torch.Generator().manual_seed(18))
    assert res.weights[0, 0].item() == pytest.approx(res.lam[0].item())
    assert res.inputs[0].mean().item() == pytest.approx(1 - res.lam[0].item(), abs=1e-6)


@pytest.mark.parametrize("spatial", [(64,), (17, 41), (6, 7, 9)])
@pytest.mark.parametrize("name", ["CutMix", "FMix", "HMix", "GMix", "ResizeMix", "GridMix", "SmoothMix"])
def test_b19_area_is_right_outside_2d_and_every_mode_works(name, spatial):
    for mode in ("batch", "sample"):
        res = getattr(mixkit, name)(mode=mode).mix(_provenance(5, spatial), generator=torch.Generator().manual_seed(19))
        torch.testing.assert_close(res.inputs.double().flatten(2).mean(2).float(),
                                   torch.zeros(5, 5).scatter_add_(1, res.index, res.weights), atol=2e-6, rtol=0)


def test_b21_schedule_state_reaches_persistent_workers():
    # the full DataLoader check lives in tests/test_compose.py::test_scheduled_reaches_persistent_workers;
    # here: the clock is shared memory, so a pickled copy (what a worker holds) sees later updates
    import pickle

    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  (registers the shared-memory reductions)

    s = mixkit.Scheduled(mixkit.MixUp(), start=2)
    copy = pickle.loads(ForkingPickler.dumps(s))
    s.set_epoch(3)
    assert copy.enabled


def test_b22_smoothed_targets_have_the_right_values():
    t = mixkit.one_hot(torch.tensor([1]), 4, smoothing=0.2)
    assert t.tolist()[0] == pytest.approx([0.05, 0.85, 0.05, 0.05])

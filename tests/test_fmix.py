"""FMix (Harris et al., arXiv 2002.12047): Fourier masks and the mixer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixkit.masks import fourier as F
from mixkit.mixers.fmix import FMix

SHAPES = [(32, 32), (28, 28), (31, 33), (16000,), (8, 12, 10)]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def provenance(b, spatial, dtype=torch.float32):
    """Sample i = the one-hot colour e_i over B channels: channel j of an output row is source j's share."""
    x = torch.zeros(b, b, *spatial, dtype=dtype)
    x[torch.arange(b), torch.arange(b)] = 1
    return x


def boundary_fraction(m):
    """Share of neighbouring pixel pairs (along every axis) whose mask values differ."""
    m = m.bool()
    diffs, total = 0, 0
    for ax in range(1, m.dim()):
        a = m.narrow(ax, 0, m.shape[ax] - 1)
        b = m.narrow(ax, 1, m.shape[ax] - 1)
        diffs += int((a != b).sum())
        total += a.numel()
    return diffs / total


def low_power_fraction(m, cut=0.1):
    """Fraction of the (mean-removed) power spectrum of 2-D images ``(n, H, W)`` below frequency ``cut``."""
    h, w = m.shape[1:]
    p = torch.fft.rfftn(m - m.mean((1, 2), keepdim=True), dim=(1, 2)).abs() ** 2
    weight = torch.full((w // 2 + 1,), 2.0)  # the rfft half-plane stands for both halves...
    weight[0] = 1.0  # ...except the zero column
    if w % 2 == 0:
        weight[-1] = 1.0  # and the Nyquist column
    p = p * weight
    f = F.fftfreq_grid((h, w))
    return p[:, f < cut].sum(1) / p.flatten(1).sum(1)


# ---------------------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape", SHAPES)
def test_binarise_mean_within_one_pixel_of_lambda(shape):
    n = 24
    N = math.prod(shape)
    for seed in range(4):
        g = gen(seed)
        lam = torch.rand(n, generator=g)
        lam[:3] = torch.tensor([0.0, 1.0, 0.5])
        grey = F.low_freq_images(n, shape, 3.0, g)
        m = F.binarise(grey, lam, generator=g)
        assert m.shape == (n, *shape) and m.dtype == torch.float32
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        mean = m.flatten(1).double().mean(1)
        assert ((mean - lam.double()).abs() <= 1.0 / N + 1e-9).all()
        assert mean[0] == 0 and mean[1] == 1
        # exact top-k: every kept pixel scores at least as high as every dropped one
        s, k = grey.flatten(1), m.flatten(1).bool()
        rows = k.any(1) & (~k).any(1)
        lo_kept = s.masked_fill(~k, float("inf")).amin(1)
        hi_drop = s.masked_fill(k, float("-inf")).amax(1)
        assert (lo_kept[rows] >= hi_drop[rows]).all()


def test_binarise_exact_count_with_ties_and_bool_output():
    g = gen(0)
    scores = torch.zeros(6, 10, 10)  # all tied
    scores[3] = torch.arange(100.0).view(10, 10) % 3  # many ties
    lam = torch.tensor([0.0, 0.13, 0.5, 0.77, 0.999, 1.0])
    m = F.binarise(scores, lam, generator=g, dtype=torch.bool)
    assert m.dtype == torch.bool
    num = m.flatten(1).sum(1)
    assert ((num - lam * 100).abs() <= 1).all()
    assert num[0] == 0 and num[-1] == 100


def test_random_rounding_is_ceil_or_floor_half_the_time():
    g = gen(1)
    n, N = 4000, 7  # 0.3 * 7 = 2.1: the count must be 2 or 3, each with probability 1/2
    m = F.binarise(torch.randn(n, N, generator=g), 0.3, generator=g)
    counts = m.sum(1)
    assert set(counts.unique().tolist()) == {2.0, 3.0}
    share_up = float((counts == 3).float().mean())
    assert abs(share_up - 0.5) < 4 * math.sqrt(0.25 / n)


def test_low_freq_images_range_shape_dtype():
    for shape in SHAPES:
        m = F.low_freq_images(5, shape, 3.0, gen(0))
        assert m.shape == (5, *shape) and m.dtype == torch.float32
        flat = m.flatten(1)
        torch.testing.assert_close(flat.amin(1), torch.zeros(5))
        torch.testing.assert_close(flat.amax(1), torch.ones(5))


@pytest.mark.parametrize("shape", [(8, 12, 10), (4, 16, 7), (5, 6, 9), (31, 33), (33, 30), (15,), (16,)])
def test_fftfreq_grid_matches_independent_construction(shape):
    grid = F.fftfreq_grid(shape)
    assert grid.shape == (*shape[:-1], shape[-1] // 2 + 1)
    axes = [np.fft.fftfreq(s) for s in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    mesh = np.meshgrid(*axes, indexing="ij")
    expected = np.sqrt(sum(a ** 2 for a in mesh))
    np.testing.assert_allclose(grid.numpy(), expected, rtol=1e-6, atol=1e-7)
    # a cosine with k cycles along axis i peaks, on the rfft grid, where the grid reads k / shape[i]
    for i, size in enumerate(shape):
        k = max(1, size // 3)
        pos = torch.arange(size, dtype=torch.float64).view([-1 if j == i else 1 for j in range(len(shape))])
        wave = torch.cos(2 * math.pi * k * pos / size).expand(shape)
        power = torch.fft.rfftn(wave).abs()
        assert power.shape == grid.shape
        loc = np.unravel_index(int(power.argmax()), tuple(power.shape))
        assert float(grid[loc]) == pytest.approx(k / size, rel=1e-5)


def test_fftfreq_grid_axis_roles_in_3d():
    d, h, w = 4, 16, 10
    grid = F.fftfreq_grid((d, h, w))
    assert grid.shape == (4, 16, 6)  # the official fftfreqnd gives (4, 10, 9) here: axes swapped
    assert grid[1, 0, 0] == pytest.approx(1 / d)
    assert grid[0, 1, 0] == pytest.approx(1 / h)
    assert grid[0, 0, 1] == pytest.approx(1 / w)
    assert grid[0, 0, 5] == pytest.approx(0.5)


def test_3d_mask_statistics_do_not_depend_on_axis_order():
    # The spectrum is isotropic in cycles per pixel, so a non-cubic volume's masks must look the same,
    # in distribution, whichever axis the long side is on (first, middle or the rfft axis). A swapped
    # grid (the official 3-D fftfreqnd) breaks this as soon as the volume is not a cube.
    def steps(m, ax):  # share of neighbouring pairs along axis `ax` that differ
        a, b = m.narrow(ax, 0, m.shape[ax] - 1), m.narrow(ax, 1, m.shape[ax] - 1)
        return float((a != b).float().mean())

    along_long = []
    for shape in [(64, 4, 6), (4, 64, 6), (6, 4, 64)]:
        m = F.fmix_masks(100, shape, 0.5, 3.0, generator=gen(0), dtype=torch.bool)
        long_ax, short_ax = 1 + shape.index(64), 1 + shape.index(4)
        along_long.append(steps(m, long_ax))
        assert along_long[-1] > 5 * steps(m, short_ax)  # few cycles fit on a short side
    assert max(along_long) < 1.2 * min(along_long)


def test_masks_are_low_frequency():
    g = gen(0)
    shape = (32, 48)
    grey = F.low_freq_images(16, shape, 3.0, g)
    mask = F.binarise(grey, 0.4, generator=g)
    noise = (torch.rand(16, *shape, generator=g) < mask.mean()).float()
    f_grey, f_mask, f_noise = low_power_fraction(grey), low_power_fraction(mask), low_power_fraction(noise)
    assert f_grey.min() > 0.9  # the grey image: nearly all power below 0.1 cycles/pixel
    assert f_mask.min() > 0.5
    assert f_noise.max() < 0.1  # white noise: about the share of low-frequency bins (~4%)
    assert f_mask.mean() > 5 * f_noise.mean()


def test_larger_decay_power_gives_smoother_masks():
    fr = []
    for delta in (1.0, 2.0, 4.0):
        g = gen(7)
        fr.append(boundary_fraction(F.fmix_masks(16, (64, 64), 0.5, delta, generator=g)))
    assert fr[0] > 1.5 * fr[1] > 0 and fr[1] > 1.5 * fr[2] > 0


def test_soft_ramp_values_and_mean():
    g = gen(5)
    n, shape = 12, (28, 28)
    N = math.prod(shape)
    lam = torch.rand(n, generator=g) * 0.6 + 0.2
    lam[0] = 0.05  # max_soft above lam: the ramp shrinks to min(lam, 1 - lam)
    max_soft = 0.1
    grey = F.low_freq_images(n, shape, 3.0, g)
    m = F.binarise(grey, lam, max_soft, generator=g)
    assert m.min() >= 0 and m.max() <= 1
    mean = m.flatten(1).double().mean(1)
    assert ((mean - lam.double()).abs() <= 1.0 / N + 1e-6).all()
    eff = torch.where(lam < max_soft, lam, torch.full_like(lam, max_soft))
    soft = torch.floor(eff.double() * N).long()
    inner = ((m > 0) & (m < 1)).flatten(1).sum(1)
    assert torch.equal(inner, 2 * soft - 2)  # linspace(1, 0, 2*soft) has 2*soft - 2 interior values
    # the ramp follows the score order: higher score, higher mask value
    s, v = grey.flatten(1), m.flatten(1)
    order = s.argsort(1, descending=True)
    assert (v.gather(1, order).diff(dim=1) <= 1e-7).all()


# ---------------------------------------------------------------------------------------------- mixer
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("shape", SHAPES)
def test_mixer_share_mean_within_one_pixel_of_lambda_and_equals_weights(mode, shape):
    b = 5
    N = math.prod(shape)
    m = FMix(mode=mode)
    for seed in range(3):
        res = m.mix(provenance(b, shape), generator=gen(seed))
        share = res.share_map.float().flatten(1).double().mean(1)
        assert res.share_map.shape == ((1 if mode == "batch" else b), 1, *shape)
        assert res.share_map.dtype == torch.bool
        lam = res.lam.double()
        assert ((share - lam[: share.numel()]).abs() <= 1.0 / N + 1e-7).all()
        w0 = res.weights[:, 0]
        assert torch.allclose(w0.double(), share.expand(b), atol=1e-6, rtol=0)
        # and the pixels agree: channel i of row i is the anchor's share (no self-pair rows only)
        real = res.inputs.double().flatten(2).mean(2)
        own = real[torch.arange(b), torch.arange(b)]
        not_self = res.index[:, 1] != res.index[:, 0]
        assert torch.allclose(own[not_self], w0.double()[not_self], atol=1e-6, rtol=0)


def test_batch_mode_one_mask_sample_mode_different_masks():
    b, shape = 6, (16, 20)
    x = provenance(b, shape)
    res = FMix(mode="batch", no_self_pairs=True).mix(x, generator=gen(0))
    keep = res.inputs[torch.arange(b), torch.arange(b)] == 1  # (B, H, W): where row i shows itself
    assert all(torch.equal(keep[0], keep[i]) for i in range(b))
    assert torch.equal(keep[0], res.share_map[0, 0])
    res = FMix(mode="sample", no_self_pairs=True).mix(x, generator=gen(0))
    keep = res.inputs[torch.arange(b), torch.arange(b)] == 1
    assert torch.equal(keep, res.share_map[:, 0])
    assert sum(torch.equal(keep[0], keep[i]) for i in range(1, b)) == 0
    assert res.lam.unique().numel() == b


def test_determinism_and_seeds():
    x = torch.randn(4, 3, 24, 20)
    for mode in ("batch", "sample"):
        m = FMix(mode=mode)
        a = m.mix(x, generator=gen(11))
        c = m.mix(x, generator=gen(11))
        d = m.mix(x, generator=gen(12))
        assert torch.equal(a.inputs, c.inputs) and torch.equal(a.share_map, c.share_map) and torch.equal(a.index, c.index)
        assert not torch.equal(a.share_map, d.share_map)


def test_input_not_modified_and_inplace():
    x = torch.randn(4, 3, 16, 16)
    x0 = x.clone()
    res = FMix(mode="sample").mix(x, generator=gen(0))
    assert torch.equal(x, x0) and res.inputs.data_ptr() != x.data_ptr()
    res = FMix(mode="sample", max_soft=0.1).mix(x, generator=gen(0))
    assert torch.equal(x, x0)
    res = FMix(mode="sample", inplace=True).mix(x, generator=gen(0))
    assert res.inputs.data_ptr() == x.data_ptr()
    expected = FMix(mode="sample").mix(x0, generator=gen(0)).inputs
    assert torch.equal(x, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_kept_and_hard_mask_copies_pixels(dtype):
    x = torch.randn(5, 3, 12, 14).to(dtype)
    res = FMix(mode="sample").mix(x, generator=gen(0))
    assert res.inputs.dtype == dtype and res.weights.dtype == torch.float32
    partner = x[res.index[:, 1]]
    expected = torch.where(res.share_map, x, partner)
    assert torch.equal(res.inputs, expected)
    res = FMix(mode="sample", max_soft=0.2).mix(x, generator=gen(0))
    assert res.inputs.dtype == dtype and res.share_map.dtype == torch.float32


def test_memory_format_kept():
    x = torch.randn(4, 3, 12, 10).contiguous(memory_format=torch.channels_last)
    for mode in ("batch", "sample"):
        for soft in (0.0, 0.1):
            out = FMix(mode=mode, max_soft=soft).mix(x, generator=gen(0)).inputs
            assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    x = torch.randn(3, 2, 4, 6, 5).contiguous(memory_format=torch.channels_last_3d)
    out = FMix(mode="sample").mix(x, generator=gen(0)).inputs
    assert out.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_soft_mixer_weights_equal_mean(mode):
    b, shape = 5, (20, 18)
    res = FMix(mode=mode, max_soft=0.15).mix(provenance(b, shape), generator=gen(4))
    share = res.share_map
    assert share.dtype == torch.float32 and share.min() >= 0 and share.max() <= 1
    assert ((share > 0) & (share < 1)).any()
    mean = share.flatten(1).double().mean(1).expand(b)
    assert torch.allclose(res.weights[:, 0].double(), mean, atol=1e-6, rtol=0)
    assert ((mean - res.lam.double()).abs() <= 1 / 360 + 1e-6).all()
    real = res.inputs.double().flatten(2).mean(2)
    not_self = res.index[:, 1] != res.index[:, 0]
    own = real[torch.arange(b), torch.arange(b)]
    assert torch.allclose(own[not_self], mean[not_self], atol=1e-6, rtol=0)


def test_reformulate_weights_and_lambda_distribution():
    stats = pytest.importorskip("scipy.stats")
    alpha = 1.0
    m = FMix(alpha=alpha, mode="sample", reformulate=True)
    res = m.mix(torch.randn(3, 2, 8, 8), generator=gen(0))
    assert torch.equal(res.weights, torch.tensor([[1.0, 0.0]] * 3))
    g = gen(1)
    lam = torch.cat([m.mix(torch.zeros(1000, 1, 4, 4), generator=g).lam for _ in range(3)]).double().numpy()
    assert stats.kstest(lam, stats.beta(alpha + 1, alpha).cdf).pvalue > 1e-3
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue < 1e-6  # the test can tell them apart
    lam_plain = FMix(alpha=alpha, mode="sample").mix(torch.zeros(3000, 1, 4, 4), generator=gen(2)).lam.double().numpy()
    assert stats.kstest(lam_plain, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_sample_mode_p_leaves_unselected_rows():
    x = torch.randn(64, 2, 8, 8)
    res = FMix(mode="sample", p=0.5).mix(x, generator=gen(0))
    off = ~res.mixed
    assert 0 < int(off.sum()) < 64
    assert torch.equal(res.inputs[off], x[off])
    assert (res.weights[off, 0] == 1).all() and res.share_map[off].all()


@pytest.mark.parametrize("shape", [(3, 2, 50), (3, 2, 6, 8, 7), (1, 3, 8, 8), (7, 1, 9, 9)])
def test_runs_on_1d_3d_and_any_batch(shape):
    x = torch.randn(*shape)
    for mode in ("batch", "sample"):
        res = FMix(mode=mode).mix(x, generator=gen(0))
        assert res.inputs.shape == x.shape
        assert torch.allclose(res.weights.sum(1), torch.ones(shape[0]))
    x_mix, y_soft = FMix(num_classes=4)(x, torch.arange(shape[0]) % 4, generator=gen(0))
    assert x_mix.shape == x.shape and y_soft.shape == (shape[0], 4)


def test_gradients_flow_through_the_mix():
    x = torch.randn(4, 2, 8, 8, requires_grad=True)
    res = FMix(mode="sample", max_soft=0.1).mix(x, generator=gen(0))
    res.inputs.sum().backward()
    # d sum / d x[j] = j's share as the anchor + (1 - share of row i) for every row i that takes j as partner
    share = res.share_map.expand(4, 2, 8, 8)
    expected = share.clone().index_add_(0, res.index[:, 1], 1.0 - share)
    assert torch.allclose(x.grad, expected, atol=1e-6)
    assert ((share > 0) & (share < 1)).any()


def test_bad_arguments():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="decay_power"):
            FMix(decay_power=bad)
    for bad in (-0.1, 0.6, 1.0):
        with pytest.raises(ValueError, match="max_soft"):
            FMix(max_soft=bad)
    with pytest.raises(TypeError, match="decay_power"):
        FMix(decay_power="3")
    with pytest.raises(ValueError, match="alpha"):
        FMix(alpha=0.0)
    with pytest.raises(ValueError, match="shape"):
        F.low_freq_images(2, (4, 4, 4, 4))
    with pytest.raises(ValueError, match="lam"):
        F.binarise(torch.rand(2, 8), 1.5)
    with pytest.raises(ValueError, match="max_soft"):
        F.binarise(torch.rand(2, 8), 0.5, max_soft=0.2, dtype=torch.bool)
    with pytest.raises(ValueError):
        FMix().mix(torch.randn(2, 3))  # no spatial dim

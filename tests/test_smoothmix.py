"""SmoothMix (Lee et al., CVPRW 2020), Gaussian-blob variant: property tests."""

import pytest
import torch

from mixkit.masks import gaussian
from mixkit.mixers.smoothmix import SmoothMix

SHAPES = [(5, 2, 23), (5, 3, 17, 41), (5, 2, 6, 7, 9)]  # 1-D, non-square 2-D, 3-D


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def blob(res):
    """The partner's share k (B, *spatial) float64."""
    return 1.0 - res.mask[:, 0].double()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_openmixup_smoothmix_weight_bug(shape, mode):
    """The port returns mean(k) as y_a's weight although k weights x[perm]; the anchor's share is 1 - mean(k)."""
    x = torch.randn(*shape, dtype=torch.float64)
    for seed in range(5):
        res = SmoothMix(mode=mode).mix(x, generator=gen(seed))
        k = blob(res)
        mean_k = k.mean(dim=tuple(range(1, k.dim())))
        # x~ = (1 - k) x + k x[perm]
        xp = x[res.index[:, 1]]
        want = (1 - k).unsqueeze(1) * x + k.unsqueeze(1) * xp
        torch.testing.assert_close(res.inputs, want, atol=1e-12, rtol=0)
        torch.testing.assert_close(res.weights[:, 0].double(), 1 - mean_k, atol=1e-6, rtol=0)
        torch.testing.assert_close(res.weights[:, 1].double(), mean_k, atol=1e-6, rtol=0)
        # the port's weight (mean(k) for y_a) is wrong here: the blob never covers exactly half
        assert bool(((res.weights[:, 0].double() - mean_k).abs() > 1e-3).all())
        assert res.lam is None  # no lambda is drawn; the realised anchor weight is weights[:, 0] (checked above)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_blob_matches_params_and_peaks_at_centre(shape, mode):
    x = torch.randn(*shape)
    sizes = shape[2:]
    for seed in range(4):
        res = SmoothMix(mode=mode).mix(x, generator=gen(seed))
        c, s = res.params["centre"], res.params["sigma"]
        n = 1 if mode == "batch" else shape[0]
        assert c.shape == (n, len(sizes)) and s.shape == (n, len(sizes))
        # sigma_i = u * size_i with one u in [0.25, 0.5] shared by every axis
        u = s / torch.tensor(sizes, dtype=torch.float32)
        assert bool((u >= 0.25 - 1e-6).all()) and bool((u <= 0.5 + 1e-6).all())
        torch.testing.assert_close(u, u[:, :1].expand_as(u))
        k = gaussian.gaussian_kernel(sizes, c, s)
        assert torch.equal(res.share_map, 1.0 - k)
        for i in range(n):  # partner share is 1 at the centre (anchor share 0)
            assert float(res.share_map[(i, 0) + tuple(c[i].long().tolist())]) == 0.0
        assert float(res.share_map.min()) >= 0.0 and float(res.share_map.max()) <= 1.0


def test_blob_follows_non_square_aspect():
    x = torch.randn(3, 1, 17, 41)
    res = SmoothMix(mode="sample").mix(x, generator=gen(1))
    assert res.share_map.shape == (3, 1, 17, 41)
    s = res.params["sigma"]
    torch.testing.assert_close(s[:, 1] / s[:, 0], torch.full((3,), 41 / 17))


def test_blob_width_distribution():
    x = torch.zeros(2000, 1, 4, 8)
    res = SmoothMix(mode="sample").mix(x, generator=gen(0))
    u = res.params["sigma"][:, 0] / 4
    assert 0.25 <= float(u.min()) and float(u.max()) <= 0.5
    assert float(u.mean()) == pytest.approx(0.375, abs=0.01)  # U(0.25, 0.5)


def test_alpha_does_not_change_the_blob():
    x = torch.randn(4, 3, 12, 12)
    a = SmoothMix(alpha=0.2).mix(x, generator=gen(7))
    b = SmoothMix(alpha=5.0).mix(x, generator=gen(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights)


def test_sigma_range_option_and_errors():
    x = torch.randn(8, 1, 20, 20)
    res = SmoothMix(mode="sample", sigma_range=(0.1, 0.1)).mix(x, generator=gen(0))
    torch.testing.assert_close(res.params["sigma"], torch.full((8, 2), 2.0))
    for bad in [(0.0, 0.5), (0.5, 0.25), (0.1, float("inf"))]:
        with pytest.raises(ValueError, match="sigma_range"):
            SmoothMix(sigma_range=bad)
    with pytest.raises(TypeError, match="sigma_range"):
        SmoothMix(sigma_range=0.3)


# ------------------------------------------------------------------------------------ shared contract
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("shape", SHAPES)
def test_deterministic_and_input_unmodified(mode, shape):
    x = torch.randn(*shape)
    x0 = x.clone()
    a = SmoothMix(mode=mode).mix(x, generator=gen(11))
    b = SmoothMix(mode=mode).mix(x, generator=gen(11))
    c = SmoothMix(mode=mode).mix(x, generator=gen(12))
    assert torch.equal(x, x0)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights) and torch.equal(a.index, b.index)
    assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(mode, dtype):
    x = torch.randn(5, 3, 12, 10).to(dtype)
    res = SmoothMix(mode=mode).mix(x, generator=gen(3))
    assert res.inputs.dtype == dtype and res.weights.dtype == torch.float32 and res.weights[:, 0].dtype == torch.float32
    ref = SmoothMix(mode=mode).mix(x.float(), generator=gen(3))
    torch.testing.assert_close(res.weights, ref.weights, atol=0, rtol=0)
    torch.testing.assert_close(res.inputs.float(), ref.inputs.to(dtype).float(),
                               atol=1e-2 if dtype == torch.float16 else 5e-2, rtol=0)


def test_sample_mode_differs_per_row():
    x = torch.randn(6, 2, 16, 18)
    res = SmoothMix(mode="sample").mix(x, generator=gen(5))
    assert len(set(res.weights[:, 0].tolist())) == 6 and res.share_map.shape[0] == 6
    assert not torch.equal(res.share_map[0], res.share_map[1])
    bat = SmoothMix(mode="batch").mix(x, generator=gen(5))
    assert bat.share_map.shape[0] == 1 and len(set(bat.weights[:, 0].tolist())) == 1


@pytest.mark.parametrize("b", [1, 3, 7])
def test_odd_batches_and_soft_targets(b):
    x = torch.randn(b, 3, 8, 9)
    y = torch.arange(b) % 4
    xm, ys = SmoothMix(num_classes=4)(x, y, generator=gen(2))
    assert xm.shape == x.shape and ys.shape == (b, 4) and ys.dtype == torch.float32
    torch.testing.assert_close(ys.sum(1), torch.ones(b))
    if b == 1:
        assert torch.equal(xm, x) and float(ys[0, 0]) == 1.0


def test_p_in_sample_mode():
    x = torch.randn(40, 2, 8, 8)
    res = SmoothMix(mode="sample", p=0.5).mix(x, generator=gen(4))
    off = ~res.mixed
    assert 0 < int(off.sum()) < 40
    assert torch.equal(res.inputs[off], x[off])
    assert bool((res.weights[off, 0] == 1).all()) and bool((res.weights[:, 0][off] == 1).all())
    m0 = res.mask[:, 0].double().mean(dim=(1, 2))
    torch.testing.assert_close(m0, res.weights[:, 0].double(), atol=1e-6, rtol=0)
    assert SmoothMix(p=0.0).mix(x, generator=gen(4)).inputs is x


def test_inplace_and_channels_last():
    x = torch.randn(4, 3, 10, 12).contiguous(memory_format=torch.channels_last)
    res = SmoothMix().mix(x, generator=gen(6))
    assert res.inputs.is_contiguous(memory_format=torch.channels_last)
    ref = res.inputs.clone()
    x2 = x.clone()
    res2 = SmoothMix(inplace=True).mix(x2, generator=gen(6))
    assert res2.inputs.data_ptr() == x2.data_ptr() and torch.equal(x2, ref)


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        SmoothMix(alpha=0.0)
    with pytest.raises(ValueError, match="mode"):
        SmoothMix(mode="pixel")
    with pytest.raises(ValueError, match="p"):
        SmoothMix(p=-0.1)
    with pytest.raises(TypeError, match="floating"):
        SmoothMix().mix(torch.zeros(4, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="spatial"):
        SmoothMix().mix(torch.zeros(2, 3, 4, 4, 4, 4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cuda_matches_cpu(mode):
    x = torch.randn(5, 3, 17, 41)
    a = SmoothMix(mode=mode).mix(x, generator=gen(9))
    b = SmoothMix(mode=mode).mix(x.cuda(), generator=gen(9))
    assert b.inputs.is_cuda
    torch.testing.assert_close(b.inputs.cpu(), a.inputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.weights.cpu(), a.weights, atol=1e-6, rtol=0)

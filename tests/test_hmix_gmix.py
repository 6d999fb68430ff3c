"""HMix and GMix (Park, Yun, Chun, NeurIPS 2022): property tests."""
import math

import pytest
import torch

from mixkit.masks import box, gaussian
from mixkit.mixers import _ops
from mixkit.mixers.cutmix import CutMix
from mixkit.mixers.gmix import GMix
from mixkit.mixers.hmix import HMix, hmix_share
from mixkit.mixers.mixup import MixUp

SHAPES = [(5, 2, 23), (5, 3, 17, 41), (5, 2, 6, 7, 9)]  # 1-D, non-square 2-D, 3-D


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def sp_dims(t):
    return tuple(range(1, t.dim()))


def check_pixels(res, x, atol=1e-5):
    """x_mix == share * x + (1 - share) * x[partner] per pixel, with the stored share map."""
    m0 = res.mask[:, 0:1].double()
    xp = x.double()[res.index[:, 1]]
    want = m0 * x.double() + (1 - m0) * xp
    torch.testing.assert_close(res.inputs.double(), want, atol=atol, rtol=0)


def check_weights(res):
    w = res.weights
    assert w.dtype == torch.float32 and w.shape == (res.batch_size, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(res.batch_size), atol=1e-6, rtol=0)
    m = res.mask
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    mean0 = m[:, 0].double().mean(dim=sp_dims(m[:, 0]))
    assert torch.allclose(mean0, w[:, 0].double(), atol=1e-6, rtol=0), (mean0, w[:, 0])


# ---------------------------------------------------------------------------------------------- HMix
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("r", [0.0, 0.5, 1.0])
def test_hmix_share_mean_equals_label(shape, mode, r):
    x = torch.randn(*shape, dtype=torch.float64)
    for seed in range(6):
        res = HMix(alpha=1.0, r=r, mode=mode).mix(x, generator=gen(seed))
        check_weights(res)
        check_pixels(res, x, atol=1e-12)
        # for r <= 1 the label is the sampled lambda itself (mixup_lam never clamps)
        torch.testing.assert_close(res.weights[:, 0], res.lam, atol=1e-6, rtol=0)
        # share map: 0 inside the box, mixup_lam outside
        lo, hi = res.params["box_lo"], res.params["box_hi"]
        inside = box.box_mask(lo, hi, shape[2:])
        share = res.share_map
        assert bool((share[inside] == 0).all())
        ml = res.params["mixup_lam"].view(-1, 1, *([1] * (len(shape) - 2))).expand_as(share)
        assert torch.equal(share[~inside], ml[~inside])
        assert float(res.params["mixup_lam"].max()) <= 1.0


def test_hmix_box_area_follows_ratio_and_aspect():
    x = torch.zeros(4, 1, 17, 41)
    seen = 0
    for seed in range(40):
        res = HMix(r=0.5, mode="sample").mix(x, generator=gen(seed))
        lo, hi = res.params["box_lo"], res.params["box_hi"]
        want = box.cut_lengths((17, 41), res.lam, ratio=0.5)
        frac = torch.sqrt((1 - res.lam.double()) * 0.5)
        torch.testing.assert_close(want.double(), torch.floor(frac[:, None] * torch.tensor([17.0, 41.0])))
        unclipped = ((hi - lo) == want).all(1)
        seen += int(unclipped.sum())
        assert bool(((hi - lo) <= want).all())  # clipping only shrinks
        # realised cutmix_lam is the fraction outside the box
        torch.testing.assert_close(res.params["cutmix_lam"], 1 - box.box_volume(lo, hi).double() / (17 * 41))
    assert seen > 10


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("p", [1.0, 0.6])
def test_hmix_r0_is_mixup_same_draws(mode, p):
    x = torch.randn(7, 3, 9, 11)
    for seed in range(5):
        a = HMix(r=0.0, mode=mode, p=p).mix(x, generator=gen(seed))
        b = MixUp(mode=mode, p=p).mix(x, generator=gen(seed))
        assert torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.index, b.index)
        assert torch.equal(a.weights, b.weights)
        if "cutmix_lam" in a.params:  # absent when p skipped the whole batch (identity result)
            assert bool((a.params["cutmix_lam"] == 1).all())


@pytest.mark.parametrize("sizes,lam,lo,hi", [
    ((8, 8), 0.75, (2, 2), (6, 6)),        # 4x4 box = 1/4 of the grid = 1 - lam
    ((12,), 0.5, (3,), (9,)),               # 1-D: 6 of 12 cells
    ((8, 8, 8), 0.875, (1, 2, 3), (5, 6, 7)),  # 3-D: 4^3 / 8^3 = 1/8
    ((10, 20), 0.5, (0, 0), (5, 20)),       # non-square, the box touches the border without clipping
])
def test_hmix_r1_unclipped_exact_box_equals_cutmix(sizes, lam, lo, hi):
    lam_t = torch.tensor([lam])
    lo_t, hi_t = torch.tensor([lo]), torch.tensor([hi])
    # the box has exactly the (1 - lam) area that r = 1 asks for
    assert box.box_volume(lo_t, hi_t).item() == round((1 - lam) * math.prod(sizes))
    share, w, ml, cl = hmix_share(sizes, lam_t, lo_t, hi_t)
    cut_keep = ~box.box_mask(lo_t, hi_t, sizes)  # CutMix's anchor share
    assert torch.equal(share, cut_keep.float())
    assert float(ml) == 1.0 and float(w) == pytest.approx(lam, abs=1e-12)
    x = torch.randn(4, 2, *sizes)
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.equal(_ops.lerp(x, x[perm], share), _ops.where(cut_keep, x, x[perm]))


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_hmix_r1_same_box_as_cutmix(mode):
    x = torch.randn(6, 3, 13, 19, dtype=torch.float64)
    n_unclipped = 0
    for seed in range(20):
        h = HMix(r=1.0, mode=mode).mix(x, generator=gen(seed))
        c = CutMix(mode=mode).mix(x, generator=gen(seed))
        assert torch.equal(h.params["box_lo"], c.params["box_lo"])
        assert torch.equal(h.params["box_hi"], c.params["box_hi"])
        assert torch.equal(h.index, c.index)
        inside = ~c.share_map.expand(6, 1, 13, 19).expand_as(x)
        assert torch.equal(h.inputs[inside], c.inputs[inside])  # the box is pure partner in both
        assert torch.allclose(h.params["cutmix_lam"].float(), c.weights[:1 if mode == "batch" else 6, 0])
        want = box.cut_lengths((13, 19), h.lam[: h.params["box_lo"].shape[0]])
        unclipped = ((h.params["box_hi"] - h.params["box_lo"]) == want).all(1)
        n_unclipped += int(unclipped.sum())
        # unclipped: the only blend outside the box is the integer rounding of the sides, i.e. the
        # missing area (1 - lam) N - volume, which lies in [0, N (1 - lam) - prod(size_i sqrt(1 - lam) - 1))
        lam_u = h.lam[: unclipped.shape[0]][unclipped].double()
        vol = box.box_volume(h.params["box_lo"], h.params["box_hi"])[unclipped].double()
        missing = (1 - lam_u) * 13 * 19 - vol
        side = (1 - lam_u).sqrt()
        assert bool((missing >= -1e-9).all())
        assert bool((missing <= 13 * 19 * (1 - lam_u) - (13 * side - 1).clamp_min(0) * (19 * side - 1).clamp_min(0) + 1e-9).all())
        ml = h.params["mixup_lam"][unclipped].double()
        torch.testing.assert_close(1 - ml, missing / (13 * 19 - vol), atol=1e-6, rtol=0)
    assert n_unclipped > 0


def test_hmix_r1_clipped_box_blends_outside():
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    found = False
    for seed in range(30):
        res = HMix(r=1.0).mix(x, generator=gen(seed))
        lo, hi = res.params["box_lo"], res.params["box_hi"]
        want = box.cut_lengths((16, 16), res.lam[:1])
        if bool(((hi - lo) < want).any()) and float(res.lam[0]) < 0.9:
            found = True
            assert float(res.params["mixup_lam"]) < 1.0  # CutMix would lose the label match; HMix blends
            assert float(res.weights[0, 0]) == pytest.approx(float(res.lam[0]), abs=1e-6)
    assert found


def test_hmix_share_clamps_oversized_box_and_full_box():
    sizes = (10, 10)
    # a box larger than 1 - lam (what r > 1 would give): mixup_lam would be 0.8 / 0.5 > 1
    share, w, ml, cl = hmix_share(sizes, torch.tensor([0.8]), torch.tensor([[0, 0]]), torch.tensor([[5, 10]]))
    assert float(ml) == 1.0 and float(share.max()) == 1.0 and float(share.min()) == 0.0
    assert float(w) == pytest.approx(float(share.double().mean()), abs=1e-12) == pytest.approx(0.5)
    # a box covering the whole grid (lam = 0, r = 1): no NaN, all partner
    share, w, ml, cl = hmix_share(sizes, torch.tensor([0.0]), torch.tensor([[0, 0]]), torch.tensor([[10, 10]]))
    assert not bool(torch.isnan(share).any()) and float(share.abs().max()) == 0.0 and float(w) == 0.0


@pytest.mark.parametrize("r", [-0.1, 1.5, float("nan")])
def test_hmix_bad_r(r):
    with pytest.raises(ValueError, match="r"):
        HMix(r=r)


def test_hmix_bad_r_type():
    with pytest.raises(TypeError, match="r"):
        HMix(r="0.5")


# ---------------------------------------------------------------------------------------------- GMix
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_gmix_label_is_kernel_mean(shape, mode):
    x = torch.randn(*shape, dtype=torch.float64)
    for seed in range(6):
        res = GMix(mode=mode).mix(x, generator=gen(seed))
        check_weights(res)
        check_pixels(res, x, atol=1e-12)
        # the share is exactly the documented kernel, rebuilt from the params
        sizes = shape[2:]
        lam = res.lam[: res.params["centre"].shape[0]]
        mass = torch.minimum(lam, 1 - lam)
        sigma = gaussian.sigma_for_mass(sizes, mass)
        assert torch.equal(sigma, res.params["sigma"])
        g = gaussian.gaussian_kernel(sizes, res.params["centre"], sigma)
        want = torch.where((lam < 0.5).view(-1, *([1] * (len(shape) - 1))), g, 1 - g)
        assert torch.equal(res.share_map, want)


@pytest.mark.parametrize("shape", SHAPES)
def test_gmix_peak_belongs_to_minority(shape):
    x = torch.randn(*shape)
    n_low = n_high = 0
    for seed in range(8):
        res = GMix(mode="sample").mix(x, generator=gen(seed))
        c = res.params["centre"].long()
        for i in range(shape[0]):
            at_c = float(res.share_map[(i, 0) + tuple(c[i].tolist())])
            lam = float(res.lam[i])
            if lam < 0.5:  # the anchor is the minority: its share peaks at 1
                n_low += 1
                assert at_c == 1.0 and float(res.share_map[i].max()) == 1.0
                assert float(res.weights[i, 0]) <= 0.5
            else:  # the partner is the minority: the anchor's share is 0 at the peak
                n_high += 1
                assert at_c == 0.0 and float(res.share_map[i].min()) == 0.0
                assert float(res.weights[i, 1]) <= 0.5
    assert n_low > 0 and n_high > 0


@pytest.mark.parametrize("sizes", [(17, 41), (41, 17), (64,), (9, 12, 15), (32, 32)])
@pytest.mark.parametrize("mass", [0.1, 0.3, 0.5])
def test_gmix_untruncated_kernel_mean_is_lambda(sizes, mass):
    # the kernel of a (sizes) image, evaluated on a grid 9x larger per axis around it: nothing is cut off
    big = tuple(9 * s for s in sizes)
    centre = torch.tensor([[4 * s + s // 2 for s in sizes]], dtype=torch.float32)
    sigma = gaussian.sigma_for_mass(sizes, torch.tensor([mass]))
    g = gaussian.gaussian_kernel(big, centre, sigma)
    assert g.shape == (1, 1) + big
    assert float(g.double().sum()) / math.prod(sizes) == pytest.approx(mass, rel=2e-3)


@pytest.mark.parametrize("sizes", [(17, 41), (200,), (24, 30, 36)])
def test_gmix_small_kernel_mean_on_its_own_grid(sizes):
    # a small mass centred in the grid is not truncated, so the realised mean is the mass
    mass = 0.01 if len(sizes) == 3 else 0.05
    centre = torch.tensor([[s // 2 for s in sizes]], dtype=torch.float32)
    g = gaussian.gaussian_kernel(sizes, centre, gaussian.sigma_for_mass(sizes, torch.tensor([mass])))
    assert float(g.double().mean()) == pytest.approx(mass, rel=1e-2)


def test_gmix_non_square_kernel_follows_the_grid():
    x = torch.randn(3, 2, 17, 41)
    res = GMix(mode="sample").mix(x, generator=gen(1))
    assert res.share_map.shape == (3, 1, 17, 41) and res.inputs.shape == x.shape
    s = res.params["sigma"]
    torch.testing.assert_close(s[:, 1] / s[:, 0], torch.full((3,), 41 / 17))
    # the blob is an ellipse: equal values at equal *normalised* offsets along the two axes
    c = torch.tensor([[8.0, 20.0]])
    g = gaussian.gaussian_kernel((17, 41), c, gaussian.sigma_for_mass((17, 41), torch.tensor([0.3])))[0, 0]
    # 17 rows / 41 columns: 1 row of offset ~ 41/17 columns; compare row offset 5 with column offset 5*41/17
    sig = gaussian.sigma_for_mass((17, 41), torch.tensor([0.3]))[0]
    v_row = g[8 + 5, 20]
    want_col = math.exp(-0.5 * (5 * 41 / 17 / float(sig[1])) ** 2)
    assert float(v_row) == pytest.approx(want_col, rel=1e-4)
    assert float(g[8, 20 + 5]) > float(g[8 + 5, 20])  # wider along the long axis


def test_gmix_square_matches_official_formula():
    # official: exp(-pi * ((i - cy)^2 + (j - cx)^2) / (l * H * H)) on a square image
    h, l = 32, 0.3
    cy, cx = 5.0, 20.0
    g = gaussian.gaussian_kernel((h, h), torch.tensor([[cy, cx]]), gaussian.sigma_for_mass((h, h), torch.tensor([l])))[0, 0]
    i = torch.arange(h, dtype=torch.float64)
    d2 = (i[:, None] - cy) ** 2 + (i[None, :] - cx) ** 2
    want = torch.exp(-math.pi * d2 / (l * h * h))
    torch.testing.assert_close(g.double(), want, atol=1e-6, rtol=1e-5)


def test_gaussian_kernel_zero_mass_is_empty():
    g = gaussian.gaussian_kernel((5, 6), torch.tensor([[2.0, 3.0], [1.0, 1.0]]),
                                 gaussian.sigma_for_mass((5, 6), torch.tensor([0.0, 0.2])))
    assert g.shape == (2, 1, 5, 6) and g.dtype == torch.float32
    assert float(g[0].abs().max()) == 0.0 and float(g[1].max()) == 1.0


def test_gaussian_kernel_bad_centres():
    with pytest.raises(ValueError, match="centres"):
        gaussian.gaussian_kernel((5, 6), torch.zeros(2, 3), torch.ones(2, 2))


def test_gmix_label_differs_from_sampled_lambda_when_truncated():
    x = torch.randn(64, 1, 32, 32)
    res = GMix(mode="sample").mix(x, generator=gen(0))
    diff = (res.weights[:, 0] - res.lam).abs()
    assert float(diff.mean()) > 0.02  # truncation is real: the realised mean is what the labels use


# ------------------------------------------------------------------------------------ shared contract
MIXERS = [
    pytest.param(lambda **kw: HMix(r=0.5, **kw), id="hmix"),
    pytest.param(lambda **kw: GMix(**kw), id="gmix"),
]


@pytest.mark.parametrize("make", MIXERS)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("shape", SHAPES)
def test_deterministic_and_input_unmodified(make, mode, shape):
    x = torch.randn(*shape)
    x0 = x.clone()
    a = make(mode=mode).mix(x, generator=gen(11))
    b = make(mode=mode).mix(x, generator=gen(11))
    c = make(mode=mode).mix(x, generator=gen(12))
    assert torch.equal(x, x0)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights) and torch.equal(a.index, b.index)
    assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("make", MIXERS)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(make, mode, dtype):
    x32 = torch.randn(5, 3, 12, 10)
    x = x32.to(dtype)
    res = make(mode=mode).mix(x, generator=gen(3))
    assert res.inputs.dtype == dtype and res.weights.dtype == torch.float32
    ref = make(mode=mode).mix(x.float(), generator=gen(3))
    torch.testing.assert_close(res.weights, ref.weights, atol=0, rtol=0)
    torch.testing.assert_close(res.inputs.float(), ref.inputs.to(dtype).float(), atol=1e-2 if dtype == torch.float16 else 5e-2, rtol=0)


@pytest.mark.parametrize("make", MIXERS)
def test_sample_mode_differs_per_row(make):
    x = torch.randn(6, 2, 16, 18)
    res = make(mode="sample").mix(x, generator=gen(5))
    assert len(set(res.weights[:, 0].tolist())) == 6
    assert res.share_map.shape[0] == 6
    assert not torch.equal(res.share_map[0], res.share_map[1])
    bat = make(mode="batch").mix(x, generator=gen(5))
    assert bat.share_map.shape[0] == 1 and len(set(bat.weights[:, 0].tolist())) == 1


@pytest.mark.parametrize("make", MIXERS)
@pytest.mark.parametrize("b", [1, 3, 7])
def test_odd_batches_and_soft_targets(make, b):
    x = torch.randn(b, 3, 8, 9)
    y = torch.arange(b) % 4
    xm, ys = make(num_classes=4).forward(x, y, generator=gen(2))
    assert xm.shape == x.shape and ys.shape == (b, 4) and ys.dtype == torch.float32
    torch.testing.assert_close(ys.sum(1), torch.ones(b))
    if b == 1:
        assert torch.equal(xm, x) and float(ys[0, 0]) == 1.0


@pytest.mark.parametrize("make", MIXERS)
def test_p_in_sample_mode(make):
    x = torch.randn(40, 2, 8, 8)
    res = make(mode="sample", p=0.5).mix(x, generator=gen(4))
    off = ~res.mixed
    assert 0 < int(off.sum()) < 40
    assert torch.equal(res.inputs[off], x[off])
    assert bool((res.weights[off, 0] == 1).all()) and bool((res.lam[off] == 1).all())
    check_weights(res)
    res0 = make(p=0.0).mix(x, generator=gen(4))
    assert res0.inputs is x


@pytest.mark.parametrize("make", MIXERS)
def test_inplace_and_channels_last(make):
    x = torch.randn(4, 3, 10, 12).contiguous(memory_format=torch.channels_last)
    res = make().mix(x, generator=gen(6))
    assert res.inputs.is_contiguous(memory_format=torch.channels_last)
    ref = res.inputs.clone()
    x2 = x.clone()
    res2 = make(inplace=True).mix(x2, generator=gen(6))
    assert res2.inputs.data_ptr() == x2.data_ptr()
    assert torch.equal(x2, ref)


@pytest.mark.parametrize("make", MIXERS)
def test_bad_arguments(make):
    with pytest.raises(ValueError, match="alpha"):
        make(alpha=0.0)
    with pytest.raises(ValueError, match="mode"):
        make(mode="pixel")
    with pytest.raises(ValueError, match="p"):
        make(p=1.5)
    with pytest.raises(TypeError, match="floating"):
        make().mix(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="spatial"):
        make().mix(torch.zeros(4, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("make", MIXERS)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cuda_matches_cpu(make, mode):
    x = torch.randn(5, 3, 17, 41)
    a = make(mode=mode).mix(x, generator=gen(9))
    b = make(mode=mode).mix(x.cuda(), generator=gen(9))
    assert b.inputs.is_cuda
    torch.testing.assert_close(b.inputs.cpu(), a.inputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.weights.cpu(), a.weights, atol=1e-6, rtol=0)

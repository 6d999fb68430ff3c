"""GridMix (the IlyaDobrynin/GridMixup method): hole lattice inside a crop, exact realised weights."""
from __future__ import annotations

import math

import pytest
import torch

from mixkit.masks import grid
from mixkit.mixers.gridmix import GridMix

SHAPES = {1: (37,), 2: (17, 41), 3: (6, 7, 9)}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def naive_mask(sizes, lo, hi, period, hole):
    """The reference's loop over holes (one per lattice node, clipped to the crop), for one draw."""
    m = torch.zeros(sizes, dtype=torch.bool)
    lens = [int(b - a) for a, b in zip(lo, hi)]
    counts = [length // int(p) + 1 for length, p in zip(lens, period)]
    for node in torch.cartesian_prod(*[torch.arange(c) for c in counts]).view(-1, len(sizes)).tolist():
        region = []
        for i, k in enumerate(node):
            a = min(int(period[i]) * k, lens[i])
            z = min(a + int(hole[i]), lens[i])
            region.append(slice(int(lo[i]) + a, int(lo[i]) + z))
        m[tuple(region)] = True
    return m


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_weight_is_one_minus_mask_mean_and_partner_fills_holes(mode, d):
    sizes = SHAPES[d]
    m = GridMix(mode=mode)
    g = gen(d)
    for b in (2, 5, 9):
        x = torch.randn(b, 3, *sizes)
        res = m.mix(x, generator=g)
        p = res.params
        n = 1 if mode == "batch" else b
        assert p["crop_lo"].shape == (n, d)
        hole = ~res.share_map  # (n, 1, *sizes): True where the partner shows
        vol = grid.hole_volume(grid.GridParams(p["crop_lo"], p["crop_hi"], p["period"], p["hole"]))
        assert torch.equal(hole.flatten(1).sum(1), vol)
        assert (vol > 0).all()  # a mixed row always has holes
        w0 = (1.0 - vol.double() / math.prod(sizes)).float().expand(b)
        assert torch.equal(res.weights[:, 0], w0)
        assert torch.equal(res.weights[:, 1], 1.0 - w0)
        torch.testing.assert_close(res.mask[:, 0].flatten(1).mean(1), res.weights[:, 0], atol=1e-6, rtol=0)
        expect = torch.where(hole, x[res.index[:, 1]], x)
        assert torch.equal(res.inputs, expect)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_mask_is_the_reference_lattice_inside_the_crop(d):
    sizes = SHAPES[d]
    m = GridMix(mode="sample", n_holes=(1, 8), hole_aspect_ratio=(0.5, 2.0))
    res = m.mix(torch.zeros(24, 1, *sizes), generator=gen(20 + d))
    p = res.params
    size_t = torch.tensor(sizes)
    assert (p["crop_lo"] >= 0).all() and (p["crop_hi"] <= size_t).all() and (p["crop_hi"] > p["crop_lo"]).all()
    assert (p["period"] >= 2).all() and (p["hole"] >= 1).all() and (p["hole"] < p["period"]).all()
    holes = ~res.share_map[:, 0]
    for i in range(24):
        ref = naive_mask(sizes, p["crop_lo"][i], p["crop_hi"][i], p["period"][i], p["hole"][i])
        assert torch.equal(holes[i], ref), i


def test_mask_is_periodic_and_starts_at_the_crop_corner():
    res = GridMix(mode="sample", n_holes=3, cut_area_ratio=0.6).mix(torch.zeros(16, 1, 30, 30), generator=gen(3))
    p = res.params
    holes = ~res.share_map[:, 0]
    for i in range(16):
        (y0, x0), (y1, x1) = p["crop_lo"][i].tolist(), p["crop_hi"][i].tolist()
        (py, px), (hy, hx) = p["period"][i].tolist(), p["hole"][i].tolist()
        crop = holes[i, y0:y1, x0:x1]
        assert not holes[i].sum() - crop.sum()  # nothing outside the crop
        assert crop[0, 0] and crop[:hy, :hx].all()  # a full hole at the crop corner
        assert not crop[hy:py, :].any() and not crop[:, hx:px].any()  # then a gap
        assert torch.equal(crop[py:], crop[:-py]) and torch.equal(crop[:, px:], crop[:, :-px])


def test_hole_size_and_periods_follow_the_formulas():
    n_lo, n_hi = 2, 6
    m = GridMix(mode="sample", n_holes=(n_lo, n_hi), hole_aspect_ratio=(0.7, 1.5))
    res = m.mix(torch.zeros(64, 1, 32, 32), generator=gen(4))
    p, lam = res.params, res.lam.double()
    width = (p["crop_hi"] - p["crop_lo"])[:, 1]
    for i in range(64):
        px = int(p["period"][i, 1])
        assert px in {max(math.ceil(int(width[i]) / k), 2) for k in range(n_lo, n_hi + 1)}
        assert 2 <= int(p["period"][i, 0]) <= max(int(px * 1.5), 2)
        for ax in (0, 1):
            per = int(p["period"][i, ax])
            expect = min(max(int(per * math.sqrt(1 - float(lam[i]))), 1), per - 1)
            assert int(p["hole"][i, ax]) == expect


def test_larger_lambda_means_smaller_holes():
    holes, means = [], []
    lams = (0.05, 0.2, 0.4, 0.6, 0.8, 0.95)
    for lam in lams:
        m = GridMix(alpha=(lam, lam), mode="sample", n_holes=4, cut_area_ratio=1.0, cut_aspect_ratio=1.0)
        res = m.mix(torch.zeros(8, 1, 40, 40), generator=gen(5))  # same seed: same crops and lattices
        assert torch.equal(res.params["crop_hi"] - res.params["crop_lo"], torch.full((8, 2), 40))
        holes.append(res.params["hole"])
        means.append(res.weights[:, 1])
    for a, b in zip(holes, holes[1:]):
        assert (b <= a).all()
    for a, b in zip(means, means[1:]):
        assert (b <= a).all()
    assert (holes[-1] < holes[0]).all() and (means[-1] < means[0]).all()
    # with the crop the whole image and a whole number of periods, the partner's share is
    # (hole / period) ** 2 <= 1 - lam (hole sides are floored, and capped at period - 1)
    for lam, share, hole in zip(lams, means, holes):
        assert (share <= 1 - lam + 1e-6).all()
        torch.testing.assert_close(share.double(), (hole.double() / 10).prod(1), atol=1e-6, rtol=0)  # period ceil(40 / 4)


def test_extreme_lambdas_keep_a_grid():
    # holes are clamped to [1, period - 1]: lam = 0 never fills the whole crop, lam = 1 still cuts holes
    for lam, expect in ((0.0, "period-1"), (1.0, "one")):
        m = GridMix(alpha=(lam, lam), mode="sample", n_holes=4, cut_area_ratio=1.0, cut_aspect_ratio=1.0)
        res = m.mix(torch.zeros(6, 1, 40, 40), generator=gen(30))
        per, hole = res.params["period"], res.params["hole"]
        assert torch.equal(hole, per - 1 if expect == "period-1" else torch.ones_like(hole))
        assert (res.weights[:, 0] > 0).all() and (res.weights[:, 0] < 1).all()


def test_crop_follows_image_aspect_and_never_overflows():
    # square image, aspect 1: sides sqrt(a) * size
    m = GridMix(mode="sample", cut_area_ratio=0.25, cut_aspect_ratio=1.0)
    res = m.mix(torch.zeros(4, 1, 17, 41), generator=gen(6))
    assert ((res.params["crop_hi"] - res.params["crop_lo"]) == torch.tensor([8, 20])).all()
    # the reference lets a crop with area 1 and aspect 2 overflow the image; here it is clamped
    m = GridMix(mode="sample", cut_area_ratio=1.0, cut_aspect_ratio=2.0)
    res = m.mix(torch.zeros(6, 1, 32, 32), generator=gen(7))
    side = res.params["crop_hi"] - res.params["crop_lo"]
    assert (side == torch.tensor([32, 22])).all()  # floor(32 * sqrt(2)) -> 32, floor(32 / sqrt(2)) = 22
    assert (res.params["crop_lo"] >= 0).all() and (res.params["crop_hi"] <= 32).all()


def test_crop_corners_reachable():
    m = GridMix(mode="sample", cut_area_ratio=0.3)
    res = m.mix(torch.zeros(3000, 1, 17, 41), generator=gen(8))
    lo, hi = res.params["crop_lo"], res.params["crop_hi"]
    at_lo, at_hi = lo == 0, hi == torch.tensor([17, 41])
    for hit in (at_lo[:, 0] & at_lo[:, 1], at_lo[:, 0] & at_hi[:, 1], at_hi[:, 0] & at_lo[:, 1], at_hi[:, 0] & at_hi[:, 1]):
        assert hit.any()


def test_tiny_images_and_many_holes_still_mix():
    # the reference raises when n_holes > crop_width // 2; here the period is at least 2
    m = GridMix(mode="sample", n_holes=(20, 20))
    for sizes in ((3,), (4, 4), (2, 3, 2)):
        res = m.mix(torch.zeros(5, 1, *sizes), generator=gen(9))
        assert (res.weights[:, 0] < 1).all() and (res.weights[:, 0] > 0).all()


def test_lambda_distribution():
    stats = pytest.importorskip("scipy.stats")
    lam = GridMix(mode="sample").mix(torch.zeros(3000, 1, 8, 8), generator=gen(10)).lam.double().numpy()
    assert lam.min() >= 0.1 and lam.max() <= 0.9
    assert stats.kstest(lam, stats.uniform(0.1, 0.8).cdf).pvalue > 1e-3
    lam = GridMix(alpha=2.0, mode="sample").mix(torch.zeros(3000, 1, 8, 8), generator=gen(11)).lam.double().numpy()
    assert stats.kstest(lam, stats.beta(2.0, 2.0).cdf).pvalue > 1e-3
    assert stats.kstest(lam, stats.uniform(0, 1).cdf).pvalue < 1e-6


def test_batch_mode_one_mask_sample_mode_many():
    x = torch.randn(16, 1, 20, 24)
    rb = GridMix(mode="batch").mix(x, generator=gen(12))
    assert rb.share_map.shape == (1, 1, 20, 24)
    assert (rb.mask[:, 0] == rb.mask[:1, 0]).all() and rb.weights[:, 0].unique().numel() == 1
    rs = GridMix(mode="sample").mix(x, generator=gen(12))
    assert rs.share_map.shape == (16, 1, 20, 24)
    assert rs.share_map.flatten(1).unique(dim=0).shape[0] > 8
    assert rs.params["crop_lo"].unique(dim=0).shape[0] > 8


def test_masks_module_matches_closed_form_on_random_params():
    g = gen(13)
    for sizes in ((50,), (9, 31), (5, 6, 7)):
        lam = torch.rand(200, generator=g)
        prm = grid.sample_grid(sizes, lam, g, n_holes=(1, 9), hole_aspect_ratio=(0.3, 3.0),
                               cut_area_ratio=(0.01, 1.0), cut_aspect_ratio=(0.2, 5.0))
        mask = grid.grid_mask(sizes, prm)
        assert mask.shape == (200, 1, *sizes)
        assert torch.equal(mask.flatten(1).sum(1), grid.hole_volume(prm))
        empty = prm.emptied(torch.zeros(200, dtype=torch.bool))
        assert not grid.grid_mask(sizes, empty).any() and (grid.hole_volume(empty) == 0).all()


def test_p_leaves_unselected_rows_untouched():
    x = torch.randn(40, 1, 9, 9)
    res = GridMix(mode="sample", p=0.5).mix(x, generator=gen(14))
    off = ~res.mixed
    assert 0 < int(off.sum()) < 40
    assert torch.equal(res.inputs[off], x[off])
    assert (res.weights[off, 0] == 1).all() and (res.lam[off] == 1).all()
    assert (res.weights[res.mixed, 0] < 1).all()


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_determinism_input_unmodified_inplace(mode):
    x = torch.randn(5, 3, 17, 41)
    keep = x.clone()
    m = GridMix(mode=mode)
    a = m.mix(x, generator=gen(15))
    b = m.mix(x, generator=gen(15))
    c = m.mix(x, generator=gen(16))
    assert torch.equal(x, keep)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights)
    assert not torch.equal(a.inputs, c.inputs)
    x2 = x.clone()
    d = GridMix(mode=mode, inplace=True).mix(x2, generator=gen(15))
    assert d.inputs.data_ptr() == x2.data_ptr() and torch.equal(d.inputs, a.inputs)


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_and_memory_format_kept(mode, dtype):
    x = torch.randn(5, 3, 12, 14, dtype=dtype)
    res = GridMix(mode=mode).mix(x, generator=gen(17))
    assert res.inputs.dtype == dtype and res.weights.dtype == torch.float32
    assert torch.equal(res.inputs, torch.where(~res.share_map, x[res.index[:, 1]], x))  # a hard mask: exact
    xc = x.to(memory_format=torch.channels_last)
    rc = GridMix(mode=mode).mix(xc, generator=gen(17))
    assert rc.inputs.is_contiguous(memory_format=torch.channels_last) and torch.equal(rc.inputs, res.inputs)
    x3 = torch.randn(3, 2, 6, 7, 8, dtype=dtype).to(memory_format=torch.channels_last_3d)
    assert GridMix(mode=mode).mix(x3, generator=gen(17)).inputs.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_odd_batches_and_labels(mode):
    m = GridMix(mode=mode, num_classes=3)
    for b in (3, 5, 7):
        xm, ys = m(torch.randn(b, 1, 10, 10), torch.arange(b) % 3, generator=gen(b))
        assert xm.shape == (b, 1, 10, 10) and ys.shape == (b, 3)
        torch.testing.assert_close(ys.sum(1), torch.ones(b))


def test_alpha_forms_and_bad_arguments():
    assert GridMix().alpha == (0.1, 0.9) and GridMix().lam_range == (0.1, 0.9)
    assert GridMix(alpha=0.2).alpha == 0.2 and GridMix(alpha=0.2).lam_range is None
    assert GridMix(n_holes=4).n_holes == (4, 4)
    for bad in ((0.5, 0.2), (-0.1, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match="alpha"):
            GridMix(alpha=bad)
    with pytest.raises(TypeError, match="alpha"):
        GridMix(alpha=(0.1, 0.5, 0.9))
    with pytest.raises(ValueError, match="alpha"):
        GridMix(alpha=0.0)
    with pytest.raises(ValueError, match="n_holes"):
        GridMix(n_holes=0)
    with pytest.raises(ValueError, match="n_holes"):
        GridMix(n_holes=(5, 2))
    with pytest.raises(TypeError, match="n_holes"):
        GridMix(n_holes=2.5)
    with pytest.raises(TypeError, match="n_holes"):
        GridMix(n_holes=True)
    with pytest.raises(ValueError, match="hole_aspect_ratio"):
        GridMix(hole_aspect_ratio=0.0)
    with pytest.raises(ValueError, match="cut_area_ratio"):
        GridMix(cut_area_ratio=(0.0, 0.5))
    with pytest.raises(ValueError, match="cut_area_ratio"):
        GridMix(cut_area_ratio=1.2)
    with pytest.raises(ValueError, match="cut_aspect_ratio"):
        GridMix(cut_aspect_ratio=(-1.0, 2.0))
    with pytest.raises(TypeError, match="cut_aspect_ratio"):
        GridMix(cut_aspect_ratio="wide")
    with pytest.raises(ValueError, match="mode"):
        GridMix(mode="elem")

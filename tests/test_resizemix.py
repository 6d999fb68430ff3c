"""ResizeMix: exact patch weights, patch placement, resize fidelity, tau distribution, both modes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mixkit.mixers.resizemix import ResizeMix

SHAPES = {1: (37,), 2: (17, 41), 3: (6, 7, 9)}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def region(lo, hi):
    return tuple(slice(int(a), int(z)) for a, z in zip(lo, hi))


def interp_ref(img, size, interpolation):
    """F.interpolate of one image (C, *spatial) to ``size``, the way a user would call it."""
    d = img.dim() - 1
    mode = {"linear": ("linear", "bilinear", "trilinear")[d - 1]}.get(interpolation, interpolation)
    kw = {} if mode.startswith("nearest") else {"align_corners": False}
    return F.interpolate(img.unsqueeze(0), size=list(size), mode=mode, **kw)[0]


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_weight_is_exact_patch_share_and_patch_inside(mode, d):
    sizes = SHAPES[d]
    n_cells = math.prod(sizes)
    m = ResizeMix(mode=mode)
    g = gen(d)
    for b in (2, 5, 16):
        x = torch.randn(b, 2, *sizes)
        res = m.mix(x, generator=g)
        lo, hi, tau = res.params["box_lo"], res.params["box_hi"], res.params["tau"]
        n = 1 if mode == "batch" else b
        assert lo.shape == hi.shape == (n, d) and tau.shape == (n,)
        size_t = torch.tensor(sizes)
        assert (lo >= 0).all() and (hi <= size_t).all()
        # patch side = floor(size * tau), at least 1: never clipped
        expect_len = torch.floor(tau[:, None] * size_t.double()).long().clamp(min=1)
        assert torch.equal(hi - lo, expect_len)
        vol = (hi - lo).prod(1).double()
        w_expect = (1.0 - vol / n_cells).float().expand(b)
        assert torch.equal(res.weights[:, 0], w_expect)
        assert torch.equal(res.weights[:, 1], 1.0 - w_expect)
        # the anchor share map is the complement of the box and its mean is the weight
        share = res.mask[:, 0].double()
        assert torch.equal(share.flatten(1).mean(1).float(), w_expect)
        assert torch.equal(res.lam, (1.0 - tau ** d).float().expand(b))


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("interpolation", ["nearest", "nearest-exact", "linear", "bicubic"])
def test_pasted_patch_is_interpolated_partner(mode, d, interpolation):
    if interpolation == "bicubic" and d != 2:
        pytest.skip("bicubic is 2-D only")
    sizes = SHAPES[d]
    b = 6
    x = torch.randn(b, 3, *sizes)
    m = ResizeMix(mode=mode, interpolation=interpolation)
    res = m.mix(x, generator=gen(10 + d))
    lo, hi = res.params["box_lo"], res.params["box_hi"]
    exact = interpolation.startswith("nearest")
    for i in range(b):
        k = 0 if mode == "batch" else i
        j = int(res.index[i, 1])
        reg = region(lo[k], hi[k])
        got = res.inputs[i][(slice(None),) + reg]
        ref = interp_ref(x[j], (hi[k] - lo[k]).tolist(), interpolation)
        if exact:
            assert torch.equal(got, ref), (i, reg)
        else:
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
        # everything outside the patch is the untouched anchor
        outside = res.mask[i, 0].bool()
        assert torch.equal(res.inputs[i][:, outside], x[i][:, outside])
    if exact:  # a partner pixel that was never resized would give the wrong values
        assert not torch.equal(res.inputs, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_nearest_matches_interpolate_for_many_sizes(dtype):
    # the index arithmetic must agree with F.interpolate for every (input, output) size pair; torch
    # uses float32 arithmetic, except for float64 on the CPU (a float32 formula fails there: 26 -> 22, 26 -> 11)
    for s in (1, 2, 3, 7, 10, 26, 28, 31, 32, 33, 64, 97, 224):
        x = torch.arange(s, dtype=dtype).view(1, 1, s).expand(s, 1, s).contiguous()
        lengths = torch.arange(1, s + 1)
        lo = torch.zeros(s, 1, dtype=torch.long)
        for interp in ("nearest", "nearest-exact"):
            m = ResizeMix(scale=(0.01, 1.0), mode="sample", interpolation=interp)
            got = m._paste_rows(x, torch.arange(s), lo, lengths[:, None], None)
            for i, n in enumerate(lengths.tolist()):
                ref = F.interpolate(x[i:i + 1], size=n, mode=interp)[0, 0]
                assert torch.equal(got[i, 0, :n], ref), (s, n, interp)
                assert torch.equal(got[i, 0, n:], x[i, 0, n:])


def test_official_scale_factor_resize_drops_the_border_but_ours_does_not():
    # documented deviation: F.interpolate(scale_factor=tau) never reads the last rows of the partner
    x = torch.arange(32.0).view(1, 1, 32)
    official = F.interpolate(x, scale_factor=0.3, mode="nearest")
    assert official.shape[-1] == 9 and official.max() < 27
    m = ResizeMix(scale=(0.3, 0.3), mode="sample")
    res = m.mix(torch.cat([x, x + 100]), generator=gen(0))
    lo, hi = res.params["box_lo"], res.params["box_hi"]
    assert int(hi[0, 0] - lo[0, 0]) == 9
    patch = res.inputs[0, 0, int(lo[0, 0]):int(hi[0, 0])] - 100 * int(res.index[0, 1])
    assert patch.max() >= 28  # floor(8 * 32 / 9) = 28: the partner's end is shown


def test_tau_is_uniform_on_scale():
    stats = pytest.importorskip("scipy.stats")
    m = ResizeMix(mode="sample")
    tau = m.mix(torch.zeros(3000, 1, 4, 4), generator=gen(1)).params["tau"].numpy()
    assert tau.min() >= 0.1 and tau.max() <= 0.8
    assert stats.kstest(tau, stats.uniform(0.1, 0.7).cdf).pvalue > 1e-3
    # and it is not a Beta(1, 1) on [0, 1] (the common misreading)
    assert stats.kstest(tau, stats.uniform(0, 1).cdf).pvalue < 1e-6
    # batch mode: one draw per call, from the same law
    mb = ResizeMix(mode="batch")
    g = gen(2)
    tb = torch.cat([mb.mix(torch.zeros(2, 1, 4, 4), generator=g).params["tau"] for _ in range(400)]).numpy()
    assert stats.kstest(tb, stats.uniform(0.1, 0.7).cdf).pvalue > 1e-3


def test_use_alpha_is_beta_redrawn_uniformly_outside_scale():
    stats = pytest.importorskip("scipy.stats")
    lo, hi, a = 0.1, 0.8, 2.0
    m = ResizeMix(mode="sample", use_alpha=True, alpha=a)
    tau = m.mix(torch.zeros(4000, 1, 4, 4), generator=gen(3)).params["tau"].numpy()
    assert tau.min() >= lo and tau.max() <= hi
    beta = stats.beta(a, a)
    p_out = 1.0 - (beta.cdf(hi) - beta.cdf(lo))

    def cdf(t):
        return beta.cdf(t) - beta.cdf(lo) + p_out * (t - lo) / (hi - lo)

    assert stats.kstest(tau, cdf).pvalue > 1e-3
    assert stats.kstest(tau, stats.uniform(lo, hi - lo).cdf).pvalue < 1e-6


def test_sample_mode_draws_per_row_batch_mode_shares_one():
    b = 32
    x = torch.randn(b, 1, 17, 41)
    rs = ResizeMix(mode="sample").mix(x, generator=gen(4))
    lo, hi = rs.params["box_lo"], rs.params["box_hi"]
    assert lo.shape == (b, 2)
    assert (hi - lo).unique(dim=0).shape[0] > b // 2  # patch sizes differ between rows
    assert lo.unique(dim=0).shape[0] > b // 2  # and locations too
    rb = ResizeMix(mode="batch").mix(x, generator=gen(4))
    assert rb.params["box_lo"].shape == (1, 2)
    assert (rb.mask[:, 0] == rb.mask[:1, 0]).all()
    assert torch.unique(rb.weights[:, 0]).numel() == 1


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_every_corner_is_reachable(mode):
    sizes = (17, 41)
    size_t = torch.tensor(sizes)
    m = ResizeMix(mode=mode)
    g = gen(5)
    if mode == "sample":
        res = m.mix(torch.zeros(4000, 1, *sizes), generator=g)
        lo, hi = res.params["box_lo"], res.params["box_hi"]
    else:
        boxes = [m.mix(torch.zeros(2, 1, *sizes), generator=g).params for _ in range(1500)]
        lo = torch.cat([p["box_lo"] for p in boxes])
        hi = torch.cat([p["box_hi"] for p in boxes])
    at_lo, at_hi = lo == 0, hi == size_t
    corners = {
        "top-left": at_lo[:, 0] & at_lo[:, 1],
        "top-right": at_lo[:, 0] & at_hi[:, 1],
        "bottom-left": at_hi[:, 0] & at_lo[:, 1],
        "bottom-right": at_hi[:, 0] & at_hi[:, 1],
    }
    for name, hit in corners.items():
        assert hit.any(), name


def test_location_is_uniform_over_valid_positions():
    stats = pytest.importorskip("scipy.stats")
    s, n = 40, 6000
    m = ResizeMix(scale=(0.5, 0.5), mode="sample")  # patch length 20: 21 valid positions
    lo = m.mix(torch.zeros(n, 1, s), generator=gen(6)).params["box_lo"][:, 0]
    counts = torch.bincount(lo, minlength=21)
    assert counts.numel() == 21
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3


def test_non_square_patch_follows_each_axis():
    m = ResizeMix(scale=(0.5, 0.5), mode="sample")
    res = m.mix(torch.zeros(3, 1, 17, 41), generator=gen(7))
    assert ((res.params["box_hi"] - res.params["box_lo"]) == torch.tensor([8, 20])).all()
    res = m.mix(torch.zeros(3, 1, 6, 7, 9), generator=gen(7))
    assert ((res.params["box_hi"] - res.params["box_lo"]) == torch.tensor([3, 3, 4])).all()


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_full_scale_is_an_exact_swap(mode):
    x = torch.randn(5, 3, 9, 11)
    res = ResizeMix(scale=(1.0, 1.0), mode=mode).mix(x, generator=gen(8))
    assert torch.equal(res.inputs, x[res.index[:, 1]])
    assert torch.equal(res.weights[:, 0], torch.zeros(5))


def test_tiny_scale_pastes_at_least_one_cell():
    x = torch.randn(4, 1, 5, 5)
    res = ResizeMix(scale=(0.01, 0.01), mode="sample").mix(x, generator=gen(9))
    assert ((res.params["box_hi"] - res.params["box_lo"]) == 1).all()
    assert torch.equal(res.weights[:, 0], torch.full((4,), 24 / 25))


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
def test_inplace_uses_unmixed_sources(mode, interpolation):
    # every row is pasted from an un-mixed partner even when writing into x (the official code
    # resizes the whole batch before pasting)
    x = torch.randn(7, 2, 12, 13)
    m = ResizeMix(mode=mode, interpolation=interpolation)
    ref = m.mix(x, generator=gen(11))
    x2 = x.clone()
    out = ResizeMix(mode=mode, interpolation=interpolation, inplace=True).mix(x2, generator=gen(11))
    assert out.inputs.data_ptr() == x2.data_ptr()
    assert torch.equal(out.inputs, ref.inputs)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_determinism_and_input_unmodified(mode):
    x = torch.randn(5, 3, 17, 41)
    keep = x.clone()
    m = ResizeMix(mode=mode)
    a = m.mix(x, generator=gen(12))
    b = m.mix(x, generator=gen(12))
    c = m.mix(x, generator=gen(13))
    assert torch.equal(x, keep)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights)
    assert torch.equal(a.params["box_lo"], b.params["box_lo"])
    assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_dtype_kept(mode, dtype, interpolation):
    x = torch.randn(5, 3, 12, 14).to(dtype)
    res = ResizeMix(mode=mode, interpolation=interpolation).mix(x, generator=gen(14))
    assert res.inputs.dtype == dtype and res.weights.dtype == torch.float32
    lo, hi = res.params["box_lo"], res.params["box_hi"]
    k = 0
    i = 0
    src = x[int(res.index[i, 1])]
    ref = interp_ref(src if dtype == torch.float64 else src.float(), (hi[k] - lo[k]).tolist(), interpolation).to(dtype)
    got = res.inputs[i][(slice(None),) + region(lo[k], hi[k])]
    tol = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-9}[dtype]
    torch.testing.assert_close(got.double(), ref.double(), atol=tol * 4, rtol=tol)


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
def test_memory_format_kept(mode, interpolation):
    m = ResizeMix(mode=mode, interpolation=interpolation)
    x = torch.randn(5, 3, 12, 14).to(memory_format=torch.channels_last)
    ref = m.mix(x.contiguous(), generator=gen(15))
    res = m.mix(x, generator=gen(15))
    assert res.inputs.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(res.inputs, ref.inputs)
    x = torch.randn(3, 2, 6, 7, 8).to(memory_format=torch.channels_last_3d)
    assert m.mix(x, generator=gen(15)).inputs.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_odd_batches_and_labels(mode):
    m = ResizeMix(mode=mode, num_classes=4)
    for b in (3, 5, 7):
        x = torch.randn(b, 1, 10, 10)
        y = torch.arange(b) % 4
        xm, ys = m(x, y, generator=gen(b))
        assert xm.shape == x.shape and ys.shape == (b, 4)
        torch.testing.assert_close(ys.sum(1), torch.ones(b))


@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
@pytest.mark.parametrize("inplace", [False, True])
def test_p_leaves_unselected_rows_untouched(interpolation, inplace):
    x = torch.randn(40, 1, 9, 9)
    keep = x.clone()
    res = ResizeMix(mode="sample", p=0.5, interpolation=interpolation, inplace=inplace).mix(x, generator=gen(16))
    x = keep
    assert 0 < int(res.mixed.sum()) < 40
    off = ~res.mixed
    assert torch.equal(res.inputs[off], x[off])
    assert (res.weights[off, 0] == 1).all() and (res.lam[off] == 1).all()
    assert (res.weights[res.mixed, 0] < 1).all()


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="scale"):
        ResizeMix(0.5)
    with pytest.raises(ValueError, match="scale"):
        ResizeMix(scale=(0.0, 0.5))
    with pytest.raises(ValueError, match="scale"):
        ResizeMix(scale=(0.6, 0.5))
    with pytest.raises(ValueError, match="scale"):
        ResizeMix(scale=(0.5, 1.5))
    with pytest.raises(TypeError, match="use_alpha"):
        ResizeMix(use_alpha="yes")
    with pytest.raises(ValueError, match="alpha"):
        ResizeMix(use_alpha=True, alpha=0.0)
    with pytest.raises(ValueError, match="interpolation"):
        ResizeMix(interpolation="area")
    with pytest.raises(ValueError, match="bicubic"):
        ResizeMix(interpolation="bicubic").mix(torch.zeros(2, 1, 8))
    with pytest.raises(ValueError, match="mode"):
        ResizeMix(mode="pair")

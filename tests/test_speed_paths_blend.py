"""The hard-mask blend paths of ``_ops.mix_pair``: the bit-select (small images, any bool map) and the
per-row box copy (large images, one box per row). Each must equal ``torch.where`` bit for bit (NaN, inf
and signed zeros included), for every dtype and memory format, in place or not, and give the same
gradient as ``torch.where``."""
from __future__ import annotations

import pytest
import torch

import mixkit
from mixkit.masks import box
from mixkit.mixers import _ops

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}
PATHS = {"bits": 1 << 62, "rows": 0}  # ROW_COPY_MIN forcing each path


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    monkeypatch.setattr(_ops, "ROW_COPY_MIN", PATHS[request.param])
    return request.param


def bits(t):
    return t.contiguous().view(_INT[t.element_size()])


def boxes(b, sizes, seed=0, empty=(), full=()):
    g = torch.Generator().manual_seed(seed)
    d = len(sizes)
    lo = torch.stack([torch.randint(0, s, (b,), generator=g) for s in sizes], 1)
    hi = torch.stack([torch.randint(0, s + 1, (b,), generator=g) for s in sizes], 1).maximum(lo + 1)
    hi = hi.minimum(torch.tensor(sizes))
    for i in empty:
        hi[i] = lo[i]
    for i in full:
        lo[i], hi[i] = torch.zeros(d, dtype=torch.long), torch.tensor(sizes)
    return lo, hi


def special(b, c, sizes, dtype, seed=0):
    """Random values with NaN, +-inf and both zeros sprinkled in."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, *sizes, generator=g).to(dtype)
    flat = x.view(-1)
    n = flat.numel()
    pick = torch.randperm(n, generator=g)[: max(8, n // 50)]
    vals = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0], dtype=dtype)
    flat[pick] = vals[torch.arange(pick.numel()) % vals.numel()]
    return x


def reference(x, perm, share_map):
    return torch.where(share_map, x, x.index_select(0, perm))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
@pytest.mark.parametrize("inplace", [False, True])
def test_box_blend_equals_where_bitwise(path, dtype, fmt, inplace):
    b, sizes = 9, (11, 13)
    x = special(b, 3, sizes, dtype)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    perm = torch.randperm(b, generator=torch.Generator().manual_seed(1))
    lo, hi = boxes(b, sizes, empty=(2,), full=(4,))
    sm = box.outside_mask(lo, hi, sizes)
    ref = reference(x, perm, sm)
    src = x.clone()
    out = _ops.mix_pair(src, perm, sm, inplace, box=(lo, hi))
    assert torch.equal(bits(out), bits(ref))
    assert out.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
    if inplace:
        assert out.data_ptr() == src.data_ptr()
    else:
        assert torch.equal(bits(src), bits(x))  # the input is untouched


@pytest.mark.parametrize("sizes", [(37,), (5, 6, 7)])
def test_box_blend_1d_3d(path, sizes):
    b = 6
    x = special(b, 2, sizes, torch.float32, seed=3)
    perm = torch.roll(torch.arange(b), 1)
    lo, hi = boxes(b, sizes, seed=4, empty=(0,))
    sm = box.outside_mask(lo, hi, sizes)
    for inplace in (False, True):
        out = _ops.mix_pair(x.clone(), perm, sm, inplace, box=(lo, hi))
        assert torch.equal(bits(out), bits(reference(x, perm, sm)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits_max", [1 << 62, 0])
def test_random_mask_bits_equal_where(dtype, bits_max, monkeypatch):
    """FMix / GridMix-style maps (not boxes): the bit-select path (or where, for large batches), also
    broadcasting one map (batch mode)."""
    monkeypatch.setattr(_ops, "BITS_MAX_BYTES", bits_max)
    b, sizes = 7, (10, 12)
    x = special(b, 3, sizes, dtype, seed=5)
    perm = torch.randperm(b, generator=torch.Generator().manual_seed(6))
    for n in (b, 1):
        sm = torch.rand(n, 1, *sizes, generator=torch.Generator().manual_seed(7)) < 0.5
        for inplace in (False, True):
            out = _ops.mix_pair(x.clone(), perm, sm, inplace)
            assert torch.equal(bits(out), bits(reference(x, perm, sm)))


def test_non_contiguous_input(path):
    base = special(8, 3, (12, 20), torch.float32, seed=8)
    x = base[:, :, :, ::2]  # a strided view
    perm = torch.roll(torch.arange(8), 3)
    sm = torch.rand(8, 1, 12, 10, generator=torch.Generator().manual_seed(9)) < 0.3
    assert torch.equal(bits(_ops.mix_pair(x, perm, sm)), bits(reference(x, perm, sm)))
    lo, hi = boxes(8, (12, 10), seed=10)
    smb = box.outside_mask(lo, hi, (12, 10))
    assert torch.equal(bits(_ops.mix_pair(x, perm, smb, box=(lo, hi))), bits(reference(x, perm, smb)))


def test_non_finite_pixels_stay_where_their_source_has_share_one(path):
    b, sizes = 6, (16, 16)
    x = torch.rand(b, 3, *sizes)
    x[1, 0, 2, 3], x[1, 1, 9, 9], x[3, 2, 0, 0], x[3, 0, 15, 15] = float("nan"), float("inf"), -float("inf"), float("nan")
    perm = torch.tensor([1, 3, 0, 5, 2, 4])
    lo, hi = boxes(b, sizes, seed=11)
    sm = box.outside_mask(lo, hi, sizes)
    out = _ops.mix_pair(x, perm, sm, box=(lo, hi))
    src_row = torch.where(sm, torch.arange(b).view(-1, 1, 1, 1), perm.view(-1, 1, 1, 1)).expand_as(x)
    src_bad = ~torch.isfinite(x)
    # an output pixel is non-finite exactly where the source it copies holds a non-finite pixel there
    used_bad = torch.gather(src_bad, 0, src_row)
    assert torch.equal(~torch.isfinite(out), used_bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
def test_gradient_equals_where(path, dtype, fmt):
    b, sizes = 5, (9, 10)
    g = torch.Generator().manual_seed(12)
    x0 = torch.randn(b, 3, *sizes, generator=g, dtype=dtype)
    if fmt == "channels_last":
        x0 = x0.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(b, 3, *sizes, generator=g, dtype=dtype)
    perm = torch.tensor([2, 0, 4, 1, 3])
    lo, hi = boxes(b, sizes, seed=13, empty=(1,))
    sm = box.outside_mask(lo, hi, sizes)
    x1 = x0.clone().requires_grad_(True)
    out = _ops.mix_pair(x1, perm, sm, box=(lo, hi))
    (out * weight).sum().backward()
    x2 = x0.clone().requires_grad_(True)
    (reference(x2, perm, sm) * weight).sum().backward()
    assert torch.equal(out.detach(), reference(x0, perm, sm))
    assert torch.equal(x1.grad, x2.grad)
    if dtype == torch.float64:
        xg = x0[:, :1].clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda t: _ops.mix_pair(t, perm, sm, box=(lo, hi)), (xg,), fast_mode=True)


@pytest.mark.parametrize("name", ["CutMix", "FMix", "GridMix"])
@pytest.mark.parametrize("rows", [False, True])
def test_sample_mode_mixers_blend_exactly(name, rows, monkeypatch):
    if rows:
        monkeypatch.setattr(_ops, "ROW_COPY_MIN", 0)
    b, sizes = 8, (16, 16)
    x = special(b, 3, sizes, torch.float32, seed=14)
    res = getattr(mixkit, name)(mode="sample").mix(x, generator=torch.Generator().manual_seed(15))
    sm = res.share_map
    assert sm.dtype == torch.bool
    assert torch.equal(bits(res.inputs), bits(reference(x, res.index[:, 1], sm)))


def test_cutmix_inactive_rows_and_inplace_with_row_copy(monkeypatch):
    monkeypatch.setattr(_ops, "ROW_COPY_MIN", 0)
    b, sizes = 10, (12, 14)
    x = special(b, 3, sizes, torch.float32, seed=16)
    ref = mixkit.CutMix(mode="sample", p=0.5).mix(x, generator=torch.Generator().manual_seed(17))
    assert not bool(ref.mixed.all())
    assert torch.equal(bits(ref.inputs), bits(reference(x, ref.index[:, 1], ref.share_map)))
    xi = x.clone()
    res = mixkit.CutMix(mode="sample", p=0.5, inplace=True).mix(xi, generator=torch.Generator().manual_seed(17))
    assert res.inputs.data_ptr() == xi.data_ptr()
    assert torch.equal(bits(res.inputs), bits(ref.inputs))


def _leaks(x, res):
    """Output pixels that are non-finite although no source with a share > 0 there is."""
    b = x.shape[0]
    sm = res.share_map
    if sm is None or sm.shape[1] != 1:
        sm = res.weights[:, 0].view(b, *([1] * (x.dim() - 1)))
    sm = sm.float().expand(b, 1, *x.shape[2:])
    out = []
    for o in range(b):
        a = res.index[o, 0]
        p = res.index[o, 1] if res.index.shape[1] > 1 else a
        expect = ((sm[o] > 0) & ~torch.isfinite(x[a])) | ((sm[o] < 1) & ~torch.isfinite(x[p]))
        if bool((~torch.isfinite(res.inputs[o]) & ~expect).any()):
            out.append(o)
    return out


@pytest.mark.parametrize("name,kw", [("HMix", {}), ("MixUp", {"p": 0.5}), ("GMix", {}), ("SmoothMix", {}),
                                     ("CutMix", {}), ("FMix", {}), ("GridMix", {})])
@pytest.mark.parametrize("mode", ["sample", "batch"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_float_and_bool_maps_keep_non_finite_pixels_local(name, kw, mode, dtype):
    for seed in range(3):
        x = torch.rand(8, 3, 16, 16).to(dtype)
        x[0] = float("nan")
        x[3, 1] = float("inf")
        x[5, 2, :4] = -float("inf")
        res = getattr(mixkit, name)(mode=mode, **kw).mix(x, generator=torch.Generator().manual_seed(seed))
        assert _leaks(x, res) == [], (name, mode, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inplace", [False, True])
def test_float_map_with_ends_is_exact_on_non_finite_and_huge_inputs(dtype, inplace):
    """0 * (a - b) is NaN for a NaN/inf pixel and for two finite values whose difference overflows."""
    b, sizes = 6, (8, 9)
    x = special(b, 2, sizes, dtype, seed=18)
    if dtype in (torch.float32, torch.bfloat16):
        x[2, 0, 0, :3] = torch.tensor([3e38, -3e38, 2e38]).to(dtype)
    perm = torch.roll(torch.arange(b), 2)
    g = torch.Generator().manual_seed(19)
    w = torch.rand(b, 1, *sizes, generator=g)
    w[torch.rand(b, 1, *sizes, generator=g) < 0.3] = 0.0
    w[torch.rand(b, 1, *sizes, generator=g) < 0.3] = 1.0
    w[1] = 1.0
    partner = x.index_select(0, perm)
    out = _ops.mix_pair(x.clone(), perm, w, inplace)
    m1, m0 = (w == 1).expand_as(x), (w == 0).expand_as(x)
    assert torch.equal(bits(out[m1]), bits(x[m1]))
    assert torch.equal(bits(out[m0]), bits(partner[m0]))
    mid = ~(m0 | m1)
    assert torch.equal(bits(out[mid]), bits(_ops.lerp(x, partner, w)[mid]))
    rows = torch.arange(b).view(-1, 1)  # the per-row map of MixUp: row 1 left unmixed
    wr = torch.where(rows == 1, 1.0, 0.25).view(b, 1, 1, 1)
    out = _ops.mix_pair(x.clone(), perm, wr, inplace)
    assert torch.equal(bits(out[1]), bits(x[1]))


def test_float_map_with_ends_gradient():
    b, sizes = 4, (5, 6)
    g = torch.Generator().manual_seed(20)
    x0 = torch.randn(b, 2, *sizes, generator=g, dtype=torch.float64)
    x0[0, 0, 0, 0] = float("nan")
    w = torch.rand(b, 1, *sizes, generator=g, dtype=torch.float64)
    w[:, :, :2] = 0.0
    w[:, :, -1] = 1.0
    perm = torch.tensor([1, 2, 3, 0])
    weight = torch.randn(b, 2, *sizes, generator=g, dtype=torch.float64)
    x1 = x0.clone().requires_grad_(True)
    (_ops.mix_pair(x1, perm, w.float()) * weight).sum().backward()  # the grad of out is weight, NaN or not
    # the formula's gradient: w to the anchor, 1 - w to the partner
    wf = w.float().double().expand_as(x0)
    expect = wf * weight
    expect.index_add_(0, perm, (1 - wf) * weight)
    assert torch.allclose(x1.grad, expect)


def test_float_map_assumed_to_have_ends_blends_exactly(monkeypatch):
    """A map not read (per-pixel, or on an accelerator) equals the exact blend that accelerators run at once."""
    monkeypatch.setattr(_ops, "_may_have_ends", lambda w: True)
    b, sizes = 6, (8, 9)
    x = special(b, 2, sizes, torch.float32, seed=21)
    perm = torch.roll(torch.arange(b), 1)
    w = torch.rand(b, 1, *sizes, generator=torch.Generator().manual_seed(22))
    w[:, :, :3] = 0.0
    w[:, :, -2:] = 1.0
    expect = _ops._lerp_exact(x, x.index_select(0, perm), w)
    for inplace in (False, True):
        out = _ops.mix_pair(x.clone(), perm, w, inplace)
        assert torch.equal(bits(out), bits(expect))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["contiguous", "channels_last"])
@pytest.mark.parametrize("mode", ["sample", "batch"])
def test_hmix_box_copy_equals_the_per_pixel_blend(path, dtype, fmt, mode):
    b, sizes = 8, (12, 14)
    x = torch.randn(b, 3, *sizes, generator=torch.Generator().manual_seed(23)).to(dtype)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    for p in (1.0, 0.5):
        ref = mixkit.HMix(mode=mode, p=p).mix(x, generator=torch.Generator().manual_seed(24))
        if ref.share_map is None:  # batch mode, not drawn: the batch is returned unmixed
            continue
        expect = _ops.lerp(x, x.index_select(0, ref.index[:, -1]), ref.share_map)
        assert torch.equal(bits(ref.inputs), bits(expect))
        assert ref.inputs.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
        xi = x.clone()
        res = mixkit.HMix(mode=mode, p=p, inplace=True).mix(xi, generator=torch.Generator().manual_seed(24))
        assert res.inputs.data_ptr() == xi.data_ptr() and torch.equal(bits(res.inputs), bits(expect))
        bad = special(b, 3, sizes, dtype, seed=25)
        res = mixkit.HMix(mode=mode, p=p).mix(bad, generator=torch.Generator().manual_seed(24))
        assert _leaks(bad, res) == []


def test_hmix_box_copy_gradient(path):
    b, sizes = 6, (10, 10)
    g = torch.Generator().manual_seed(26)
    x0 = torch.randn(b, 3, *sizes, generator=g, dtype=torch.float64)
    weight = torch.randn(b, 3, *sizes, generator=g, dtype=torch.float64)
    x1 = x0.clone().requires_grad_(True)
    res = mixkit.HMix(mode="sample").mix(x1, generator=torch.Generator().manual_seed(27))
    (res.inputs * weight).sum().backward()
    x2 = x0.clone().requires_grad_(True)
    (_ops.lerp(x2, x2.index_select(0, res.index[:, 1]), res.share_map) * weight).sum().backward()
    assert torch.allclose(x1.grad, x2.grad)

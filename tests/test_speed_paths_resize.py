"""The fast paths of ResizeMix's sample mode and of the Gaussian-kernel labels keep today's exact results.

ResizeMix is compared with a copy of the previous algorithm (advanced indexing around a slice) under
fixed seeds, on both of its paths (batched gather/scatter, and the CPU's row-by-row paste); the closed
form kernel sum of GMix / SmoothMix is compared with the full sum of the kernel.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mixkit.masks import gaussian
from mixkit.mixers import resizemix
from mixkit.mixers.gmix import GMix
from mixkit.mixers.resizemix import ResizeMix
from mixkit.mixers.smoothmix import SmoothMix

SHAPES = {1: (2, 37), 2: (3, 17, 41), 3: (2, 6, 7, 9)}
LOW = (torch.float16, torch.bfloat16)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the previous ResizeMix paste, kept as the reference
def old_paste(m, x, partner, lo, length, active):
    b = x.shape[0]
    sizes = tuple(x.shape[2:])
    d = len(sizes)
    cells, dst = [], []
    for i, s in enumerate(sizes):
        most = max(math.floor(s * m.scale[1]), 1)
        r = torch.minimum(torch.arange(most), length[:, i, None] - 1)
        shape = [b] + [1] * d
        shape[1 + i] = most
        cells.append((r, shape))
        dst.append((lo[:, i, None] + r).view(shape))
    rows = torch.arange(b).view(b, *([1] * d))
    if m.interpolation in ("nearest", "nearest-exact"):
        vals = old_nearest(m, x, partner, cells, length)
    else:
        vals = old_sampled(m, x, partner, cells, length)
    if active is not None:
        own = x[(rows, slice(None)) + tuple(dst)]
        vals = torch.where(active.view(b, *([1] * (d + 1))), vals, own)
    out = x.clone()
    out[(rows, slice(None)) + tuple(dst)] = vals
    return out


def old_nearest(m, x, partner, cells, length):
    b = x.shape[0]
    op = torch.float64 if x.dtype == torch.float64 else torch.float32
    src = []
    for i, (r, shape) in enumerate(cells):
        s = x.shape[2 + i]
        scale = torch.tensor(float(s), dtype=op) / length[:, i, None].to(op)
        pos = r.to(op) + 0.5 if m.interpolation == "nearest-exact" else r.to(op)
        src.append(torch.floor((pos * scale).float()).long().clamp(0, s - 1).view(shape))
    return x[(partner.view(b, *([1] * len(cells))), slice(None)) + tuple(src)]


def old_sampled(m, x, partner, cells, length):
    b, d = x.shape[0], len(cells)
    work = torch.float32 if x.dtype in LOW else x.dtype
    src = x.index_select(0, partner).to(work)
    grid_shape = [b] + [r.shape[1] for r, _ in cells]
    coords = []
    for i, (r, shape) in enumerate(cells):
        g = 2.0 * (r.to(work) + 0.5) / length[:, i, None].to(work) - 1.0
        coords.append(g.view(shape).expand(grid_shape))
    grid = torch.stack(coords[::-1], dim=-1)
    mode = "bicubic" if m.interpolation == "bicubic" else "bilinear"
    if d == 1:
        grid = torch.stack([grid[..., 0], torch.zeros_like(grid[..., 0])], -1).unsqueeze(1)
        out = F.grid_sample(src.unsqueeze(2), grid, mode=mode, padding_mode="border", align_corners=False).squeeze(2)
    else:
        out = F.grid_sample(src, grid, mode=mode, padding_mode="border", align_corners=False)
    return out.to(x.dtype).movedim(1, -1)


@pytest.fixture(params=["batched", "rows"])
def path(request, monkeypatch):
    """Force either paste path: the row loop from 0 cells, the batched grid with an unreachable limit."""
    monkeypatch.setattr(resizemix, "_ROW_LOOP_CELLS", 0 if request.param == "rows" else 1 << 62)
    return request.param


def interps(d):
    return ["nearest", "nearest-exact", "linear"] + (["bicubic"] if d == 2 else [])


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("p", [1.0, 0.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_sample_mode_matches_the_previous_algorithm(d, p, dtype, path):
    b = 9
    x = torch.randn(b, *SHAPES[d]).to(dtype)
    for interp in interps(d):
        for scale in ((0.1, 0.8), (0.01, 1.0), (1.0, 1.0)):
            m = ResizeMix(scale, mode="sample", interpolation=interp, p=p, num_classes=5)
            for seed in range(3):
                params = m.sample(x, gen(seed))
                if not params.mixed:
                    continue
                want = old_paste(m, x, params.partner, params.draws["box_lo"], params.draws["patch_size"],
                                 params.active)
                res = m.apply(x, params)
                assert torch.equal(res.inputs, want), (interp, scale, seed)
                y = torch.arange(b) % 5
                _, ys = m(x, y, generator=gen(seed))
                _, ys_again = m(x, y, generator=gen(seed))
                assert torch.equal(ys, ys_again)


def test_golden_labels_and_pixels_under_a_seed(path):
    # the draw stream is unchanged: the same seed gives the same boxes, partners and labels as before
    x = torch.arange(4 * 1 * 6 * 8, dtype=torch.float32).view(4, 1, 6, 8)
    m = ResizeMix(mode="sample")
    res = m.mix(x, generator=gen(0))
    params = m.sample(x, gen(0))
    want = old_paste(m, x, params.partner, params.draws["box_lo"], params.draws["patch_size"], None)
    assert torch.equal(res.inputs, want)
    vol = (res.params["box_hi"] - res.params["box_lo"]).prod(1).double()
    assert torch.equal(res.weights[:, 0], (1 - vol / 48).float())


@pytest.mark.parametrize("d", [1, 2, 3])
def test_inplace_and_channels_last_match(d, path):
    x = torch.randn(6, *SHAPES[d])
    for interp in interps(d):
        m = ResizeMix(mode="sample", interpolation=interp)
        want = m.mix(x, generator=gen(1)).inputs
        x2 = x.clone()
        got = ResizeMix(mode="sample", interpolation=interp, inplace=True).mix(x2, generator=gen(1)).inputs
        assert got is x2 and torch.equal(got, want)
        if d in (2, 3):
            fmt = torch.channels_last if d == 2 else torch.channels_last_3d
            xc = x.contiguous(memory_format=fmt)
            out = m.mix(xc, generator=gen(1)).inputs
            assert out.is_contiguous(memory_format=fmt) and torch.equal(out, want)
            xc2 = xc.clone()
            out2 = ResizeMix(mode="sample", interpolation=interp, inplace=True).mix(xc2, generator=gen(1)).inputs
            assert out2 is xc2 and torch.equal(out2, want)


@pytest.mark.parametrize("interp", ["nearest", "linear", "bicubic"])
def test_gradient_counts_each_shown_pixel_once(interp, path):
    # the patch grid repeats a row's last cell up to the largest patch: those repeats must not add gradient
    x = torch.randn(5, 2, 12, 10, dtype=torch.float64, requires_grad=True)
    m = ResizeMix(mode="sample", interpolation=interp)
    res = m.mix(x, generator=gen(3))
    res.inputs.sum().backward()
    # every output pixel is a convex combination of input pixels (one pixel for nearest)
    torch.testing.assert_close(x.grad.sum(), torch.tensor(float(x.numel()), dtype=torch.float64))
    with torch.no_grad():
        assert torch.equal(res.inputs, m.mix(x, generator=gen(3)).inputs)
    if interp == "nearest":
        ones = torch.ones_like(x)
        want = ones.clone()
        for i in range(5):  # the anchor loses its box, the partner gains the pixels its patch shows
            lo, hi = res.params["box_lo"][i].tolist(), res.params["box_hi"][i].tolist()
            j = int(res.index[i, 1])
            want[i, :, lo[0]:hi[0], lo[1]:hi[1]] -= 1
            idx = torch.arange(x[j].numel(), dtype=torch.float64).view_as(x[j])
            shown = F.interpolate(idx[None], size=[hi[0] - lo[0], hi[1] - lo[1]], mode="nearest")[0].long()
            want[j].view(-1).index_add_(0, shown.flatten(), torch.ones(shown.numel(), dtype=torch.float64))
        assert torch.equal(x.grad, want)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_non_finite_pixels_stay_local(d, path):
    b = 8
    x = torch.randn(b, *SHAPES[d])
    x[3] = float("nan")
    m = ResizeMix(mode="sample")
    res = m.mix(x, generator=gen(5))
    inside = res.mask[:, 1].bool()  # (B, *spatial): the pasted patch
    partner = res.index[:, 1]
    for i in range(b):
        nan = res.inputs[i].isnan().any(0)
        expect = torch.zeros_like(nan)
        if i == 3:
            expect |= ~inside[i]
        if int(partner[i]) == 3:
            expect |= inside[i]
        assert torch.equal(nan, expect), i


def test_large_images_take_the_row_path_on_the_cpu(monkeypatch):
    calls = []
    orig = ResizeMix._paste_each
    monkeypatch.setattr(ResizeMix, "_paste_each", lambda self, *a: calls.append(1) or orig(self, *a))
    m = ResizeMix(mode="sample")
    m.mix(torch.randn(3, 3, 128, 128), generator=gen(0))
    assert calls
    calls.clear()
    m.mix(torch.randn(3, 3, 32, 32), generator=gen(0))
    ResizeMix(mode="sample", interpolation="linear").mix(torch.randn(3, 3, 128, 128), generator=gen(0))
    assert not calls


# ---------------------------------------------------------------- GMix / SmoothMix: the kernel's sum in closed form
@pytest.mark.parametrize("sizes", [(37,), (17, 41), (32, 32), (6, 7, 9), (1, 5), (1,)])
def test_kernel_mass_is_the_full_sum(sizes):
    g = gen(11)
    n, d = 64, len(sizes)
    size_t = torch.tensor(sizes, dtype=torch.float32)
    centres = torch.floor(torch.rand(n, d, generator=g) * size_t)
    centres[:8] = 0.0  # corners: clipped at the border
    centres[8:16] = size_t - 1
    sigma = torch.rand(n, d, generator=g) * size_t * 2
    sigma[16:20] = 0.0  # zero-mass rows: an all-zero kernel
    sigma[20:24] = 1e-3  # one-pixel kernels
    sigma[24:28] = 1e4  # flat kernels
    k, mass = gaussian.kernel_and_mass(sizes, centres, sigma)
    assert torch.equal(k, gaussian.gaussian_kernel(sizes, centres, sigma)) and mass.dtype == torch.float64
    full = k.flatten(1).sum(1, dtype=torch.float64)
    torch.testing.assert_close(mass, full, rtol=1e-6 * d, atol=0)
    assert bool((mass[16:20] == 0).all())


@pytest.mark.parametrize("cls", [GMix, SmoothMix])
@pytest.mark.parametrize("shape", [(6, 2, 37), (6, 3, 17, 41), (6, 2, 6, 7, 9), (6, 3, 32, 32)])
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_label_is_the_realised_share_mean(cls, shape, mode, p):
    x = torch.randn(*shape)
    for seed in range(6):
        res = cls(mode=mode, p=p).mix(x, generator=gen(seed))
        if res.mask is None:  # batch mode: the coin said no
            assert bool((res.weights[:, 0] == 1).all())
            continue
        share = res.mask[:, 0].double()
        mean = share.flatten(1).mean(1)
        torch.testing.assert_close(res.weights[:, 0].double(), mean, atol=2e-7, rtol=0)
        off = ~res.mixed
        assert bool((res.weights[off, 0] == 1).all())


def test_cached_index_maps_made_under_inference_mode_serve_autograd_later():
    m = ResizeMix(mode="sample", scale=(0.3, 0.7))
    with torch.inference_mode():
        m.mix(torch.randn(4, 3, 15, 13), generator=gen(0))
    x = torch.randn(4, 3, 15, 13, requires_grad=True)
    m.mix(x, generator=gen(0)).inputs.sum().backward()
    assert float(x.grad.sum()) == x.numel()

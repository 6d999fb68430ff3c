"""SaliencyMix and the fine-grained static saliency: the box is centred on the source's saliency peak
(batch mode: one map, from x[perm[0]]; sample mode: one map per row), label weights are the realised
box share, the saliency matches a per-pixel re-statement of the algorithm and OpenCV's output, and
gradient saliency keeps the model contract."""
from __future__ import annotations

import base64
import math

import pytest
import torch
from torch import nn

from mixkit.bench.models import build_model
from mixkit.masks import box
from mixkit.masks.static_saliency import FINE_GRAINED_SCALES, static_saliency
from mixkit.mixers.saliencymix import SaliencyMix

from test_comixup import TVResNet

K = 5


def gen(seed):
    return torch.Generator().manual_seed(seed)


def blob_images(b, sizes=(32, 32), seed=0, c=3, side=5):
    """Dark noisy images with one bright blob each; returns the images and the blob corners."""
    g = gen(seed)
    x = 0.05 * torch.randn(b, c, *sizes, generator=g)
    lo = torch.stack([torch.randint(0, s - side + 1, (b,), generator=g) for s in sizes], 1)
    for i in range(b):
        region = (i, slice(None)) + tuple(slice(int(a), int(a) + side) for a in lo[i])
        x[region] += 2.0
    return x, lo


def expected_box(peak, lam, sizes):
    lengths = box.cut_lengths(sizes, lam.reshape(-1))
    size_t = torch.tensor(sizes)
    lo = peak - lengths // 2
    hi = lo + lengths
    return lo.clamp(min=0).minimum(size_t), hi.clamp(min=0).minimum(size_t)


# ======================================================================================= static saliency
def _reference_saliency(img, scales):
    """Per-pixel re-statement of the documented algorithm for one gray image (H, W) (slow, plain loops)."""
    H, W = img.shape
    g = img.double().clone()
    for _ in range(2):
        out = torch.empty_like(g)
        for i in range(H):
            for j in range(W):
                acc = 0.0
                for di, wi in ((-1, 0.25), (0, 0.5), (1, 0.25)):
                    for dj, wj in ((-1, 0.25), (0, 0.5), (1, 0.25)):
                        ii, jj = i + di, j + dj
                        ii = -ii if ii < 0 else (2 * (H - 1) - ii if ii > H - 1 else ii)  # reflect-101
                        jj = -jj if jj < 0 else (2 * (W - 1) - jj if jj > W - 1 else jj)
                        ii = min(max(ii, 0), H - 1)
                        jj = min(max(jj, 0), W - 1)
                        acc += wi * wj * float(g[ii, jj])
                out[i, j] = acc
        g = out
    on = torch.zeros_like(g)
    off = torch.zeros_like(g)
    for n in scales:
        for i in range(H):
            for j in range(W):
                r0, r1 = max(i - n + 1, 0), min(i + n + 1, H)
                c0, c1 = max(j - n + 1, 0), min(j + n + 1, W)
                cnt = (r1 - r0) * (c1 - c0)
                if cnt <= 1:
                    continue
                m = (float(g[r0:r1, c0:c1].sum()) - float(g[i, j])) / (cnt - 1)
                d = float(g[i, j]) - m
                on[i, j] += max(d, 0.0)
                off[i, j] += max(-d, 0.0)
    on = on / on.max() if on.max() > 0 else on
    off = off / off.max() if off.max() > 0 else off
    s = on + off
    return s / s.max() if s.max() > 0 else s


@pytest.mark.parametrize("scales", [(1, 2, 5), (3, 12)])
def test_static_saliency_matches_per_pixel_reference(scales):
    g = gen(0)
    img = torch.rand(1, 1, 9, 13, generator=g, dtype=torch.float64)
    ours = static_saliency(img, scales=scales)[0]
    ref = _reference_saliency(img[0, 0], scales)
    assert ours.dtype == torch.float64
    assert torch.allclose(ours, ref, atol=1e-10)


# An OpenCV 4.10 (opencv-contrib) StaticSaliencyFineGrained run on a smooth 24x24 uint8 image, stored
# here so the test needs no OpenCV: the image, then round(255 * saliency).
_CV_IMG = ("lpigqaqhlIJxZV9lcnpyZGFsfpm1zN/nk5Wco6WflYd4bGZsd310ZWFsfpizydvjj4+Rk5WZnJqSh4CDjIx8aGBqf5qyxNLYiYiEf4ORpLCv"
           "pZ2eop2GbF9pgZywvcfLfHt2cHWGna+0r6impJuFb2RrfZOlsLm+ZWZoanF7hY2TlZKLgnhyb29wdH+RorG2TlJfbXZyZ19iamxhUUxYbXt3"
           "aWh8lq20SU9hd31pSDE1RlFHNjVPc4l9X1Nmh6OsYmZ2iIRfLg8ZOlVUR0dggZB8WERVdpOciImRmotZIAARQGl1b2+AkZN5VEBNa4WNn52e"
           "notdKxEjT3mMj5Kdo5t+WkVNZnyCkpCOioBtWU9UY3aEjpmqtrGSak9SaX2Cc3JvbHGBlJ2RemxvfJCrwsapfV5fc4aKYWJfXWuQuc22imtq"
           "fJOrv8Ovj3Z2g4+Sb29saHCJpraojHuGna6to5qXl5eVlJOTi4qGgX15d3l9g5Gsx82tfmJxl7Ozo5WSm5ueoZh/YlVfeJm+3NytakRdlsLE"
           "rpuXjpOnvcGogmZjcIiox8+telxtlri+tauqdICl0ejbt5J4amt/nbGunI+PlZ+ps7u+ZHOj2f7/5L2SbFZee5mrs7OnlIuVqLm+a3mh0PP+"
           "8tSmdldbd5Slra6llYqMlZ2ffYaeutTl6tu0hWVpg5qemZSVlpOKgHd0jZKbp7jP4uC/knJ2j6CYh32GmJyJbldPkpWborDK4uTFlnV4kaCW"
           "gneDmJ6IaExD")
_CV_SAL = ("KC44RkY7IAofOEM8LSg1SU46Dy1wqNHhIiUwOD00JQwSJzIrHx8wR046DixtpcvYEhQXHCEpLywZBQoIBQkhQEw7Dilnl7fFDAwNDQYY"
           "NERENSokIQ4TOUs7ESNWgZumJCcoJRkIHTlAOjImGAMbN0M5HAw6Yn2HUE5GPS4fEAgEBgIMHjA6Pzw3KxIRPmFucmpWQDY9TFlUSEZTaG9d"
           "QjM1QDsYGEVYb2ZLNDRajK+tkX6BkYxrOyQzVGFDDSc8RjwlFi1uvOzls4l6fXNQIhMxY31kLgIZDAgBASF0z//trm1NQzcZAAAqZod4RxcG"
           "DxIUBhxjrtTDjE0lEQAdMCAWV397UCkYAAAEDiJAYXJtVzkeAh1AWUkLOWlpSSYXKSwuMSkYBgIOJS8lByBRbmQxE0NIMhQIQkVIQywCL0Ip"
           "AiAbAi1RZFw5CxMbDAAGMTM2NiUEHjEkBgQONlFROyMbGRwbGBgXBggJCwsODg4OBhNEcnpMCB0QHEVPPislFBokLyYGHTY2GhZajY1MDD4p"
           "GVhqXEM6DBxEbXVPECI2LAI5b3pMACcXHFJqZ15YDghOmsCtbCAWMi0FLVFLKxAOITxRYWtuIwVKrOrwv24ULEo4CCpFSD0wIyMwRVhcHwRD"
           "neb/5qBBGUtIGxU5RD8yHxQRGSAiDQg3fbzi5bdgBDU6FRInJx8bGBABFCQpCxIwXJDA1751GCAkBBYbDQUIFA8KNVxpERctUH6y0MB8IhkeBhgX"
           "Bw0EEhINQnCC")


def _u8(s):
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).view(24, 24)


def test_static_saliency_agrees_with_opencv_on_8bit_input():
    img = _u8(_CV_IMG).float()
    cv = _u8(_CV_SAL).double()
    ours = static_saliency(img[None, None])[0].double()
    inner = (slice(2, 22), slice(2, 22))  # OpenCV's borders differ on purpose (see the module docstring)
    a, b = cv[inner].flatten(), ours[inner].flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert corr > 0.995
    assert int(cv.argmax()) == int(ours.argmax())


def test_static_saliency_highlights_a_bright_blob():
    g = gen(1)
    for _ in range(10):
        r, c = torch.randint(12, 48 - 18, (2,), generator=g).tolist()
        x = torch.zeros(1, 3, 48, 48)
        x[..., r:r + 6, c:c + 6] = 10.0
        x = x + 0.01 * torch.randn(x.shape, generator=g)
        s = static_saliency(x)[0]
        assert s.shape == (48, 48) and s.dtype == torch.float32
        assert float(s.max()) == pytest.approx(1.0) and float(s.min()) >= 0.0
        # the blob's core reaches the maximum (the on-centre channel peaks there) ...
        assert float(s[r + 2:r + 4, c + 2:c + 4].min()) > 0.99
        # ... and the argmax is on the blob or in its dark surround (the off-centre channel, normalised
        # separately as in OpenCV, is as strong there), within the smallest scale's reach
        p = divmod(int(s.argmax()), 48)
        dist = max(max(r - p[0], p[0] - (r + 5), 0), max(c - p[1], p[1] - (c + 5), 0))
        assert dist <= 12


def test_static_saliency_translation_equivariant():
    # integer-valued single-channel images keep every sum exact: the map moves exactly with the image
    x = torch.zeros(1, 1, 40, 40)
    x[..., 14:19, 15:20] = 7.0
    x[..., 16, 17] = 9.0
    x[..., 22:24, 12:14] = 3.0
    moved = torch.roll(x, (5, -3), (2, 3))
    s0 = static_saliency(x, scales=(2, 3))[0]
    s1 = static_saliency(moved, scales=(2, 3))[0]
    assert torch.equal(s1[10:35, 5:30], torch.roll(s0, (5, -3), (0, 1))[10:35, 5:30])
    p0, p1 = divmod(int(s0.argmax()), 40), divmod(int(s1.argmax()), 40)
    assert (p1[0] - p0[0], p1[1] - p0[1]) == (5, -3)


def test_static_saliency_invariances_and_degenerate():
    g = gen(2)
    x = torch.randn(3, 3, 20, 24, generator=g, dtype=torch.float64)
    s = static_saliency(x)
    assert torch.allclose(static_saliency(2.5 * x - 7.0), s, atol=1e-10)  # affine intensity invariance
    # batched == one image at a time
    assert torch.allclose(torch.cat([static_saliency(x[i:i + 1]) for i in range(3)]), s, atol=1e-12)
    assert torch.equal(static_saliency(torch.full((2, 3, 8, 8), 0.3)), torch.zeros(2, 8, 8))
    # 1-D and 3-D, and explicit channel weights
    assert static_saliency(torch.randn(2, 4, 50)).shape == (2, 50)
    assert static_saliency(torch.randn(2, 1, 5, 6, 7)).shape == (2, 5, 6, 7)
    w = static_saliency(x, gray_weights=(1.0, 0.0, 0.0))
    assert torch.allclose(w, static_saliency(x[:, :1]), atol=1e-10)
    with pytest.raises(ValueError, match="gray_weights"):
        static_saliency(x, gray_weights=(1.0, 0.0))
    with pytest.raises(TypeError):
        static_saliency(torch.zeros(2, 3, 8, 8, dtype=torch.long))
    assert FINE_GRAINED_SCALES == (12, 24, 48, 28, 56, 112)


# ======================================================================================= SaliencyMix
def test_batch_mode_box_centred_at_source_peak_and_pasted_at_same_place():
    x, _ = blob_images(8, (32, 32), seed=3)
    for seed in range(6):
        res = SaliencyMix(mode="batch").mix(x, generator=gen(seed))
        partner = res.index[:, 1]
        src = int(partner[0])
        assert torch.equal(res.params["source"], partner[:1])
        peak = res.params["peak"][0]
        sal = static_saliency(x[src:src + 1])[0]
        assert int(sal.argmax()) == int(peak[0]) * 32 + int(peak[1])
        lo, hi = expected_box(peak.unsqueeze(0), res.lam[:1], (32, 32))
        assert torch.equal(res.params["box_lo"], lo) and torch.equal(res.params["box_hi"], hi)
        inside = box.box_mask(lo, hi, (32, 32))[0, 0]
        # the partner's pixels inside the box, the anchor's outside, for every row
        assert torch.equal(res.inputs[:, :, inside], x[partner][:, :, inside])
        assert torch.equal(res.inputs[:, :, ~inside], x[:, :, ~inside])
        w0 = 1.0 - float(inside.sum()) / 1024
        assert torch.equal(res.weights[:, 0], torch.full((8,), w0, dtype=torch.float32))
        assert torch.equal(res.mask[:, 0].flatten(1).mean(1), res.weights[:, 0])
        assert torch.allclose(res.weights.sum(1), torch.ones(8))


def test_batch_mode_uses_only_the_first_shuffled_image():
    x = torch.zeros(6, 1, 32, 32)  # integer-valued blobs well inside the image
    g = gen(4)
    for i in range(6):
        r, c = torch.randint(9, 18, (2,), generator=g).tolist()
        x[i, :, r:r + 5, c:c + 5] = 5.0
        x[i, :, r + 1, c + 2] = 8.0
    mixer = SaliencyMix(scales=(2, 3))
    res = mixer.mix(x, generator=gen(0))
    src = int(res.params["source"][0])
    # change every other image: same seed -> same permutation -> the same box
    x2 = torch.randn(6, 1, 32, 32)
    x2[src] = x[src]
    res2 = mixer.mix(x2, generator=gen(0))
    assert torch.equal(res2.params["box_lo"], res.params["box_lo"])
    assert torch.equal(res2.params["box_hi"], res.params["box_hi"])
    # move the source image's content: the box centre follows it exactly
    x3 = x.clone()
    x3[src] = torch.roll(x[src], (4, -3), (1, 2))
    res3 = mixer.mix(x3, generator=gen(0))
    assert (res3.params["peak"][0] - res.params["peak"][0]).tolist() == [4, -3]


@pytest.mark.parametrize("sizes", [(32, 32), (17, 41), (40,), (6, 7, 9)])
def test_sample_mode_per_row_maps_and_boxes(sizes):
    b = 7
    x, _ = blob_images(b, sizes, seed=5, side=3)
    res = SaliencyMix(mode="sample").mix(x, generator=gen(1))
    partner = res.index[:, 1]
    assert torch.equal(res.params["source"], partner)
    sal = static_saliency(x)
    n = math.prod(sizes)
    for i in range(b):
        s = sal[int(partner[i])]
        assert torch.equal(res.params["saliency"][i], s)
        flat = int(s.reshape(-1).argmax())
        coords = []
        for size in reversed(sizes):
            coords.append(flat % size)
            flat //= size
        peak = torch.tensor(coords[::-1])
        assert torch.equal(res.params["peak"][i], peak)
        lo, hi = expected_box(peak.unsqueeze(0), res.lam[i:i + 1], sizes)
        assert torch.equal(res.params["box_lo"][i:i + 1], lo) and torch.equal(res.params["box_hi"][i:i + 1], hi)
        inside = box.box_mask(lo, hi, sizes)[0, 0]
        assert torch.equal(res.inputs[i][:, inside], x[int(partner[i])][:, inside])
        assert torch.equal(res.inputs[i][:, ~inside], x[i][:, ~inside])
        assert float(res.weights[i, 0]) == pytest.approx(1.0 - float(inside.sum()) / n, abs=1e-7)
    assert torch.equal(res.mask[:, 0].flatten(1).mean(1), res.weights[:, 0])
    # several distinct boxes in one batch (per-row lambdas and peaks)
    assert len({tuple(r) for r in res.params["box_lo"].tolist()}) > 1


def test_box_clipped_at_border_and_weight_from_clipped_box():
    x = torch.zeros(4, 1, 16, 16)
    x[:, :, 0:3, 13:16] = 1.0  # every source peaks in the top-right corner
    res = SaliencyMix(alpha=1.0, mode="sample").mix(x, generator=gen(7))
    lo, hi = res.params["box_lo"], res.params["box_hi"]
    assert bool((lo >= 0).all()) and bool((hi <= 16).all())
    vol = box.box_volume(lo, hi).double()
    assert torch.equal(res.weights[:, 0], (1.0 - vol / 256).float())
    lengths = box.cut_lengths((16, 16), res.lam.double())
    assert bool((vol <= lengths.prod(1)).all())


def test_p_deterministic_dtypes_and_inplace():
    x, _ = blob_images(8, (16, 16), seed=6)
    a = SaliencyMix(mode="sample", p=0.5).mix(x, generator=gen(2))
    b = SaliencyMix(mode="sample", p=0.5).mix(x, generator=gen(2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights)
    off = ~a.mixed
    assert int(off.sum()) > 0
    assert torch.equal(a.inputs[off], x[off]) and bool((a.weights[off, 0] == 1).all())
    for dt in (torch.float16, torch.bfloat16, torch.float64):
        r = SaliencyMix(mode="sample").mix(x.to(dt), generator=gen(3))
        assert r.inputs.dtype == dt and r.weights.dtype == torch.float32
    xc = x.contiguous(memory_format=torch.channels_last)
    for mode in ("batch", "sample"):
        r = SaliencyMix(mode=mode).mix(xc, generator=gen(3))
        assert r.inputs.is_contiguous(memory_format=torch.channels_last)
        x0 = x.clone()
        ri = SaliencyMix(mode=mode, inplace=True).mix(x0, generator=gen(3))
        assert ri.inputs.data_ptr() == x0.data_ptr()
        assert torch.equal(ri.inputs, SaliencyMix(mode=mode).mix(x, generator=gen(3)).inputs)
    x1 = x[:1]
    assert SaliencyMix().mix(x1, generator=gen(0)).inputs is x1


def test_soft_targets_call_form():
    x, _ = blob_images(6, (16, 16), seed=8)
    y = torch.randint(0, K, (6,))
    xm, t = SaliencyMix(num_classes=K)(x, y, generator=gen(0))
    assert xm.shape == x.shape and torch.allclose(t.sum(1), torch.ones(6))


def test_callable_saliency():
    x = torch.randn(5, 3, 20, 20)

    def corner(xb):
        s = torch.zeros(xb.shape[0], *xb.shape[2:])
        s[:, 15, 4] = 1.0
        return s

    res = SaliencyMix(saliency=corner, mode="sample").mix(x, generator=gen(0))
    assert bool((res.params["peak"] == torch.tensor([15, 4])).all())
    with pytest.raises(ValueError, match="saliency"):
        SaliencyMix(saliency=lambda xb: xb).mix(x, generator=gen(0))


# ---------------------------------------------------------------------------------------- gradient saliency
@pytest.mark.parametrize("arch", ["resnet8", "tvresnet", "cnn1d"])
def test_gradient_saliency_model_contract(arch):
    torch.manual_seed(0)
    if arch == "resnet8":
        net, x = build_model("resnet8", K, 3, 2, width=0.5), torch.randn(6, 3, 32, 32)
    elif arch == "tvresnet":
        net, x = TVResNet(K), torch.randn(6, 3, 32, 32)
    else:
        net, x = build_model("cnn1d", K, 2, 1, width=4), torch.randn(6, 2, 30)
    y = torch.randint(0, K, (6,))
    net.train()
    params = list(net.parameters())
    for p in params[::3]:
        p.grad = torch.randn_like(p)
    before = [None if p.grad is None else p.grad.clone() for p in params]
    bn = [m.running_mean.clone() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for mode in ("batch", "sample"):
        mixer = SaliencyMix(saliency="gradient", model=net, mode=mode)
        assert list(mixer.parameters()) == []
        res = mixer.mix(x, y, generator=gen(0))
        assert net.training and all(m.training for m in net.modules())
        for p, g0 in zip(params, before):
            assert (p.grad is None) if g0 is None else torch.equal(p.grad, g0)
        after = [m.running_mean for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert all(torch.equal(a, c) for a, c in zip(after, bn))
        assert torch.equal(res.mask[:, 0].flatten(1).mean(1), res.weights[:, 0])
        # the box is centred on the peak of the source's input-gradient saliency
        src = res.params["source"]
        sal = res.params["saliency"]
        assert sal.shape == (src.numel(), *x.shape[2:])
        flat = sal.flatten(1).argmax(1)
        assert torch.equal(flat, res.params["peak"][:, -1] + (res.params["peak"][:, 0] * x.shape[-1] if x.dim() == 4 else 0))


def test_gradient_saliency_needs_model_and_labels():
    with pytest.raises(ValueError, match="model"):
        SaliencyMix(saliency="gradient")
    with pytest.raises(ValueError, match="saliency"):
        SaliencyMix(saliency="spectral")
    net = build_model("resnet8", K, 3, 2, width=0.5)
    with pytest.raises(ValueError, match="labels"):
        SaliencyMix(saliency="gradient", model=net).mix(torch.randn(4, 3, 16, 16))
    # static saliency needs neither
    assert SaliencyMix().mix(torch.randn(4, 3, 16, 16), generator=gen(0)).inputs.shape == (4, 3, 16, 16)

"""The docs/design.md contract, checked for every hand-crafted mixer.

Most checks use *provenance* inputs: sample i is the one-hot "colour" e_i over B channels, so after mixing
channel j of output row i holds, pixel by pixel, the share of source j in that pixel. Its spatial mean is
the realised share of j in row i, which must equal the label weight the mixer returns (bugs B1, B2, B6).
"""
from __future__ import annotations

import math

import pytest
import torch

from cases import BETA_LAMBDA, CASES, dims_of, make

NAMES = list(CASES)
SHAPES = {1: (37,), 2: (12, 20), 3: (6, 7, 8)}
SQUARE = {1: (32,), 2: (16, 16), 3: (8, 8, 8)}
TOL = {torch.float32: 2e-6, torch.float64: 2e-7, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def provenance(b, spatial, dtype=torch.float32):
    x = torch.zeros(b, b, *spatial, dtype=dtype)
    x[torch.arange(b), torch.arange(b)] = 1
    return x


def realised_shares(res, b):
    """(B, B) share of every source j in every output row i, read from the pixels."""
    return res.inputs.double().flatten(2).mean(2).float()


def claimed_shares(res, b):
    out = torch.zeros(b, b)
    out.scatter_add_(1, res.index.cpu(), res.weights.cpu().float())
    return out


def skip_dim(name, d):
    if d not in dims_of(name):
        pytest.skip(f"{name} supports {dims_of(name)}-D only")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("b", [1, 2, 3, 7, 64])
def test_label_weights_equal_pixel_provenance(name, mode, d, b):
    skip_dim(name, d)
    g = torch.Generator().manual_seed(1000 * b + d)
    m = make(name, mode=mode)
    for spatial in (SHAPES[d], SQUARE[d]):
        res = m.mix(provenance(b, spatial), generator=g)
        assert res.inputs.shape == (b, b, *spatial)
        assert res.index.dtype == torch.int64 and res.weights.dtype == torch.float32
        assert res.index.shape == res.weights.shape and res.index.shape[0] == b
        assert torch.equal(res.index[:, 0], torch.arange(b))
        assert torch.allclose(res.weights.sum(1), torch.ones(b), atol=1e-6)
        assert (res.weights >= -1e-7).all() and (res.weights <= 1 + 1e-7).all()
        torch.testing.assert_close(realised_shares(res, b), claimed_shares(res, b), atol=TOL[torch.float32], rtol=0)
        if res.mask is not None:
            assert res.mask.shape == (b, res.index.shape[1], *spatial)
            torch.testing.assert_close(res.mask.flatten(2).mean(2), res.weights, atol=TOL[torch.float32], rtol=0)
            torch.testing.assert_close(res.mask.sum(1), torch.ones(b, *spatial), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_precision_keeps_dtype_and_float32_weights(name, mode, dtype):
    g = torch.Generator().manual_seed(3)
    b = 7
    m = make(name, mode=mode, num_classes=1000)
    x = provenance(b, SHAPES[2], dtype)
    res = m.mix(x, generator=g)
    assert res.inputs.dtype == dtype
    assert res.weights.dtype == torch.float32
    torch.testing.assert_close(realised_shares(res, b), claimed_shares(res, b), atol=TOL[dtype], rtol=0)
    # class ids are never cast to the image dtype: id 999 is not representable exactly... in bf16 it rounds to 1000
    y = torch.tensor([999, 998, 997, 513, 257, 1, 0])
    xm, ys = m(x, y, generator=torch.Generator().manual_seed(3))
    assert ys.dtype == torch.float32 and ys.shape == (b, 1000)
    torch.testing.assert_close(ys.sum(1), torch.ones(b), atol=1e-6, rtol=0)
    assert ys[0, 999] >= ys[0].max() - 1 or ys[0, 999] > 0  # id 999 kept its own column
    assert ys[:, [999, 998, 997, 513, 257, 1, 0]].sum() == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_determinism_and_seed_sensitivity(name, mode):
    x = torch.randn(8, 3, 16, 20)
    m = make(name, mode=mode)
    a = m.mix(x, generator=torch.Generator().manual_seed(7))
    b = m.mix(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights) and torch.equal(a.index, b.index)
    differs = [not torch.equal(a.inputs, m.mix(x, generator=torch.Generator().manual_seed(s)).inputs) for s in range(8, 12)]
    assert all(differs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_input_not_modified_unless_inplace(name, mode):
    x = torch.randn(6, 3, 12, 12)
    keep = x.clone()
    res = make(name, mode=mode).mix(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, keep)
    assert not torch.equal(res.inputs, keep)
    x2 = x.clone()
    res2 = make(name, mode=mode, inplace=True).mix(x2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(res2.inputs, res.inputs)
    assert res2.inputs.data_ptr() == x2.data_ptr() and torch.equal(x2, res.inputs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_memory_format_kept(name, mode):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 12, 14).to(memory_format=torch.channels_last)
    assert make(name, mode=mode).mix(x, generator=g).inputs.is_contiguous(memory_format=torch.channels_last)
    if 3 in dims_of(name):
        x = torch.randn(5, 3, 6, 7, 8).to(memory_format=torch.channels_last_3d)
        assert make(name, mode=mode).mix(x, generator=g).inputs.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(5, 3, 12, 14)
    assert make(name, mode=mode).mix(x, generator=g).inputs.is_contiguous()


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one_is_returned_unmixed(name):
    x = torch.randn(1, 3, 10, 10)
    res = make(name, mode="sample").mix(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(res.inputs, x)
    assert res.index.tolist() == [[0]] and res.weights.tolist() == [[1.0]]
    xm, ys = make(name, num_classes=4)(x, torch.tensor([2]))
    assert torch.equal(ys, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))


@pytest.mark.parametrize("name", NAMES)
def test_batch_mode_shares_one_draw_sample_mode_does_not(name):
    b = 32
    x = provenance(b, (16, 16))
    rb = make(name, mode="batch").mix(x, generator=torch.Generator().manual_seed(5))
    rs = make(name, mode="sample").mix(x, generator=torch.Generator().manual_seed(5))
    if rb.mask is not None:  # one region for the whole batch
        assert (rb.mask[:, 0] == rb.mask[:1, 0]).all()
        assert not (rs.mask[:, 0] == rs.mask[:1, 0]).all()
    if rb.lam is not None:
        assert torch.all(rb.lam == rb.lam[0])
        assert rs.lam.unique().numel() > b // 2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_p_is_applied_once(name, mode):
    # bug B11: kornia applied p twice (rows mixed at p^2)
    p, b = 0.3, 16
    m = make(name, mode=mode, p=p)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(b, 2, 8, 8)
    calls = 250
    mixed = torch.stack([m.mix(x, generator=g).mixed if True else None for _ in range(calls)])
    n = mixed.numel() if mode == "sample" else calls
    k = int(mixed.sum()) if mode == "sample" else int(mixed[:, 0].sum())
    sd = math.sqrt(n * p * (1 - p))
    assert abs(k - n * p) < 4.5 * sd, (k, n * p)
    # unmixed rows are exactly the input with weight 1 on themselves
    res = m.mix(x, generator=g)
    for i in torch.nonzero(~res.mixed).flatten().tolist():
        assert torch.equal(res.inputs[i], x[i])
        assert res.weights[i, 0] == 1


@pytest.mark.parametrize("name", NAMES)
def test_soft_targets_match_provenance_and_sum_to_one(name):
    b, k = 9, 9
    g = torch.Generator().manual_seed(2)
    m = make(name, mode="sample", num_classes=k)
    x = provenance(b, (12, 12))
    y = torch.arange(b)  # label i for sample i: the soft target is the provenance row
    xm, ys = m(x, y, generator=g)
    torch.testing.assert_close(ys.sum(1), torch.ones(b), atol=1e-6, rtol=0)
    torch.testing.assert_close(ys, xm.flatten(2).mean(2), atol=2e-6, rtol=0)
    # same through one-hot and through already-soft targets (bug B9)
    _, ys2 = make(name, mode="sample", num_classes=k)(x, torch.eye(k)[y], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(ys, ys2)


@pytest.mark.parametrize("name", [n for n in BETA_LAMBDA])
@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_sampled_lambda_is_beta(name, alpha):
    stats = pytest.importorskip("scipy.stats")
    m = make(name, alpha=alpha, mode="sample")
    g = torch.Generator().manual_seed(int(alpha * 10))
    lam = torch.cat([m.mix(torch.zeros(500, 1, 4, 4), generator=g).lam for _ in range(6)]).double().numpy()
    # float32 resolution near 1 is 6e-8 (about 2% of Beta(0.2) draws round to 1.0): compare the draws
    # inside [eps, 1 - eps] with the Beta truncated to that interval
    eps = 1e-5
    dist = stats.beta(alpha, alpha)
    lo, hi = dist.cdf(eps), dist.cdf(1 - eps)
    inside = lam[(lam > eps) & (lam < 1 - eps)]
    assert stats.kstest(inside, lambda t: (dist.cdf(t) - lo) / (hi - lo)).pvalue > 1e-3
    q = 1 - (hi - lo)  # probability of a draw outside: a binomial check on the count
    assert abs((lam.size - inside.size) - lam.size * q) < 4.5 * (lam.size * q * (1 - q)) ** 0.5


@pytest.mark.parametrize("name", NAMES)
def test_no_self_pairs(name):
    m = make(name, mode="sample", no_self_pairs=True)
    for b in (2, 3, 7):
        res = m.mix(torch.randn(b, 1, 8, 8), generator=torch.Generator().manual_seed(b))
        assert (res.index[:, 1:] != torch.arange(b)[:, None]).all()


@pytest.mark.parametrize("name", NAMES)
def test_dense_targets_follow_the_pixels(name):
    # bug B14: image and segmentation map must get the same randomness
    b = 6
    x = provenance(b, (12, 16))
    seg = torch.arange(b).view(b, 1, 1).expand(b, 12, 16).clone()  # pixel label = sample id
    res = make(name, mode="sample").mix(x, generator=torch.Generator().manual_seed(4))
    dense = res.mix_dense(seg, num_classes=b)
    if dense.is_floating_point():  # soft: per-pixel class probabilities == per-pixel source shares
        torch.testing.assert_close(dense, res.inputs.float(), atol=2e-6, rtol=0)
    else:  # hard: each pixel's label is the source whose pixel it shows
        assert torch.equal(dense, res.inputs.argmax(1))


@pytest.mark.parametrize("name", NAMES)
def test_unsupported_dims_and_bad_input_raise(name):
    m = make(name)
    with pytest.raises(TypeError, match="floating"):
        m.mix(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="spatial"):
        m.mix(torch.zeros(4, 8))
    with pytest.raises(TypeError, match="Tensor"):
        m.mix([[1.0]])
    for d in (1, 2, 3):
        if d not in dims_of(name):
            with pytest.raises(ValueError, match="spatial dims"):
                m.mix(torch.zeros(4, 1, *SHAPES[d]))
    m = make(name, num_classes=5)
    x = torch.zeros(4, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        m(x, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="B=4"):
        m(x, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        m(x, torch.tensor([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="num_classes"):
        make(name)(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="mode"):
        make(name, mode="elem")
    with pytest.raises(ValueError, match="p must be in"):
        make(name, p=1.5)


def same_result(a, b):
    """Every field of two MixResults is identical (tensors bit for bit, params included)."""
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.index, b.index) and torch.equal(a.weights, b.weights)
    assert torch.equal(a.mixed, b.mixed)
    assert (a.lam is None) == (b.lam is None) and (a.lam is None or torch.equal(a.lam, b.lam))
    assert (a.mask is None) == (b.mask is None) and (a.mask is None or torch.equal(a.mask, b.mask))
    assert a.params.keys() == b.params.keys()
    for k, v in a.params.items():
        w = b.params[k]
        assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w, k


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("p", [1.0, 0.5])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_sample_then_apply_is_mix_and_replays(name, mode, p, d):
    # mix = sample + apply: the same draws in the same order, and apply is a pure function of (x, params)
    skip_dim(name, d)
    m = make(name, mode=mode, p=p)
    x = torch.randn(7, 3, *SHAPES[d], generator=torch.Generator().manual_seed(d))
    for seed in range(4):
        g_mix, g_sample = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        res = m.mix(x, generator=g_mix)
        params = m.sample(x, g_sample)
        assert torch.equal(g_mix.get_state(), g_sample.get_state())  # sample made every draw of mix
        first = m.apply(x, params)
        same_result(first, res)
        same_result(m.apply(x, params), first)  # a replay of the same params
        assert torch.equal(g_sample.get_state(), g_mix.get_state())  # apply drew nothing
    assert m.apply(lambda module: None) is m  # apply(fn) is still nn.Module.apply


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cuda_matches_cpu_under_the_same_generator(name, mode):
    x = provenance(8, (12, 16))
    m = make(name, mode=mode)
    cpu = m.mix(x, generator=torch.Generator().manual_seed(0))
    gpu = m.mix(x.cuda(), generator=torch.Generator().manual_seed(0))
    assert gpu.inputs.is_cuda
    torch.testing.assert_close(gpu.inputs.cpu(), cpu.inputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.weights.cpu(), cpu.weights)

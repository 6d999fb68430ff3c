"""The fast paths of the two-source call (batch-mode boxes in Python ints, results built on first read,
labels without the (B, 2, K) gather) pinned to the general path's values."""
import pickle

import pytest
import torch

import mixkit
from mixkit.labels import one_hot, smooth
from mixkit.masks import box
from mixkit.result import MixResult
from mixkit.targets import _mix_pair_labels


def _general_labels(Y, index, weights):
    """The general formula: sum_j weights[:, j] * Y[index[:, j]]."""
    return (weights.unsqueeze(-1) * Y[index]).sum(1)


def _edge_weights(n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    one = torch.tensor(1.0)
    half = torch.tensor(0.5)
    edges = torch.stack([torch.tensor(0.0), torch.tensor(1e-30), torch.tensor(1e-8), torch.tensor(2.0 ** -25),
                         torch.nextafter(half, torch.tensor(0.0)), half, torch.nextafter(half, one),
                         torch.nextafter(one, torch.tensor(0.0)), one])
    return torch.cat([edges, torch.rand(n, generator=g), torch.rand(n, generator=g) ** 8]).float()


@pytest.mark.parametrize("hard", [True, False])
def test_pair_labels_equal_the_gather_formula_per_row(hard):
    w0 = _edge_weights()
    b, k = w0.shape[0], 7
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, k, (b,), generator=g)
    Y = one_hot(y, k) if hard else one_hot(y, k, 0.1)
    partner = torch.randperm(b, generator=g)
    partner[:50] = torch.arange(50)  # some rows paired with themselves: the same class on both sides
    index = torch.stack([torch.arange(b), partner], 1)
    weights = torch.stack([w0, 1.0 - w0], 1)
    assert torch.equal(_mix_pair_labels(Y, partner, w0, hard), _general_labels(Y, index, weights))


@pytest.mark.parametrize("hard", [True, False])
def test_pair_labels_with_one_float_weight_equal_the_gather_formula(hard):
    b, k = 64, 10
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, k, (b,), generator=g)
    y[:8] = y[8:16]
    partner = torch.cat([torch.arange(8, 16), torch.arange(8), torch.randperm(b - 16, generator=g) + 16])
    Y = one_hot(y, k) if hard else smooth(torch.softmax(torch.randn(b, k, generator=g), 1), 0.2)
    index = torch.stack([torch.arange(b), partner], 1)
    for w in _edge_weights(3000, seed=3).tolist():
        weights = torch.stack([torch.full((b,), w), 1.0 - torch.full((b,), w)], 1)
        ref = _general_labels(Y, index, weights)
        assert torch.equal(_mix_pair_labels(Y, partner, w, hard), ref), w
        assert torch.equal(_mix_pair_labels(Y, partner, torch.tensor([w]), hard), ref), w


@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("make", [lambda m: mixkit.MixUp(0.4, mode=m), lambda m: mixkit.CutMix(1.0, mode=m),
                                  lambda m: mixkit.CutMix(1.0, mode=m, minmax=(0.2, 0.7)),
                                  lambda m: mixkit.CutMix(1.0, mode=m, correct_lam=False),
                                  lambda m: mixkit.MixUp(1.0, mode=m, p=0.6, reformulate=True)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixer_labels_take_the_fast_path_and_equal_the_general_formula(make, mode, smoothing):
    k = 10
    mixer = make(mode)
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(9, 3, 8, 8, generator=g)
        y = torch.randint(0, k, (9,), generator=g)
        res = mixer.mix(x, generator=g)
        fast = res.__dict__.get("_pair") is not None
        labels = mixkit.soft_targets(y, res, k, smoothing)
        ref = _general_labels(one_hot(y, k, smoothing), res.index, res.weights)
        assert res.__dict__.get("_pair") is None  # read: the labels follow the fields from now on
        assert torch.equal(labels, ref)
        assert fast or not res.mixed.any()
        soft = torch.softmax(torch.randn(9, k, generator=g), 1)
        res2 = mixer.apply(x, mixer.sample(x, torch.Generator().manual_seed(seed)))
        assert torch.equal(mixkit.soft_targets(soft, res2, k, smoothing),
                           _general_labels(smooth(soft, smoothing), res2.index, res2.weights))


def test_forward_labels_equal_soft_targets_of_mix():
    k = 5
    for mixer in (mixkit.MixUp(1.0, num_classes=k), mixkit.CutMix(1.0, num_classes=k, smoothing=0.1)):
        x = torch.rand(6, 2, 7, 5)
        y = torch.randint(0, k, (6,))
        x1, t1 = mixer(x, y, generator=torch.Generator().manual_seed(4))
        res = mixer.mix(x, generator=torch.Generator().manual_seed(4))
        assert torch.equal(x1, res.inputs)
        assert torch.equal(t1, _general_labels(one_hot(y, k, mixer.smoothing), res.index, res.weights))


def test_lazy_result_fields_are_the_eager_ones():
    x = torch.rand(5, 3, 6, 6)
    for mixer in (mixkit.MixUp(1.0), mixkit.CutMix(1.0), mixkit.CutMix(1.0, mode="sample", p=0.5)):
        params = mixer.sample(x, torch.Generator().manual_seed(0))
        res = mixer.apply(x, params)
        assert res.batch_size == 5 and res.k == 2
        assert res.index.dtype == torch.int64 and res.index.shape == (5, 2)
        assert torch.equal(res.index, torch.stack([torch.arange(5), params.partner], 1))
        assert res.weights.dtype == torch.float32 and res.weights.shape == (5, 2)
        assert torch.equal(res.weights[:, 1], 1.0 - res.weights[:, 0])
        assert res.lam.dtype == torch.float32 and res.lam.shape == (5,)
        assert res.mixed.dtype == torch.bool and res.mixed.shape == (5,)
        if res.share_map is not None:
            mask = res.mask
            assert mask.shape == (5, 2, 6, 6)
            assert torch.allclose(mask[:, 0].flatten(1).mean(1), res.weights[:, 0])


def test_reading_then_changing_weights_changes_the_labels():
    x, y, k = torch.rand(4, 1, 5, 5), torch.tensor([0, 1, 2, 3]), 4
    res = mixkit.CutMix(1.0).mix(x, generator=torch.Generator().manual_seed(1))
    res.weights[:] = torch.tensor([1.0, 0.0])  # read, then changed in place
    assert torch.equal(mixkit.soft_targets(y, res, k), one_hot(y, k))
    res2 = mixkit.MixUp(1.0).mix(x, generator=torch.Generator().manual_seed(1))
    res2.index = torch.stack([torch.arange(4), torch.arange(4)], 1)  # replaced
    assert torch.equal(mixkit.soft_targets(y, res2, k), one_hot(y, k))


def test_fresh_result_pickles_and_compares():
    x = torch.rand(4, 3, 6, 6)
    res = mixkit.CutMix(1.0).mix(x, generator=torch.Generator().manual_seed(0))
    back = pickle.loads(pickle.dumps(res))
    assert torch.equal(back.index, res.index) and torch.equal(back.weights, res.weights)
    assert torch.equal(back.share_map, res.share_map) and torch.equal(back.lam, res.lam)
    other = mixkit.CutMix(1.0).mix(x, generator=torch.Generator().manual_seed(0))
    assert repr(other) == repr(res)
    manual = MixResult(inputs=res.inputs, index=res.index, weights=res.weights)
    assert manual.batch_size == 4 and manual.k == 2 and manual.mask is None


@pytest.mark.parametrize("sizes", [(1,), (7,), (32,), (4, 4), (5, 9), (32, 32), (224, 224), (3, 4, 5), (16, 16, 16)])
@pytest.mark.parametrize("minmax", [None, (0.2, 0.8), (0.0, 1.0)])
def test_scalar_box_equals_the_tensor_box(sizes, minmax):
    lams = torch.cat([torch.tensor([0.0, 1e-7, 0.25, 0.5, 0.75, 1.0 - 1e-7, 1.0]),
                      torch.rand(300, generator=torch.Generator().manual_seed(5))]).float()
    for ratio in (1.0, 0.5):
        for i, lam in enumerate(lams):
            g1, g2 = torch.Generator().manual_seed(i), torch.Generator().manual_seed(i)
            lo_i, hi_i = box.sample_box_ints(sizes, lam.item(), g1, minmax, ratio)
            lo, hi = box.sample_boxes(sizes, lam.view(1), g2, minmax, ratio)
            assert (lo_i, hi_i) == (lo[0].tolist(), hi[0].tolist()), (lam.item(), ratio)
            assert torch.equal(g1.get_state(), g2.get_state())  # the same draws
            assert box.outside_share_ints(lo_i, hi_i, sizes) == box.outside_share(lo, hi, sizes).item()


@pytest.mark.parametrize("sizes", [(7,), (13, 32), (16, 16, 16), (9, 40, 33)])
def test_scalar_box_lengths_over_many_lambdas(sizes):
    """The square / cube root of the scalar path against torch's float64 pow, lambda by lambda."""
    lams = torch.rand(4000, generator=torch.Generator().manual_seed(6)).float()
    ref = [box.cut_lengths(sizes, lam.view(1))[0].tolist() for lam in lams]
    for lam, row in zip(lams.tolist(), ref):
        g = torch.Generator().manual_seed(0)
        u = torch.rand(1, len(sizes), generator=torch.Generator().manual_seed(0))[0].tolist()
        lo, hi = box.sample_box_ints(sizes, lam, g)
        # unclip: the centre is known from the draw, so the box's own lengths show through the clipping
        centre = [min(int(ui * s), s - 1) for ui, s in zip(u, sizes)]
        for c, n, a, z, s in zip(centre, row, lo, hi, sizes):
            assert a == min(max(c - n // 2, 0), s) and z == min(max(c - n // 2 + n, 0), s)


def test_batch_cutmix_draw_stream_and_replay():
    x = torch.rand(6, 3, 10, 12)
    mixer = mixkit.CutMix(1.0)
    g = torch.Generator().manual_seed(7)
    params = mixer.sample(x, g)
    g2 = torch.Generator().manual_seed(7)  # the same draws through the tensor path, in the same order
    lam = mixkit.sampling.sample_lam(1.0, 1, g2)
    lo, hi = box.sample_boxes((10, 12), lam, g2)
    partner = mixkit.sampling.permutation(6, g2)
    assert torch.equal(params.lam, lam) and torch.equal(params.partner, partner)
    assert torch.equal(params.draws["box_lo"], lo) and torch.equal(params.draws["box_hi"], hi)
    assert params.draws["box_lo"].dtype == torch.int64 and params.draws["box_lo"].shape == (1, 2)
    assert torch.equal(g.get_state(), g2.get_state())
    res1, res2 = mixer.apply(x, params), mixer.apply(x, params)
    assert torch.equal(res1.inputs, res2.inputs) and torch.equal(res1.weights, res2.weights)
    assert torch.equal(res1.share_map, box.outside_mask(lo, hi, (10, 12)))
    assert torch.equal(res1.weights[:, 0], box.outside_share(lo, hi, (10, 12)).float().expand(6))
    inside = ~res1.share_map[0, 0]
    assert torch.equal(res1.inputs[:, :, inside], x[partner][:, :, inside])
    assert torch.equal(res1.inputs[:, :, ~inside], x[:, :, ~inside])


def test_label_range_check_keeps_its_message():
    mixer = mixkit.MixUp(1.0, num_classes=3)
    x = torch.rand(4, 3, 8, 8)
    for dtype in (torch.int64, torch.int32, torch.uint8, torch.int8):
        with pytest.raises(ValueError, match=r"must lie in \[0, 2\].*got range \[0, 3\]"):
            mixer(x, torch.tensor([0, 1, 2, 3], dtype=dtype))
    with pytest.raises(ValueError, match=r"got range \[-1, 2\]"):
        mixer(x, torch.tensor([0, 1, 2, -1]))


@pytest.mark.parametrize("a,b", [(0.2, 0.2), (0.4, 0.4), (2.0, 1.0), (0.5, 3.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_beta_draw_equals_the_tensor_ratio(a, b, dtype):
    g, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(500):
        got = mixkit.sampling.sample_beta(a, b, (1,), g, dtype)
        gam = torch._standard_gamma(torch.tensor([[a], [b]], dtype=torch.float64), generator=g2)
        s = gam[0] + gam[1]
        ref = torch.where(s > 0, gam[0] / s.clamp_min(1e-300), torch.full_like(s, 0.5)).to(dtype)
        assert got.dtype == dtype and got.shape == (1,) and torch.equal(got, ref)
    assert torch.equal(g.get_state(), g2.get_state())

"""PuzzleMix: masks, labels, transport, saliency side effects, adversarial noise, determinism."""
from __future__ import annotations

import copy

import pytest
import torch
from tvresnet import TVResNet as _TVResNet
import torch.nn.functional as F

from mixkit.bench.models import build_model
from mixkit.masks import transport
from mixkit.mixers.puzzlemix import PuzzleMix, block_saliency, puzzle_costs
from mixkit.saliency import input_gradient_saliency

MEAN = (0.49, 0.48, 0.45)
STD = (0.25, 0.24, 0.26)


# ------------------------------------------------------------------ a torchvision-style ResNet
def TVResNet():
    return _TVResNet(num_classes=10, width=8, blocks=2)


def _model(kind="resnet8", seed=0):
    torch.manual_seed(seed)
    return build_model("resnet8", 10, 3, 2) if kind == "resnet8" else TVResNet()


def _batch(b=6, size=(32, 32), seed=0):
    """Normalised inputs from smooth pixel-space images in [0, 1], and class ids."""
    g = torch.Generator().manual_seed(seed)
    z = F.interpolate(torch.randn(b, 3, 4, 4, generator=g), size=size, mode="bicubic", align_corners=False)
    pix = torch.sigmoid(1.5 * z + 0.3 * torch.randn(b, 3, *size, generator=g))
    x = (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.randint(0, 10, (b,), generator=g), pix


def _mixer(model, **kw):
    args = dict(block_num=4, mean=MEAN, std=STD, num_classes=10)
    args.update(kw)
    return PuzzleMix(model, **args)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ masks and labels
@pytest.mark.parametrize("kind", ["resnet8", "tv"])
@pytest.mark.parametrize("size", [(32, 32), (32, 48)])
def test_mask_levels_and_label_weights(kind, size):
    model = _model(kind)
    x, y, _ = _batch(6, size)
    # weak smoothness and no prior: the masks follow the saliency and are not constant
    res = _mixer(model, beta=0.05, eta=0.0, gamma=0.0).mix(x, y, generator=_gen(1))
    share = res.share_map
    assert share.shape == (6, 1, *size) and share.dtype == torch.float32
    assert set(share.unique().tolist()) <= {0.0, 0.5, 1.0}
    assert len(share.unique()) > 1
    assert torch.equal(res.weights[:, 0], share.mean((1, 2, 3)))
    assert torch.equal(res.weights.sum(1), torch.ones(6))
    assert res.inputs.shape == x.shape and res.inputs.dtype == x.dtype
    assert torch.equal(res.index[:, 0], torch.arange(6))
    # the mask is constant on each block of the 4x4 grid
    bh, bw = size[0] // 4, size[1] // 4
    blocks = share.view(6, 4, bh, 4, bw)
    assert (blocks == blocks[:, :, :1, :, :1]).all()


def test_soft_targets_and_probability_labels():
    model = _model()
    x, y, _ = _batch(5)
    mixer = _mixer(model)
    x_mix, y_soft = mixer(x, y, generator=_gen(2))
    res = mixer.mix(x, y, generator=_gen(2))
    assert torch.equal(x_mix, res.inputs)
    w = res.weights[:, 0]
    expect = w[:, None] * F.one_hot(y, 10) + (1 - w[:, None]) * F.one_hot(y[res.index[:, 1]], 10)
    assert torch.allclose(y_soft, expect.float())
    res_p = mixer.mix(x, F.one_hot(y, 10).float(), generator=_gen(2))
    assert torch.equal(res_p.inputs, res.inputs)


def test_mix_is_the_masked_blend_without_transport():
    model = _model()
    x, y, _ = _batch(6)
    res = _mixer(model, transport=False, beta=0.05, eta=0.0).mix(x, y, generator=_gen(3))
    m = res.share_map
    ref = m * x + (1 - m) * x[res.index[:, 1]]
    assert torch.allclose(res.inputs, ref, atol=1e-6)


def test_matches_official_costs_on_a_fixed_case():
    """Hand-checked numbers of the official mixup_graph terms on a 2x2 grid."""
    sal1 = torch.tensor([[[0.4, 0.1], [0.3, 0.2]]])
    sal2 = torch.tensor([[[0.1, 0.2], [0.3, 0.4]]])
    img1 = torch.zeros(1, 1, 8, 8)
    img2 = torch.ones(1, 1, 8, 8)
    u, wv, wh = puzzle_costs(sal1, sal2, img1, img2, torch.tensor([0.5]), 2, beta=1.2, gamma=0.5, eta=0.2,
                             neigh_size=4, n_labels=3)
    beta_ = 1.2 / 2 / 16
    # |anchor - partner| = 1 across every boundary, 0 within one source
    pw = beta_ * 0.5 * 1.0
    # edge weight (p12 + p21 - p11 - p22) / 2 + beta' = pw + beta'
    assert torch.allclose(wv, torch.full((1, 1, 2), pw + beta_))
    assert torch.allclose(wh, torch.full((1, 2, 1), pw + beta_))
    prior = -0.2 / 4 * torch.log(torch.tensor([0.25, 0.5, 0.25]) + 1e-8)
    # each block has one vertical and one horizontal boundary: unary += 2 * pw/2 for each source
    keep = sal2[0] + pw
    swap = sal1[0] + pw
    for i, m in enumerate((1.0, 0.5, 0.0)):
        assert torch.allclose(u[0, ..., i], m * keep + (1 - m) * swap + prior[i], atol=1e-7)


# ------------------------------------------------------------------ transport
def test_transport_is_a_permutation_of_blocks():
    g = _gen(4)
    for grid in ((2, 2), (4, 4), (8, 8), (4, 6)):
        mask = torch.randint(0, 3, (7, *grid), generator=g).float() / 2
        sal = torch.rand(7, *grid, generator=g) ** 4
        sal = sal / sal.sum((1, 2), keepdim=True)
        dest = transport.mask_transport(mask, sal, 0.8)
        n = grid[0] * grid[1]
        assert torch.equal(dest.sort(1).values, torch.arange(n).expand(7, n))
        x = torch.randn(7, 2, grid[0] * 3, grid[1] * 2, generator=g)
        moved = transport.permute_blocks(x, dest, grid)
        blocks = x.view(7, 2, grid[0], 3, grid[1], 2).permute(0, 2, 4, 1, 3, 5).reshape(7, n, -1)
        mblocks = moved.view(7, 2, grid[0], 3, grid[1], 2).permute(0, 2, 4, 1, 3, 5).reshape(7, n, -1)
        assert torch.equal(mblocks.gather(1, dest.unsqueeze(-1).expand_as(blocks)), blocks)


def test_transport_moves_salient_blocks_to_kept_positions():
    # 2x2 grid: the image is kept only at block 3; block 0 holds all the saliency
    mask = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    sal = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    # moving diagonally costs eps * 2 / (2 - 1)**2 and gains the saliency 1
    assert torch.equal(transport.mask_transport(mask, sal, eps=0.8), torch.arange(4).view(1, 4))
    dest = transport.mask_transport(mask, sal, eps=0.3)
    assert dest[0, 0].item() == 3 and dest[0, 3].item() == 0   # the displaced block fills the hole
    # everything kept and eps > 0: nothing moves
    dest = transport.mask_transport(torch.ones(1, 2, 2), torch.full((1, 2, 2), 0.25), eps=0.8)
    assert torch.equal(dest, torch.arange(4).view(1, 4))


def test_mixed_blocks_come_from_distinct_source_blocks():
    model = _model()
    x, y, _ = _batch(4, seed=5)
    res = _mixer(model, beta=0.05, eta=0.0, gamma=0.0, t_eps=0.05).mix(x, y, generator=_gen(6))
    partner = res.index[:, 1]
    out = res.inputs.view(4, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(4, 16, -1)
    a = x.view(4, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(4, 16, -1)
    m = res.share_map[:, 0, ::8, ::8].reshape(4, 16)
    moved = 0
    for i in range(4):
        for level, src in ((1.0, a[i]), (0.0, a[partner[i]])):   # anchor blocks, partner blocks
            used = []
            for j in range(16):
                if m[i, j] == level:
                    k = [k for k in range(16) if torch.allclose(out[i, j], src[k], atol=1e-6)]
                    assert len(k) == 1
                    used.append(k[0])
                    moved += k[0] != j
            assert len(used) == len(set(used))
    assert (m == 1).any() and (m == 0).any()
    assert moved > 0  # transport really moved something


# ------------------------------------------------------------------ saliency side effects
def _grads(model):
    return [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def test_clean_lam_zero_leaves_grads_and_modes_untouched():
    model = _model("tv")
    model.train()
    model.layer2.eval()                          # a frozen sub-module must stay frozen
    x, y, _ = _batch(4)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    grads = _grads(model)
    bn_stats = model.bn1.running_mean.clone()
    flags = [m.training for m in model.modules()]
    _mixer(model).mix(x, y, generator=_gen(7))
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert torch.equal(model.bn1.running_mean, bn_stats)   # eval-mode pass
    # no grad before: none after
    model.zero_grad(set_to_none=True)
    _mixer(model).mix(x, y, generator=_gen(7))
    assert all(p.grad is None for p in model.parameters())
    # a model in eval mode stays in eval mode
    model.eval()
    _mixer(model).mix(x, y, generator=_gen(7))
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("clean_lam", [1.0, 0.3])
def test_clean_lam_positive_accumulates_the_clean_gradient(clean_lam):
    model = _model()
    model.train()
    x, y, _ = _batch(4)
    ref = copy.deepcopy(model)
    loss = F.cross_entropy(ref(x), y) * (2 * clean_lam / 10)
    loss.backward()
    model.zero_grad(set_to_none=True)
    res = _mixer(model, clean_lam=clean_lam).mix(x, y, generator=_gen(8))
    assert res.params["clean_loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4)
    assert model.training and all(m.training for m in model.modules())
    # existing gradients are added to, not replaced
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        p.grad.fill_(1.0)
    _mixer(model, clean_lam=clean_lam).mix(x, y, generator=_gen(8))
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p.grad - 1.0, q.grad, atol=1e-5, rtol=1e-3)


def test_saliency_helper_contract():
    model = _model()
    x, y, _ = _batch(3)
    x0 = x.clone()
    with torch.no_grad():
        out = input_gradient_saliency(model, x, y, return_grad=True)
    assert out.saliency.shape == (3, 32, 32) and out.saliency.dtype == torch.float32
    assert out.clean_loss is None and x.grad is None and torch.equal(x, x0)
    assert torch.allclose(out.saliency, out.grad.square().mean(1).sqrt())
    alt = input_gradient_saliency(model, x, y, reduce="abs_sum").saliency
    assert torch.allclose(alt, out.grad.abs().sum(1))
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="reduce"):
        input_gradient_saliency(model, x, y, reduce="max")


# ------------------------------------------------------------------ adversarial option
def test_adversarial_noise_stays_within_eps_in_pixel_space():
    model = _model()
    x, y, pix = _batch(6)
    kw = dict(transport=False, beta=0.05, eta=0.0)
    clean = _mixer(model, **kw).mix(x, y, generator=_gen(9))
    res = _mixer(model, adv_p=1.0, adv_eps=10.0, **kw).mix(x, y, generator=_gen(9))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    out_pix = res.inputs * std + mean
    m, partner = res.share_map, res.index[:, 1]
    ref_pix = m * pix + (1 - m) * pix[partner]
    diff = (out_pix - ref_pix).abs()
    assert diff.max() <= 10 / 255 + 1e-5
    assert diff.max() > 1 / 255
    assert res.params["adv_anchor"].all() and res.params["adv_partner"].all()
    assert not clean.params["adv_anchor"].any()
    assert (out_pix >= -1e-5).all() and (out_pix <= 1 + 1e-5).all()


# ------------------------------------------------------------------ contract
def test_deterministic_under_a_seed_and_sample_mode():
    model = _model()
    x, y, _ = _batch(6)
    for mode in ("batch", "sample"):
        mixer = _mixer(model, block_num=None, mode=mode, t_size=4, adv_p=0.5)
        a = mixer.mix(x, y, generator=_gen(10))
        b = mixer.mix(x, y, generator=_gen(10))
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.weights, b.weights) and torch.equal(a.share_map, b.share_map)
    bn = mixer.mix(x, y, generator=_gen(11)).params["block_num"]
    assert bn.shape == (6,) and set(bn.tolist()) <= {2, 4, 8, 16}


def test_batch_mode_draws_one_grid_and_sample_mode_many():
    model = _model()
    x, y, _ = _batch(8)
    seen_batch, seen_sample = set(), set()
    for s in range(6):
        seen_batch.add(tuple(_mixer(model, block_num=None).mix(x, y, generator=_gen(s)).params["block_num"].unique().tolist()))
        seen_sample |= set(_mixer(model, block_num=None, mode="sample").mix(x, y, generator=_gen(s)).params["block_num"].tolist())
    assert all(len(t) == 1 for t in seen_batch)
    assert len(seen_sample) > 1


def test_batch_of_one_is_returned_unmixed():
    model = _model()
    x, y, _ = _batch(1)
    res = _mixer(model).mix(x, y, generator=_gen(12))
    assert res.inputs is x and torch.equal(res.weights, torch.ones(1, 1))


def test_sample_mode_p_keeps_unselected_rows_exactly():
    model = _model()
    x, y, _ = _batch(8)
    res = _mixer(model, mode="sample", p=0.5, adv_p=1.0).mix(x, y, generator=_gen(13))
    keep = ~res.mixed
    assert keep.any() and res.mixed.any()
    assert torch.equal(res.inputs[keep], x[keep])
    assert torch.equal(res.weights[keep, 0], torch.ones(int(keep.sum())))


def test_dtype_memory_format_and_inplace():
    model = _model().double()
    x, y, _ = _batch(4)
    x = x.double().contiguous(memory_format=torch.channels_last)
    res = _mixer(model).mix(x, y, generator=_gen(14))
    assert res.inputs.dtype == torch.float64 and res.weights.dtype == torch.float32
    assert res.inputs.is_contiguous(memory_format=torch.channels_last)
    x2 = x.clone()
    res2 = _mixer(model, inplace=True).mix(x2, y, generator=_gen(14))
    assert res2.inputs.data_ptr() == x2.data_ptr() and torch.equal(x2, res.inputs)
    x3 = x.clone()
    _mixer(model).mix(x3, y, generator=_gen(14))
    assert torch.equal(x3, x)


def test_model_is_not_a_submodule():
    model = _model()
    mixer = _mixer(model)
    assert mixer.model is model
    assert list(mixer.parameters()) == [] and len(mixer.state_dict()) == 0


def test_bad_arguments():
    model = _model()
    x, y, _ = _batch(4)
    with pytest.raises(ValueError, match="block_num"):
        _mixer(model, block_num=4).mix(torch.randn(4, 3, 30, 30), y)
    with pytest.raises(ValueError, match="spatial"):
        _mixer(model).mix(torch.randn(4, 3, 32), y)
    with pytest.raises(ValueError, match="labels"):
        _mixer(model).mix(x)
    with pytest.raises(ValueError, match="mean"):
        _mixer(model, mean=(0.5, 0.5)).mix(x, y)
    with pytest.raises(TypeError, match="model"):
        PuzzleMix(lambda t: t)
    for kw in (dict(n_labels=1), dict(adv_p=1.5), dict(t_size=0), dict(block_num=1), dict(beta=-1.0),
               dict(std=(0.0, 1, 1)), dict(solver="gco")):
        with pytest.raises(ValueError):
            _mixer(model, **kw)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_sample_then_apply_is_mix_and_replays(mode):
    model = _model()
    x, y, _ = _batch(6)
    mixer = _mixer(model, block_num=(2, 4), mode=mode, p=0.8, adv_p=0.5, t_size=4)
    for seed in range(3):
        res = mixer.mix(x, y, generator=_gen(seed))
        params = mixer.sample(x, _gen(seed), y=y)
        for r in (mixer.apply(x, params), mixer.apply(x, params)):  # no saliency pass, no draw
            assert torch.equal(r.inputs, res.inputs) and torch.equal(r.weights, res.weights)
            assert torch.equal(r.share_map, res.share_map) and torch.equal(r.mixed, res.mixed)
            assert torch.equal(r.params["adv_anchor"], res.params["adv_anchor"])


def test_block_saliency_normalises_and_guards_zero():
    sal = torch.rand(3, 8, 8)
    sal[1] = 0
    s = block_saliency(sal, (2, 2))
    assert torch.allclose(s.sum((1, 2)), torch.ones(3))
    assert torch.allclose(s[1], torch.full((4, 4), 1 / 16))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    model = _model()
    x, y, _ = _batch(6)
    mixer = _mixer(model, block_num=8)
    a = mixer.mix(x, y, generator=_gen(15))
    model.cuda()
    b = mixer.mix(x.cuda(), y.cuda(), generator=_gen(15))
    assert torch.equal(a.share_map, b.share_map.cpu())
    assert torch.allclose(a.inputs, b.inputs.cpu(), atol=1e-5)


# ------------------------------------------------------------------ against the official formulas
def _official_restated(sal, x, perm, lam, bn, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, n_labels=3):
    """A line-by-line re-statement of the official ``mixup_graph``/``graphcut_multi`` cost terms
    (square images), written independently of the library code."""
    b, _, _, width = x.shape
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    block = width // bn
    neigh = min(neigh_size, block)
    beta = beta / bn / 16
    pooled = F.avg_pool2d(sal.unsqueeze(1), block).squeeze(1)
    un1 = pooled / pooled.reshape(b, -1).sum(1).reshape(b, 1, 1)
    un2 = un1[perm]
    p1 = F.avg_pool2d(x * std + mean, neigh)
    p2 = p1[perm]
    k = block // neigh

    def penalty(a, c):
        dx = (a[:, :, :-1, :] - c[:, :, 1:, :])[:, :, k - 1::k, :]
        dy = (a[:, :, :, :-1] - c[:, :, :, 1:])[:, :, :, k - 1::k]
        return F.avg_pool2d(dx.abs().mean(1), (1, k)), F.avg_pool2d(dy.abs().mean(1), (k, 1))

    px = torch.zeros(b, 2, 2, bn - 1, bn)
    py = torch.zeros(b, 2, 2, bn, bn - 1)
    for s, a in ((0, p2), (1, p1)):
        for t, c in ((0, p2), (1, p1)):
            px[:, s, t], py[:, s, t] = penalty(a, c)
    px, py = beta * gamma * px, beta * gamma * py
    u1, u2 = un1.clone(), un2.clone()
    u2[:, :-1, :] += (px[:, 1, 0] + px[:, 1, 1]) / 2
    u1[:, :-1, :] += (px[:, 0, 1] + px[:, 0, 0]) / 2
    u2[:, 1:, :] += (px[:, 0, 1] + px[:, 1, 1]) / 2
    u1[:, 1:, :] += (px[:, 1, 0] + px[:, 0, 0]) / 2
    u2[:, :, :-1] += (py[:, 1, 0] + py[:, 1, 1]) / 2
    u1[:, :, :-1] += (py[:, 0, 1] + py[:, 0, 0]) / 2
    u2[:, :, 1:] += (py[:, 0, 1] + py[:, 1, 1]) / 2
    u1[:, :, 1:] += (py[:, 1, 0] + py[:, 0, 0]) / 2
    wx = (px[:, 1, 0] + px[:, 0, 1] - px[:, 1, 1] - px[:, 0, 0]) / 2 + beta
    wy = (py[:, 1, 0] + py[:, 0, 1] - py[:, 1, 1] - py[:, 0, 0]) / 2 + beta
    prior = eta * -torch.log(torch.tensor([lam ** 2, 2 * lam * (1 - lam), (1 - lam) ** 2]) + 1e-8) / bn ** 2
    # graphcut_multi(unary2, unary1, ...): label i with l_i = i / 2 costs (1 - l_i) * u2 + l_i * u1 + prior_i
    unary = torch.stack([(1 - l) * u2 + l * u1 + prior[i] for i, l in enumerate((0.0, 0.5, 1.0))], -1)
    return unary, wx, wy


@pytest.mark.parametrize("bn", [2, 4, 8, 16])
def test_costs_match_the_official_formulas(bn):
    g = _gen(20 + bn)
    x, _, _ = _batch(5, seed=bn)
    sal = torch.rand(5, 32, 32, generator=g) ** 3
    perm = torch.randperm(5, generator=g)
    lam = 0.37
    ref_u, ref_wv, ref_wh = _official_restated(sal, x, perm, lam, bn)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    pix = x * std + mean
    s1 = block_saliency(sal, (32 // bn, 32 // bn))
    u, wv, wh = puzzle_costs(s1, s1[perm], pix, pix[perm], torch.tensor(lam), bn)
    assert torch.allclose(u, ref_u, atol=1e-6, rtol=1e-5)
    assert torch.allclose(wv, ref_wv, atol=1e-7, rtol=1e-5)
    assert torch.allclose(wh, ref_wh, atol=1e-7, rtol=1e-5)


def test_two_labels_give_binary_masks():
    model = _model()
    x, y, _ = _batch(6)
    res = _mixer(model, n_labels=2, beta=0.05, eta=0.0).mix(x, y, generator=_gen(21))
    assert set(res.share_map.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(res.weights[:, 0], res.share_map.mean((1, 2, 3)))

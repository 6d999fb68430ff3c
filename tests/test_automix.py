"""AutoMix (mixkit.learned.AutoMix): a re-statement of the official forward on fixed weights, gradient
routing, the λ-margin fallback, the mask-area loss, the label rule and the Mix Block's structure."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from learned_nets import TinyNet, batch

from mixkit.learned import AutoMix, PixelMixBlock


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return AutoMix(TinyNet(), **kw)


def randomise(block):
    """Larger mix-block weights than the N(0, 0.01) init, so the masks are far from uniform."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


# ------------------------------------------------------------------------------ the official forward
def official_pixel_mix_block(feature, lam, index, w, lam_concat=False):
    """PixelMixBlock.forward, mask_mode "none_v_", re-stated from the official code with 2-D 1x1 convs.

    ``w``: dict of the block's (value, query) weights as (out, in) matrices and biases."""
    n, _, h, wd = feature.size()
    x_lam, x_lam_ = feature, feature[index, :]
    if lam_concat:
        lam_block = torch.zeros(n, 1, h, wd)
        lam_block[:] = lam
        x_lam = torch.cat([x_lam, lam_block], dim=1)
        x_lam_ = torch.cat([x_lam_, 1 - lam_block], dim=1)
    v_ = F.conv2d(x_lam_, w["vw"][..., None, None], w["vb"]).view(n, 1, -1).permute(0, 2, 1)
    inter = w["qw"].shape[0]
    q_x = F.conv2d(x_lam, w["qw"][..., None, None], w["qb"]).view(n, inter, -1).permute(0, 2, 1)
    k_x = F.conv2d(x_lam_, w["qw"][..., None, None], w["qb"]).view(n, inter, -1)
    pairwise_weight = torch.matmul(q_x.type(torch.float32), k_x.type(torch.float32))
    pairwise_weight /= q_x.shape[-1] ** 0.5
    pairwise_weight = pairwise_weight.softmax(dim=-1)
    mask_lam_ = torch.matmul(pairwise_weight, v_).view(n, 1, h, wd)
    mask_lam_ = F.interpolate(mask_lam_, scale_factor=4, mode="nearest")
    mask_lam_ = torch.sigmoid(mask_lam_)
    return torch.cat([1 - mask_lam_, mask_lam_], dim=1)


def official_forward_train(model, teacher, w, img, gt_label, lam, index_mb, index_bb, lam_margin=0.08,
                           mask_loss_weight=0.1, margin=0.1, lam_concat=False):
    """AutoMixup.forward_train + pixel_mixup + forward_q/forward_k (head weights 1), re-stated."""
    feats = {}
    hook = teacher.layer3.register_forward_hook(lambda m, a, o: feats.setdefault("f", o))
    with torch.no_grad():
        teacher(img)
    hook.remove()
    feature = feats["f"]
    lam_mb, lam_bb = lam
    mask_mb = official_pixel_mix_block(feature, lam_mb, index_mb, w, lam_concat)
    mask_bb = official_pixel_mix_block(feature, lam_bb, index_bb, w, lam_concat).clone().detach()
    if lam_margin >= lam_bb or lam_margin >= 1 - lam_bb:
        mask_bb[:, 0, :, :] = lam_bb
        mask_bb[:, 1, :, :] = 1 - lam_bb
    m = mask_mb[:, 1, :, :].unsqueeze(1)
    n, _, h, wd = m.size()
    m_mean = m.sum() / (n * h * wd)
    mask_loss = torch.clamp(torch.abs(1 - m_mean - lam_mb) - margin, min=0.).mean() * mask_loss_weight
    img_mix_mb = img * mask_mb[:, 0, :, :].unsqueeze(1) + img[index_mb, :] * mask_mb[:, 1, :, :].unsqueeze(1)
    img_mix_bb = img * mask_bb[:, 0, :, :].unsqueeze(1) + img[index_bb, :] * mask_bb[:, 1, :, :].unsqueeze(1)
    pred_mix_k = teacher(img_mix_mb)
    loss_mix_k = F.cross_entropy(pred_mix_k, gt_label) * lam_mb + F.cross_entropy(pred_mix_k, gt_label[index_mb]) * (1 - lam_mb)
    loss_one_q = F.cross_entropy(model(img), gt_label)
    pred_mix_q = model(img_mix_bb)
    loss_mix_q = F.cross_entropy(pred_mix_q, gt_label) * lam_bb + F.cross_entropy(pred_mix_q, gt_label[index_bb]) * (1 - lam_bb)
    return loss_mix_q + loss_one_q + loss_mix_k + mask_loss, dict(mix_q=loss_mix_q, one_q=loss_one_q, mix_k=loss_mix_k,
                                                                  mask=mask_loss / mask_loss_weight), mask_bb, mask_mb


@pytest.mark.parametrize("lam_margin,lam_concat", [(0.08, False), (0.5, False), (0.08, True)])
def test_matches_a_restatement_of_the_official_forward_on_fixed_weights(lam_margin, lam_concat):
    learner = make(lam_margin=lam_margin, lam_concat=lam_concat)
    randomise(learner.mix_block)
    model, teacher = copy.deepcopy(learner.model), copy.deepcopy(learner.teacher)
    mb = learner.mix_block
    w = {k: (v[..., 0] if v.dim() == 3 else v).detach().clone().requires_grad_() for k, v in
         (("vw", mb.value.conv.weight), ("vb", mb.value.conv.bias), ("qw", mb.query.conv.weight), ("qb", mb.query.conv.bias))}
    x, y = batch(b=8)
    out = learner(x, y, generator=torch.Generator().manual_seed(3))
    lam = (float(out.generated.params["lam"][0]), float(out.mixed.params["lam"][0]))
    ref, terms, mask_bb, mask_mb = official_forward_train(model, teacher, w, x, y, lam, out.generated.index[:, 1],
                                                          out.mixed.index[:, 1], lam_margin, lam_concat=lam_concat)
    assert out.fallback == (lam_margin >= lam[1] or lam_margin >= 1 - lam[1])
    torch.testing.assert_close(out.mixed.mask, mask_bb, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.generated.mask, mask_mb.detach(), rtol=0, atol=1e-6)
    for k, v in terms.items():
        torch.testing.assert_close(out.terms[k], v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, ref, rtol=1e-5, atol=1e-6)
    out.loss.backward()
    ref.backward()
    mine = dict(vw=mb.value.conv.weight.grad[..., 0], vb=mb.value.conv.bias.grad,
                qw=mb.query.conv.weight.grad[..., 0], qb=mb.query.conv.bias.grad)
    for k in w:
        torch.testing.assert_close(mine[k], w[k].grad, rtol=1e-4, atol=1e-7)
    for p, q in zip(learner.model.parameters(), model.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ gradient routing
def _grads(term, params):
    return torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)


def test_gradients_flow_only_where_the_official_code_sends_them():
    learner = make()
    randomise(learner.mix_block)
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(0))
    assert set(out.terms) == {"mix_q", "one_q", "mix_k", "mask"} and not out.fallback
    mb, model = list(learner.mix_block.parameters()), list(learner.model.parameters())
    for k in ("mix_q", "one_q"):  # the classifier's terms: nothing reaches the mix block (detached mask)
        assert all(g is None for g in _grads(out.terms[k], mb)), k
        assert any(g is not None and g.abs().sum() > 0 for g in _grads(out.terms[k], model)), k
    out.terms["mask"] = out.terms["mask"] + 0.2  # keep the clamp active for the check below
    for k in ("mix_k", "mask"):  # the mix block's terms: nothing reaches the classifier
        assert all(g is None for g in _grads(out.terms[k], model)), k
        assert all(g is not None for g in _grads(out.terms[k], mb)), k
    out.loss.backward()
    assert all(p.grad is None for p in learner.teacher.parameters())
    assert not out.mixed.mask.requires_grad and not out.mixed.inputs.requires_grad


def test_a_mix_block_step_on_its_loss_lowers_the_teachers_mixed_loss():
    learner = make()
    randomise(learner.mix_block)
    x, y = batch()

    def mix_k():
        learner.step = 0
        return learner(x, y, generator=torch.Generator().manual_seed(4)).terms
    terms = mix_k()
    grads = torch.autograd.grad(terms["mix_k"], list(learner.mix_block.parameters()))
    with torch.no_grad():
        for p, g in zip(learner.mix_block.parameters(), grads):
            p -= 0.5 * g
    assert mix_k()["mix_k"] < terms["mix_k"]


# ------------------------------------------------------------------------------ fallback, mask loss, labels
def test_lam_margin_fallback_to_plain_mixup():
    learner = make(lam_margin=0.08)
    randomise(learner.mix_block)
    x, _ = batch()
    g = torch.Generator().manual_seed(0)
    for lam, falls in ((0.08, True), (0.92, True), (0.05, True), (0.0801, False), (0.5, False)):
        res = learner.mix(x, lam=lam, generator=g)
        assert res.params["fallback"] is falls, lam
        const = torch.allclose(res.mask[:, 0], torch.full_like(res.mask[:, 0], lam))
        assert const is falls, lam
        if falls:
            j = res.index[:, 1]
            torch.testing.assert_close(res.inputs, lam * x + (1 - lam) * x[j], rtol=0, atol=1e-6)
            torch.testing.assert_close(res.weights, torch.tensor([[lam, 1 - lam]]).expand(8, 2), rtol=0, atol=1e-6)
    assert not learner.mix(x, lam=0.05, fallback=False, generator=g).params["fallback"]
    always = make(lam_margin=0.5)
    x, y = batch()
    out = always(x, y, generator=torch.Generator().manual_seed(1))
    lam_bb = float(out.mixed.params["lam"][0])
    assert out.fallback and torch.allclose(out.mixed.mask[:, 0], torch.full_like(out.mixed.mask[:, 0], lam_bb))
    assert not out.generated.params.get("fallback", False)  # the mix block still trains on its own mask


def test_mask_area_loss_is_the_margin_l1_on_the_partner_share():
    learner = make(mask_loss=0.1, mask_loss_margin=0.1)
    randomise(learner.mix_block)
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(2))
    lam_mb = float(out.generated.params["lam"][0])
    share = out.generated.mask[:, 1].mean()
    torch.testing.assert_close(out.terms["mask"], torch.clamp((1 - share - lam_mb).abs() - 0.1, min=0), rtol=1e-6, atol=1e-7)
    assert "mask" not in make(mask_loss=0.0)(x, y).terms


def test_label_rule_sampled_by_default_realised_as_an_option():
    x, y = batch()
    for label in ("sampled", "realised"):
        learner = make(label=label)
        randomise(learner.mix_block)
        out = learner(x, y, generator=torch.Generator().manual_seed(6))
        logits = out.logits["mixed"]
        j = out.mixed.index[:, 1]
        ce_a, ce_b = (F.cross_entropy(logits, t, reduction="none") for t in (y, y[j]))
        if label == "sampled":
            lam = float(out.mixed.params["lam"][0])
            expect = (lam * ce_a + (1 - lam) * ce_b).mean()
        else:
            w = out.mixed.weights
            expect = (w[:, 0] * ce_a + w[:, 1] * ce_b).mean()
            assert not torch.allclose(w[:, 0], w[:1, 0].expand(8))  # per-sample shares really differ
        torch.testing.assert_close(out.terms["mix_q"], expect, rtol=1e-5, atol=1e-6)


def test_zero_head_weight_skips_the_clean_pass():
    learner = make(head_weights={"head_one_q": 0})
    calls = []
    learner.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    x, y = batch()
    out = learner(x, y)
    assert "one_q" not in out.terms and "clean" not in out.logits and len(calls) == 1


# ------------------------------------------------------------------------------ the Mix Block
def test_mix_block_shares_query_and_key_unless_x_qk_concat():
    shared = PixelMixBlock(16)
    assert shared.key is None and shared.inter_channels == 8
    assert shared.query.conv.weight.std() < 0.02 and shared.value.conv.bias.abs().max() == 0  # N(0, 0.01), bias 0
    sep = PixelMixBlock(16, x_qk_concat=True)
    assert sep.key is not None and sep.query.conv.in_channels == 32
    f = torch.randn(4, 16, 4, 4)
    idx = torch.stack([torch.arange(4), torch.tensor([1, 2, 3, 0])], 1)
    for block in (shared, sep, PixelMixBlock(16, lam_concat=True)):
        m = block(f, idx, [0.3, 0.7], (16, 16), "nearest")
        assert m.shape == (4, 2, 16, 16) and torch.allclose(m.sum(1), torch.ones(4, 16, 16))
    with pytest.raises(ValueError, match="exclude"):
        PixelMixBlock(16, lam_concat=True, x_qk_concat=True)
    # lam_concat: the λ channel changes the mask
    lc = PixelMixBlock(16, lam_concat=True)
    randomise(lc)
    assert not torch.allclose(lc(f, idx, [0.1, 0.9], (16, 16), "nearest"), lc(f, idx, [0.9, 0.1], (16, 16), "nearest"))


def test_unsampling_mode_list_is_drawn_from_the_generator():
    learner = make(unsampling_mode=["nearest", "bilinear"])
    assert {learner._mode(torch.Generator().manual_seed(s)) for s in range(20)} == {"nearest", "bilinear"}
    assert make()._mode(None) == "nearest"  # a single mode: no draw

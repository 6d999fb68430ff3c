"""AdAutoMix (mixkit.learned.AdAutoMix): a re-statement of the official forward (N = 2 and N = 3) on fixed
weights, gradient routing, the adversarial/cooperative alternation, the cosine term's sign, the
λ-margin fallback, the λ distributions and the generator's structure."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from learned_nets import TinyNet, batch

from mixkit.learned import AdaptiveMask, AdAutoMix


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return AdAutoMix(TinyNet(), **kw)


def randomise(block, scale=0.5):
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


# ------------------------------------------------------------------------------ the official forward
def official_adaptive_mask(f_maps, lam, w, lam_concat=False):
    """AdaptiveMask.forward (normal_mix for N = 2, co_mix for N > 2), re-stated with 2-D 1x1 convs;
    conv_q / conv_k are mmcv ConvModules (conv + ReLU), conv_v a plain conv."""
    b, c, h, wd = f_maps[0].size()
    if lam_concat:
        lams = [lam, 1 - lam] if len(f_maps) == 2 else lam
        f_maps = [torch.cat([f, torch.full((b, 1, h, wd), float(lv))], 1) for f, lv in zip(f_maps, lams)]
    inter = w["qw"].shape[0]

    def conv(f, kind):
        return F.conv2d(f, w[kind + "w"][..., None, None], w[kind + "b"])

    q = [F.relu(conv(f, "q")).view(b, inter, -1).permute(0, 2, 1) for f in f_maps]
    k = [F.relu(conv(f, "k")).view(b, inter, -1) for f in f_maps]
    v = [conv(f, "v").view(b, 1, -1).permute(0, 2, 1) for f in f_maps]
    masks = []
    for i in range(len(f_maps)):
        co_attn = torch.zeros(b, h * wd, h * wd)
        for j in range(len(f_maps)):
            if i != j:
                co_attn += torch.matmul(q[i].type(torch.float32), k[j].type(torch.float32))
        co_attn /= inter ** 0.5
        co_attn = co_attn.softmax(dim=-1)
        masks.append(torch.matmul(co_attn, v[i]).view(b, 1, h, wd))
    mask = torch.cat(masks, dim=1)
    mask = F.interpolate(mask, scale_factor=4, mode="bilinear")
    return mask.softmax(dim=1)


def co_ce(pred, y, index, lam):
    return sum(F.cross_entropy(pred, y[index[i]]) * lam[i] for i in range(len(index)))


def official_forward_train(model, teacher, w, img, y, lam, index_mb, index_bb, it, lam_margin=0.03,
                           mixup_radio=0.5, beta_radio=0.3, lam_concat=False):
    """AdAutoMix.forward_train + co_mixup/mixup + forward_q/forward_k (head weights 1), re-stated.

    N = 2: ``lam = (lam_mb, lam_bb)``, indices are the partners; N > 2: ``lam`` is the normalised list and
    the indices are lists of N permutations."""
    feats = {}
    hook = teacher.layer3.register_forward_hook(lambda m, a, o: feats.setdefault("f", o))
    with torch.no_grad():
        teacher(img)
    hook.remove()
    feature = feats["f"]
    n = len(index_mb) if isinstance(index_mb, list) else 2
    if n > 2:
        mask_mb = official_adaptive_mask([feature[i] for i in index_mb], lam, w, lam_concat)
        mask_bb = official_adaptive_mask([feature[i] for i in index_bb], lam, w, lam_concat).clone().detach()
        if lam_margin >= lam[0] or lam_margin > 1 - lam[0]:
            for i in range(n):
                mask_bb[:, i, :, :] = lam[i]
        img_mix_mb = torch.zeros_like(img)
        img_mix_bb = torch.zeros_like(img)
        for i in range(n):
            img_mix_mb += img[index_mb[i], :] * mask_mb[:, i, :, :].unsqueeze(1)
            img_mix_bb += img[index_bb[i], :] * mask_bb[:, i, :, :].unsqueeze(1)
        loss_one = F.cross_entropy(model(img), y)
        co_mixed_x = img[index_bb[0]] * lam[0]
        for i in range(1, n):
            co_mixed_x += img[index_bb[i]] * lam[i]
        loss_co = co_ce(model(co_mixed_x), y, index_bb, lam)
        loss_re_q = loss_one * (1 - mixup_radio) + loss_co * mixup_radio
        loss_mix_q = co_ce(model(img_mix_bb), y, index_bb, lam)
        pred_mix_k = teacher(img_mix_mb)
        loss_mix_k = co_ce(pred_mix_k, y, index_mb, lam)
        cos = 0.0
        for i in range(n):
            cos += F.cosine_similarity(pred_mix_k, teacher(img[index_mb[i], :]), dim=-1) * lam[i]
        cos = cos.mean()
        lam_k = lam
    else:
        lam_mb, lam_bb = lam
        mask_mb = official_adaptive_mask([feature, feature[index_mb]], lam_mb, w, lam_concat)
        mask_bb = official_adaptive_mask([feature, feature[index_bb]], lam_bb, w, lam_concat).clone().detach()
        if lam_margin >= lam_bb or lam_margin >= 1 - lam_bb:
            mask_bb[:, 0, :, :] = lam_bb
            mask_bb[:, 1, :, :] = 1 - lam_bb
        img_mix_mb = img * mask_mb[:, 0:1] + img[index_mb] * mask_mb[:, 1:2]
        img_mix_bb = img * mask_bb[:, 0:1] + img[index_bb] * mask_bb[:, 1:2]
        loss_re_q = loss_one = F.cross_entropy(model(img), y)
        pq = model(img_mix_bb)
        loss_mix_q = F.cross_entropy(pq, y) * lam_bb + F.cross_entropy(pq, y[index_bb]) * (1 - lam_bb)
        pred_mix_k = teacher(img_mix_mb)
        loss_mix_k = F.cross_entropy(pred_mix_k, y) * lam_mb + F.cross_entropy(pred_mix_k, y[index_mb]) * (1 - lam_mb)
        cos = torch.mean(F.cosine_similarity(pred_mix_k, teacher(img), dim=-1) * lam_mb
                         + F.cosine_similarity(pred_mix_k, teacher(img[index_mb]), dim=-1) * (1 - lam_mb))
        lam_k = None
    gen = (-1.0) * beta_radio * loss_mix_k + (1 - beta_radio) * cos if it % 2 == 0 else loss_mix_k
    total = loss_mix_q + loss_re_q + gen
    return total, dict(one_q=loss_one, mix_q=loss_mix_q, mix_k=loss_mix_k, cos=cos, gen=gen), mask_bb, lam_k


def _weights(block):
    out = {}
    for kind, mod in (("q", block.conv_q), ("k", block.conv_k), ("v", block.conv_v)):
        out[kind + "w"] = mod.conv.weight[..., 0].detach().clone().requires_grad_()
        out[kind + "b"] = mod.conv.bias.detach().clone().requires_grad_()
    return out


@pytest.mark.parametrize("n,step,lam_margin,lam_concat", [(3, 0, 0.03, False), (3, 1, 0.03, False), (2, 0, 0.03, False),
                                                        (2, 1, 0.03, True), (3, 0, 0.99, True)])
def test_matches_a_restatement_of_the_official_forward_on_fixed_weights(n, step, lam_margin, lam_concat):
    learner = make(mix_samples=n, lam_margin=lam_margin, lam_concat=lam_concat)
    randomise(learner.mix_block)
    learner.step = step
    model, teacher = copy.deepcopy(learner.model), copy.deepcopy(learner.teacher)
    w = _weights(learner.mix_block)
    x, y = batch(b=8)
    out = learner(x, y, generator=torch.Generator().manual_seed(3))
    assert out.adversarial is (step % 2 == 0)
    if n > 2:
        lam = [float(v) for v in out.mixed.params["lam"]]
        assert lam == [float(v) for v in out.generated.params["lam"]]  # one draw for both branches
        idx_mb = [out.generated.index[:, i] for i in range(n)]
        idx_bb = [out.mixed.index[:, i] for i in range(n)]
    else:
        lam = (float(out.generated.params["lam"][0]), float(out.mixed.params["lam"][0]))
        idx_mb, idx_bb = out.generated.index[:, 1], out.mixed.index[:, 1]
    ref, terms, mask_bb, _ = official_forward_train(model, teacher, w, x, y, lam, idx_mb, idx_bb, step, lam_margin,
                                                    lam_concat=lam_concat)
    torch.testing.assert_close(out.mixed.mask, mask_bb, rtol=0, atol=1e-6)
    for k, v in terms.items():
        torch.testing.assert_close(out.terms[k], v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, ref, rtol=1e-5, atol=1e-6)
    out.loss.backward()
    ref.backward()
    blk = learner.mix_block
    for kind, mod in (("q", blk.conv_q), ("k", blk.conv_k), ("v", blk.conv_v)):
        torch.testing.assert_close(mod.conv.weight.grad[..., 0], w[kind + "w"].grad, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(mod.conv.bias.grad, w[kind + "b"].grad, rtol=1e-4, atol=1e-7)
    for p, q in zip(learner.model.parameters(), model.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ gradient routing
def _grads(term, params):
    return torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)


@pytest.mark.parametrize("step", [0, 1])
def test_gradients_flow_only_where_the_official_code_sends_them(step):
    learner = make()
    randomise(learner.mix_block)
    learner.step = step
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(0))
    assert set(out.terms) == {"one_q", "linear_q", "mix_q", "mix_k", "cos", "gen"} and not out.fallback
    gen, model = list(learner.mix_block.parameters()), list(learner.model.parameters())
    for k in ("one_q", "linear_q", "mix_q"):
        assert all(g is None for g in _grads(out.terms[k], gen)), k
        assert any(g is not None and g.abs().sum() > 0 for g in _grads(out.terms[k], model)), k
    for k in ("mix_k", "cos", "gen"):
        assert all(g is None for g in _grads(out.terms[k], model)), k
        assert all(g is not None and g.abs().sum() > 0 for g in _grads(out.terms[k], gen)), k
    out.loss.backward()
    assert all(p.grad is None for p in learner.teacher.parameters())
    assert not out.mixed.mask.requires_grad


# ------------------------------------------------------------------------------ adversarial / cooperative
def _generator_step(learner, x, y, step, lr, term="gen"):
    """Teacher's mixed loss and cosine term before and after one SGD step of the generator on ``term``,
    all on the same batch and draws (iteration ``step``)."""
    def run():
        learner.step = step
        return learner(x, y, generator=torch.Generator().manual_seed(9)).terms

    before = run()
    grads = torch.autograd.grad(before[term], list(learner.mix_block.parameters()))
    with torch.no_grad():
        for p, g in zip(learner.mix_block.parameters(), grads):
            p -= lr * g
    after = run()
    return {k: (before[k].item(), after[k].item()) for k in ("mix_k", "cos", "gen")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adversarial_step_raises_and_cooperative_step_lowers_the_teachers_mixed_loss(seed):
    x, y = batch(seed=seed)
    adv = make(seed, beta_radio=1.0)  # the adversarial objective's loss part alone: -ℓ_k
    randomise(adv.mix_block, 0.3)
    r = _generator_step(adv, x, y, step=0, lr=2.0)
    assert r["mix_k"][1] > r["mix_k"][0]
    coop = make(seed)
    randomise(coop.mix_block, 0.3)
    r = _generator_step(coop, x, y, step=1, lr=2.0)
    assert r["mix_k"][1] < r["mix_k"][0]
    full = make(seed)  # default beta: the generator's own objective goes down on an adversarial step
    randomise(full.mix_block, 0.3)
    r = _generator_step(full, x, y, step=0, lr=2.0)
    assert r["gen"][1] < r["gen"][0]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cosine_term_sign_on_adversarial_steps(sign):
    """cos_sign=+1 (official code): the minimised loss adds +(1-β) cos, so an adversarial step pushes the
    mixed logits away from the sources' (cos goes down); cos_sign=-1 pulls them together."""
    x, y = batch()
    learner = make(beta_radio=0.0, cos_sign=sign)
    randomise(learner.mix_block, 0.3)
    r = _generator_step(learner, x, y, step=0, lr=2.0)
    before, after = r["cos"]
    assert (after < before) if sign > 0 else (after > before)
    learner.step = 0
    out = learner(x, y, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(out.terms["gen"], sign * out.terms["cos"])


def test_alternation_follows_the_step_counter():
    learner = make(total_steps=10)
    x, y = batch()
    opt = torch.optim.SGD(learner.param_groups(0.01), momentum=0.9)
    seen = []
    for _ in range(4):
        out = learner(x, y)
        seen.append(out.adversarial)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        learner.update_teacher()
        if not out.adversarial:
            assert torch.equal(out.terms["gen"], out.terms["mix_k"])
    assert seen == [True, False, True, False]


# ------------------------------------------------------------------------------ fallback, λ
def test_lam_margin_fallback_checks_the_first_weight_only_as_the_official_code():
    learner = make(lam_margin=0.03)
    randomise(learner.mix_block)
    x, _ = batch()
    g = torch.Generator().manual_seed(0)
    cases = [([0.02, 0.49, 0.49], True), ([0.98, 0.01, 0.01], True), ([0.03, 0.5, 0.47], True),
             ([0.5, 0.02, 0.48], False), ([0.4, 0.3, 0.3], False)]
    for lam, falls in cases:
        res = learner.mix(x, lam=lam, generator=g)
        assert res.params["fallback"] is falls, lam
        if falls:
            expect = sum(v * x[res.index[:, i]] for i, v in enumerate(lam))
            torch.testing.assert_close(res.inputs, expect, rtol=0, atol=1e-6)
    two = make(mix_samples=2, lam_margin=0.03)
    assert two.mix(x, lam=0.975, generator=g).params["fallback"]  # N = 2: >= on both sides
    assert two.mix(x, lam=0.03, generator=g).params["fallback"]
    assert not two.mix(x, lam=0.5, generator=g).params["fallback"]
    with pytest.raises(ValueError, match="summing to 1"):
        learner.mix(x, lam=[0.5, 0.5])


@pytest.mark.parametrize("dist", ["normalized_beta", "dirichlet"])
def test_lam_distributions_sum_to_one_and_differ(dist):
    learner = make(mix_samples=4, lam_dist=dist)
    g = torch.Generator().manual_seed(0)
    ws = torch.tensor([learner._draw(8, torch.device("cpu"), g).w_bb for _ in range(400)])
    torch.testing.assert_close(ws.sum(1), torch.ones(400, dtype=ws.dtype), rtol=0, atol=1e-6)
    # a weight of Dirichlet(1, 1, 1, 1) has variance 3/80 = 0.0375; four normalised i.i.d. U(0, 1)
    # (Beta(1, 1)) draws are more even: about 0.0195 (20,000 draws)
    var = float(ws[:, 0].var())
    assert (var < 0.028) if dist == "normalized_beta" else (var > 0.030)


def test_mix_samples_two_uses_separate_draws_and_no_linear_term():
    learner = make(mix_samples=2)
    x, y = batch()
    out = learner(x, y, generator=torch.Generator().manual_seed(1))
    assert "linear_q" not in out.terms and out.mixed.index.shape == (8, 2)
    assert float(out.mixed.params["lam"][0]) != float(out.generated.params["lam"][0])
    four = make(mix_samples=4)(x, y)
    assert four.mixed.mask.shape == (8, 4, 16, 16) and "linear_q" in four.terms
    with pytest.raises(ValueError, match="mix_samples"):
        make(mix_samples=1)


# ------------------------------------------------------------------------------ the generator
def test_generator_structure_and_cross_attention():
    gen = AdaptiveMask(16)
    assert gen.conv_q.relu and gen.conv_k.relu and not gen.conv_v.relu and gen.inter_channels == 8
    assert gen.conv_q.conv.weight.std() < 0.02 and gen.conv_v.conv.bias.abs().max() == 0
    randomise(gen)
    f = torch.randn(4, 16, 4, 4)
    idx = torch.stack([torch.arange(4), torch.tensor([1, 2, 3, 0]), torch.tensor([2, 3, 0, 1])], 1)
    m = gen(f, idx, [0.2, 0.3, 0.5], (16, 16), "bilinear")
    assert m.shape == (4, 3, 16, 16) and torch.allclose(m.sum(1), torch.ones(4, 16, 16)) and (m > 0).all()
    # source i's map attends to the others: changing source 2's features changes source 0's logits
    f2 = f.clone()
    f2[2] += 1.0
    lg, lg2 = gen.logits(f, idx, [0.2, 0.3, 0.5]), gen.logits(f2, idx, [0.2, 0.3, 0.5])
    assert not torch.allclose(lg[0, 0], lg2[0, 0])

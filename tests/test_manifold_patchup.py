"""Manifold Mixup and PatchUp: exact against explicit references, official PatchUp targets/loss on a
hand-built case, block-mask statistics, and the model-aware contract (no leftover hooks, train/eval
state untouched, gradients, determinism, odd batches, B=1)."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixkit.bench.models import build_model
from mixkit.hooks import INPUT, LayerNotReachedError, UnknownLayerError, capture
from mixkit.losses import bce_on_softmax
from mixkit.mixers.manifold import ManifoldMixup
from mixkit.mixers.mixup import MixUp
from mixkit.mixers.patchup import PatchUp, adjusted_gamma, block_keep_mask, patchup_loss
from mixkit.targets import one_hot, soft_targets

from test_hooks import no_hooks
from tvresnet import TVResNet

K = 5


def gen(seed):
    return torch.Generator().manual_seed(seed)


def small(name):
    torch.manual_seed(0)
    if name == "cnn1d":
        return build_model("cnn1d", K, 2, 1, width=0.25), torch.randn(7, 2, 20)
    if name == "tvresnet":
        return TVResNet(K), torch.randn(7, 3, 32, 32)
    width = 0.125 if name == "preactresnet18" else 0.5
    return build_model(name, K, 3, 2, width=width), torch.randn(7, 3, 8, 8)


MODELS = ["resnet8", "resnet20", "preactresnet18", "cnn1d", "tvresnet"]


def manual_forward(m, x, layer, mixfn):
    """Explicit forward (no hooks) with ``mixfn`` applied after ``layer``."""
    if layer == INPUT:
        x = mixfn(x)
    if isinstance(m, TVResNet):
        out = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        names = ("layer1", "layer2", "layer3", "layer4")
    else:
        out = m._stem(x)
        names = m.hidden_layers
    for n in names:
        out = getattr(m, n)(out)
        if n == layer:
            out = mixfn(out)
    if isinstance(m, TVResNet):
        return m.fc(torch.flatten(m.avgpool(out), 1))
    out = m._head(out)
    pooled = F.adaptive_avg_pool2d(out, 1) if out.dim() == 4 else F.adaptive_avg_pool1d(out, 1)
    return m.linear(torch.flatten(pooled, 1))


def explicit_mix(lam, perm):
    def f(h):
        w = lam.view(-1, *([1] * (h.dim() - 1)))
        return w * h + (1 - w) * h[perm]
    return f


def grads_everywhere(m):
    return all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in m.parameters())


# ================================================================================ Manifold Mixup
def test_defaults_and_model_not_registered():
    m, _ = small("preactresnet18")
    mm = ManifoldMixup(m, num_classes=K)
    assert mm.alpha == 2.0 and mm.mode == "batch" and mm.runs_model
    assert mm.layers == (INPUT, "layer1", "layer2")  # official k in {0, 1, 2}
    assert list(mm.parameters()) == [] and mm.state_dict() == {}
    mm.model = m  # re-assigning keeps it a plain attribute
    assert list(mm.parameters()) == []
    assert ManifoldMixup(m, layers="all").layers == (INPUT, "layer1", "layer2", "layer3", "layer4")
    with pytest.raises(UnknownLayerError, match="layer2"):
        ManifoldMixup(m, layers=["input", "layr2"])
    with pytest.raises(TypeError, match="nn.Module"):
        ManifoldMixup(lambda x: x)


@pytest.mark.parametrize("mode,p", [("batch", 1.0), ("sample", 1.0), ("sample", 0.6)])
def test_input_layer_equals_mixup(mode, p):
    m, x = small("resnet8")
    mm = ManifoldMixup(m, layers=["input"], alpha=0.7, mode=mode, p=p, num_classes=K)
    mu = MixUp(alpha=0.7, mode=mode, p=p, num_classes=K)
    for seed in range(3):
        res = mm.mix(x, generator=gen(seed))
        ref = mu.mix(x, generator=gen(seed))
        assert torch.equal(res.index, ref.index) and torch.equal(res.weights, ref.weights)
        assert torch.equal(res.outputs, m(ref.inputs))
        assert res.params["layer"] == INPUT and res.inputs is x


def test_input_draw_among_several_layers_matches_mixup():
    # draw order lambda, partner, layer: whenever the input is drawn the result is MixUp's
    m, x = small("resnet8")
    mm = ManifoldMixup(m, alpha=2.0, num_classes=K)
    mu = MixUp(alpha=2.0, num_classes=K)
    hits = 0
    for seed in range(12):
        res = mm.mix(x, generator=gen(seed))
        if res.params["layer"] == INPUT:
            hits += 1
            assert torch.equal(res.outputs, m(mu.mix(x, generator=gen(seed)).inputs))
    assert hits > 0


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_hidden_mixing_equals_explicit_reference(name, mode):
    m, x = small(name)
    mm = ManifoldMixup(m, layers="all", mode=mode, num_classes=K)
    seen = set()
    for seed in range(6):
        res = mm.mix(x, generator=gen(seed))
        layer = res.params["layer"]
        seen.add(layer)
        lam, perm = res.weights[:, 0], res.index[:, 1]
        assert torch.equal(res.weights[:, 1], 1 - lam)
        if mode == "batch":
            assert bool((lam == lam[0]).all())
        ref = manual_forward(m, x, layer, explicit_mix(lam, perm))
        torch.testing.assert_close(res.outputs, ref, rtol=1e-4, atol=1e-4)
        # and it is not the unmixed forward
        assert not torch.allclose(res.outputs, m(x), atol=1e-4)
    assert len(seen) >= 2
    if mode == "sample":
        assert len(set(res.lam.tolist())) > 1
    assert no_hooks(m)


def test_next_layer_sees_the_mixed_state_b15():
    m, x = small("resnet8")
    m.eval()
    mm = ManifoldMixup(m, layers=["layer1"], num_classes=K)
    with capture(m, "layer1", "layer2") as plain:
        m(x)
    with capture(m, "layer2") as acts:
        res = mm.mix(x, generator=gen(1))
    mixed_h = explicit_mix(res.weights[:, 0], res.index[:, 1])(plain["layer1"])
    torch.testing.assert_close(acts["layer2"], m.layer2(mixed_h), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(acts["layer2"], plain["layer2"], atol=1e-3)


def test_soft_targets_are_mixed_labels():
    m, x = small("resnet8")
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    mm = ManifoldMixup(m, num_classes=K)
    res = mm.mix(x, y, generator=gen(0))
    lam, perm = res.weights[:, :1], res.index[:, 1]
    Y = one_hot(y, K)
    torch.testing.assert_close(soft_targets(y, res, K), lam * Y + (1 - lam) * Y[perm])
    logits, y_soft = mm(x, y, generator=gen(0))
    torch.testing.assert_close(logits, res.outputs)
    torch.testing.assert_close(y_soft, soft_targets(y, res, K))


def test_lambda_is_beta_and_layers_uniform():
    stats = pytest.importorskip("scipy.stats")
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(8, 2))
    mm = ManifoldMixup(net, layers=["input", "0", "1"], alpha=2.0)
    g = gen(0)
    x = torch.randn(3, 1, 2, 2)
    lams, layers = [], []
    for _ in range(400):
        res = mm.mix(x, generator=g)
        lams.append(float(res.lam[0]))
        layers.append(res.params["layer"])
    assert stats.kstest(lams, stats.beta(2.0, 2.0).cdf).pvalue > 1e-3
    counts = [layers.count(n) for n in ("input", "0", "1")]
    assert stats.chisquare(counts).pvalue > 1e-3, counts


@pytest.mark.parametrize("cls", ["manifold", "patchup"])
def test_contract_state_grads_determinism(cls):
    m, x = small("preactresnet18")
    y = torch.randint(0, K, (x.shape[0],))
    mixer = (ManifoldMixup(m, num_classes=K) if cls == "manifold"
             else PatchUp(m, num_classes=K, block_size=3))
    for train in (True, False):
        m.train(train)
        before = {n: mod.training for n, mod in m.named_modules()}
        r1 = mixer.mix(x, y, generator=gen(4))
        assert {n: mod.training for n, mod in m.named_modules()} == before
        assert no_hooks(m)
    m.train()
    r1 = mixer.mix(x, y, generator=gen(4))
    r2 = mixer.mix(x, y, generator=gen(4))
    assert torch.equal(r1.outputs, r2.outputs) and torch.equal(r1.weights, r2.weights)
    assert r1.params["layer"] == r2.params["layer"]
    outs = {tuple(mixer.mix(x, y, generator=gen(s)).weights[0].tolist()) for s in range(4)}
    assert len(outs) > 1
    # gradients reach every parameter, whatever the layer
    for seed in range(3):
        m.zero_grad()
        res = mixer.mix(x, y, generator=gen(seed))
        loss = (bce_on_softmax(res.outputs, soft_targets(y, res, K)) if cls == "manifold"
                else patchup_loss(res.outputs, y, res, K))
        loss.backward()
        assert grads_everywhere(m), res.params["layer"]
    assert x.grad is None
    assert no_hooks(m)


@pytest.mark.parametrize("kind", ["manifold", "hard", "soft", "input"])
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_sample_then_apply_is_mix_and_replays(kind, mode):
    # the masks of PatchUp are drawn in the first apply (their shape is the feature map's) and kept
    m, x = small("resnet8")
    m.eval()
    if kind == "manifold":
        mixer = ManifoldMixup(m, layers="all", mode=mode, p=0.7)
    else:
        layers = ["input"] if kind == "input" else ["layer1", "layer2"]
        mixer = PatchUp(m, layers=layers, patchup_type="soft" if kind == "soft" else "hard", block_size=3,
                        mode=mode, p=0.7)
    for seed in range(4):
        res = mixer.mix(x, generator=gen(seed))
        g = gen(seed)
        params = mixer.sample(x, g)
        first = mixer.apply(x, params)
        state = g.get_state()
        again = mixer.apply(x, params, forward=lambda t: m(t))
        assert torch.equal(g.get_state(), state)  # the replay drew nothing
        for r in (first, again):
            assert torch.equal(r.outputs, res.outputs) and torch.equal(r.weights, res.weights)
            assert torch.equal(r.index, res.index) and torch.equal(r.mixed, res.mixed) and torch.equal(r.lam, res.lam)
            assert r.params.keys() == res.params.keys()
    assert no_hooks(m)


@pytest.mark.parametrize("cls", [ManifoldMixup, PatchUp])
@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_odd_batches_and_b1(cls, b):
    m, x = small("resnet8")
    m.eval()
    x = x[:b]
    mixer = cls(m, num_classes=K, **({"block_size": 3} if cls is PatchUp else {}))
    res = mixer.mix(x, generator=gen(0))
    assert res.outputs.shape == (b, K) and res.weights.shape[0] == b
    torch.testing.assert_close(res.weights.sum(1), torch.ones(b))
    if b == 1:
        assert res.k == 1 and not bool(res.mixed.any()) and res.params["layer"] is None
        assert torch.equal(res.outputs, m(x))
    assert no_hooks(m)


@pytest.mark.parametrize("cls", [ManifoldMixup, PatchUp])
def test_p_zero_and_forward_wrapper(cls):
    m, x = small("resnet8")
    m.eval()
    mixer = cls(m, p=0.0, num_classes=K)
    res = mixer.mix(x, generator=gen(0))
    assert res.params["layer"] is None and torch.equal(res.outputs, m(x))
    calls = []

    def fwd(inp):
        calls.append(inp.shape)
        return m(inp)

    mixer = cls(m, layers=["layer1"], num_classes=K)
    res = mixer.mix(x, generator=gen(0), forward=fwd)
    assert len(calls) == 1 and res.params["layer"] == "layer1"
    ref = mixer.mix(x, generator=gen(0))
    assert torch.equal(res.outputs, ref.outputs)
    # a forward that bypasses the hook (model.forward skips the input pre-hook) is an error, never a no-op
    with pytest.raises(LayerNotReachedError):
        cls(m, layers=["input"]).mix(x, generator=gen(0), forward=m.forward)
    assert no_hooks(m)


def test_hidden_state_must_be_batch_first():
    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Conv1d(2, 4, 1)
            self.t = nn.Identity()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            h = self.t(self.enc(x).permute(2, 0, 1))  # (L, B, C)
            return self.fc(h.mean(0))

    mm = ManifoldMixup(SeqFirst(), layers=["t"])
    with pytest.raises(ValueError, match="batch size"):
        mm.mix(torch.randn(3, 2, 5), generator=gen(0))


def test_low_precision_hidden_state():
    net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.Flatten(), nn.Linear(12, 2)).to(torch.bfloat16)
    x = torch.randn(4, 2, 4, dtype=torch.bfloat16)
    res = ManifoldMixup(net, layers=["0"]).mix(x, generator=gen(0))
    assert res.outputs.dtype == torch.bfloat16 and res.weights.dtype == torch.float32


# ================================================================================ PatchUp: masks
def test_adjusted_gamma_formula():
    # official square formula
    assert adjusted_gamma(0.9, 7, (32, 32)) == pytest.approx(0.9 * 32 ** 2 / (7 ** 2 * 26 ** 2))
    # per-dim for non-square / 1-D maps, block clipped to the map
    assert adjusted_gamma(0.5, 3, (6, 10)) == pytest.approx(0.5 * 60 / (3 * 4 * 3 * 8))
    assert adjusted_gamma(0.5, 5, (40,)) == pytest.approx(0.5 * 40 / (5 * 36))
    assert adjusted_gamma(0.9, 7, (4, 4)) == pytest.approx(0.9 * 16 / (4 * 1 * 4 * 1))
    assert adjusted_gamma(1.0, 7, (2, 2)) == 1.0  # clipped


def _expected_changed(sizes, bs, g):
    r = bs // 2
    grids = torch.meshgrid(*[torch.arange(s) for s in sizes], indexing="ij")
    n = torch.ones(tuple(sizes))
    for p, s in zip(grids, sizes):
        n = n * (torch.clamp(p, max=r) + torch.clamp(s - 1 - p, max=r) + 1)
    return float((1 - (1 - g) ** n).mean())


@pytest.mark.parametrize("sizes,bs,gamma", [((16, 16), 7, 0.9), ((40,), 5, 0.5), ((6, 10), 3, 0.5), ((4, 5, 6), 3, 0.6)])
def test_block_mask_fraction(sizes, bs, gamma):
    g_adj = adjusted_gamma(gamma, bs, sizes)
    keep = block_keep_mask((300, 4) + sizes, g_adj, bs, gen(0))
    assert keep.dtype == torch.bool and keep.shape == (300, 4) + sizes
    changed = 1 - keep.float().mean()
    expected = _expected_changed(sizes, bs, g_adj)
    assert abs(float(changed) - expected) < 0.015, (float(changed), expected)
    assert 0.05 < expected < 1.0


def test_block_mask_1d_holes_are_segments():
    bs, L = 5, 40
    keep = block_keep_mask((60, 1, L), 0.03, bs, gen(1))[:, 0]
    runs = 0
    for row in keep:
        holes = (~row).int().tolist()
        i = 0
        while i < L:
            if holes[i]:
                j = i
                while j < L and holes[j]:
                    j += 1
                touches = i == 0 or j == L
                assert j - i >= (bs // 2 + 1 if touches else bs)
                runs += 1
                i = j
            else:
                i += 1
    assert runs > 10


# ================================================================================ PatchUp: hand-built case
class Tiny(nn.Module):
    def __init__(self, c=2, s=4, k=3):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 1)
        self.feat = nn.Identity()
        self.post = nn.Identity()
        self.fc = nn.Linear(c * s * s, k)

    def forward(self, x):
        return self.fc(self.post(self.feat(self.conv(x))).flatten(1))


class FixedPatchUp(PatchUp):
    """PatchUp with a fixed keep mask (to check the targets by hand)."""

    fixed: torch.Tensor

    def sample_keep(self, shape, gamma_adj, generator, device):
        return self.fixed.to(device).expand(tuple(shape)).clone()


def _fixed_keep():
    keep = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    keep[0, 0, 0:2, 0:3] = False  # 6 features
    keep[0, 1, 3, 3] = False  # 1 feature -> 7 of 32 changed
    return keep


@pytest.mark.parametrize("ptype", ["hard", "soft"])
def test_official_targets_and_loss_by_hand(ptype):
    torch.manual_seed(0)
    net = Tiny()
    mixer = FixedPatchUp(net, layers=["feat"], patchup_type=ptype, num_classes=3)
    mixer.fixed = _fixed_keep()
    x = torch.randn(4, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 1])
    res = mixer.mix(x, y, generator=gen(3))
    perm = res.index[:, 1].tolist()
    lam = float(res.params["lam_b"][0]) if ptype == "soft" else None
    # by hand: 7 of the 2*4*4 = 32 features were altered
    changed, unchanged = 7 / 32, 25 / 32
    expected_rw, expected_b = torch.zeros(4, 3), torch.zeros(4, 3)
    for i in range(4):
        a, b = y[i].item(), y[perm[i]].item()
        if ptype == "hard":
            expected_rw[i, a] += unchanged
            expected_rw[i, b] += changed
            expected_b[i, b] += 1.0
        else:
            expected_rw[i, a] += unchanged + lam * changed
            expected_rw[i, b] += (1 - lam) * changed
            expected_b[i, a] += lam
            expected_b[i, b] += 1 - lam
    torch.testing.assert_close(soft_targets(y, res, 3), expected_rw)
    torch.testing.assert_close(res.params["unchanged"], torch.full((4,), unchanged))
    if ptype == "soft":
        assert 0 < lam < 1 and float(res.lam[0]) == lam
    # the official loss, written out with nn.BCELoss on the softmax
    bce = nn.BCELoss()
    prob = torch.softmax(res.outputs, 1)
    target_a = F.one_hot(y, 3).float()
    official = bce(prob, target_a) * unchanged + bce(prob, expected_b) * (1 - unchanged) + bce(prob, expected_rw)
    torch.testing.assert_close(patchup_loss(res.outputs, y, res, 3), official)
    torch.testing.assert_close(mixer.loss(res.outputs, y, res), official)
    # loss_alpha precedence: paper reading vs official main.py
    off = 2.0 * bce(prob, target_a) * unchanged + bce(prob, expected_b) * (1 - unchanged) + 0.5 * bce(prob, expected_rw)
    paper = 2.0 * (bce(prob, target_a) * unchanged + bce(prob, expected_b) * (1 - unchanged)) + 0.5 * bce(prob, expected_rw)
    torch.testing.assert_close(patchup_loss(res.outputs, y, res, 3, loss_alpha=2.0, loss_beta=0.5,
                                            official_precedence=True), off)
    torch.testing.assert_close(patchup_loss(res.outputs, y, res, 3, loss_alpha=2.0, loss_beta=0.5), paper)
    assert not torch.allclose(off, paper)


@pytest.mark.parametrize("ptype", ["hard", "soft"])
def test_features_inside_blocks(ptype):
    torch.manual_seed(0)
    net = Tiny()
    mixer = FixedPatchUp(net, layers=["feat"], patchup_type=ptype)
    mixer.fixed = _fixed_keep()
    x = torch.randn(5, 1, 4, 4)
    with capture(net, "feat") as before:  # registered first: sees the unmixed output
        with capture(net, "post") as after:
            res = mixer.mix(x, generator=gen(0))
    h, mixed = before["feat"], after["post"]
    perm = res.index[:, 1]
    keep = _fixed_keep().expand_as(h)
    assert torch.equal(mixed[keep], h[keep])  # outside the blocks: exactly the sample itself
    if ptype == "hard":
        assert torch.equal(mixed[~keep], h[perm][~keep])  # inside: exactly the partner
        torch.testing.assert_close(res.weights[:, 0], torch.full((5,), 25 / 32))
    else:
        lam = float(res.lam[0])
        torch.testing.assert_close(mixed[~keep], (lam * h + (1 - lam) * h[perm])[~keep])
        torch.testing.assert_close(res.weights[:, 0], torch.full((5,), 25 / 32 + lam * 7 / 32))
    assert not torch.equal(mixed, h)


def test_hard_and_soft_share_draws_and_shares_are_realised():
    m, x = small("resnet8")
    for mode in ("batch", "sample"):
        hard = PatchUp(m, layers=["layer1"], patchup_type="hard", block_size=3, mode=mode).mix(x, generator=gen(2))
        soft = PatchUp(m, layers=["layer1"], patchup_type="soft", block_size=3, mode=mode).mix(x, generator=gen(2))
        assert torch.equal(hard.params["keep"], soft.params["keep"]) and torch.equal(hard.index, soft.index)
        keep = hard.params["keep"].float()
        u = keep.mean((1, 2, 3))
        torch.testing.assert_close(hard.weights[:, 0], u.expand(x.shape[0]))
        torch.testing.assert_close(hard.params["unchanged"], u.expand(x.shape[0]))
        lam = soft.lam.view(-1, 1, 1, 1)
        torch.testing.assert_close(soft.weights[:, 0], (keep + (1 - keep) * lam).mean((1, 2, 3)).expand(x.shape[0]))
        torch.testing.assert_close(soft.weights.sum(1), torch.ones(x.shape[0]))
        n = 1 if mode == "batch" else x.shape[0]
        assert hard.params["keep"].shape == (n, 8, 8, 8)
        if mode == "sample":
            assert len(set(hard.weights[:, 0].tolist())) > 1


def test_gamma_adjusted_per_call_from_actual_size():
    m, x = small("resnet8")  # layer1: 8x8, layer2: 4x4
    mixer = PatchUp(m, layers=["layer1", "layer2"], block_size=3, gamma=0.7)
    seen = {}
    for seed in range(10):
        res = mixer.mix(x, generator=gen(seed))
        seen[res.params["layer"]] = res.params["gamma_adj"]
    assert seen["layer1"] == pytest.approx(adjusted_gamma(0.7, 3, (8, 8)))
    assert seen["layer2"] == pytest.approx(adjusted_gamma(0.7, 3, (4, 4)))
    assert seen["layer1"] != seen["layer2"]


def test_hard_patchup_on_bench_model_exact():
    m, x = small("resnet8")
    m.eval()
    mixer = PatchUp(m, layers=["layer1"], patchup_type="hard", block_size=3, gamma=0.8, mode="sample")
    got = {}

    def pre(mod, args):
        got["in"] = args[0]

    with capture(m, "layer1") as before:
        r = m.layer2.register_forward_pre_hook(pre)
        try:
            res = mixer.mix(x, generator=gen(5))
        finally:
            r.remove()
    h, mixed, keep = before["layer1"], got["in"], res.params["keep"]
    perm = res.index[:, 1]
    assert torch.equal(mixed, torch.where(keep, h, h[perm]))
    assert bool((~keep).any()) and no_hooks(m)


def test_input_layer_is_cutmix():
    m, x = small("resnet8")
    m.eval()
    for mode in ("batch", "sample"):
        mixer = PatchUp(m, layers=["input"], mode=mode)
        with capture(m, "conv1") as acts:
            res = mixer.mix(x, generator=gen(1))
        keep = res.params["keep"]
        assert res.params["patchup_type"] == "cutmix" and keep.shape[1] == 1
        perm = res.index[:, 1]
        torch.testing.assert_close(acts["conv1"], m.conv1(torch.where(keep, x, x[perm])))
        area = keep.float().mean((1, 2, 3)).expand(x.shape[0])
        torch.testing.assert_close(res.weights[:, 0], area)
        torch.testing.assert_close(res.params["unchanged"], area)
        assert torch.equal(res.params["lam_b"], torch.zeros(x.shape[0]))
        assert res.mask is not None and res.mask.shape == (x.shape[0], 2, 8, 8)


@pytest.mark.parametrize("name", MODELS)
def test_patchup_runs_on_models(name):
    m, x = small(name)
    y = torch.randint(0, K, (x.shape[0],))
    mixer = PatchUp(m, layers="all", block_size=3, num_classes=K)
    seen = set()
    for seed in range(5):
        res = mixer.mix(x, y, generator=gen(seed))
        seen.add(res.params["layer"])
        assert res.outputs.shape == (x.shape[0], K)
        assert torch.isfinite(patchup_loss(res.outputs, y, res, K))
    assert len(seen) >= 2 and no_hooks(m)


def test_sample_mode_p_leaves_rows_unmixed():
    m, x = small("resnet8")
    x = torch.cat([x, x])
    y = torch.randint(0, K, (x.shape[0],))
    mixer = PatchUp(m, layers=["layer1"], mode="sample", p=0.5, gamma=0.9, block_size=3, num_classes=K)
    res = mixer.mix(x, y, generator=gen(0))
    off = ~res.mixed
    assert bool(off.any()) and bool(res.mixed.any())
    assert bool(res.params["keep"][off].all())
    assert torch.equal(res.weights[off, 0], torch.ones(int(off.sum())))
    # unmixed rows get the plain loss
    per = patchup_loss(res.outputs, y, res, K, reduction="none")
    torch.testing.assert_close(per[off], bce_on_softmax(res.outputs, one_hot(y, K), reduction="none")[off])


def test_patchup_argument_errors():
    m, x = small("resnet8")
    with pytest.raises(ValueError, match="odd"):
        PatchUp(m, block_size=4)
    with pytest.raises(ValueError, match="patchup_type"):
        PatchUp(m, patchup_type="medium")
    with pytest.raises(ValueError, match="mode"):
        PatchUp(m, mode="hard")
    with pytest.raises(ValueError, match="gamma"):
        PatchUp(m, gamma=1.5)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="feature map"):
        PatchUp(flat, layers=["1"]).mix(x, generator=gen(0))
    with pytest.raises(ValueError, match="criterion"):
        res = PatchUp(m, layers=["layer1"], num_classes=K).mix(x, generator=gen(0))
        patchup_loss(res.outputs, torch.zeros(x.shape[0], dtype=torch.long), res, K, criterion="focal")


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [ManifoldMixup, PatchUp])
def test_cuda_matches_cpu_draws(cls):
    m, x = small("resnet8")
    m.eval()
    y = torch.randint(0, K, (x.shape[0],))
    kw = {"block_size": 3} if cls is PatchUp else {}
    for mode in ("batch", "sample"):
        cpu = cls(m, layers="all", mode=mode, num_classes=K, **kw).mix(x, y, generator=gen(7))
        mc = m.to("cuda")
        gpu = cls(mc, layers="all", mode=mode, num_classes=K, **kw).mix(x.cuda(), y.cuda(), generator=gen(7))
        assert gpu.outputs.device.type == "cuda" and gpu.params["layer"] == cpu.params["layer"]
        assert torch.equal(gpu.index.cpu(), cpu.index)
        torch.testing.assert_close(gpu.weights.cpu(), cpu.weights)
        torch.testing.assert_close(gpu.outputs.cpu(), cpu.outputs, rtol=1e-3, atol=1e-3)
        g = torch.Generator(device="cuda").manual_seed(1)
        res = cls(mc, layers="all", mode=mode, num_classes=K, **kw).mix(x.cuda(), y.cuda(), generator=g)
        assert torch.isfinite(res.outputs).all() and res.weights.device.type == "cuda"
        assert no_hooks(mc)
        m = mc.cpu()

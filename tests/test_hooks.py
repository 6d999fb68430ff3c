"""Forward-hook machinery for hidden-layer mixing (mixkit.hooks): the hook really replaces the output
(B15), is removed on every exit path, and never fails silently."""
from __future__ import annotations

from collections import namedtuple

import pytest
import torch
from tvresnet import TVResNet as _TVResNet
from torch import nn

from mixkit.bench.models import build_model
from mixkit.hooks import (INPUT, LayerNotReachedError, LayerReusedError, UnknownLayerError, capture, choose_layer,
                          default_layers, get_module, mix_at, resolve_layers, stage_names)


# ----------------------------------------------------------------------------------------- models
def TVResNet(num_classes=5, w=4):
    """The shared torchvision-style ResNet, narrow, with a module that is never called."""
    return _TVResNet(num_classes, width=w, unused=True)


Pair = namedtuple("Pair", "feat aux")


class TupleNet(nn.Module):
    """A model whose middle module returns a tuple (feature, aux)."""

    class Mid(nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.lin = nn.Linear(4, 4)

        def forward(self, h):
            aux = torch.ones(2)
            if self.kind == "tuple":
                return ("tag", self.lin(h), aux)
            if self.kind == "list":
                return [self.lin(h), aux]
            if self.kind == "namedtuple":
                return Pair(self.lin(h), aux)
            return {"feat": self.lin(h)}

    def __init__(self, kind="tuple"):
        super().__init__()
        self.pre = nn.Linear(3, 4)
        self.mid = TupleNet.Mid(kind)
        self.post = nn.Linear(4, 2)
        self.kind = kind
        self.seen_aux = None

    def forward(self, x):
        out = self.mid(self.pre(x))
        if self.kind == "tuple":
            _, feat, aux = out
        elif self.kind == "dict":
            feat, aux = out["feat"], None
        else:
            feat, aux = out[0], out[1]
        self.seen_aux = aux
        return self.post(feat)


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def swap_fn(h):
    return 0.25 * h + 0.75 * h.flip(0)


# ----------------------------------------------------------------------------------------- names
def test_unknown_name_lists_close_matches():
    m = build_model("resnet8", 10)
    with pytest.raises(UnknownLayerError, match="layer1") as e:
        get_module(m, "layr1")
    assert isinstance(e.value, ValueError)
    with pytest.raises(UnknownLayerError):
        with mix_at(m, "layer9", swap_fn):
            m(torch.randn(2, 3, 8, 8))
    assert no_hooks(m)
    with pytest.raises(UnknownLayerError, match="whole model"):
        get_module(m, "")


def test_stage_names_and_defaults():
    assert stage_names(build_model("preactresnet18", 10, width=0.125)) == ("layer1", "layer2", "layer3", "layer4")
    assert stage_names(build_model("cnn1d", 10, 1, 1)) == ("layer1", "layer2", "layer3")
    tv = TVResNet()
    assert not hasattr(tv, "hidden_layers")
    assert stage_names(tv) == ("layer1", "layer2", "layer3", "layer4")
    assert default_layers(tv) == (INPUT, "layer1", "layer2")
    assert resolve_layers(tv, None) == (INPUT, "layer1", "layer2")
    assert resolve_layers(tv, "all") == (INPUT, "layer1", "layer2", "layer3", "layer4")
    assert resolve_layers(tv, [0, 2, "layer4.0.conv1"]) == (INPUT, "layer2", "layer4.0.conv1")
    # container naming (timm ViT / ConvNeXt style)
    vit = nn.Module()
    vit.blocks = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert stage_names(vit) == ("blocks.0", "blocks.1")
    with pytest.raises(ValueError, match="layers=\\["):
        stage_names(nn.Sequential(nn.Linear(2, 2)))


def test_resolve_layers_errors():
    m = build_model("resnet8", 10)
    with pytest.raises(ValueError, match="out of range"):
        resolve_layers(m, [0, 4])
    with pytest.raises(ValueError, match="duplicates"):
        resolve_layers(m, ["layer1", 1])
    with pytest.raises(ValueError, match="at least one"):
        resolve_layers(m, [])
    with pytest.raises(TypeError):
        resolve_layers(m, [True])
    with pytest.raises(TypeError):
        resolve_layers(m, [1.5])
    with pytest.raises(TypeError):
        mix_at(m, None, swap_fn).__enter__()
    with pytest.raises(TypeError):
        mix_at(m, "layer1", "not callable").__enter__()


def test_choose_layer_uniform_and_deterministic():
    names = ("a", "b", "c")
    g = torch.Generator().manual_seed(0)
    picks = [choose_layer(names, g) for _ in range(600)]
    counts = [picks.count(n) for n in names]
    assert all(150 < c < 250 for c in counts), counts
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert [choose_layer(names, g1) for _ in range(20)] == [choose_layer(names, g2) for _ in range(20)]
    # a single layer consumes no randomness
    g = torch.Generator().manual_seed(3)
    state = g.get_state().clone()
    assert choose_layer(("x",), g) == "x"
    assert torch.equal(g.get_state(), state)


# ----------------------------------------------------------------------------------------- replacement (B15)
@pytest.mark.parametrize("layer,nxt", [("layer1", "layer2"), ("layer2", "layer3")])
def test_hidden_state_really_changes(layer, nxt):
    torch.manual_seed(0)
    m = build_model("resnet8", 10).eval()
    x = torch.randn(4, 3, 8, 8)
    with capture(m, layer, nxt) as plain:
        ref = m(x)
    calls = []

    def fn(h):
        calls.append(h.shape)
        return swap_fn(h)

    with capture(m, layer) as before, mix_at(m, layer, fn) as handle, capture(m, nxt) as after:
        out = m(x)
    assert handle.called and handle.replaced and handle.calls == 1 and len(calls) == 1
    assert handle.shape == tuple(plain[layer].shape) and handle.name == layer
    # the hook saw the true hidden state, and the next layer consumed the mixed one
    torch.testing.assert_close(before[layer], plain[layer])
    expected_next = get_module(m, nxt)(swap_fn(plain[layer]))
    torch.testing.assert_close(after[nxt], expected_next)
    assert not torch.allclose(after[nxt], plain[nxt], atol=1e-3)
    assert not torch.allclose(out, ref, atol=1e-4)
    assert no_hooks(m)


def test_input_mixing_equals_model_on_mixed_input():
    torch.manual_seed(0)
    m = build_model("resnet8", 10).eval()
    x = torch.randn(5, 3, 8, 8)
    with mix_at(m, INPUT, swap_fn) as h:
        out = m(x)
    assert h.replaced and h.module is m
    torch.testing.assert_close(out, m(swap_fn(x)))
    assert no_hooks(m)

    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, *, inp):
            return self.lin(inp)

    k = KW()
    z = torch.randn(4, 3)
    with mix_at(k, 0, swap_fn):
        out = k(inp=z)
    torch.testing.assert_close(out, k.lin(swap_fn(z)))


def test_wrapper_forward_reaches_the_hooks():
    m = build_model("resnet8", 10).eval()
    wrapper = nn.Sequential(m)  # stands in for DistributedDataParallel(model)
    x = torch.randn(3, 3, 8, 8)
    with mix_at(m, "layer1", swap_fn) as h:
        out = wrapper(x)
    assert h.replaced
    with mix_at(m, "layer1", swap_fn):
        ref = m(x)
    torch.testing.assert_close(out, ref)


# ----------------------------------------------------------------------------------------- cleanup
def test_hook_removed_after_normal_exit():
    m = TVResNet()
    with mix_at(m, "layer2", swap_fn):
        assert get_module(m, "layer2")._forward_hooks
        m(torch.randn(2, 3, 32, 32))
    assert no_hooks(m)
    with mix_at(m, INPUT, swap_fn):
        assert m._forward_pre_hooks
        m(torch.randn(2, 3, 32, 32))
    assert no_hooks(m)


def test_hook_removed_when_forward_raises():
    m = TVResNet()

    def bad(h):
        raise RuntimeError("boom inside the mixing fn")

    with pytest.raises(RuntimeError, match="boom"):
        with mix_at(m, "layer1", bad):
            m(torch.randn(2, 3, 32, 32))
    assert no_hooks(m)

    # an error later in the forward (wrong input channels for layer-independent reasons)
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            self.a(x)
            raise ValueError("forward failed after the hooked layer")

    b = Boom()
    with pytest.raises(ValueError, match="forward failed"):
        with mix_at(b, "a", swap_fn):
            b(torch.randn(2, 3))
    assert no_hooks(b)
    # an error in the with-body after the forward
    with pytest.raises(KeyError):
        with mix_at(m, "layer1", swap_fn):
            m(torch.randn(2, 3, 32, 32))
            raise KeyError("after")
    assert no_hooks(m)


# ----------------------------------------------------------------------------------------- never silent
def test_module_never_reached_raises():
    m = TVResNet()
    with pytest.raises(LayerNotReachedError, match="unused"):
        with mix_at(m, "unused", swap_fn):
            m(torch.randn(2, 3, 32, 32))
    assert no_hooks(m)
    # model.forward(x) bypasses hooks: the input was not mixed, and that is an error
    with pytest.raises(LayerNotReachedError, match="forward"):
        with mix_at(m, INPUT, swap_fn):
            m.forward(torch.randn(2, 3, 32, 32))
    # nothing run at all
    with pytest.raises(LayerNotReachedError):
        with mix_at(m, "layer1", swap_fn):
            pass
    assert no_hooks(m)


def test_reused_module_is_refused_or_mixed_once():
    m = TVResNet().eval()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(LayerReusedError, match="2 times"):
        with mix_at(m, "layer1.0.relu", swap_fn):
            m(x)
    assert no_hooks(m)
    n = []
    with mix_at(m, "layer1.0.relu", lambda h: n.append(1) or swap_fn(h), allow_reuse=True) as h:
        m(x)
    assert h.calls == 2 and len(n) == 1 and h.replaced


def test_each_forward_in_the_block_is_mixed_once():
    m = build_model("resnet8", 10).eval()
    x1, x2 = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    for layer in ("layer1", INPUT):
        n = []
        with mix_at(m, layer, lambda h: n.append(1) or swap_fn(h)) as h:
            o1, o2 = m(x1), m(x2)
        assert h.calls == 2 and len(n) == 2
        for xi, oi in ((x1, o1), (x2, o2)):
            with mix_at(m, layer, swap_fn):
                torch.testing.assert_close(oi, m(xi))
    assert no_hooks(m)


def test_fn_must_return_same_shape_tensor():
    m = build_model("resnet8", 10)
    with pytest.raises(ValueError, match="shape"):
        with mix_at(m, "layer1", lambda h: h[:1]):
            m(torch.randn(2, 3, 8, 8))
    with pytest.raises(TypeError, match="tensor"):
        with mix_at(m, "layer1", lambda h: None):
            m(torch.randn(2, 3, 8, 8))
    assert no_hooks(m)


# ----------------------------------------------------------------------------------------- tuple outputs
@pytest.mark.parametrize("kind", ["tuple", "list", "namedtuple"])
def test_tuple_output_first_tensor_is_mixed(kind):
    torch.manual_seed(0)
    net = TupleNet(kind)
    x = torch.randn(4, 3)
    with mix_at(net, "mid", swap_fn) as h:
        out = net(x)
    assert h.replaced and h.shape == (4, 4)
    torch.testing.assert_close(out, net.post(swap_fn(net.mid.lin(net.pre(x)))))
    assert torch.equal(net.seen_aux, torch.ones(2))  # other elements untouched


def test_dict_output_is_refused():
    net = TupleNet("dict")
    with pytest.raises(TypeError, match="dict"):
        with mix_at(net, "mid", swap_fn):
            net(torch.randn(2, 3))
    assert no_hooks(net)


def test_random_layer_choice_and_capture():
    m = build_model("resnet8", 10).eval()
    x = torch.randn(3, 3, 8, 8)
    seen = set()
    for s in range(12):
        with mix_at(m, [0, 1, 2], swap_fn, generator=torch.Generator().manual_seed(s)) as h:
            m(x)
        seen.add(h.name)
    assert seen == {INPUT, "layer1", "layer2"}
    with capture(m, "input", "layer3") as acts:
        m(x)
    assert acts["input"] is x and acts["layer3"].shape[0] == 3
    assert no_hooks(m)


def test_capture_before_and_after_a_mix_at_hook_on_the_same_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    x = torch.randn(2, 3, 5, 5)
    clean = net[0](x)
    layer = "0"
    with capture(net, layer, prepend=True, first=True, copy=True) as before, capture(net, layer) as after:
        with mix_at(net, layer, lambda h: h * 0 + 7.0):
            net(x)
        net(x + 1)  # a later call without the mixing: first=True keeps the first one, the default the last
    assert torch.equal(before[layer], clean)                      # ran before the mixing hook: unmixed
    assert not before[layer].requires_grad                         # copy=True: a detached copy
    assert torch.equal(after[layer], net[0](x + 1))                # the default keeps the last call
    with mix_at(net, layer, lambda h: h * 0 + 7.0), capture(net, layer) as mixed:
        net(x)
    assert torch.equal(mixed[layer], torch.full_like(clean, 7.0))  # registered after mix_at: sees the mix
    with capture(net, "input", prepend=True) as inp:
        net(x)
    assert inp["input"] is x

"""Tests for mixkit.bench.models: shapes on small inputs, exact parameter counts, hooks, registry."""
from __future__ import annotations

import pytest
import torch

from mixkit.bench import models as M

IMAGE_MODELS = ["preactresnet18", "resnet18", "resnet8", "resnet20"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28), (2, 1, 8, 8)])
def test_image_model_forward_shapes(name, shape):
    # width 0.25 keeps the ResNet-18s cheap; the architecture (strides, stem, pooling) is the same
    width = 0.25 if name.endswith("18") else 1
    model = M.build_model(name, num_classes=7, in_channels=shape[1], spatial_dims=2, width=width)
    out = model(torch.rand(*shape))
    assert out.shape == (2, 7) and out.dtype == torch.float32 and torch.isfinite(out).all()
    model.eval()
    assert model(torch.rand(1, *shape[1:])).shape == (1, 7)


@pytest.mark.parametrize("name", ["preactresnet18", "resnet18"])
def test_full_width_resnet18_forward_cifar(name):
    model = M.build_model(name, 10, 3, 2)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("length", [40, 17, 1])
def test_cnn1d_forward(length):
    model = M.build_model("cnn1d", num_classes=10, in_channels=1, spatial_dims=1)
    assert model(torch.rand(2, 1, length)).shape == (2, 10)
    assert M.CNN1d(5, in_channels=3, width=8)(torch.rand(2, 3, 40)).shape == (2, 5)


def test_parameter_counts_match_published_architectures():
    # Kuang Liu / MixUp / PuzzleMix PreActResNet18 (no final BN-ReLU)
    assert M.count_parameters(M.PreActResNet18(10, 3)) == 11_171_146
    assert M.count_parameters(M.PreActResNet18(10, 3, final_bn=True)) == 11_171_146 + 1024
    # CIFAR ResNet-18 (post-activation, projection shortcuts with BN)
    assert M.count_parameters(M.ResNet18(10, 3)) == 11_173_962
    # He et al. CIFAR ResNets, option-A (parameter-free) shortcuts as in the paper: "0.27M"
    assert M.count_parameters(M.resnet20(10, 3)) == 269_722
    assert M.count_parameters(M.resnet8(10, 3)) == 75_290
    # ... and with option-B projections (1x1 conv + BN on the two down-sampling blocks)
    assert M.count_parameters(M.resnet20(10, 3, shortcut="B")) == 272_474
    assert M.count_parameters(M.resnet8(10, 3, shortcut="B")) == 78_042
    assert M.count_parameters(M.CifarResNet(56, 10, 3)) == 853_018  # paper: "0.85M"
    # the registry builds the same networks
    assert M.count_parameters(M.build_model("preactresnet18", 10, 3, 2)) == 11_171_146
    assert M.count_parameters(M.build_model("resnet20", 10, 3, 2)) == 269_722
    assert M.count_parameters(M.build_model("cnn1d", 10, 1, 1)) == 35_754


def test_width_multiplier_scales_channels():
    m = M.build_model("resnet20", 10, 3, 2, width=2)
    assert m.layer3[0].conv1.out_channels == 128 and m.feature_dim == 128
    assert M.build_model("cnn1d", 10, 1, 1, width=0.5).feature_dim == 64
    with pytest.raises(ValueError):
        M.build_model("resnet8", 10, 3, 2, width=0)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("preactresnet18", [(2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 2, 2), (2, 128, 1, 1)]),
        ("resnet18", [(2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 2, 2), (2, 128, 1, 1)]),
        ("resnet20", [(2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 2, 2)]),
    ],
)
def test_hidden_layers_are_hookable(name, expected):
    model = M.build_model(name, 10, 1, 2, width=0.25 if name.endswith("18") else 1)
    assert list(model.hidden_layers) == [f"layer{i + 1}" for i in range(len(expected))]
    named = dict(model.named_modules())
    seen = []
    handles = [named[n].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
               for n in model.hidden_layers]
    model(torch.rand(2, 1, 8, 8))
    for h in handles:
        h.remove()
    assert seen == expected


def test_hook_can_replace_hidden_output():
    """A forward hook returning a new tensor changes the logits (what Manifold Mixup relies on)."""
    model = M.build_model("cnn1d", 10, 1, 1).eval()
    x = torch.rand(3, 1, 40)
    ref = model(x)
    h = model.layer2.register_forward_hook(lambda m, i, o: o.flip(0))
    out = model(x)
    h.remove()
    assert not torch.allclose(out, ref)
    assert torch.allclose(model(x), ref)


def test_forward_features_feed_linear():
    model = M.build_model("resnet8", 4, 3, 2).eval()
    x = torch.rand(2, 3, 16, 16)
    f = model.forward_features(x)
    assert f.shape == (2, model.feature_dim)
    assert torch.allclose(model.linear(f), model(x))


def test_backward_reaches_first_layer():
    model = M.build_model("resnet8", 10, 1, 2)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    model(x).logsumexp(1).sum().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_registry_errors_and_aliases():
    with pytest.raises(ValueError) as ei:
        M.build_model("vgg16", 10, 3, 2)
    for n in M.MODEL_NAMES:
        assert n in str(ei.value)
    with pytest.raises(ValueError, match="spatial_dims=1"):
        M.build_model("resnet20", 10, 1, spatial_dims=1)
    with pytest.raises(ValueError, match="cnn1d"):
        M.build_model("preactresnet18", 10, 1, spatial_dims=1)  # suggests the 1-D model
    with pytest.raises(ValueError, match="spatial_dims=2"):
        M.build_model("cnn1d", 10, 1, spatial_dims=2)
    with pytest.raises(ValueError, match="6n"):
        M.CifarResNet(depth=21)
    with pytest.raises(ValueError, match="shortcut"):
        M.resnet20(shortcut="C")
    assert isinstance(M.build_model("PreAct_ResNet18", 10, 3, 2, width=0.25), M.PreActResNet18)
    assert isinstance(M.build_model("resnet-20", 10, 3, 2), M.CifarResNet)

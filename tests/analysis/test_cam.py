"""CAM / Grad-CAM and the CAM share on a mix's sources, on tiny models with known answers."""
import pytest
import torch
from torch import nn

import mixkit
from mixkit.analysis.cam import cam, cam_share_on_sources, grad_cam, show_cams
from mixkit.hooks import UnknownLayerError
from mixkit.result import MixResult


class GapNet(nn.Module):
    """features -> global average pool -> linear: the architecture CAM is defined for."""

    def __init__(self, dims=2, k=4, classes=3):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.conv = conv(1, k, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(k, classes)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(2).mean(2))


class LeftHalf(nn.Module):
    """Zero the right half of a feature map (a layer that sees only the left half of the image)."""

    def forward(self, a):
        return a * (torch.arange(a.shape[-1]) < a.shape[-1] // 2).to(a)


class Identity(nn.Module):
    """The feature map is the input itself (a 1x1 conv of weight 1), optionally only its left half."""

    def __init__(self, left_only=False, w=(1.0, -1.0)):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        self.left = LeftHalf() if left_only else nn.Identity()
        self.fc = nn.Linear(1, len(w), bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.tensor(w).view(-1, 1))

    def forward(self, x):
        a = self.left(self.conv(x))
        return self.fc(a.flatten(2).mean(2))


def _feats(model, x):
    return model.act(model.conv(x))


def test_cam_is_the_weighted_sum_of_the_feature_maps():
    torch.manual_seed(0)
    model = GapNet()
    x = torch.randn(3, 1, 6, 7)
    c = torch.tensor([0, 2, 1])
    got = cam(model, x, c, "act", relu=False, normalize=False)
    a = _feats(model, x).detach()
    want = torch.stack([(model.fc.weight[c[i]].detach().view(-1, 1, 1) * a[i]).sum(0) for i in range(3)])
    assert got.shape == (3, 6, 7)
    torch.testing.assert_close(got, want)
    # the map's mean is the logit without the bias: GAP and the linear layer commute
    logits = model(x).detach()
    torch.testing.assert_close(got.flatten(1).mean(1), logits.gather(1, c.view(-1, 1)).squeeze(1) - model.fc.bias[c].detach())


def test_grad_cam_equals_cam_for_a_gap_linear_model():
    torch.manual_seed(1)
    model = GapNet()
    x = torch.randn(4, 1, 5, 5)
    for target in (None, 1, torch.tensor([2, 0, 1, 2])):
        g = grad_cam(model, x, target, "act")
        c = cam(model, x, target, "act")
        torch.testing.assert_close(g, c, rtol=1e-5, atol=1e-6)
        assert bool((g >= 0).all())
        peaks = g.flatten(1).amax(1)
        assert bool(((peaks - 1).abs() < 1e-6).all() or (peaks == 0).any())
    # unnormalised: Grad-CAM is CAM / (number of positions), alpha_k = w_ck / Z
    g = grad_cam(model, x, 0, "act", relu=False, normalize=False)
    torch.testing.assert_close(g * 25, cam(model, x, 0, "act", relu=False, normalize=False), rtol=1e-5, atol=1e-5)


def test_identity_features_put_the_map_on_the_class_evidence():
    model = Identity()
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 2, 5] = 3.0
    x[1, 0, 6, 1] = 2.0
    for fn in (cam, grad_cam):
        m = fn(model, x, 0, "conv", upsample=False)
        assert m[0, 2, 5] == 1 and m[1, 6, 1] == 1
        assert float(m.sum()) == pytest.approx(2.0)  # nothing but the evidence
        # class 1 has weight -1: the ReLU removes all of it
        assert float(fn(model, x, 1, "conv").abs().sum()) == 0


def test_grad_cam_on_sequences_and_frozen_models():
    torch.manual_seed(2)
    model = GapNet(dims=1)
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, 1, 16)
    g = grad_cam(model, x, 1, "act")
    assert g.shape == (3, 16)
    torch.testing.assert_close(g, cam(model, x, 1, "act"), rtol=1e-5, atol=1e-6)
    assert model.training  # the modes are restored


def test_grad_cam_upsamples_a_coarse_layer_to_the_input():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(2, 3))
    x = torch.randn(2, 1, 8, 8)
    assert grad_cam(model, x, None, "1").shape == (2, 8, 8)
    assert grad_cam(model, x, None, "1", upsample=False).shape == (2, 4, 4)


def _half_half(x):
    """A hand-built mix: each row keeps its left half and takes the right half of the next row."""
    b, w = x.shape[0], x.shape[-1]
    left = (torch.arange(w) < w // 2).view(1, 1, 1, w).expand(1, 1, x.shape[-2], w)
    partner = torch.roll(torch.arange(b), -1)
    mixed = torch.where(left, x, x[partner])
    return MixResult.two_source(mixed, partner, 0.5, share_map=left)


def test_share_on_sources_of_a_left_half_model_is_one_and_zero():
    model = Identity(left_only=True, w=(1.0, 2.0, 0.5))
    x = torch.rand(4, 1, 6, 8) + 0.1
    y = torch.tensor([0, 1, 2, 0])
    res = _half_half(x)
    for method in ("grad_cam", "cam"):
        out = cam_share_on_sources(model, res, y, "left", method=method)
        assert out["share"].shape == (4, 2)
        torch.testing.assert_close(out["share"], torch.tensor([[1.0, 0.0]] * 4))
        torch.testing.assert_close(out["weight"], torch.full((4, 2), 0.5))
        assert out["cls"].tolist() == [[0, 1], [1, 2], [2, 0], [0, 0]]


def test_share_on_sources_of_mixup_is_the_label_weight():
    torch.manual_seed(3)
    model = GapNet()
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 1])
    res = mixkit.MixUp().mix(x, generator=torch.Generator().manual_seed(0))
    out = cam_share_on_sources(model, res, y, "act")
    ok = ~out["share"].isnan()
    torch.testing.assert_close(out["share"][ok], out["weight"][ok])


def test_share_on_sources_with_a_real_mixer_is_a_share():
    torch.manual_seed(4)
    model = GapNet()
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 1, 0, 2])
    res = mixkit.CutMix(mode="sample").mix(x, generator=torch.Generator().manual_seed(1))
    out = cam_share_on_sources(model, res, y, "act")
    s = out["share"][~out["share"].isnan()]
    assert bool(((s >= -1e-6) & (s <= 1 + 1e-6)).all())
    torch.testing.assert_close(out["weight"].sum(1), torch.ones(6))


def test_bad_input_is_named():
    model = GapNet()
    x = torch.randn(2, 1, 5, 5)
    with pytest.raises(UnknownLayerError, match="acts"):
        grad_cam(model, x, 0, "acts")
    with pytest.raises(ValueError, match="target_class"):
        grad_cam(model, x, 3, "act")
    with pytest.raises(TypeError, match="target_class"):
        grad_cam(model, x, torch.tensor([0.5, 1.0]), "act")
    with pytest.raises(ValueError, match="in_features"):
        cam(model, x, 0, "conv", fc=nn.Linear(7, 3))
    with pytest.raises(TypeError, match="x must be"):
        cam(model, x.long(), 0, "act")
    with pytest.raises(ValueError, match="y has"):
        cam_share_on_sources(model, _half_half(torch.randn(2, 1, 5, 6)), torch.tensor([0, 1, 2]), "act")
    with pytest.raises(ValueError, match="method"):
        cam_share_on_sources(model, _half_half(torch.randn(2, 1, 5, 6)), torch.tensor([0, 1]), "act", method="x")


def test_show_cams_draws_clean_and_mixed(tmp_path):
    pytest.importorskip("matplotlib")
    torch.manual_seed(5)
    model = GapNet()
    x, y = torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 2])
    fig = show_cams(model, x, "act", y=y, mixer=mixkit.CutMix(), n=2, generator=torch.Generator().manual_seed(0),
                    out=tmp_path / "cams.png")
    assert (tmp_path / "cams.png").stat().st_size > 0
    assert fig.mixkit_share["share"].shape == (3, 2)
    assert len(fig.axes) == 2 * 5

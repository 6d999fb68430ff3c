"""Mosaic: the quadrant layout, the area labels, and kornia's RandomMosaic on the same draws."""
from __future__ import annotations

import pytest
import torch

from mixkit import registry
from mixkit.mixers import Mosaic
from mixkit.mixers.params import MixParams


def provenance(b, spatial):
    x = torch.zeros(b, b, *spatial)
    x[torch.arange(b), torch.arange(b)] = 1
    return x


def test_quadrants_show_the_corners_touching_the_centre():
    h, w = 6, 8
    x = torch.arange(4 * h * w, dtype=torch.float32).view(4, 1, h, w)
    index = torch.tensor([[0, 1, 2, 3]] * 4)
    res = Mosaic(mode="sample").apply(x, MixParams(draws={"center": torch.tensor([[2, 3]] * 4), "index": index}))
    out = res.inputs[0, 0]
    assert torch.equal(out[:2, :3], x[0, 0, h - 2:, w - 3:])   # top-left: the anchor's bottom-right corner
    assert torch.equal(out[2:, :3], x[1, 0, :h - 2, w - 3:])   # bottom-left (bit 0, first axis): top-right
    assert torch.equal(out[:2, 3:], x[2, 0, h - 2:, :w - 3])   # top-right (bit 1): bottom-left
    assert torch.equal(out[2:, 3:], x[3, 0, :h - 2, :w - 3])   # bottom-right: top-left
    area = torch.tensor([2 * 3, 4 * 3, 2 * 5, 4 * 5]) / (h * w)
    torch.testing.assert_close(res.weights[0], area)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_centre_stays_in_the_range(mode):
    m = Mosaic(center_range=(0.25, 0.5), mode=mode)
    for s in range(20):
        c = m.mix(torch.zeros(4, 1, 16, 40), generator=torch.Generator().manual_seed(s)).params["center"]
        assert (c[:, 0] >= 4).all() and (c[:, 0] <= 8).all() and (c[:, 1] >= 10).all() and (c[:, 1] <= 20).all()


def test_matches_kornia_random_mosaic_on_its_draws():
    K = pytest.importorskip("kornia.augmentation")
    torch.manual_seed(0)
    h, w = 10, 14
    for _ in range(4):
        x = torch.randn(6, 3, h, w)
        aug = K.RandomMosaic(p=1.0)
        out = aug(x)
        p = aug._params
        corner = p["src"][:, 0].long()  # the window's top-left corner (x, y) on the 2 x 2 canvas
        center = torch.stack([h - corner[:, 1], w - corner[:, 0]], 1)
        res = Mosaic(mode="sample").apply(x, MixParams(draws={"center": center, "index": p["permutation"].long()}))
        assert torch.equal(res.inputs, out)


def test_centre_distribution_matches_kornia():
    K = pytest.importorskip("kornia.augmentation")
    stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(0)
    h = 20
    kornia_c = []
    for _ in range(20):
        aug = K.RandomMosaic(p=1.0)
        aug(torch.zeros(64, 1, h, h))
        kornia_c.append(h - aug._params["src"][:, 0, 1].long())
    ours = Mosaic(mode="sample").mix(torch.zeros(1280, 1, h, h), generator=torch.Generator().manual_seed(0))
    a, b = torch.cat(kornia_c), ours.params["center"][:, 0]
    values = sorted(set(a.tolist()) | set(b.tolist()))
    table = [[int((a == v).sum()) for v in values], [int((b == v).sum()) for v in values]]
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_weights_are_area_shares_with_repeated_sources():
    b = 3
    x = provenance(b, (9, 9))
    index = torch.tensor([[0, 0, 1, 1], [1, 2, 1, 2], [2, 2, 2, 2]])
    center = torch.tensor([[3, 6]] * b)
    res = Mosaic(mode="sample").apply(x, MixParams(draws={"center": center, "index": index}))
    claimed = torch.zeros(b, b).scatter_add_(1, res.index, res.weights)
    torch.testing.assert_close(res.inputs.double().flatten(2).mean(2).float(), claimed, atol=1e-6, rtol=0)
    assert torch.equal(res.inputs[2], x[2])  # every quadrant from the sample itself: only rolled, one colour


def test_registry_defaults_errors_and_repr():
    m = registry.create("mosaic")
    assert m.center_range == (0.3, 0.7) and "center_range=(0.3, 0.7)" in repr(m)
    with pytest.raises(TypeError, match="alpha"):
        Mosaic(alpha=1.0)
    with pytest.raises(ValueError, match="center_range"):
        Mosaic(center_range=(0.7, 0.3))
    with pytest.raises(TypeError, match="center_range"):
        Mosaic(center_range=0.5)


@pytest.mark.parametrize("d,k", [(1, 2), (2, 4), (3, 8)])
def test_two_to_the_d_sources(d, k):
    res = Mosaic(mode="sample").mix(torch.randn(5, 2, *([8] * d)), generator=torch.Generator().manual_seed(d))
    assert res.index.shape == (5, k) and res.mask.shape == (5, k, *([8] * d))

"""kornia's mixing knobs in mixkit: lam_range (RandomMixUpV2's lambda_val) and CutMix's num_mix (RandomCutMixV2),
compared with kornia itself on shared draws and in distribution."""
from __future__ import annotations

import warnings

import pytest
import torch

from mixkit.mixers import CutMix, MixUp
from mixkit.mixers.params import MixParams

K = pytest.importorskip("kornia.augmentation")
stats = pytest.importorskip("scipy.stats")


def provenance(b, spatial):
    x = torch.zeros(b, b, *spatial)
    x[torch.arange(b), torch.arange(b)] = 1
    return x


def realised(res):
    return res.inputs.double().flatten(2).mean(2).float()


def claimed(res, b):
    return torch.zeros(b, b).scatter_add_(1, res.index, res.weights)


# ---------------------------------------------------------------- lam_range
@pytest.mark.parametrize("cls", [MixUp, CutMix])
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_lam_range_is_uniform_on_the_range(cls, mode):
    m = cls(lam_range=(0.2, 0.6), mode=mode)
    g = torch.Generator().manual_seed(0)
    lam = torch.cat([m.mix(torch.zeros(64, 1, 8, 8), generator=g).lam for _ in range(40)]).double()
    if mode == "batch":
        lam = lam.view(40, 64)[:, 0]
    assert lam.min() >= 0.2 and lam.max() <= 0.6
    assert stats.kstest(lam.numpy(), stats.uniform(0.2, 0.4).cdf).pvalue > 1e-3


def test_mixup_lam_range_matches_kornia_lambda_val_in_distribution():
    # kornia's lambda is the partner's weight: lambda_val=(a, b) is lam_range=(1 - b, 1 - a)
    a, b = 0.1, 0.35
    torch.manual_seed(0)
    aug = K.RandomMixUpV2(lambda_val=(a, b), data_keys=["input", "class"])
    x, y = torch.rand(256, 1, 4, 4), torch.arange(256)
    kornia_partner_w = torch.cat([aug(x, y)[1][:, 2] for _ in range(8)]).double()
    ours = MixUp(lam_range=(1 - b, 1 - a), mode="sample").mix(torch.rand(2048, 1, 4, 4),
                                                              generator=torch.Generator().manual_seed(1))
    ours_partner_w = 1 - ours.lam.double()
    assert stats.ks_2samp(kornia_partner_w.numpy(), ours_partner_w.numpy()).pvalue > 1e-3


def test_mixup_lam_range_pixels_and_labels():
    x = provenance(6, (5, 5))
    res = MixUp(lam_range=(0.7, 0.7), mode="sample").mix(x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(res.weights[:, 0], torch.full((6,), 0.7))
    torch.testing.assert_close(realised(res), claimed(res, 6), atol=1e-6, rtol=0)


def test_lam_range_errors_and_registry_default_unchanged():
    for bad in [(0.5, 0.2), (-0.1, 0.5), (0.2, 1.5), (float("nan"), 0.5)]:
        with pytest.raises(ValueError, match="lam_range"):
            MixUp(lam_range=bad)
        with pytest.raises(ValueError, match="lam_range"):
            CutMix(lam_range=bad)
    for bad in [0.5, (0.1, 0.2, 0.3), "ab"]:
        with pytest.raises(TypeError, match="lam_range"):
            MixUp(lam_range=bad)
    with pytest.raises(ValueError, match="reformulate"):
        MixUp(lam_range=(0.2, 0.4), reformulate=True)
    assert MixUp().lam_range is None and CutMix().lam_range is None
    assert "lam_range=(0.2, 0.4)" in repr(CutMix(lam_range=(0.2, 0.4)))


def test_cutmix_lam_range_boxes_follow_lambda():
    res = CutMix(lam_range=(0.75, 0.75), mode="sample").mix(torch.zeros(8, 1, 16, 16), generator=torch.Generator())
    side = (res.params["box_hi"] - res.params["box_lo"])
    assert (side <= 8).all()  # floor(16 * sqrt(0.25)) before clipping


# ---------------------------------------------------------------- num_mix
@pytest.mark.parametrize("mode", ["batch", "sample"])
@pytest.mark.parametrize("spatial", [(37,), (12, 20), (6, 7, 8)])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_num_mix_weights_are_the_shares_after_overwrites(mode, spatial, p):
    b, k = 7, 3
    m = CutMix(num_mix=k, mode=mode, p=p)
    for seed in range(3):
        res = m.mix(provenance(b, spatial), generator=torch.Generator().manual_seed(seed))
        if not res.mixed.any():  # the batch-mode p coin failed: the unmixed result, one source
            assert res.index.shape == (b, 1) and torch.equal(res.inputs, provenance(b, spatial))
            continue
        assert res.index.shape == res.weights.shape == (b, k + 1)
        assert torch.equal(res.index[:, 0], torch.arange(b))
        torch.testing.assert_close(realised(res), claimed(res, b), atol=2e-6, rtol=0)
        assert res.mask.shape == (b, k + 1, *spatial)
        torch.testing.assert_close(res.mask.flatten(2).mean(2), res.weights, atol=2e-6, rtol=0)
        torch.testing.assert_close(res.mask.sum(1), torch.ones(b, *spatial))
        for i in torch.nonzero(~res.mixed).flatten().tolist():
            assert res.weights[i, 0] == 1


def test_num_mix_later_cut_overwrites_the_earlier():
    x = provenance(4, (8, 8))
    lo = torch.tensor([[[0, 0], [2, 2]]]).expand(4, 2, 2)
    hi = torch.tensor([[[6, 6], [8, 8]]]).expand(4, 2, 2)
    index = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]])
    params = MixParams(draws={"lam": torch.zeros(4, 2), "index": index, "box_lo": lo, "box_hi": hi})
    res = CutMix(num_mix=2, mode="sample").apply(x, params)
    w = res.weights[0].tolist()  # anchor 64 - 6x6 - 6x6 + 4x4 = 8; cut 1 keeps 36 - 16 = 20; cut 2 all 36
    assert w == pytest.approx([8 / 64, 20 / 64, 36 / 64])
    assert res.inputs[0, 2, 4, 4] == 1 and res.inputs[0, 1, 1, 1] == 1 and res.inputs[0, 0, 7, 0] == 1


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_num_mix_replay_inplace_determinism_and_formats(mode):
    m = CutMix(num_mix=2, mode=mode, p=0.7)
    x = torch.randn(6, 3, 12, 14)
    res = m.mix(x, generator=torch.Generator().manual_seed(0))
    params = m.sample(x, torch.Generator().manual_seed(0))
    again = m.apply(x, params)
    assert torch.equal(res.inputs, again.inputs) and torch.equal(res.weights, again.weights)
    assert not torch.equal(res.inputs, m.mix(x, generator=torch.Generator().manual_seed(1)).inputs)
    x2 = x.clone()
    res2 = CutMix(num_mix=2, mode=mode, p=0.7, inplace=True).mix(x2, generator=torch.Generator().manual_seed(0))
    assert res2.inputs.data_ptr() == x2.data_ptr() and torch.equal(x2, res.inputs)
    cl = x.to(memory_format=torch.channels_last)
    assert m.mix(cl, generator=torch.Generator()).inputs.is_contiguous(memory_format=torch.channels_last)
    half = m.mix(provenance(6, (12, 14)).half(), generator=torch.Generator().manual_seed(3))
    assert half.inputs.dtype == torch.float16
    torch.testing.assert_close(realised(half), claimed(half, 6), atol=2e-3, rtol=0)
    _, ys = CutMix(num_mix=3, mode=mode, num_classes=6)(provenance(6, (12, 14)), torch.arange(6),
                                                        generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(ys.sum(1), torch.ones(6))


def test_num_mix_errors():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="num_mix"):
            CutMix(num_mix=bad)
    for bad in (1.5, True):
        with pytest.raises(TypeError, match="num_mix"):
            CutMix(num_mix=bad)
    with pytest.raises(ValueError, match="correct_lam"):
        CutMix(num_mix=2, correct_lam=False)


def _kornia_cutmix(x, y, num_mix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        aug = K.RandomCutMixV2(num_mix=num_mix, data_keys=["input", "class"], use_correct_lambda=True)
    out, labels = aug(x, y)
    return aug, out, labels


def _params_from_kornia(p, b):
    crop = p["crop_src"].long()  # (k, B, 4, 2) vertices (x, y), inclusive corners
    lo = torch.stack([crop[..., 0, 1], crop[..., 0, 0]], -1)  # (k, B, 2) as (row, col)
    hi = torch.stack([crop[..., 2, 1], crop[..., 2, 0]], -1) + 1
    index = torch.cat([torch.arange(b).unsqueeze(0), p["mix_pairs"].long()], 0).t()
    return MixParams(draws={"lam": torch.zeros(b, lo.shape[0]), "index": index,
                            "box_lo": lo.transpose(0, 1), "box_hi": hi.transpose(0, 1)})


def test_num_mix_pixels_match_kornia_on_its_draws_and_labels_fix_its_overlaps():
    b, k = 16, 3
    x = provenance(b, (16, 16))
    torch.manual_seed(0)
    overlaps = 0
    for _ in range(5):
        aug, out, labels = _kornia_cutmix(x, torch.arange(b), k)
        res = CutMix(num_mix=k, mode="sample").apply(x, _params_from_kornia(aug._params, b))
        assert torch.equal(res.inputs, out)  # the same pasting order and sources: later cuts overwrite
        torch.testing.assert_close(realised(res), claimed(res, b), atol=2e-6, rtol=0)
        # kornia's per-cut lambdas (1 - cut area) ignore the overwrites: they differ where boxes overlap
        per_cut = 1 - labels[:, :, 2].t()  # (B, k) each cut's nominal area share
        overlaps += int((per_cut.sum(1) - (1 - res.weights[:, 0]) > 1e-6).sum())
        torch.testing.assert_close(res.weights[:, 1:].sum(1), 1 - res.weights[:, 0])
    assert overlaps > 0


def test_num_mix_last_cut_share_against_kornia():
    # with beta = alpha = 1, each of kornia's cuts is floor(sqrt(1 - lam) * side) with lam ~ U(0, 1), like
    # mixkit's before clipping; the share each source shows after the overwrites has the same mean order
    b, k = 64, 2
    x = provenance(b, (16, 16))
    torch.manual_seed(1)
    kornia_last = []
    for _ in range(6):
        aug, out, _ = _kornia_cutmix(x, torch.arange(b), k)
        kornia_last.append(CutMix(num_mix=k, mode="sample").apply(x, _params_from_kornia(aug._params, b)).weights)
    ours = torch.cat([CutMix(num_mix=k, mode="sample").mix(x, generator=torch.Generator().manual_seed(s)).weights
                      for s in range(6)])
    kw = torch.cat(kornia_last)
    # the last cut is never overwritten: its share is its own box area in both (mixkit's is clipped, so smaller)
    assert ours[:, k].mean() < kw[:, k].mean()
    assert (ours[:, 0] >= 0).all() and (kw[:, 0] >= 0).all()

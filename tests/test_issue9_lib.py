"""Regression tests of issue 9, the library half (items 10-17): one test per defect, named after it."""
from __future__ import annotations

import math

import pytest
import torch

import mixkit
from mixkit import sampling


# ---------------------------------------------------------------- item 10: tiny alpha
def _binomial_ok(k: int, n: int, p: float, z: float = 5.0) -> bool:
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_tiny_alpha_dirichlet_weights_sum_to_one():
    g = torch.Generator().manual_seed(0)
    w = sampling.sample_dirichlet(1e-4, 3, (4000,), g)
    assert torch.allclose(w.sum(-1), torch.ones(4000), atol=1e-6)
    top = w.argmax(-1)  # the small-alpha limit: all the weight on one source, uniformly chosen
    assert (w.amax(-1) > 0.99).float().mean() > 0.99
    for j in range(3):
        assert _binomial_ok(int((top == j).sum()), 4000, 1 / 3)
    x = torch.rand(8, 3, 6, 6)
    res = mixkit.DirichletMixUp(alpha=1e-4).mix(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(res.weights.sum(1), torch.ones(8), atol=1e-6)
    assert res.inputs.abs().sum() > 0.5 * x.abs().sum()  # not a blank batch


@pytest.mark.parametrize("alpha", [1e-4, 1e-12, 1e-200])
def test_tiny_alpha_beta_is_half_zero_half_one(alpha):
    n = 4000
    lam = sampling.sample_beta(alpha, alpha, (n,), torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.isfinite(lam).all()
    near_one, near_zero = int((lam > 1 - 1e-6).sum()), int((lam < 1e-6).sum())
    assert near_one + near_zero >= 0.99 * n
    assert _binomial_ok(near_one, n, 0.5)
    # the reformulated Beta(alpha + 1, alpha): lambda -> 1 as alpha -> 0
    r = sampling.sample_beta(alpha + 1, alpha, (n,), torch.Generator().manual_seed(3), dtype=torch.float64)
    assert (r > 1 - 1e-6).float().mean() > 0.99
    w = sampling.sample_normalized_betas(alpha, 3, (n,), torch.Generator().manual_seed(4))
    assert torch.allclose(w.sum(-1), torch.ones(n), atol=1e-6)


# ---------------------------------------------------------------- item 11: CutMix minmax label
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_cutmix_minmax_label_is_box_share_without_correct_lam(mode):
    x = torch.rand(6, 3, 16, 16)
    m = mixkit.CutMix(minmax=(0.2, 0.6), correct_lam=False, mode=mode)
    res = m.mix(x, generator=torch.Generator().manual_seed(0))
    share = res.share_map.float().flatten(1).mean(1).expand(6)
    assert torch.allclose(res.weights[:, 0], share, atol=1e-6)

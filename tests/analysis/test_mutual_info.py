"""The FMix §3 VAE mutual-information analysis: estimators with known answers, and the VAE training."""
import math

import pytest
import torch
from torch import nn

import mixkit
from mixkit.analysis.mutual_info import (ConvVAE, gaussian_mi, kl_rate, mixing_mi_table, train_vae,
                                         vae_mutual_information)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_mi_on_correlated_gaussians_is_the_closed_form():
    g = _gen(0)
    n, d = 20000, 3
    for rho in (0.0, 0.5, 0.9):
        a = torch.randn(n, d, generator=g)
        b = rho * a + math.sqrt(1 - rho ** 2) * torch.randn(n, d, generator=g)
        want = -0.5 * d * math.log(1 - rho ** 2)
        assert gaussian_mi(a, b) == pytest.approx(want, abs=0.02 * d)


def test_gaussian_mi_identical_codes_are_maximal_independent_are_zero():
    g = _gen(1)
    a = torch.randn(5000, 4, generator=g)
    same = gaussian_mi(a, a.clone())
    assert same > 20  # capped by the ridge eps: about 4/2 * log(1/(2e-6))
    assert same == pytest.approx(0.5 * 4 * math.log((1 + 1e-6) ** 2 / ((1 + 1e-6) ** 2 - 1)), rel=1e-3)
    assert gaussian_mi(a, torch.randn(5000, 4, generator=g)) < 0.01
    # scale and shift do not matter; a constant code carries nothing
    assert gaussian_mi(a, 3 * a + 1) == pytest.approx(same, rel=1e-6)
    assert gaussian_mi(a, torch.ones(5000, 2)) == pytest.approx(0.0, abs=1e-9)


class FixedVAE(nn.Module):
    """A hand-built 'VAE': q(z|x) = N(mean(x) * 1, sigma^2 I); p(x|z) has mean c and no noise."""

    def __init__(self, sigma=0.5, c=2.0, d=3):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))
        self.sigma, self.c, self.d, self.obs_std = sigma, c, d, 0.0

    def encode(self, x):
        m = x.flatten(1).mean(1, keepdim=True).expand(-1, self.d)
        return m, torch.full_like(m, math.log(self.sigma))

    def decode(self, z):
        return torch.full((z.shape[0], 1, 4, 4), self.c)


def test_the_papers_estimate_is_the_kl_of_b_on_a_s_reconstructions():
    a, b = FixedVAE(c=2.0), FixedVAE(sigma=0.5)
    x = torch.rand(10, 1, 4, 4)
    # A reconstructs every input as the constant 2: B's posterior is N(2, 0.25) in each of 3 dims
    want = 3 * 0.5 * (2.0 ** 2 + 0.25 - 1 - math.log(0.25))
    assert vae_mutual_information(a, b, x, generator=_gen()) == pytest.approx(want, rel=1e-6)
    # the rate on the real inputs: the same KL at mean(x)
    m = x.flatten(1).mean(1)
    rate = float((3 * 0.5 * (m ** 2 + 0.25 - 1 - math.log(0.25))).mean())
    assert kl_rate(b, x) == pytest.approx(rate, rel=1e-5)
    assert vae_mutual_information(a, b, x, method="rate") == pytest.approx(rate, rel=1e-5)


def _digits(n=96, size=8):
    """Tiny structured images: a bright bar at a random row and column, plus noise (deterministic)."""
    g = _gen(7)
    x = 0.05 * torch.rand(n, 1, size, size, generator=g)
    r = torch.randint(size, (n,), generator=g)
    c = torch.randint(size, (n,), generator=g)
    x[torch.arange(n), 0, r, :] += 0.8
    x[torch.arange(n), 0, :, c] += 0.5
    return x.clamp(0, 1)


def test_train_vae_is_deterministic_under_a_generator():
    x = _digits()
    v1 = train_vae(x, epochs=2, latent_dim=4, generator=_gen(3))
    v2 = train_vae(x, epochs=2, latent_dim=4, generator=_gen(3))
    v3 = train_vae(x, epochs=2, latent_dim=4, generator=_gen(4))
    for p, q in zip(v1.parameters(), v2.parameters()):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(v1.parameters(), v3.parameters()))
    assert len(v1.history) == 2 and not v1.training
    assert v1.history[-1] < v1.history[0]  # it learns
    mixed = train_vae(x, epochs=2, latent_dim=4, mixer=mixkit.CutMix(), generator=_gen(3))
    assert any(not torch.equal(p, q) for p, q in zip(v1.parameters(), mixed.parameters()))


def test_train_vae_on_sequences_and_the_gaussian_estimate():
    g = _gen(5)
    t = torch.linspace(0, 1, 20)
    x = torch.sin(2 * math.pi * (t + torch.rand(64, 1, 1, generator=g)))  # (64, 1, 20) shifted waves
    vae = train_vae(x, epochs=3, latent_dim=3, generator=_gen(0), mixer="mixup")
    assert isinstance(vae, ConvVAE) and vae.decode(torch.zeros(2, 3)).shape == (2, 1, 20)
    self_mi = vae_mutual_information(vae, vae, x, method="gaussian", samples=4, generator=_gen(1))
    other = train_vae(torch.randn(64, 1, 20, generator=g), epochs=1, latent_dim=3, generator=_gen(9))
    assert self_mi >= 0 and math.isfinite(self_mi)
    assert vae_mutual_information(vae, other, x, method="gaussian", generator=_gen(1)) >= 0


def test_mixing_mi_table_reports_every_method_in_nats():
    x = _digits(64)
    table = mixing_mi_table(x, {"mixup": mixkit.MixUp(), "cutmix": "cutmix"}, epochs=2, latent_dim=4,
                            generator=_gen(0))
    assert set(table) == {"real", "mixup", "cutmix"}
    for row in table.values():
        assert set(row) == {"mi", "rate", "mse"} and all(math.isfinite(v) for v in row.values())
        assert row["mi"] >= 0 and row["rate"] >= 0
    again = mixing_mi_table(x, {"mixup": mixkit.MixUp(), "cutmix": "cutmix"}, epochs=2, latent_dim=4,
                            generator=_gen(0))
    assert again == table


def test_bad_input_is_named():
    x = _digits(8)
    with pytest.raises(ValueError, match="epochs"):
        train_vae(x, epochs=0)
    with pytest.raises(TypeError, match="data"):
        train_vae(x.long())
    with pytest.raises(ValueError, match="data"):
        train_vae(torch.rand(4, 8))
    with pytest.raises(TypeError, match="mixer"):
        train_vae(x, mixer=3)
    with pytest.raises(TypeError, match="vae_a"):
        vae_mutual_information(nn.Linear(2, 2), FixedVAE(), x)
    with pytest.raises(ValueError, match="method"):
        vae_mutual_information(FixedVAE(), FixedVAE(), x, method="mine")
    with pytest.raises(ValueError, match="paired"):
        gaussian_mi(torch.randn(10, 2), torch.randn(9, 2))
    with pytest.raises(ValueError, match="mixers"):
        mixing_mi_table(x, {})

"""mixkit.analysis.gradients against closed forms: a linear model's input gradient, MixUp's and 1-D CutMix's
pair coefficients, hand-made gradient profiles and first-layer norms."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import mixkit
from mixkit.analysis import gradients as G


class Linear1d(nn.Module):
    """logits = W flatten(x) + b for (N, C, *spatial) inputs."""

    def __init__(self, d: int, k: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(d, k)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _closed_form_grad(model: Linear1d, x: torch.Tensor, y: torch.Tensor, mean: float = 0.0,
                      scale: float = 1.0) -> torch.Tensor:
    """(softmax(W u + b) - onehot(y)) @ W / scale with u = (x - mean) / scale: the gradient in pixel space."""
    w, b = model.fc.weight.double(), model.fc.bias.double()
    u = (x.double().flatten(1) - mean) / scale
    p = torch.softmax(u @ w.T + b, dim=1)
    onehot = nn.functional.one_hot(y, w.shape[0]).double()
    return ((p - onehot) @ w / scale).reshape(x.shape)


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 1), (1, 2, 5)])  # 1-D and 2-D inputs
def test_linear_model_input_gradient_is_the_closed_form(shape):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(7, *shape, generator=g), torch.randint(0, 3, (7,), generator=g)
    model = Linear1d(10, 3)
    got = G.input_gradients(model, x, y, batch_size=3)  # three batches
    assert got.shape == x.shape and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), _closed_form_grad(model, x, y), atol=1e-6, rtol=1e-5)
    norms = G.input_gradient_norms(model, x, y)
    torch.testing.assert_close(norms.double(), _closed_form_grad(model, x, y).flatten(1).norm(dim=1), atol=1e-6, rtol=1e-5)
    inf = G.input_gradient_norms(model, x, y, p=math.inf)
    torch.testing.assert_close(inf, got.flatten(1).abs().max(dim=1).values)


def test_gradient_goes_through_the_normalisation_and_leaves_the_model_as_it_was():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(4, 1, 6, generator=g), torch.randint(0, 2, (4,), generator=g)
    model = Linear1d(6, 2).train()
    got = G.input_gradients(model, x, y, normalize=lambda t: (t - 0.5) / 0.25)
    torch.testing.assert_close(got.double(), _closed_form_grad(model, x, y, mean=0.5, scale=0.25), atol=1e-6, rtol=1e-5)
    assert model.training and model.fc.weight.grad is None
    with torch.no_grad():  # works under no_grad too
        assert G.input_gradients(model, x, y).shape == x.shape


def test_gradient_distance_profile_known_answers():
    # g_a = 1 everywhere: every pair product is 1, correlation 1
    ones = torch.ones(3, 2, 8)
    prof = G.gradient_distance_profile(ones)
    assert prof["distance"] == list(range(8)) and prof["product"] == [1.0] * 8 and prof["correlation"] == [1.0] * 8
    # alternating signs +1, -1, ...: product (-1)^d, |product| 1
    alt = torch.tensor([(-1.0) ** i for i in range(6)]).view(1, 1, 6)
    prof = G.gradient_distance_profile(alt, 3)
    assert prof["product"] == [1.0, -1.0, 1.0, -1.0] and prof["abs_product"] == [1.0] * 4
    # 2-D: a gradient constant along rows, alternating along columns; axis picks the direction
    img = torch.tensor([(-1.0) ** j for j in range(4)]).view(1, 1, 1, 4).expand(2, 1, 4, 4)
    assert G.gradient_distance_profile(img, 1, axis=0)["product"] == [1.0, 1.0]
    assert G.gradient_distance_profile(img, 1, axis=1)["product"] == [1.0, -1.0]
    assert G.gradient_distance_profile(img, 1)["product"] == [1.0, 0.0]  # the mean of both axes


def test_model_profile_matches_the_profile_of_its_closed_form_gradient():
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(16, 1, 12, generator=g), torch.randint(0, 4, (16,), generator=g)
    model = Linear1d(12, 4)
    prof = G.input_gradient_distance_profile(model, x, y, 5)
    ref = G.gradient_distance_profile(_closed_form_grad(model, x, y).float(), 5)
    for key in ("product", "abs_product", "correlation"):
        assert prof[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-7)
    norms = _closed_form_grad(model, x, y).flatten(1).norm(dim=1)
    assert prof["grad_norm_mean"] == pytest.approx(float(norms.mean()), rel=1e-5)
    assert prof["n"] == 16 and prof["correlation"][0] == pytest.approx(1.0)


def test_mixup_split_probability_is_constant_in_distance_and_a_function_of_lambda():
    for alpha in (1.0, 0.4):
        est = G.pair_split_probability(mixkit.MixUp(alpha, mode="sample"), (1, 16), n_masks=4000,
                                       generator=torch.Generator().manual_seed(0))
        exact = G.mixup_split_probability(alpha)
        for key in ("split", "coupling"):  # the same number at every distance
            assert max(est[key]) - min(est[key]) < 1e-12
        assert abs(est["split"][0] - exact["split"]) < 4 * est["split_se"][0] + 1e-9
        assert abs(est["coupling"][0] - exact["coupling"]) < 4 * est["coupling_se"][0] + 1e-9
    assert G.mixup_split_probability(1.0) == {"split": pytest.approx(1 / 3), "coupling": pytest.approx(1 / 3)}


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_1d_cutmix_split_probability_matches_its_closed_form(alpha):
    ds = [0, 1, 2, 5, 10, 16, 25, 31]
    est = G.pair_split_probability(mixkit.CutMix(alpha, mode="sample"), (1, 32), ds, n_masks=8000, batch_size=500,
                                   generator=torch.Generator().manual_seed(1))
    exact = G.cutmix_split_probability_1d(32, ds, alpha=alpha)
    assert est["split"][0] == 0.0 and exact["split"][0] == 0.0  # a pixel never splits from itself
    for key in ("split", "coupling"):
        for e, x, se in zip(est[key], exact[key], est[key + "_se"]):
            assert abs(e - x) <= 4 * se + 2e-3, (key, est[key], exact[key])


def test_cutmix_split_grows_with_distance_in_1d_and_2d():
    exact = G.cutmix_split_probability_1d(64, range(33))["split"]
    assert all(b > a for a, b in zip(exact, exact[1:]))  # strictly increasing up to half the length
    est = G.pair_split_probability(mixkit.CutMix(), (3, 16, 16), range(9), n_masks=600,
                                   generator=torch.Generator().manual_seed(2))
    assert est["split"][0] == 0.0 and est["n_masks"] == 600
    assert all(b > a for a, b in zip(est["split"], est["split"][1:]))
    assert all(b < a for a, b in zip(est["coupling"], est["coupling"][1:]))


def test_pair_split_probability_is_deterministic_under_a_generator():
    def run():
        return G.pair_split_probability(mixkit.FMix(), (1, 8, 8), [0, 3], n_masks=50,
                                        generator=torch.Generator().manual_seed(5))
    assert run() == run()


def test_beta_cdf_series_against_known_values():
    assert G._beta_cdf_sym(0.3, 1.0) == pytest.approx(0.3, abs=1e-12)  # uniform
    assert G._beta_cdf_sym(0.25, 0.5) == pytest.approx(2 / math.pi * math.asin(0.5), abs=1e-10)  # arcsine law
    assert G._beta_cdf_sym(0.5, 3.7) == pytest.approx(0.5, abs=1e-12)


def test_first_layer_weight_norms_known_answer():
    conv = nn.Conv1d(1, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[3.0, 4.0, 0.0]], [[0.0, 0.0, 1.0]]]))
    model = nn.Sequential(nn.Sequential(conv, nn.ReLU()), nn.Flatten(), nn.Linear(2 * 6, 3))
    out = G.first_layer_weight_norms(model)
    assert out["layer"] == "0.0" and out["type"] == "Conv1d"
    assert out["per_channel"] == [5.0, 1.0] and out["total"] == pytest.approx(math.sqrt(26))
    assert out["mean_per_channel"] == 3.0 and out["max_per_channel"] == 5.0


def test_first_layer_with_an_example_is_the_first_one_called():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)  # registered first, called last
            self.stem = nn.Conv1d(1, 1, 1)

        def forward(self, x):
            return self.head(self.stem(x).flatten(1))

    net = Net()
    assert G.first_layer_weight_norms(net)["layer"] == "head"
    assert G.first_layer_weight_norms(net, example=torch.zeros(2, 1, 4))["layer"] == "stem"


def test_bad_input_gets_clear_errors():
    model = Linear1d(4, 2)
    x, y = torch.rand(2, 1, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="p must be"):
        G.input_gradient_norms(model, x, y, p=3)
    with pytest.raises(ValueError, match="y must have shape"):
        G.input_gradients(model, x, torch.tensor([0]))
    with pytest.raises(TypeError, match="x must be a float"):
        G.input_gradients(model, x.long(), y)
    with pytest.raises(ValueError, match="max_distance"):
        G.gradient_distance_profile(torch.ones(1, 1, 4), 4)
    with pytest.raises(ValueError, match="axis"):
        G.gradient_distance_profile(torch.ones(1, 1, 4), axis=1)
    with pytest.raises(ValueError, match="shape"):
        G.pair_split_probability(mixkit.CutMix(), (8,))
    with pytest.raises(ValueError, match="distances"):
        G.pair_split_probability(mixkit.CutMix(), (1, 8), [8])
    with pytest.raises(ValueError, match="n_masks"):
        G.pair_split_probability(mixkit.CutMix(), (1, 8), n_masks=0)
    with pytest.raises(ValueError, match="alpha"):
        G.mixup_split_probability(0.0)
    with pytest.raises(ValueError, match="no Conv1d"):
        G.first_layer_weight_norms(nn.ReLU())

"""mixkit.analysis.calibration: known answers (hand-computed bins, calibrated synthetic predictions, a known
temperature) and the cross-check against torchmetrics (skipped where torchmetrics is not installed)."""
from __future__ import annotations

import pytest
import torch

from mixkit.analysis import calibration as C
from mixkit.bench.eval.calibration import ece


def _calibrated(n: int, k: int, seed: int, conc: float = 1.0):
    """Probabilities p ~ Dirichlet(conc) and labels y ~ Categorical(p): calibrated in every sense."""
    g = torch.Generator().manual_seed(seed)
    gam = torch._standard_gamma(torch.full((n, k), conc, dtype=torch.float64), generator=g)
    p = gam / gam.sum(dim=1, keepdim=True)
    y = torch.multinomial(p, 1, generator=g).squeeze(1)
    return p, y


def test_adaptive_ece_by_hand():
    # confidences 0.6, 0.7 (one right) | 0.8, 0.9 (both right): equal-mass bins of two
    p = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1])
    want = (abs(1 - (0.6 + 0.7)) + abs(2 - (0.8 + 0.9))) / 4
    assert C.adaptive_ece(p, y, n_bins=2) == pytest.approx(want)
    assert C.adaptive_ece(p, y, n_bins=1) == pytest.approx(abs(3 - 3.0) / 4)  # one bin: |acc - mean conf|
    assert C.adaptive_ece(p, y, n_bins=10) >= 0  # more bins than samples: empty bins are skipped


def test_adaptive_ece_of_calibrated_predictions_is_near_zero_and_sees_overconfidence():
    p, y = _calibrated(40_000, 4, 0)
    assert C.adaptive_ece(p, y) < 0.015
    sharp = torch.softmax(3 * p.log(), dim=1)  # the same ranking, over-confident
    assert C.adaptive_ece(sharp, y) > 0.1


def test_classwise_ece_of_calibrated_predictions_is_near_zero():
    p, y = _calibrated(40_000, 5, 1)
    out = C.classwise_ece(p, y, per_class=True)
    assert 0 <= out["classwise_ece"] < 0.01 and len(out["per_class"]) == 5
    assert out["classwise_ece"] == pytest.approx(sum(out["per_class"]) / 5)


def test_classwise_ece_by_hand():
    # class 0 probabilities 0.9, 0.9 (hit 1, 0), class 1 probabilities 0.1, 0.1 (hit 0, 1); 1 bin per class
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    assert C.classwise_ece(p, y, n_bins=1) == pytest.approx((abs(0.5 - 0.9) + abs(0.5 - 0.1)) / 2)


def test_classwise_ece_equals_ece_for_two_classes_in_the_symmetric_case_and_bounds_it_otherwise():
    g = torch.Generator().manual_seed(2)
    q = 0.5 + 0.5 * torch.rand(3000, generator=g, dtype=torch.float64)  # every row predicts class 1
    y = (torch.rand(3000, generator=g, dtype=torch.float64) < q ** 2).long()  # miscalibrated on purpose
    p = torch.stack([1 - q, q], dim=1)
    assert C.classwise_ece(p, y, n_bins=10) == pytest.approx(ece(p, y, n_bins=10), abs=1e-12)
    # rows predicting either class: the two classes' bins are merged in the top-label ECE, |a + b| <= |a| + |b|
    q = torch.rand(3000, generator=g, dtype=torch.float64)
    y = (torch.rand(3000, generator=g, dtype=torch.float64) < q).long()
    p = torch.stack([1 - q, q], dim=1)
    assert C.classwise_ece(p, y, n_bins=10) >= ece(p, y, n_bins=10) - 1e-12


def test_fit_temperature_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(3)
    z = 1.5 * torch.randn(20_000, 6, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z, dim=1), 1, generator=g).squeeze(1)
    for t_true in (0.5, 2.5):
        t = C.fit_temperature(t_true * z, y)
        assert t == pytest.approx(t_true, rel=0.05)
        out = C.temperature_scaled_ece(t_true * z, y)
        assert out["temperature"] == t and out["ece"] < 0.02 < out["ece_unscaled"]
        assert out["nll"] <= out["nll_unscaled"] + 1e-12


def test_temperature_scaled_ece_with_a_given_or_held_out_temperature():
    p, y = _calibrated(2000, 3, 4)
    logits = p.log().float()
    out = C.temperature_scaled_ece(logits, y, T=1.0)
    assert out["ece"] == pytest.approx(out["ece_unscaled"]) == pytest.approx(ece(logits, y, from_logits=True))
    half = C.temperature_scaled_ece(logits[:1000], y[:1000], fit_logits=2 * logits[1000:], fit_y=y[1000:])
    assert half["temperature"] == pytest.approx(2.0, rel=0.2)
    summary = C.calibration_summary(logits, y)
    assert set(summary) == {"ece", "adaptive_ece", "classwise_ece", "temperature", "ece_temperature_scaled",
                            "nll", "nll_temperature_scaled"}
    assert all(isinstance(v, float) for v in summary.values())


def test_bad_input_gets_clear_errors():
    p, y = _calibrated(10, 3, 5)
    with pytest.raises(ValueError, match="n_bins"):
        C.adaptive_ece(p, y, n_bins=0)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        C.classwise_ece(p[0], y)
    with pytest.raises(ValueError, match="labels must lie"):
        C.classwise_ece(p, y + 3)
    with pytest.raises(ValueError, match="T must be"):
        C.temperature_scaled_ece(p.log(), y, T=-1.0)
    with pytest.raises(ValueError, match="together"):
        C.temperature_scaled_ece(p.log(), y, fit_logits=p.log())
    with pytest.raises(ValueError, match="finite"):
        C.fit_temperature(torch.full((2, 2), float("inf")), y[:2])
    with pytest.raises(ValueError, match="init"):
        C.fit_temperature(p.log(), y, init=0.0)


def test_ece_and_classwise_ece_agree_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.classification")
    g = torch.Generator().manual_seed(6)
    logits = 2 * torch.randn(3000, 5, generator=g)
    y = torch.randint(0, 5, (3000,), generator=g)
    probs = torch.softmax(logits, dim=1)
    for n_bins in (10, 15):
        ref = tm.MulticlassCalibrationError(num_classes=5, n_bins=n_bins, norm="l1")(probs, y).item()
        assert ece(probs, y, n_bins) == pytest.approx(ref, abs=1e-6)
        per = C.classwise_ece(probs, y, n_bins, per_class=True)["per_class"]
        for k in range(5):
            ref_k = tm.BinaryCalibrationError(n_bins=n_bins, norm="l1")(probs[:, k], (y == k).long()).item()
            assert per[k] == pytest.approx(ref_k, abs=1e-6)

"""Calibration beyond the equal-width ECE: adaptive (equal-mass) ECE, classwise ECE, temperature scaling.

* Adaptive ECE: top-label ECE with equal-mass bins (Nixon, Dusenberry, Zhang, Jerfel, Tran, "Measuring
  Calibration in Deep Learning", CVPR-W 2019; AdaECE of Mukhoti et al., NeurIPS 2020).
* Classwise ECE: the ECE of each class's probability, averaged over classes (Kull, Perello-Nieto,
  Kängsepp, Silva Filho, Song, Flach, "Beyond temperature scaling", NeurIPS 2019).
* Temperature scaling: one ``T > 0`` minimising the NLL of ``softmax(z / T)`` (Guo, Pleiss, Sun,
  Weinberger, "On Calibration of Modern Neural Networks", ICML 2017).

The plain ECE and its bins are :func:`mixkit.bench.eval.calibration.ece` / ``reliability`` (same
equal-width, left-open bins here). Formulas: docs/analysis/calibration.md.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from ..bench.eval.calibration import ece
from ..bench.eval.scores import as_probs, check_logits

__all__ = ["adaptive_ece", "classwise_ece", "fit_temperature", "temperature_scaled_ece", "calibration_summary"]


def _check_bins(n_bins: int) -> int:
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    return n_bins


def _probs(scores: Tensor, y: Tensor, from_logits: Optional[bool]) -> tuple[Tensor, Tensor, torch.dtype]:
    """float64 probabilities, ids, and the dtype the probabilities had (the bin edges are rounded to it)."""
    scores, y = check_logits(scores, y, "scores")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN")
    p = as_probs(scores, from_logits)
    return p.double(), y, p.dtype


def adaptive_ece(scores: Tensor, y: Tensor, n_bins: int = 15, *, from_logits: Optional[bool] = None) -> float:
    """Top-label ECE with equal-mass bins: ``sum_b |B_b| / N |acc(B_b) - conf(B_b)|``.

    The ``N`` confidences (max probability) are sorted (stable) and cut into ``n_bins`` consecutive groups
    whose sizes differ by at most one (``torch.tensor_split``); with ``N < n_bins`` some bins are empty.

    Args:
        scores: ``(N, K)`` logits or probabilities (``from_logits=None`` detects probabilities, as
            :func:`mixkit.bench.eval.calibration.ece`). y: ``(N,)`` class ids.

    Returns:
        Adaptive ECE in ``[0, 1]``.
    """
    _check_bins(n_bins)
    p, y, _ = _probs(scores, y, from_logits)
    conf, pred = p.max(dim=1)
    correct = (pred == y).double()
    order = torch.sort(conf, stable=True).indices
    total = 0.0
    for idx in torch.tensor_split(order, n_bins):
        if idx.numel():
            total += float((correct[idx].sum() - conf[idx].sum()).abs())
    return total / conf.shape[0]


def _class_ece(prob: Tensor, hit: Tensor, n_bins: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(K,)`` equal-width-bin ECE of each column of ``prob`` ``(N, K)`` against ``hit`` (1[y = k]).

    Bins as :func:`mixkit.bench.eval.calibration.ece`: ``(b/n, (b+1)/n]``, a probability of 0 in bin 0.
    """
    n, k = prob.shape
    inner = (torch.arange(1, n_bins, dtype=torch.float64) / n_bins).to(dtype).double().to(prob.device)
    idx = torch.bucketize(prob, inner, right=False)  # (N, K) bin of each probability
    flat = idx + n_bins * torch.arange(k, device=prob.device)[None, :]
    gap = torch.zeros(k * n_bins, dtype=torch.float64, device=prob.device)
    gap.index_add_(0, flat.flatten(), (hit - prob).flatten())
    return gap.abs().view(k, n_bins).sum(dim=1).cpu() / n


def classwise_ece(scores: Tensor, y: Tensor, n_bins: int = 15, *, from_logits: Optional[bool] = None,
                  per_class: bool = False) -> Any:
    """Classwise ECE: ``(1/K) sum_k sum_b |B_kb| / N |mean_{B_kb} 1[y = k] - mean_{B_kb} p_k|``.

    Every class's probability ``p_k`` of every sample is binned (``n_bins`` equal-width bins, as
    :func:`mixkit.bench.eval.calibration.ece`), so a class is judged also where it was not predicted.

    Args:
        scores: ``(N, K)`` logits or probabilities (``from_logits`` as :func:`adaptive_ece`). y: ``(N,)`` ids.
        per_class: also return the ``K`` per-class ECEs.

    Returns:
        The classwise ECE (float), or ``{"classwise_ece": float, "per_class": [K floats]}`` with ``per_class``.
    """
    _check_bins(n_bins)
    p, y, dtype = _probs(scores, y, from_logits)
    hit = torch.nn.functional.one_hot(y, p.shape[1]).double()
    per = _class_ece(p, hit, n_bins, dtype)
    value = float(per.mean())
    return {"classwise_ece": value, "per_class": per.tolist()} if per_class else value


def _check_logits_only(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    logits, y = check_logits(logits, y)
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite (no NaN or inf)")
    return logits, y


def fit_temperature(logits: Tensor, y: Tensor, *, max_iter: int = 100, init: float = 1.0) -> float:
    """``T* = argmin_T (1/N) sum_n -log softmax(z_n / T)[y_n]``, by LBFGS on ``log T`` in float64.

    Args:
        logits: ``(N, K)`` **logits** (not probabilities) of a held-out set. y: ``(N,)`` class ids.
        max_iter: LBFGS iterations (strong-Wolfe line search). init: the starting ``T`` (> 0).

    Returns:
        ``T*`` as a float (``> 1`` softens over-confident predictions).
    """
    logits, y = _check_logits_only(logits, y)
    if not isinstance(init, (int, float)) or isinstance(init, bool) or not init > 0:
        raise ValueError(f"init must be a positive temperature, got {init!r}")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    z = logits.detach().double()
    yy = y.to(z.device)
    log_t = torch.tensor(math.log(init), dtype=torch.float64, device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * torch.exp(-log_t), yy)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(torch.exp(log_t.detach()))
    if not math.isfinite(t) or t <= 0:  # e.g. perfectly separable data: T -> 0
        raise RuntimeError(f"temperature fit diverged (T = {t}); is the held-out set perfectly separated?")
    return t


def _nll(z: Tensor, y: Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(z.double(), y.to(z.device)))


def temperature_scaled_ece(logits: Tensor, y: Tensor, T: Optional[float] = None, n_bins: int = 15, *,
                           fit_logits: Optional[Tensor] = None, fit_y: Optional[Tensor] = None) -> Dict[str, float]:
    """ECE of ``softmax(logits / T)`` (Guo et al. 2017), ``T`` given or fitted by :func:`fit_temperature`.

    Args:
        logits: ``(N, K)`` logits to score. y: ``(N,)`` ids. T: the temperature (default: fitted).
        fit_logits, fit_y: a held-out set to fit ``T`` on (default: ``logits``, ``y`` themselves,
            which reports the best ECE a single temperature can reach on this set).

    Returns:
        dict: ``temperature``, ``ece`` (scaled), ``ece_unscaled``, ``nll``, ``nll_unscaled``.
    """
    logits, y = _check_logits_only(logits, y)
    if T is None:
        if (fit_logits is None) != (fit_y is None):
            raise ValueError("fit_logits= and fit_y= must be given together")
        T = fit_temperature(logits, y) if fit_logits is None else fit_temperature(fit_logits, fit_y)
    elif fit_logits is not None or fit_y is not None:
        raise ValueError("pass either T= or fit_logits=/fit_y=, not both")
    if not isinstance(T, (int, float)) or isinstance(T, bool) or not T > 0 or not math.isfinite(T):
        raise ValueError(f"T must be a positive finite temperature, got {T!r}")
    z = logits.double()
    return {"temperature": float(T), "ece": ece(z / T, y, n_bins, from_logits=True),
            "ece_unscaled": ece(z, y, n_bins, from_logits=True), "nll": _nll(z / T, y), "nll_unscaled": _nll(z, y)}


def calibration_summary(logits: Tensor, y: Tensor, n_bins: int = 15, *, fit_logits: Optional[Tensor] = None,
                        fit_y: Optional[Tensor] = None) -> Dict[str, float]:
    """Every calibration number of one model at once, a JSON-friendly dict: ``ece``, ``adaptive_ece``,
    ``classwise_ece``, and from :func:`temperature_scaled_ece` ``temperature``, ``ece_temperature_scaled``,
    ``nll``, ``nll_temperature_scaled``. ``logits`` must be logits."""
    ts = temperature_scaled_ece(logits, y, None, n_bins, fit_logits=fit_logits, fit_y=fit_y)
    return {"ece": ts["ece_unscaled"], "adaptive_ece": adaptive_ece(logits, y, n_bins, from_logits=True),
            "classwise_ece": classwise_ece(logits, y, n_bins, from_logits=True), "temperature": ts["temperature"],
            "ece_temperature_scaled": ts["ece"], "nll": ts["nll_unscaled"], "nll_temperature_scaled": ts["nll"]}

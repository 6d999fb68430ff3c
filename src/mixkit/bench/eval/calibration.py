"""Calibration: expected calibration error, reliability-diagram data and its picture.

Equal-width confidence bins as in Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural
Networks", ICML 2017. Only :func:`plot_reliability` needs matplotlib, imported when it draws.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .scores import as_probs, check_logits


def _bin_stats(scores: Tensor, y: Tensor, n_bins: int, from_logits: bool | None) -> dict[str, Tensor]:
    """Per-bin counts and sums of confidence / correctness for equal-width confidence bins.

    Bin ``b`` (0-based) is ``(b/n, (b+1)/n]``; confidence 0 goes to bin 0. The edges are rounded
    to the dtype of the confidences before comparing, so a confidence equal to an edge *in its own
    dtype* (e.g. float32 ``1/15``) lands in the bin that edge closes, not in the next one.
    """
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    scores, y = check_logits(scores, y, "scores")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN")
    p = as_probs(scores, from_logits)
    conf, pred = p.max(dim=1)
    edges = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins
    inner = edges[1:-1].to(conf.dtype).double().to(conf.device)
    conf64 = conf.double()
    idx = torch.bucketize(conf64, inner, right=False)  # inner[i-1] < c <= inner[i]  ->  left-open bins
    correct = (pred == y).double()
    count = torch.bincount(idx, minlength=n_bins).cpu()
    sum_conf = torch.zeros(n_bins, dtype=torch.float64, device=conf.device).index_add_(0, idx, conf64).cpu()
    sum_acc = torch.zeros(n_bins, dtype=torch.float64, device=conf.device).index_add_(0, idx, correct).cpu()
    return {"edges": edges, "count": count, "sum_conf": sum_conf, "sum_acc": sum_acc, "n": torch.tensor(conf.shape[0])}


def _ece_of(st: dict[str, Tensor]) -> float:
    """``sum_b |acc_b - conf_b| * |B_b| / N`` from the bin sums of :func:`_bin_stats`."""
    return float((st["sum_acc"] - st["sum_conf"]).abs().sum() / int(st["n"]))


def ece(scores: Tensor, y: Tensor, n_bins: int = 15, *, from_logits: bool | None = None) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` where the confidence of a sample is its max
    softmax probability and the bins are ``(0, 1/n], (1/n, 2/n], ..., ((n-1)/n, 1]`` (left-open,
    right-closed; a confidence of exactly 0 falls in the first bin, exactly 1 in the last).

    Args:
        scores: ``(N, K)`` logits or probabilities. With ``from_logits=None`` (default) rows in
            ``[0, 1]`` that sum to 1 are taken as probabilities, anything else as logits (softmax in
            float64). Pass ``from_logits`` explicitly when in doubt: feeding logits where
            probabilities are expected is a classic ECE bug (gpleiss/temperature_scaling #29).
        y: ``(N,)`` class ids.
        n_bins: number of bins (default 15). ECE depends on the binning; compare only numbers
            computed with the same ``n_bins``.

    Returns:
        ECE in ``[0, 1]`` (a Python float).
    """
    return _ece_of(_bin_stats(scores, y, n_bins, from_logits))


def reliability(scores: Tensor, y: Tensor, n_bins: int = 15, *, from_logits: bool | None = None) -> dict[str, Any]:
    """Reliability-diagram data with the same binning as :func:`ece`.

    Returns:
        A JSON-friendly dict of plain Python lists:
        ``bin_edges`` (``n_bins + 1`` floats), ``bin_acc``, ``bin_conf`` (``n_bins`` floats, mean
        accuracy / confidence in each bin; **0.0 for empty bins**, check ``bin_count``),
        ``bin_count`` (``n_bins`` ints, summing to ``N``), plus ``ece`` and ``n``.
    """
    st = _bin_stats(scores, y, n_bins, from_logits)
    count = st["count"]
    denom = count.clamp(min=1).double()
    acc = torch.where(count > 0, st["sum_acc"] / denom, torch.zeros_like(denom))
    conf = torch.where(count > 0, st["sum_conf"] / denom, torch.zeros_like(denom))
    n = int(st["n"])
    return {
        "bin_edges": st["edges"].tolist(),
        "bin_acc": acc.tolist(),
        "bin_conf": conf.tolist(),
        "bin_count": [int(c) for c in count.tolist()],
        "ece": _ece_of(st),
        "n": n,
    }


def plot_reliability(ax: Any, rel: dict[str, Any], title: str | None = None) -> Any:
    """Draw a reliability diagram from :func:`reliability` data onto a matplotlib ``ax``.

    Blue bars: accuracy per confidence bin; red hatched bars: the gap to the bin's mean confidence;
    dashed diagonal: perfect calibration. Empty bins are not drawn. ``ax=None`` creates a new
    figure (matplotlib is imported lazily, only then). Returns the axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt  # lazy: matplotlib is an optional dependency

        _, ax = plt.subplots(figsize=(4, 4))
    edges = rel["bin_edges"]
    n_bins = len(edges) - 1
    width = 1.0 / n_bins
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(n_bins)]
    keep = [i for i in range(n_bins) if rel["bin_count"][i] > 0]
    c = [centers[i] for i in keep]
    acc = [rel["bin_acc"][i] for i in keep]
    conf = [rel["bin_conf"][i] for i in keep]
    ax.bar(c, acc, width=width, color="tab:blue", edgecolor="black", linewidth=0.5, label="accuracy")
    ax.bar(
        c,
        [cf - a for cf, a in zip(conf, acc)],
        bottom=acc,
        width=width,
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        linewidth=0.5,
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    if "ece" in rel:
        ax.text(0.04, 0.93, f"ECE = {100 * rel['ece']:.2f}%", transform=ax.transAxes)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax

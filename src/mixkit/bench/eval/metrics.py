"""Evaluation metrics for ``mixkit bench``: accuracy, NLL, Brier, ECE / reliability, FGSM / PGD, occlusion.

Every method in the benchmark is scored by the same functions in this module, so the numbers are
comparable across methods.

Conventions
-----------
* ``x`` holds samples in **pixel space**: a float tensor ``(N, C, *spatial)`` with values in
  ``[0, 1]`` (1 spatial dim for sequences ``(N, C, L)``, 2 for images ``(N, C, H, W)``). The model
  expects *normalised* input, so every function takes either a ``normalize`` callable or
  ``mean=`` / ``std=`` per-channel tuples, and applies the normalisation inside, right before the
  forward pass. Perturbations (FGSM, PGD, occlusion, corruptions) are therefore always defined in
  pixel units.
* ``y`` holds class ids ``(N,)`` (any integer dtype; used as int64).
* Logits are returned as float32 on the CPU; metrics are computed in float64.
* The model is put in eval mode for the evaluation (``torch.no_grad()`` except for the attacks,
  which need input gradients) and every submodule's previous ``training`` flag is restored afterwards,
  also when an exception is raised.
* Randomness (occlusion masks, PGD start, sub-sampling) only comes from an explicit
  ``torch.Generator``. Where the evaluation functions get ``generator=None`` they use a fresh
  generator seeded with 0, so a benchmark run is reproducible by default.

References
----------
* Guo, Pleiss, Sun, Weinberger. "On Calibration of Modern Neural Networks", ICML 2017 (ECE,
  reliability diagrams).
* Brier. "Verification of forecasts expressed in terms of probability", 1950.
* Goodfellow, Shlens, Szegedy. "Explaining and Harnessing Adversarial Examples", ICLR 2015 (FGSM).
* Madry et al. "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018 (PGD).
* Hendrycks & Dietterich. "Benchmarking Neural Network Robustness to Common Corruptions and
  Perturbations", ICLR 2019 (corruptions, see :mod:`mixkit.bench.corruptions`).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Normalize = Callable[[Tensor], Tensor]

__all__ = [
    "DEFAULT_FRACTIONS",
    "make_normalize",
    "predict",
    "accuracy",
    "nll",
    "brier",
    "ece",
    "reliability",
    "plot_reliability",
    "fgsm_attack",
    "fgsm_accuracy",
    "pgd_attack",
    "pgd_accuracy",
    "occlusion_order",
    "occlusion_mask",
    "occlusion_curve",
    "evaluate",
]

#: Occluded fractions used by :func:`occlusion_curve` by default: 0, 0.1, ..., 1.0.
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(i / 10 for i in range(11))

_DEFAULT_SEED = 0


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def make_normalize(mean: Sequence[float] | float | Tensor, std: Sequence[float] | float | Tensor) -> Normalize:
    """Return ``f(x) = (x - mean) / std`` broadcast over the channel dim of ``(N, C, *spatial)``.

    Args:
        mean: per-channel means (length ``C`` or 1) in pixel units.
        std: per-channel standard deviations (length ``C`` or 1), all ``> 0``.

    Returns:
        A callable keeping the input's device and dtype. It raises ``ValueError`` when the number of
        channels does not match the length of ``mean`` / ``std``.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float64).flatten()
    std_t = torch.as_tensor(std, dtype=torch.float64).flatten()
    if mean_t.numel() == 0 or std_t.numel() == 0:
        raise ValueError("mean and std must not be empty")
    if not bool(torch.all(std_t > 0)):
        raise ValueError(f"std must be > 0 for every channel, got {std_t.tolist()}")

    def normalize(x: Tensor) -> Tensor:
        c = x.shape[1]
        for name, t in (("mean", mean_t), ("std", std_t)):
            if t.numel() not in (1, c):
                raise ValueError(f"{name} has {t.numel()} entries but x has {c} channels (shape {tuple(x.shape)})")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m = mean_t.to(device=x.device, dtype=x.dtype).reshape(shape)
        s = std_t.to(device=x.device, dtype=x.dtype).reshape(shape)
        return (x - m) / s

    return normalize


def _identity(x: Tensor) -> Tensor:
    return x


def _resolve_normalize(normalize: Normalize | None, mean: Any = None, std: Any = None) -> Normalize:
    """One normalisation callable from ``normalize`` or ``mean``/``std`` (identity when none is given)."""
    if normalize is not None:
        if mean is not None or std is not None:
            raise ValueError("pass either normalize= or mean=/std=, not both")
        if not callable(normalize):
            raise TypeError(f"normalize must be callable, got {type(normalize).__name__}")
        return normalize
    if (mean is None) != (std is None):
        raise ValueError("mean= and std= must be given together")
    if mean is None:
        return _identity
    return make_normalize(mean, std)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every submodule's own ``training`` flag on exit."""
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in saved:
            m.training = flag


def _model_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _check_x(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}")
    if x.ndim < 3:
        raise ValueError(f"{name} must have shape (N, C, *spatial) with >= 1 spatial dim, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample, got shape {tuple(x.shape)}")


def _check_y(y: Tensor, n: int, name: str = "y") -> Tensor:
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class ids, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class ids (int64), got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the batch, got {tuple(y.shape)}")
    return y.long()


def _check_logits(logits: Tensor, y: Tensor, name: str = "logits") -> tuple[Tensor, Tensor]:
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a (N, K) tensor, got {shape}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one row")
    y = _check_y(y, logits.shape[0]).to(logits.device)
    k = logits.shape[1]
    if bool(((y < 0) | (y >= k)).any()):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes, got min {int(y.min())} max {int(y.max())}")
    return logits, y


def _forward(model: nn.Module, norm: Normalize, xb: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    out = model(norm(xb.to(device=device, dtype=dtype)))
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != xb.shape[0]:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"model must return logits of shape ({xb.shape[0]}, K), got {got}")
    return out


def _check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _default_generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(_DEFAULT_SEED)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


# ---------------------------------------------------------------------------------------------
# predictions and scalar metrics
# ---------------------------------------------------------------------------------------------


def predict(
    model: nn.Module,
    x: Tensor,
    normalize: Normalize | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched.

    Args:
        model: classifier mapping normalised ``(B, C, *spatial)`` to logits ``(B, K)``.
        x: ``(N, C, *spatial)`` float, pixel space ``[0, 1]``, any device.
        normalize: callable applied to each batch before the forward pass (or give ``mean``/``std``).
        batch_size: samples per forward pass (default 512).
        device: where to run the model (default: the device of its first parameter).

    Returns:
        ``(N, K)`` float32 logits on the CPU.
    """
    norm = _resolve_normalize(normalize, mean, std)
    _check_x(x)
    bs = _check_batch_size(batch_size)
    dev, dtype = _model_device(model, device), _model_dtype(model)
    outs = []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, x.shape[0], bs):
            outs.append(_forward(model, norm, x[start : start + bs], dev, dtype).float().cpu())
    return torch.cat(outs)


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Top-1 accuracy in ``[0, 1]`` of ``logits`` (or probabilities) ``(N, K)`` against ids ``y`` ``(N,)``."""
    logits, y = _check_logits(logits, y)
    return float((logits.argmax(dim=1) == y).double().mean())


def nll(logits: Tensor, y: Tensor) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of ``logits`` ``(N, K)``; float64 math.

    Takes **logits**, not probabilities. Equals ``F.cross_entropy(logits, y)``.
    """
    logits, y = _check_logits(logits, y)
    logp = torch.log_softmax(logits.double(), dim=1)
    return float(-logp.gather(1, y[:, None]).mean())


def _looks_like_probs(t: Tensor) -> bool:
    tol = 1e-3 if t.dtype in (torch.float32, torch.float64) else 1e-2
    t64 = t.double()
    return bool(t64.min() >= 0) and bool(t64.max() <= 1) and bool((t64.sum(dim=1) - 1).abs().max() <= tol)


def _as_probs(scores: Tensor, from_logits: bool | None) -> Tensor:
    """Probabilities from logits (softmax in float64) or validated probabilities (dtype kept)."""
    if from_logits is None:
        from_logits = not _looks_like_probs(scores)
    if from_logits:
        return torch.softmax(scores.double(), dim=1)
    if not _looks_like_probs(scores):
        raise ValueError("from_logits=False but the rows are not probabilities (values in [0, 1] summing to 1)")
    return scores


def brier(scores: Tensor, y: Tensor, *, from_logits: bool | None = None) -> float:
    """Multi-class Brier score ``mean_i sum_k (p_ik - 1[y_i = k])^2`` (Brier 1950), in ``[0, 2]``.

    Args:
        scores: ``(N, K)`` logits or probabilities. ``from_logits=None`` (default) detects
            probabilities (rows in ``[0, 1]`` summing to 1); pass ``True``/``False`` to be explicit.
        y: ``(N,)`` class ids.
    """
    scores, y = _check_logits(scores, y, "scores")
    p = _as_probs(scores, from_logits).double()
    onehot = F.one_hot(y, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(dim=1).mean())


def _bin_stats(scores: Tensor, y: Tensor, n_bins: int, from_logits: bool | None) -> dict[str, Tensor]:
    """Per-bin counts and sums of confidence / correctness for equal-width confidence bins.

    Bin ``b`` (0-based) is ``(b/n, (b+1)/n]``; confidence 0 goes to bin 0. The edges are rounded
    to the dtype of the confidences before comparing, so a confidence equal to an edge *in its own
    dtype* (e.g. float32 ``1/15``) lands in the bin that edge closes, not in the next one.
    """
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    scores, y = _check_logits(scores, y, "scores")
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN")
    p = _as_probs(scores, from_logits)
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
    st = _bin_stats(scores, y, n_bins, from_logits)
    return float((st["sum_acc"] - st["sum_conf"]).abs().sum() / int(st["n"]))


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
        "ece": float((st["sum_acc"] - st["sum_conf"]).abs().sum() / n),
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


# ---------------------------------------------------------------------------------------------
# adversarial robustness (FGSM, PGD) in pixel space
# ---------------------------------------------------------------------------------------------


def _input_gradient(
    model: nn.Module, norm: Normalize, xb: Tensor, yb: Tensor, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``d CE(model(norm(xb)), yb) / d xb`` in pixel space, without touching any parameter ``.grad``.

    ``torch.autograd.grad`` only returns the gradient of the requested input; it never accumulates
    into ``.grad`` of the parameters and leaves their ``requires_grad`` flags alone.
    """
    xg = xb.detach().to(device=device, dtype=dtype).requires_grad_(True)
    with torch.enable_grad():
        logits = _forward(model, norm, xg, device, dtype)
        loss = F.cross_entropy(logits.float(), yb.to(logits.device), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xg)
    return grad


def _check_eps(eps: float, name: str = "eps") -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (pixel units), got {eps}")
    return eps


def _attack_setup(model, x, y, normalize, mean, std, batch_size, device):
    norm = _resolve_normalize(normalize, mean, std)
    _check_x(x)
    y = _check_y(y, x.shape[0])
    bs = _check_batch_size(batch_size)
    return norm, y, bs, _model_device(model, device), _model_dtype(model)


def _fgsm_batch(model, norm, xb, yb, eps, dev, dtype) -> Tensor:
    grad = _input_gradient(model, norm, xb, yb, dev, dtype)
    x0 = xb.to(device=dev, dtype=dtype)
    return (x0 + eps * grad.sign()).clamp_(0.0, 1.0).detach()


def fgsm_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    normalize: Normalize | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> Tensor:
    """FGSM adversarial examples in pixel space (Goodfellow et al. 2015).

    ``x_adv = clamp(x + eps * sign(grad_x CE(model(normalize(x)), y)), 0, 1)``. The gradient is
    taken through the normalisation, so ``eps`` is in **pixel units** (8/255 means 8 grey levels of
    an 8-bit image whatever the dataset's std). The model runs in eval mode; its per-module training
    flags, parameter ``.grad`` tensors and ``requires_grad`` flags are left exactly as they were.

    Args:
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        eps: L-inf budget in pixel units (default 8/255). ``eps = 0`` returns a copy of ``x``.

    Returns:
        ``(N, C, *spatial)`` adversarial inputs in ``[0, 1]``, on ``x``'s device and dtype.
    """
    eps = _check_eps(eps)
    norm, y, bs, dev, dtype = _attack_setup(model, x, y, normalize, mean, std, batch_size, device)
    if eps == 0:
        return x.clone()
    out = []
    with _eval_mode(model):
        for start in range(0, x.shape[0], bs):
            xb, yb = x[start : start + bs], y[start : start + bs]
            out.append(_fgsm_batch(model, norm, xb, yb, eps, dev, dtype).to(device=x.device, dtype=x.dtype))
    return torch.cat(out)


def fgsm_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    normalize: Normalize | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> float:
    """Top-1 accuracy under the FGSM attack of :func:`fgsm_attack` (pixel-space ``eps``, default 8/255).

    Batches are attacked and evaluated one at a time (no full adversarial copy of ``x`` is kept).
    ``eps = 0`` gives exactly ``accuracy(predict(model, x, ...), y)`` with the same ``batch_size``.
    """
    eps = _check_eps(eps)
    norm, y, bs, dev, dtype = _attack_setup(model, x, y, normalize, mean, std, batch_size, device)
    if eps == 0:
        return accuracy(predict(model, x, norm, bs, dev), y)
    correct = 0
    with _eval_mode(model):
        for start in range(0, x.shape[0], bs):
            xb, yb = x[start : start + bs], y[start : start + bs]
            x_adv = _fgsm_batch(model, norm, xb, yb, eps, dev, dtype)
            with torch.no_grad():
                pred = _forward(model, norm, x_adv, dev, dtype).argmax(dim=1).cpu()
            correct += int((pred == yb.cpu()).sum())
    return correct / x.shape[0]


def _pgd_batch(model, norm, xb, yb, eps, alpha, steps, random_start, g, dev, dtype) -> Tensor:
    x0 = xb.detach().to(device=dev, dtype=dtype)
    lo, hi = (x0 - eps).clamp(0.0, 1.0), (x0 + eps).clamp(0.0, 1.0)
    if random_start and eps > 0:
        noise = torch.rand(x0.shape, generator=g, device=g.device, dtype=torch.float32).to(device=dev, dtype=dtype)
        x_adv = torch.minimum(torch.maximum(x0 + (2 * noise - 1) * eps, lo), hi)
    else:
        x_adv = x0.clone()
    for _ in range(steps):
        grad = _input_gradient(model, norm, x_adv, yb, dev, dtype)
        x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), lo), hi).detach()
    return x_adv


def pgd_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    normalize: Normalize | None = None,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> Tensor:
    """L-inf PGD adversarial examples in pixel space (Madry et al. 2018).

    Start at ``x + U(-eps, eps)`` (``random_start``, drawn from ``generator``; default seed 0),
    take ``steps`` signed-gradient steps of size ``alpha`` and project onto
    ``{x' : |x' - x|_inf <= eps, 0 <= x' <= 1}`` after each. Model state is handled as in
    :func:`fgsm_attack`. Returns ``(N, C, *spatial)`` on ``x``'s device and dtype.
    """
    eps, alpha = _check_eps(eps), _check_eps(alpha, "alpha")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    norm, y, bs, dev, dtype = _attack_setup(model, x, y, normalize, mean, std, batch_size, device)
    g = _default_generator(generator)
    out = []
    with _eval_mode(model):
        for start in range(0, x.shape[0], bs):
            xb, yb = x[start : start + bs], y[start : start + bs]
            x_adv = _pgd_batch(model, norm, xb, yb, eps, alpha, steps, random_start, g, dev, dtype)
            out.append(x_adv.to(device=x.device, dtype=x.dtype))
    return torch.cat(out)


def pgd_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    normalize: Normalize | None = None,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> float:
    """Top-1 accuracy under :func:`pgd_attack` (default: eps 8/255, step 2/255, 10 steps, random start)."""
    x_adv = pgd_attack(model, x, y, eps, alpha, steps, normalize, random_start=random_start, generator=generator,
                       mean=mean, std=std, batch_size=batch_size, device=device)
    logits = predict(model, x_adv, _resolve_normalize(normalize, mean, std), batch_size, device)
    return accuracy(logits, y.cpu())


# ---------------------------------------------------------------------------------------------
# occlusion
# ---------------------------------------------------------------------------------------------


def _default_patch(spatial: Sequence[int]) -> int:
    return max(1, round(min(spatial) / 8))


def _n_covered(fraction: float, area: int) -> int:
    """``round(fraction * area)`` with halves rounded up (not to even)."""
    return min(area, max(0, int(math.floor(fraction * area + 0.5))))


def _check_spatial(spatial: Sequence[int]) -> tuple[int, ...]:
    spatial = tuple(int(s) for s in spatial)
    if not 1 <= len(spatial) <= 3 or any(s < 1 for s in spatial):
        raise ValueError(f"spatial must be 1 to 3 positive sizes, got {spatial}")
    return spatial


def occlusion_order(
    n: int,
    spatial: Sequence[int],
    *,
    patch: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random order in which :func:`occlusion_mask` covers the pixels of ``n`` samples.

    The spatial grid is cut into ``patch``-sized blocks (squares in 2-D, segments in 1-D; the
    blocks on the far borders are smaller when ``patch`` does not divide the size). Each sample
    gets its own random permutation of the blocks; pixels are covered block after block in that
    order, in raster order inside a block. Covering the first ``k`` pixels of this order therefore
    hides exactly ``k`` pixels: a union of whole random blocks plus the leading part of one more.
    Masks for growing ``k`` are nested.

    Args:
        n: number of samples.  spatial: ``(L,)`` or ``(H, W)`` (``(D, H, W)`` also works).
        patch: block side in pixels; default ``max(1, round(min(spatial) / 8))``
            (4 for 32x32 and 28x28 images, 5 for length-40 sequences).
        generator: source of the block permutations (default: torch's global generator).

    Returns:
        ``(n, prod(spatial))`` int64 flat pixel indices, on the generator's device.
    """
    spatial = _check_spatial(spatial)
    patch = _default_patch(spatial) if patch is None else int(patch)
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    gdev = generator.device if generator is not None else torch.device("cpu")
    coords = torch.meshgrid(*[torch.arange(s, device=gdev) for s in spatial], indexing="ij")
    n_blocks_per_dim = [math.ceil(s / patch) for s in spatial]
    block_id = torch.zeros(spatial, dtype=torch.long, device=gdev)
    local = torch.zeros(spatial, dtype=torch.long, device=gdev)
    for d, c in enumerate(coords):
        block_id = block_id * n_blocks_per_dim[d] + torch.div(c, patch, rounding_mode="floor")
        local = local * patch + c % patch
    n_blocks = math.prod(n_blocks_per_dim)
    perm_keys = torch.rand((n, n_blocks), generator=generator, device=gdev)
    block_rank = perm_keys.argsort(dim=1).argsort(dim=1)  # (n, n_blocks): random permutation ranks
    key = block_rank[:, block_id.flatten()] * patch ** len(spatial) + local.flatten()  # unique per row
    return key.argsort(dim=1)


def _mask_from_order(order: Tensor, k: int, spatial: Sequence[int]) -> Tensor:
    mask = torch.zeros(order.shape, dtype=torch.bool, device=order.device)
    if k > 0:
        mask.scatter_(1, order[:, :k], True)
    return mask.reshape(order.shape[0], *spatial)


def occlusion_mask(
    n: int,
    spatial: Sequence[int],
    fraction: float,
    *,
    patch: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Boolean occlusion masks ``(n, *spatial)``, ``True`` = occluded, built by :func:`occlusion_order`.

    Every sample has exactly ``round(fraction * prod(spatial))`` occluded pixels (halves rounded up):
    ``fraction=0`` hides nothing, ``fraction=1`` hides everything.
    """
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    spatial = _check_spatial(spatial)
    order = occlusion_order(n, spatial, patch=patch, generator=generator)
    return _mask_from_order(order, _n_covered(fraction, math.prod(spatial)), spatial)


def _auc(fractions: Sequence[float], accs: Sequence[float]) -> float:
    pts = sorted(zip(fractions, accs))
    if len(pts) == 1 or pts[-1][0] == pts[0][0]:
        return float(sum(a for _, a in pts) / len(pts))
    area = sum((f1 - f0) * (a0 + a1) / 2 for (f0, a0), (f1, a1) in zip(pts[:-1], pts[1:]))
    return float(area / (pts[-1][0] - pts[0][0]))


def occlusion_curve(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    normalize: Normalize | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    generator: torch.Generator | None = None,
    patch: int | None = None,
    fill: float | str = 0.0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Accuracy as random blocks hide a growing share (0 to 100%) of every input.

    For each sample one covering order is drawn (:func:`occlusion_order`: random ``patch``-sized
    blocks, then the leading pixels of one more block), and for each ``fraction`` the first
    ``round(fraction * area)`` pixels of that order are replaced by ``fill`` in pixel space (all
    channels), before normalisation. The covered share is exact and the masks are nested across
    fractions, so the curve is monotone in what the model sees. Works for 1-D and 2-D inputs.

    Args:
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        fractions: occluded shares in ``[0, 1]`` (default 0, 0.1, ..., 1.0).
        generator: randomness of the masks (default: a generator seeded with 0). The result is
            deterministic for a given seed and ``batch_size``.
        patch: block side in pixels (default ``max(1, round(min(spatial) / 8))``).
        fill: value of hidden pixels: a float (default ``0.0``, black) or ``"mean"`` (the
            per-channel mean of ``x``, i.e. roughly 0 after normalisation).

    Returns:
        ``{"curve": {fraction: accuracy}, "auc": float, "patch": int, "fill": fill}`` where ``auc``
        is the trapezoidal area under accuracy-vs-fraction divided by the fraction span (the mean
        accuracy over ``[0, 1]`` for the default fractions).
    """
    norm = _resolve_normalize(normalize, mean, std)
    _check_x(x)
    if not 1 <= x.ndim - 2 <= 3:
        raise ValueError(f"x must have 1 to 3 spatial dims, got shape {tuple(x.shape)}")
    y = _check_y(y, x.shape[0])
    bs = _check_batch_size(batch_size)
    fracs = [float(f) for f in fractions]
    if not fracs or any(not 0.0 <= f <= 1.0 for f in fracs):
        raise ValueError(f"fractions must be a non-empty sequence of values in [0, 1], got {list(fractions)}")
    g = _default_generator(generator)
    dev, dtype = _model_device(model, device), _model_dtype(model)
    spatial = tuple(x.shape[2:])
    area = math.prod(spatial)
    patch = _default_patch(spatial) if patch is None else int(patch)
    fill_shape = (1, x.shape[1]) + (1,) * len(spatial)
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be a float or 'mean', got {fill!r}")
        fill_t = x.double().mean(dim=(0, *range(2, x.ndim))).reshape(fill_shape).to(x.dtype)
    else:
        fill_t = torch.full(fill_shape, float(fill), dtype=x.dtype)
    fill_t = fill_t.to(x.device)
    ks = [_n_covered(f, area) for f in fracs]
    correct = [0] * len(fracs)
    with _eval_mode(model), torch.no_grad():
        for start in range(0, x.shape[0], bs):
            xb, yb = x[start : start + bs], y[start : start + bs].cpu()
            order = occlusion_order(xb.shape[0], spatial, patch=patch, generator=g)
            for i, k in enumerate(ks):
                mask = _mask_from_order(order, k, spatial).to(xb.device).unsqueeze(1)
                xo = torch.where(mask, fill_t, xb)
                pred = _forward(model, norm, xo, dev, dtype).argmax(dim=1).cpu()
                correct[i] += int((pred == yb).sum())
    accs = [c / x.shape[0] for c in correct]
    return {"curve": dict(zip(fracs, accs)), "auc": _auc(fracs, accs), "patch": patch, "fill": fill}


# ---------------------------------------------------------------------------------------------
# everything at once
# ---------------------------------------------------------------------------------------------


def _sub_generator(base: int, tag: int) -> torch.Generator:
    return torch.Generator().manual_seed((base * 1_000_003 + tag) % (2**63 - 1))


def evaluate(
    model: nn.Module,
    x_test: Tensor,
    y_test: Tensor,
    normalize: Normalize | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
    n_bins: int = 15,
    corruptions: bool | Sequence[str] = True,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    fgsm_eps: float | None = 8 / 255,
    occlusion: bool = True,
    occlusion_fractions: Sequence[float] = DEFAULT_FRACTIONS,
    occlusion_patch: int | None = None,
    occlusion_fill: float | str = 0.0,
    max_eval: int | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """All ``mixkit bench`` test metrics of one trained model, computed the same way for every method.

    Clean metrics (``top1``, ``nll``, ``brier``, ``ece``, ``reliability``) always use the whole test
    set (one forward pass). The robustness metrics (corruptions, FGSM, occlusion) use at most
    ``max_eval`` samples, drawn without replacement from ``generator``; ``robust_top1`` is the clean
    accuracy on that same subset, for a like-for-like comparison.

    Args:
        x_test: ``(N, C, *spatial)`` float in ``[0, 1]``.  y_test: ``(N,)`` class ids.
        normalize / mean / std: the model's input normalisation (see the module docstring).
        generator: seeds every random piece (default: seed 0). Each piece gets its own derived
            generator, so switching one piece off does not change the others' results.
        n_bins: ECE / reliability bins (default 15).
        corruptions: ``True`` (every corruption that supports the input's shape), a list of names
            (see :data:`mixkit.bench.corruptions.CORRUPTIONS`), or ``False``.
        severities: corruption severities (default 1..5).
        fgsm_eps: FGSM budget in pixel units (default 8/255); ``None`` switches FGSM off.
        occlusion: whether to compute the occlusion curve (``occlusion_fractions``,
            ``occlusion_patch``, ``occlusion_fill`` as in :func:`occlusion_curve`).
        max_eval: cap on the robustness subset (default: the whole test set).

    Returns:
        A JSON-friendly dict with ``n``, ``top1``, ``nll``, ``brier``, ``ece``, ``n_bins``,
        ``reliability``, ``n_robust``, ``robust_top1``, ``corruption`` (per-corruption, per-severity
        accuracies, see :func:`~mixkit.bench.corruptions.corruption_accuracy`),
        ``mean_corruption_acc``, ``fgsm_eps``, ``fgsm_acc``, ``occlusion`` (curve) and
        ``occlusion_auc``. Switched-off pieces are ``None``.
    """
    norm = _resolve_normalize(normalize, mean, std)
    _check_x(x_test, "x_test")
    y_test = _check_y(y_test, x_test.shape[0], "y_test")
    g = _default_generator(generator)
    base = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    dev = _model_device(model, device)

    logits = predict(model, x_test, norm, batch_size, dev)
    y_cpu = y_test.cpu()
    rel = reliability(logits, y_cpu, n_bins, from_logits=True)
    out: dict[str, Any] = {
        "n": int(x_test.shape[0]),
        "top1": accuracy(logits, y_cpu),
        "nll": nll(logits, y_cpu),
        "brier": brier(logits, y_cpu, from_logits=True),
        "ece": rel["ece"],
        "n_bins": n_bins,
        "reliability": rel,
    }

    n = x_test.shape[0]
    if max_eval is not None and int(max_eval) < n:
        if int(max_eval) < 1:
            raise ValueError(f"max_eval must be >= 1 or None, got {max_eval}")
        idx = torch.randperm(n, generator=_sub_generator(base, 1))[: int(max_eval)].sort().values
        xr, yr = x_test[idx.to(x_test.device)], y_test[idx.to(y_test.device)]
        out["robust_top1"] = accuracy(logits[idx], y_cpu[idx])
    else:
        xr, yr = x_test, y_test
        out["robust_top1"] = out["top1"]
    out["n_robust"] = int(xr.shape[0])

    out["corruption"] = out["mean_corruption_acc"] = None
    if corruptions is not False and corruptions is not None:
        from .corruptions import corruption_accuracy  # lazy: corruptions imports this module

        names = None if corruptions is True else list(corruptions)
        res = corruption_accuracy(
            model, xr, yr, norm, severities, names, generator=_sub_generator(base, 2), batch_size=batch_size, device=dev
        )
        out["corruption"] = res
        out["mean_corruption_acc"] = res["mean"]

    out["fgsm_eps"] = fgsm_eps
    out["fgsm_acc"] = None
    if fgsm_eps is not None:
        out["fgsm_acc"] = fgsm_accuracy(model, xr, yr, fgsm_eps, norm, batch_size=batch_size, device=dev)

    out["occlusion"] = out["occlusion_auc"] = None
    if occlusion:
        occ = occlusion_curve(
            model,
            xr,
            yr,
            norm,
            occlusion_fractions,
            generator=_sub_generator(base, 3),
            patch=occlusion_patch,
            fill=occlusion_fill,
            batch_size=batch_size,
            device=dev,
        )
        out["occlusion"] = occ
        out["occlusion_auc"] = occ["auc"]
    return out

"""``evaluate``: every test metric of one trained model, the one call the benchmark's trainer makes.

It sits on top of :mod:`mixkit.bench.eval`: it builds the :class:`~mixkit.bench.eval.model.ModelView`
once and hands it to the calibration, corruption, FGSM and occlusion pieces.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .attacks import fgsm_accuracy
from .calibration import reliability
from .checks import check_x, check_y, default_generator, draw_seed
from .corruptions import corruption_accuracy
from .model import ModelView, Normalize
from .occlusion import DEFAULT_FRACTIONS, occlusion_curve
from .scores import accuracy, brier, nll


def _sub_generator(base: int, tag: int) -> torch.Generator:
    return torch.Generator().manual_seed((base * 1_000_003 + tag) % (2**63 - 1))


def evaluate(
    model: nn.Module | ModelView,
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
        model, normalize / mean / std, batch_size, device: the model as :meth:`ModelView.of` takes it
            (normalisation, samples per forward pass, where it runs); built once and shared by every piece.
        x_test: ``(N, C, *spatial)`` float in ``[0, 1]``.  y_test: ``(N,)`` class ids.
        generator: seeds every random piece (default: seed 0). Each piece gets its own derived
            generator, so switching one piece off does not change the others' results.
        n_bins: ECE / reliability bins (default 15).
        corruptions: ``True`` (every corruption that supports the input's shape), a list of names
            (see :data:`mixkit.bench.eval.corruptions.CORRUPTIONS`), or ``False``.
        severities: corruption severities (default 1..5).
        fgsm_eps: FGSM budget in pixel units (default 8/255); ``None`` switches FGSM off.
        occlusion: whether to compute the occlusion curve (``occlusion_fractions``,
            ``occlusion_patch``, ``occlusion_fill`` as in :func:`occlusion_curve`).
        max_eval: cap on the robustness subset (default: the whole test set).

    Returns:
        A JSON-friendly dict with ``n``, ``top1``, ``nll``, ``brier``, ``ece``, ``n_bins``,
        ``reliability``, ``n_robust``, ``robust_top1``, ``corruption`` (per-corruption, per-severity
        accuracies, see :func:`~mixkit.bench.eval.corruptions.corruption_accuracy`),
        ``mean_corruption_acc``, ``fgsm_eps``, ``fgsm_acc``, ``occlusion`` (curve) and
        ``occlusion_auc``. Switched-off pieces are ``None``.
    """
    view = ModelView.of(model, normalize, mean=mean, std=std, batch_size=batch_size, device=device)
    check_x(x_test, "x_test")
    y_test = check_y(y_test, x_test.shape[0], "y_test")
    base = draw_seed(default_generator(generator))

    logits = view.predict(x_test)
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
        names = None if corruptions is True else list(corruptions)
        res = corruption_accuracy(view, xr, yr, None, severities, names, generator=_sub_generator(base, 2))
        out["corruption"] = res
        out["mean_corruption_acc"] = res["mean"]

    out["fgsm_eps"] = fgsm_eps
    out["fgsm_acc"] = None
    if fgsm_eps is not None:
        out["fgsm_acc"] = fgsm_accuracy(view, xr, yr, fgsm_eps)

    out["occlusion"] = out["occlusion_auc"] = None
    if occlusion:
        occ = occlusion_curve(
            view, xr, yr, None, occlusion_fractions,
            generator=_sub_generator(base, 3), patch=occlusion_patch, fill=occlusion_fill,
        )
        out["occlusion"] = occ
        out["occlusion_auc"] = occ["auc"]
    return out

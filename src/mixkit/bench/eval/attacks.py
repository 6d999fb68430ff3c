"""Adversarial robustness in pixel space: FGSM (Goodfellow et al. 2015) and L-inf PGD (Madry et al. 2018).

The input gradient is taken through the model's normalisation, so every budget (``eps``,
``alpha``) is in **pixel units**: 8/255 means 8 grey levels of an 8-bit image whatever the
dataset's std. The model runs in eval mode; its per-module training flags, parameter ``.grad``
tensors and ``requires_grad`` flags are left exactly as they were.

Every function takes the model as :meth:`~mixkit.bench.eval.model.ModelView.of` does: a
:class:`~mixkit.bench.eval.model.ModelView`, or an ``nn.Module`` plus ``normalize`` (or ``mean=`` /
``std=``), ``batch_size=`` (default 512) and ``device=``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_x, check_y, default_generator
from .model import ModelView, Normalize, eval_mode
from .scores import accuracy


def _input_gradient(view: ModelView, xb: Tensor, yb: Tensor) -> Tensor:
    """``d CE(model(norm(xb)), yb) / d xb`` in pixel space, without touching any parameter ``.grad``.

    ``torch.autograd.grad`` only returns the gradient of the requested input; it never accumulates
    into ``.grad`` of the parameters and leaves their ``requires_grad`` flags alone.
    """
    xg = xb.detach().to(device=view.device, dtype=view.dtype).requires_grad_(True)
    with torch.enable_grad():
        logits = view.forward(xg)
        loss = F.cross_entropy(logits.float(), yb.to(logits.device), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xg)
    return grad


def _check_eps(eps: float, name: str = "eps") -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (pixel units), got {eps}")
    return eps


def _setup(model: nn.Module | ModelView, x: Tensor, y: Tensor, normalize: Normalize | None,
           view_kw: dict[str, Any]) -> tuple[ModelView, Tensor]:
    view = ModelView.of(model, normalize, **view_kw)
    check_x(x)
    return view, check_y(y, x.shape[0])


def _fgsm_batch(view: ModelView, xb: Tensor, yb: Tensor, eps: float) -> Tensor:
    grad = _input_gradient(view, xb, yb)
    x0 = xb.to(device=view.device, dtype=view.dtype)
    return (x0 + eps * grad.sign()).clamp_(0.0, 1.0).detach()


def fgsm_attack(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    normalize: Normalize | None = None,
    **view_kw: Any,
) -> Tensor:
    """FGSM adversarial examples in pixel space (Goodfellow et al. 2015).

    ``x_adv = clamp(x + eps * sign(grad_x CE(model(normalize(x)), y)), 0, 1)``, batch by batch.

    Args:
        model, normalize, ``**view_kw``: the model as :meth:`ModelView.of` takes it (``mean``, ``std``,
            ``batch_size``, ``device``).
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        eps: L-inf budget in pixel units (default 8/255). ``eps = 0`` returns a copy of ``x``.

    Returns:
        ``(N, C, *spatial)`` adversarial inputs in ``[0, 1]``, on ``x``'s device and dtype.
    """
    eps = _check_eps(eps)
    view, y = _setup(model, x, y, normalize, view_kw)
    if eps == 0:
        return x.clone()
    out = []
    with eval_mode(view.model):
        for sl in view.spans(x.shape[0]):
            out.append(_fgsm_batch(view, x[sl], y[sl], eps).to(device=x.device, dtype=x.dtype))
    return torch.cat(out)


def fgsm_accuracy(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    normalize: Normalize | None = None,
    **view_kw: Any,
) -> float:
    """Top-1 accuracy under the FGSM attack of :func:`fgsm_attack` (pixel-space ``eps``, default 8/255).

    Batches are attacked and evaluated one at a time (no full adversarial copy of ``x`` is kept).
    ``eps = 0`` gives exactly ``accuracy(predict(model, x, ...), y)`` with the same ``batch_size``.
    """
    eps = _check_eps(eps)
    view, y = _setup(model, x, y, normalize, view_kw)
    if eps == 0:
        return accuracy(view.predict(x), y)
    correct = 0
    with eval_mode(view.model):
        for sl in view.spans(x.shape[0]):
            correct += view.n_correct(_fgsm_batch(view, x[sl], y[sl], eps), y[sl])
    return correct / x.shape[0]


def _pgd_batch(view: ModelView, xb: Tensor, yb: Tensor, eps: float, alpha: float, steps: int,
               random_start: bool, g: torch.Generator) -> Tensor:
    x0 = xb.detach().to(device=view.device, dtype=view.dtype)
    lo, hi = (x0 - eps).clamp(0.0, 1.0), (x0 + eps).clamp(0.0, 1.0)
    if random_start and eps > 0:
        noise = torch.rand(x0.shape, generator=g, device=g.device, dtype=torch.float32)
        noise = noise.to(device=view.device, dtype=view.dtype)
        x_adv = torch.minimum(torch.maximum(x0 + (2 * noise - 1) * eps, lo), hi)
    else:
        x_adv = x0.clone()
    for _ in range(steps):
        grad = _input_gradient(view, x_adv, yb)
        x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), lo), hi).detach()
    return x_adv


def pgd_attack(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    normalize: Normalize | None = None,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    **view_kw: Any,
) -> Tensor:
    """L-inf PGD adversarial examples in pixel space (Madry et al. 2018).

    Start at ``x + U(-eps, eps)`` (``random_start``, drawn from ``generator``; default seed 0),
    take ``steps`` signed-gradient steps of size ``alpha`` and project onto
    ``{x' : |x' - x|_inf <= eps, 0 <= x' <= 1}`` after each. The model is given and its state
    handled as in :func:`fgsm_attack`. Returns ``(N, C, *spatial)`` on ``x``'s device and dtype.
    """
    eps, alpha = _check_eps(eps), _check_eps(alpha, "alpha")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    view, y = _setup(model, x, y, normalize, view_kw)
    g = default_generator(generator)
    out = []
    with eval_mode(view.model):
        for sl in view.spans(x.shape[0]):
            x_adv = _pgd_batch(view, x[sl], y[sl], eps, alpha, steps, random_start, g)
            out.append(x_adv.to(device=x.device, dtype=x.dtype))
    return torch.cat(out)


def pgd_accuracy(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    normalize: Normalize | None = None,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    **view_kw: Any,
) -> float:
    """Top-1 accuracy under :func:`pgd_attack` (default: eps 8/255, step 2/255, 10 steps, random start)."""
    view = ModelView.of(model, normalize, **view_kw)
    x_adv = pgd_attack(view, x, y, eps, alpha, steps, random_start=random_start, generator=generator)
    return accuracy(view.predict(x_adv), y.cpu())

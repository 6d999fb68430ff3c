"""Input-gradient saliency shared by the saliency-guided mixers (PuzzleMix, Co-Mixup, ...).

PuzzleMix (Kim, Choo, Song, ICML 2020) and Co-Mixup (Kim, Choo, Jeong, Song, ICLR 2021) measure the
saliency of each input pixel as the channel-RMS of the gradient of the classification loss with
respect to the input, computed by one extra forward/backward pass of the model being trained. The
official scripts (``snu-mllab/PuzzleMix`` ``main.py``, ``snu-mllab/Co-Mixup`` ``main.py``) run that pass
with two behaviours selected by ``clean_lam``; :func:`input_gradient_saliency` reproduces both and
restores the model exactly as described below.

Contract of :func:`input_gradient_saliency` (what callers may rely on)
------------------------------------------------------------------------
``clean_lam == 0`` (PuzzleMix default):
    * every module of ``model`` is put in eval mode for the pass (BatchNorm uses its running
      statistics and does not update them; dropout is off), then each module's own ``training``
      flag is restored to what it was before the call (not blindly set to train, as the official
      ``model.train()`` does -- a module the caller froze in eval stays in eval);
    * only the input gradient is computed (``torch.autograd.grad`` w.r.t. the input), so the
      parameters' ``.grad`` are left exactly as they were (same tensor objects, same values; ``None``
      stays ``None``). The official code gets the same end state with ``optimizer.zero_grad()``,
      which also erases gradients the caller had accumulated; here they are preserved.
    * ``clean_loss`` is ``None``.
``clean_lam > 0`` ("clean input regularisation"; Co-Mixup default 1.0, PuzzleMix Tiny-ImageNet 1.0):
    * every module is put in train mode for the pass (BatchNorm uses batch statistics and updates
      its running statistics, as the official code does), then each module's flag is restored;
    * the loss ``clean_lam * 2 / K * mean_i CE(model(x_i), y_i)`` (``K`` = number of logits, the
      official ``2 * clean_lam * CE / num_classes`` scaling, which puts the clean CE on the scale of
      the official ``BCELoss(softmax(out), target)`` mixed loss) is back-propagated with
      ``backward()``: its gradient is **added** to the parameters' ``.grad`` and deliberately left
      there, to be summed with the gradient of the mixed loss (call ``optimizer.zero_grad()`` *before*
      the mixer, never between the mixer and ``loss.backward()``). The detached scaled loss is
      returned as ``clean_loss`` for logging.
In both cases the caller's ``x`` is never modified and gets no ``.grad``; the pass runs under
``torch.enable_grad()`` even if called inside ``torch.no_grad()``; nothing here calls an optimizer.

The saliency is ``(B, *spatial)`` float32 and non-negative:
    * ``reduce="l2"``: ``sqrt(mean_c g**2)``, the channel RMS of the input gradient ``g`` (the
      official PuzzleMix/Co-Mixup formula; equal to the channel L2 norm divided by ``sqrt(C)``);
    * ``reduce="abs_sum"``: ``sum_c |g|`` (the L1 variant);
    * ``reduce="abs_max"``: ``max_c |g|`` (Simonyan et al.'s saliency map).
Its overall scale depends on ``clean_lam`` and the loss; the mixers normalise it per sample.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SaliencyOutput", "input_gradient_saliency", "reduce_gradient", "classification_loss"]

_REDUCE = ("l2", "abs_sum", "abs_max")


class SaliencyOutput(NamedTuple):
    """Result of :func:`input_gradient_saliency`.

    Attributes:
        saliency: ``(B, *spatial)`` float32, detached, non-negative.
        clean_loss: detached scalar float32 tensor ``clean_lam * 2/K * mean CE`` when ``clean_lam > 0``
            (its gradient is in the parameters' ``.grad``), else ``None``.
        grad: ``(B, C, *spatial)`` detached input gradient (dtype of ``x``) when ``return_grad=True``
            (PuzzleMix's adversarial step uses its sign), else ``None``.
        logits: detached ``(B, K)`` logits of the pass when ``return_logits=True``, else ``None``.
    """

    saliency: Tensor
    clean_loss: Optional[Tensor]
    grad: Optional[Tensor] = None
    logits: Optional[Tensor] = None


def reduce_gradient(grad: Tensor, reduce: str = "l2") -> Tensor:
    """Reduce an input gradient ``(B, C, *spatial)`` over channels to a float32 ``(B, *spatial)`` map."""
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    g = grad.detach().float()
    if reduce == "l2":
        return g.square().mean(1).sqrt()
    if reduce == "abs_sum":
        return g.abs().sum(1)
    return g.abs().amax(1)


def classification_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample cross-entropy ``(B,)`` for class ids ``(B,)`` or probabilities / one-hot ``(B, K)``."""
    if y.dim() == 1:
        if y.is_floating_point():
            raise TypeError(f"class-id labels y must be an integer tensor, got dtype {y.dtype}")
        return F.cross_entropy(logits.float(), y.to(logits.device, torch.long), reduction="none")
    if y.dim() == 2:
        if y.shape[1] != logits.shape[1]:
            raise ValueError(f"y has {y.shape[1]} classes but the model returned {logits.shape[1]} logits")
        return F.cross_entropy(logits.float(), y.to(logits.device, torch.float32), reduction="none")
    raise ValueError(f"y must be class ids (B,) or probabilities (B, K), got shape {tuple(y.shape)}")


def _logits_of(out) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(f"the model must return a logits tensor (B, K) (or a tuple whose first item is), got {type(out).__name__}")


def input_gradient_saliency(model: nn.Module, x: Tensor, y: Tensor, clean_lam: float = 0.0,
                            reduce: str = "l2", *, forward: Optional[Callable[[Tensor], Tensor]] = None,
                            return_grad: bool = False, return_logits: bool = False) -> SaliencyOutput:
    """Saliency = reduced gradient of the classification loss w.r.t. the input (one forward+backward).

    Args:
        model: the classifier being trained; its modules' train/eval flags are set for the pass and
            restored afterwards; its ``.grad`` are untouched (``clean_lam == 0``) or receive the clean-loss
            gradient (``clean_lam > 0``). See the module docstring for the full contract.
        x: ``(B, C, *spatial)`` float input, as fed to the model (normalised). Not modified.
        y: class ids ``(B,)`` (int) or probabilities / one-hot ``(B, K)`` (soft-target CE).
        clean_lam: 0 (default) for the eval-mode pass that leaves no gradient; > 0 for the pass whose
            scaled clean loss ``clean_lam * 2/K * mean CE`` is back-propagated and kept, run in train mode
            when the model is in train mode (a model in eval mode stays in eval mode, so its BatchNorm
            statistics are never updated).
        reduce: ``"l2"`` (channel RMS, official), ``"abs_sum"`` or ``"abs_max"``.
        forward: callable used instead of ``model(x)`` for the forward pass (e.g. a wrapper); the
            train/eval flags are still taken from and restored on ``model``. For DistributedDataParallel
            pass the *underlying* module as ``model`` and leave ``forward=None``: the clean gradient left
            in ``.grad`` is then all-reduced together with the mixed-loss gradient by the next
            backward through the wrapper.
        return_grad: also return the raw input gradient (``SaliencyOutput.grad``).
        return_logits: also return the detached logits.

    Returns:
        :class:`SaliencyOutput` ``(saliency, clean_loss, grad, logits)``; unpack as
        ``sal, clean_loss, *_ = input_gradient_saliency(...)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 3:
        raise TypeError("x must be a floating-point tensor of shape (B, C, *spatial)")
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor of class ids (B,) or probabilities (B, K), got {type(y).__name__}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y has batch size {y.shape[0]} but x has {x.shape[0]}")
    clean_lam = float(clean_lam)
    if not clean_lam >= 0.0 or clean_lam == float("inf"):
        raise ValueError(f"clean_lam must be a finite number >= 0, got {clean_lam}")
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    run = model if forward is None else forward

    flags = [(m, m.training) for m in model.modules()]
    was_training = model.training
    xin = x.detach().clone().requires_grad_(True)
    try:
        model.train(clean_lam > 0 and was_training)  # a model in eval mode stays there: BN statistics untouched
        with torch.enable_grad():
            logits = _logits_of(run(xin))
            ce = classification_loss(logits, y)
            if clean_lam > 0:
                loss = ce.mean() * (2.0 * clean_lam / logits.shape[1])
                loss.backward()
                grad = xin.grad
                clean_loss = loss.detach()
            else:
                (grad,) = torch.autograd.grad(ce.mean(), xin)
                clean_loss = None
    finally:
        for m, t in flags:
            m.training = t
    if grad is None:  # the output does not depend on the input
        grad = torch.zeros_like(xin)
    grad = grad.detach()
    sal = reduce_gradient(grad, reduce)
    return SaliencyOutput(sal, clean_loss, grad if return_grad else None,
                          logits.detach() if return_logits else None)

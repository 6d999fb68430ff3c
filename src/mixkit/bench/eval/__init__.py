"""The benchmark's evaluation: accuracy, NLL, Brier, ECE / reliability, corruptions, FGSM / PGD, occlusion.

Every method in ``mixkit bench`` is scored by the same functions in this package, so the numbers are
comparable across methods. The trainer calls :func:`evaluate`; the pieces are public too.

Layout (each module imports only the ones above it in this list):

* ``checks``: argument checks (``x``, ``y``, batch size) and the default generator.
* ``model``: :class:`ModelView`, the model as the metrics see it (normalisation, batch size,
  device, dtype), its batched forward pass, eval mode; :func:`predict`, :func:`make_normalize`.
* ``scores``: :func:`accuracy`, :func:`nll`, :func:`brier`.
* ``calibration``: :func:`ece`, :func:`reliability`, :func:`plot_reliability`.
* ``attacks``: :func:`fgsm_attack`, :func:`fgsm_accuracy`, :func:`pgd_attack`, :func:`pgd_accuracy`.
* ``occlusion``: :func:`occlusion_order`, :func:`occlusion_mask`, :func:`occlusion_curve`.
* ``corruption_kernels`` (the corruption functions) and ``corruptions`` (their registry
  :data:`CORRUPTIONS`, :func:`corrupt`, :func:`corruption_accuracy`, :func:`corruption_error`).
* ``evaluate``: :func:`evaluate`, everything at once.

Conventions
-----------
* ``x`` holds samples in **pixel space**: a float tensor ``(N, C, *spatial)`` with values in
  ``[0, 1]`` (1 spatial dim for sequences ``(N, C, L)``, 2 for images ``(N, C, H, W)``). The model
  expects *normalised* input, so every function that runs it takes either a ``normalize`` callable
  or ``mean=`` / ``std=`` per-channel tuples (or a :class:`ModelView` that carries them), and
  applies the normalisation inside, right before the forward pass. Perturbations (FGSM, PGD,
  occlusion, corruptions) are therefore always defined in pixel units.
* ``y`` holds class ids ``(N,)`` (any integer dtype; used as int64).
* Logits are returned as float32 on the CPU; metrics are computed in float64.
* The model is put in eval mode for the evaluation (``torch.no_grad()`` except for the attacks,
  which need input gradients) and every submodule's previous ``training`` flag is restored afterwards,
  also when an exception is raised.
* Randomness (occlusion masks, PGD start, sub-sampling, corruptions) only comes from an explicit
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
  Perturbations", ICLR 2019 (corruptions, see :mod:`mixkit.bench.eval.corruptions`).
"""
from . import corruptions as _corruptions
from .attacks import fgsm_accuracy, fgsm_attack, pgd_accuracy, pgd_attack
from .calibration import ece, plot_reliability, reliability
from .corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    Corruption,
    CorruptionFn,
    available_corruptions,
    corrupt,
    corruption_accuracy,
    corruption_error,
)
from .evaluate import evaluate
from .model import ModelView, Normalize, make_normalize, predict
from .occlusion import DEFAULT_FRACTIONS, occlusion_curve, occlusion_mask, occlusion_order
from .scores import accuracy, brier, nll

__all__ = [
    "DEFAULT_FRACTIONS",
    "ModelView",
    "Normalize",
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
    *_corruptions.__all__,
]

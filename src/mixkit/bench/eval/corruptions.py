"""Common corruptions in pure torch, after CIFAR-10-C / ImageNet-C (Hendrycks & Dietterich, ICLR 2019).

Every corruption works on a batch ``x`` of shape ``(N, C, *spatial)`` in pixel space ``[0, 1]``
(1 spatial dim: sequences ``(N, C, L)``; 2: images ``(N, C, H, W)``), at five severities 1..5, and
returns a tensor of the same shape, dtype and device, clamped to ``[0, 1]``. All randomness comes
from the ``torch.Generator`` passed in (``None``: torch's global generator for the generator's
device); the random numbers are drawn on the generator's device and moved to ``x``'s device, so a
seeded CPU generator gives the same corruption on CPU and GPU. Computation runs in float32 for
half-precision inputs (float64 inputs stay float64).

The registry :data:`CORRUPTIONS` maps a name to a :class:`Corruption` (a callable
``f(x, severity, generator=None) -> x``) that declares which spatial ranks (``dims``) and channel
counts it supports; calling it on anything else raises ``ValueError``. The kernels themselves live
in :mod:`mixkit.bench.eval.corruption_kernels`; :func:`corruption_accuracy` runs them against a
model and :func:`corruption_error` compares two such results.

Parameters
----------
Where an original exists, the severity table is the **CIFAR-10-C** one from
``hendrycks/robustness`` (``ImageNet-C/create_c/make_cifar_c.py``), i.e. already scaled for 32x32
images; it is applied in pixels whatever the input size. Differences from the original:

* ``gaussian_blur``, ``defocus_blur``: replicate ("nearest") borders everywhere.
* ``motion_blur``: ImageMagick's one-sided Gaussian line kernel (taps at rounded offsets
  ``i * (cos a, sin a)``, weights ``exp(-i^2 / 2 sigma^2)``), truncated at ``4 sigma``; random angle
  ``U(-45, 45)`` degrees per sample.
* ``fog``: the diamond-square plasma fractal is replaced by Fourier noise with the same scaling
  law, min-max scaled to ``[0, 1]`` and added to every channel as in the original. The plasma's
  displacement at each octave is ``wibble * U(-wibble, wibble)`` with ``wibble`` divided by
  ``wibbledecay`` per octave, so its amplitude falls by ``wibbledecay ** 2`` per octave
  (Hurst exponent ``H = 2 log2(wibbledecay)``); spread over the ``~f ** d`` modes of an octave in
  ``d`` dimensions that is a per-mode amplitude spectrum ``f ** -(H + d / 2)``, which we use.
* ``brightness`` / ``saturate`` act on HSV value / saturation exactly (closed form, no HSV round
  trip). ``brightness`` generalises to any channel count (value = max over channels);
  ``saturate`` needs RGB (C == 3).
* Not from CIFAR-10-C (own parameters, documented on each kernel): ``elastic`` (smooth random
  displacement; the original is mostly a random affine), ``cutout``, ``quantize``, ``shift``.
* Not implemented: ``glass_blur``, ``snow``, ``frost`` (texture files), ``spatter``,
  ``jpeg_compression``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from . import corruption_kernels as kernels
from .checks import check_x, check_y, default_generator, draw_seed
from .model import ModelView, Normalize, eval_mode

__all__ = [
    "SEVERITIES",
    "Corruption",
    "CORRUPTIONS",
    "available_corruptions",
    "corrupt",
    "corruption_accuracy",
    "corruption_error",
]

#: The five severities of CIFAR-10-C / ImageNet-C.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

CorruptionFn = Callable[[Tensor, Any, "torch.Generator | None"], Tensor]


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """A named corruption with its severity table.

    Call it as ``corruption(x, severity, generator=None)``: ``x`` float ``(N, C, *spatial)`` in
    ``[0, 1]`` with ``len(spatial)`` in :attr:`dims` (and ``C == channels`` when set); ``severity``
    in 1..5. Returns a tensor of ``x``'s shape, dtype and device, clamped to ``[0, 1]``.

    Attributes:
        name: registry key.
        fn: ``fn(x, params[severity - 1], generator)``; ``x`` already in the compute dtype.
        params: one parameter per severity 1..5.
        dims: supported numbers of spatial dims.
        channels: required channel count (``None``: any).
        stochastic: whether the output depends on the generator.
        monotone: whether the distortion grows with severity (checked by the tests).
        description: one line for humans.
    """

    name: str
    fn: CorruptionFn = field(repr=False)
    params: tuple[Any, ...]
    dims: frozenset[int]
    channels: int | None = None
    stochastic: bool = True
    monotone: bool = True
    description: str = ""

    def supports(self, x: Tensor | Sequence[int]) -> bool:
        """Whether an input (or an input shape ``(N, C, *spatial)``) is supported."""
        shape = tuple(x.shape) if isinstance(x, Tensor) else tuple(x)
        if len(shape) < 3 or (len(shape) - 2) not in self.dims:
            return False
        return self.channels is None or shape[1] == self.channels

    def check(self, x: Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` naming what is wrong with ``x`` for this corruption."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.name}: x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{self.name}: x must be a float tensor in [0, 1], got dtype {x.dtype}")
        if x.ndim < 3 or (x.ndim - 2) not in self.dims:
            want = " or ".join(f"{d}" for d in sorted(self.dims))
            raise ValueError(
                f"{self.name} supports inputs (N, C, *spatial) with {want} spatial dim(s), got shape {tuple(x.shape)}"
            )
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(f"{self.name} needs {self.channels} channels (RGB), got shape {tuple(x.shape)}")

    def __call__(self, x: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
        self.check(x)
        sev = _check_severity(severity)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        out = self.fn(x.to(work), self.params[sev - 1], generator)
        return out.clamp(0.0, 1.0).to(x.dtype)


def _check_severity(severity: int) -> int:
    try:
        sev = int(severity)
    except (TypeError, ValueError):
        raise TypeError(f"severity must be an int in 1..5, got {severity!r}") from None
    if sev != severity or not 1 <= sev <= 5:
        raise ValueError(f"severity must be an int in 1..5, got {severity!r}")
    return sev


_D12 = frozenset({1, 2})
_D2 = frozenset({2})

#: name -> :class:`Corruption`. Parameter tables, severity 1..5.
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in [
        # --- noise (CIFAR-10-C tables) ---
        Corruption("gaussian_noise", kernels.gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10), _D12,
                   description="x + N(0, c^2); c = std"),
        Corruption("shot_noise", kernels.shot_noise, (500, 250, 100, 75, 50), _D12,
                   description="Poisson(x * c) / c; c = photons at full intensity"),
        Corruption("impulse_noise", kernels.impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07), _D12,
                   description="salt & pepper: each value set to 0 or 1 (1:1) with probability c"),
        Corruption("speckle_noise", kernels.speckle_noise, (0.06, 0.10, 0.12, 0.16, 0.20), _D12,
                   description="x + x * N(0, c^2)"),
        # --- blur ---
        Corruption("gaussian_blur", kernels.gaussian_blur, (0.4, 0.6, 0.7, 0.8, 1.0), _D12, stochastic=False,
                   description="separable Gaussian blur, c = sigma in px (truncate 4, replicate borders)"),
        Corruption("defocus_blur", kernels.defocus_blur,
                   ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)), _D12, stochastic=False,
                   description="disk (1-D: segment) kernel (radius px, 3-tap alias-blur sigma)"),
        Corruption("motion_blur", kernels.motion_blur, ((10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0)), _D2,
                   description="one-sided Gaussian line kernel (radius, sigma px), random angle U(-45, 45) deg"),
        Corruption("zoom_blur", kernels.zoom_blur, (7, 12, 16, 21, 26), _D2, stochastic=False,
                   description="mean of x and centre zooms 1.00, 1.01, ... (c = number of zoom factors)"),
        # --- weather / digital ---
        Corruption("contrast", kernels.contrast, (0.75, 0.5, 0.4, 0.3, 0.15), _D12, stochastic=False,
                   description="(x - m) * c + m, m = per-image, per-channel mean"),
        Corruption("brightness", kernels.brightness, (0.05, 0.1, 0.15, 0.2, 0.3), _D12, stochastic=False,
                   description="HSV value + c (any channel count; value = max over channels)"),
        Corruption("saturate", kernels.saturate, ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)), _D2,
                   channels=3, stochastic=False, monotone=False,
                   description="HSV saturation * a + b (RGB only; severities 1-2 desaturate, 3-5 saturate)"),
        Corruption("pixelate", kernels.pixelate, (0.95, 0.9, 0.85, 0.75, 0.65), _D12, stochastic=False,
                   description="PIL-BOX resize to int(size * c) per axis and back"),
        Corruption("elastic", kernels.elastic, ((0.4, 4.0), (0.6, 3.5), (0.8, 3.0), (1.0, 2.5), (1.2, 2.0)), _D2,
                   description="smooth random displacement (RMS px, smoothing sigma px; both for 32 px, scaled)"),
        Corruption("cutout", kernels.cutout, (0.04, 0.09, 0.16, 0.25, 0.36), _D12,
                   description="zero one random box covering share c of the input"),
        Corruption("fog", kernels.fog, ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)), _D12,
                   description="(x + a * fractal) * max / (max + a), fractal spectrum f^-(2 log2(decay) + d/2)"),
        Corruption("quantize", kernels.quantize, (5, 4, 3, 2, 1), _D12, stochastic=False,
                   description="uniform quantisation to 2^bits levels (c = bits)"),
        Corruption("shift", kernels.shift, (0.03, 0.06, 0.10, 0.15, 0.20), _D12,
                   description="translate by round(c * size) px per axis, random sign, zero fill"),
    ]
}


def available_corruptions(x: Tensor | Sequence[int]) -> list[str]:
    """Names of the corruptions in :data:`CORRUPTIONS` that support ``x`` (or its shape), in registry order."""
    return [name for name, c in CORRUPTIONS.items() if c.supports(x)]


def _lookup(name: str) -> Corruption:
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def corrupt(x: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply ``CORRUPTIONS[name]`` at ``severity`` (1..5) to ``x`` ``(N, C, *spatial)`` in ``[0, 1]``."""
    return _lookup(name)(x, severity, generator)


def _fnv1a(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def corruption_accuracy(
    model: nn.Module | ModelView,
    x: Tensor,
    y: Tensor,
    normalize: Normalize | None = None,
    severities: Sequence[int] = SEVERITIES,
    names: Sequence[str] | None = None,
    *,
    generator: torch.Generator | None = None,
    **view_kw: Any,
) -> dict[str, Any]:
    """Top-1 accuracy of ``model`` on corrupted copies of ``x`` for every corruption and severity.

    Batches are corrupted on the model's device and evaluated one at a time in eval mode. One base
    seed is drawn from ``generator`` (default: seed 0); each (corruption, severity) pair gets its
    own generator derived from it, so a pair's result does not depend on which other corruptions
    are evaluated. Results depend on ``batch_size`` only through the order random numbers are drawn.

    Args:
        model, normalize, ``**view_kw``: the model as :meth:`~mixkit.bench.eval.model.ModelView.of`
            takes it (``mean``, ``std``, ``batch_size``, ``device``); the normalisation is applied
            after corrupting.
        x: ``(N, C, *spatial)`` float in ``[0, 1]``.  y: ``(N,)`` class ids.
        severities: subset of 1..5 (default all).
        names: corruption names (default: every corruption in :data:`CORRUPTIONS` that supports
            ``x``'s spatial rank and channel count). An explicitly named unsupported corruption
            raises ``ValueError``.

    Returns:
        ``{"per": {name: {severity: acc}}, "per_corruption": {name: mean over severities},
        "mean": mean over all (name, severity) pairs, "names": [...], "severities": [...]}``.
    """
    view = ModelView.of(model, normalize, **view_kw)
    check_x(x)
    y = check_y(y, x.shape[0])
    sevs = [_check_severity(s) for s in severities]
    if not sevs:
        raise ValueError("severities must not be empty")
    if names is None:
        names = available_corruptions(x)
        if not names:
            raise ValueError(f"no corruption supports inputs of shape {tuple(x.shape)}")
    else:
        names = list(names)
        for name in names:
            _lookup(name).check(x[:1])
    base = draw_seed(default_generator(generator))
    per: dict[str, dict[int, float]] = {}
    with eval_mode(view.model), torch.no_grad():
        for name in names:
            cor = CORRUPTIONS[name]
            per[name] = {}
            for sev in sevs:
                g = torch.Generator().manual_seed((base ^ _fnv1a(f"{name}/{sev}")) % (2**63 - 1))
                correct = 0
                for sl in view.spans(x.shape[0]):
                    correct += view.n_correct(cor(x[sl].to(view.device), sev, g), y[sl])
                per[name][sev] = correct / x.shape[0]
    per_c = {name: sum(d.values()) / len(d) for name, d in per.items()}
    overall = sum(sum(d.values()) for d in per.values()) / sum(len(d) for d in per.values())
    return {"per": per, "per_corruption": per_c, "mean": overall, "names": list(names), "severities": sevs}


def corruption_error(
    result: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    clean_acc: float | None = None,
    baseline_clean_acc: float | None = None,
) -> dict[str, Any]:
    """Corruption error normalised by a baseline model (Hendrycks & Dietterich 2019, mCE).

    ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}`` with errors ``E = 1 - acc``, ``mCE = mean_c CE_c``
    over the corruptions present in both results (severities present in both). With both clean
    accuracies given, also the relative version ``(E_{s,c} - E_clean)`` in numerator and denominator.

    Args:
        result, baseline: outputs of :func:`corruption_accuracy` (or just their ``"per"`` dicts).

    Returns:
        ``{"ce": {name: CE_c}, "mce": float}`` (ratios; multiply by 100 for the paper's %), plus
        ``"relative_ce"`` / ``"relative_mce"`` when clean accuracies are given.
    """
    per = result.get("per", result)
    base = baseline.get("per", baseline)
    names = [n for n in per if n in base]
    if not names:
        raise ValueError("result and baseline share no corruption")
    ce: dict[str, float] = {}
    rel: dict[str, float] = {}
    for name in names:
        sevs = [s for s in per[name] if s in base[name]]
        num = sum(1 - per[name][s] for s in sevs)
        den = sum(1 - base[name][s] for s in sevs)
        ce[name] = num / den if den > 0 else math.inf
        if clean_acc is not None and baseline_clean_acc is not None:
            num_r = sum((1 - per[name][s]) - (1 - clean_acc) for s in sevs)
            den_r = sum((1 - base[name][s]) - (1 - baseline_clean_acc) for s in sevs)
            rel[name] = num_r / den_r if den_r != 0 else math.inf
    out: dict[str, Any] = {"ce": ce, "mce": sum(ce.values()) / len(ce)}
    if rel:
        out["relative_ce"] = rel
        out["relative_mce"] = sum(rel.values()) / len(rel)
    return out

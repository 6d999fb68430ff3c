"""The papers' analyses as functions on a trained model: robustness to minimal
adversarial and random perturbations, input gradients, calibration beyond ECE, class activation maps of
mixed samples, and the mutual-information analysis of the FMix paper (docs/analysis/index.md).

The submodules import what they need lazily; ``import mixkit.analysis`` needs only torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("robustness", "gradients", "calibration", "cam", "mutual_info", "efficiency", "transfer", "run")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))

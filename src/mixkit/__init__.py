"""mixkit: mixed-sample data augmentation for PyTorch, exact and vectorised.

``import mixkit`` needs only torch. The mixers, losses and integrations are imported with it; the other
submodules (``mixkit.viz``, ``mixkit.registry``, ``mixkit.bench``, ``mixkit.cli``, ``mixkit.timm``, ...)
are imported on first use as attributes (PEP 562), so ``mixkit.viz.show_grid`` works after a plain
``import mixkit`` and the optional dependencies of those modules load only then. See docs/design.md for
the contract every mixer keeps.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .losses import SoftTargetCrossEntropy, bce_on_softmax, bce_with_logits_soft, mixed_loss, soft_cross_entropy
from .integrations import MixCollate, MixTransform
from . import mixers as _mixers
from .mixers import *  # noqa: F401,F403 -- every mixer class: mixkit.mixers.__all__
from .learned import AdAutoMix, AutoMix, MixLearner
from .result import MixResult
from .labels import one_hot, smooth
from .targets import soft_targets

__version__ = "0.1.0"

__all__ = [
    "MixResult",
    *_mixers.__all__,
    "MixLearner",
    "AutoMix",
    "AdAutoMix",
    "MixCollate",
    "MixTransform",
    "soft_targets",
    "one_hot",
    "smooth",
    "mixed_loss",
    "soft_cross_entropy",
    "SoftTargetCrossEntropy",
    "bce_with_logits_soft",
    "bce_on_softmax",
    "__version__",
]


def _submodules() -> frozenset:
    """The public submodules of the package, read from its folder (so a new module is one on its own)."""
    return frozenset(m.name for m in _pkgutil.iter_modules(__path__)
                     if not m.name.startswith("_"))


def __getattr__(name: str):
    """``mixkit.<submodule>`` imports the submodule on first access (PEP 562)."""
    if name in _submodules():
        return _importlib.import_module(f".{name}", __name__)  # also sets it as an attribute of the package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _submodules())

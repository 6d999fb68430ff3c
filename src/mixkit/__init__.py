"""mixkit: mixed-sample data augmentation for PyTorch, exact and vectorised.

``import mixkit`` needs only torch. See docs/design.md for the contract every mixer keeps.
"""
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

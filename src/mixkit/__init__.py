"""mixkit: mixed-sample data augmentation for PyTorch, exact and vectorised.

``import mixkit`` needs only torch. See docs/design.md for the contract every mixer keeps.
"""
from .losses import SoftTargetCrossEntropy, bce_on_softmax, bce_with_logits_soft, mixed_loss, soft_cross_entropy
from .integrations import MixCollate, MixTransform
from .mixers import (Alternate, CoMixup, CutMix, DirichletMixUp, FMix, GMix, GridMix, HMix, ManifoldMixup, Mixer, MixParams,
                     MixUp, PatchUp, PuzzleMix, RandomChoice, ResizeMix, SaliencyMix, Scheduled, SmoothMix)
from .result import MixResult
from .labels import one_hot, smooth
from .targets import soft_targets

__version__ = "0.1.0"

__all__ = [
    "MixResult",
    "MixParams",
    "Mixer",
    "MixUp",
    "DirichletMixUp",
    "CutMix",
    "FMix",
    "HMix",
    "GMix",
    "SmoothMix",
    "ResizeMix",
    "GridMix",
    "ManifoldMixup",
    "PatchUp",
    "SaliencyMix",
    "CoMixup",
    "PuzzleMix",
    "RandomChoice",
    "Alternate",
    "Scheduled",
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

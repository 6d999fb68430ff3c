"""One module per method family; each mixer = sample params -> apply (no hidden state)."""
from .base import Mixer
from .cutmix import CutMix
from .dirichlet import DirichletMixUp
from .mixup import MixUp

__all__ = ["Mixer", "MixUp", "DirichletMixUp", "CutMix"]

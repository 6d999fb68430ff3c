"""One module per method family; each mixer = sample params -> apply (no hidden state)."""
from .base import Mixer
from .params import MixParams
from .comixup import CoMixup
from .compose import Alternate, RandomChoice, Scheduled
from .cutmix import CutMix
from .dirichlet import DirichletMixUp
from .fmix import FMix
from .gmix import GMix
from .hmix import HMix
from .gridmix import GridMix
from .manifold import ManifoldMixup
from .mixup import MixUp
from .patchup import PatchUp
from .puzzlemix import PuzzleMix
from .resizemix import ResizeMix
from .saliencymix import SaliencyMix
from .smoothmix import SmoothMix

__all__ = ["Mixer", "MixParams", "MixUp", "DirichletMixUp", "CutMix", "FMix", "HMix", "GMix", "SmoothMix", "ResizeMix", "GridMix", "ManifoldMixup", "PatchUp", "SaliencyMix", "CoMixup", "PuzzleMix",
           "RandomChoice", "Alternate", "Scheduled"]

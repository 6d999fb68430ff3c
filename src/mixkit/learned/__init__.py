"""Learned mixing: methods whose masks come from a generator trained jointly with the classifier.

* :class:`AutoMix` (Liu, Li et al., ECCV 2022): a Mix Block generates pixel masks for pairs.
* :class:`AdAutoMix` (Qin et al., ICLR 2024): a cross-attention generator mixes N images and is trained
  adversarially on every other iteration.

Both wrap any model returning logits, own its EMA teacher and their generator, and run in any loop::

    learner = AdAutoMix(model, feature_layer="layer3", total_steps=epochs * len(loader))
    opt = torch.optim.SGD(learner.param_groups(lr=0.1), momentum=0.9, weight_decay=1e-4)
    for x, y in loader:
        out = learner(x, y)              # LearnerOutput: .loss, .terms, .mixed, .generated, ...
        opt.zero_grad(); out.loss.backward(); opt.step()
        learner.update_teacher()         # EMA with the cosine momentum schedule

``learner.mix(x)`` returns the generator's :class:`~mixkit.MixResult` without training anything.
"""
from .adautomix import AdAutoMix
from .automix import AutoMix
from .base import MixLearner
from .output import LearnerOutput
from .generator import AdaptiveMask
from .mixblock import PixelMixBlock
from .schedule import CosineMomentum, cosine_momentum

__all__ = ["MixLearner", "LearnerOutput", "AutoMix", "AdAutoMix", "PixelMixBlock", "AdaptiveMask",
           "CosineMomentum", "cosine_momentum"]

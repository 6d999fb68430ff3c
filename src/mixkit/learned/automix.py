"""AutoMix (Liu, Li et al., ECCV 2022): a Mix Block, trained through an EMA teacher, generates the
mask for every pair; the classifier trains on the generated mixes and on the clean batch.

One step (official ``AutoMixup.forward_train``, CIFAR settings)::

    λ_mb, λ_bb ~ Beta(α, α);  j_mb, j_bb random permutations    separate draws for the two branches
    f = teacher_features(x)                                       the feature layer's output, no gradient
    M_mb = mix_block(f, j_mb, λ_mb)                               gradient flows into the mix block
    M_bb = mix_block(f, j_bb, λ_bb).detach()                      the classifier's mask: no gradient
    if λ_margin >= λ_bb or λ_margin >= 1 - λ_bb:  M_bb = [λ_bb, 1 - λ_bb] everywhere   (plain MixUp)
    x_mb = M_mb[0] x + M_mb[1] x[j_mb];   x_bb = M_bb[0] x + M_bb[1] x[j_bb]
    L = w_mix_q mixCE(model(x_bb), y, y[j_bb], λ_bb)              the classifier on generated mixes
      + w_one_q CE(model(x), y)                                   the classifier on the clean batch
      + w_mix_k mixCE(teacher(x_mb), y, y[j_mb], λ_mb)            trains the mix block only (teacher frozen)
      + mask_loss * max(|1 - mean(M_mb[1]) - λ_mb| - margin, 0)   mask-area loss ("L1")
    mixCE(o, a, b, λ) = λ CE(o, a) + (1 - λ) CE(o, b)             the label weight is the SAMPLED λ

then ``optimizer.step()`` and the EMA update of the teacher (:meth:`MixLearner.update_teacher`).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .. import sampling
from .base import MixLearner
from .ops import blend, mixed_ce
from .output import Draws, LearnerOutput, make_result
from .mixblock import PixelMixBlock

__all__ = ["AutoMix"]


class AutoMix(MixLearner):
    """AutoMix on any model: ``out = learner(x, y)`` gives the step's loss; ``learner.mix(x)`` the masks.

    Args:
        model: the classifier, any ``nn.Module`` returning logits ``(B, K)``; trained by your optimizer.
        feature_layer: dotted name of the module whose output ``(B, C, *spatial)`` feeds the mix block
            (official: ResNet stage 3, ``"layer3"``; 8x8 at 32 px for the CIFAR ResNets).
        num_classes: checked against the logits when given (else taken from them).
        in_channels: channels of the feature map (default: guessed from the layer's last conv/norm).
        alpha: λ ~ Beta(α, α) (official CIFAR 2.0).
        momentum, end_momentum: the EMA momentum ``m0 -> m_end`` (0.999 -> 0.999999).
        total_steps: number of training iterations, for the cosine momentum schedule (or
            :meth:`set_total_steps`); ``momentum_schedule``: an explicit ``step -> m`` instead.
        lam_margin: plain-MixUp fallback for the classifier when λ_bb or 1-λ_bb <= lam_margin (0.08).
        mask_loss, mask_loss_margin: weight and margin of the mask-area loss (0.1, 0.1).
        lam_concat: the λ channel in the mix block (False on CIFAR, True on ImageNet).
        x_qk_concat: query/key on the concatenated pair with a separate key conv (False).
        reduction, use_scale: mix-block attention width ``C/reduction`` and ``1/sqrt`` scaling (2, True).
        unsampling_mode: ``"nearest"`` (CIFAR), ``"bilinear"``, ``"bicubic"`` or a list to draw from per call.
        scale_factor: optional check that ``feature size * scale_factor`` is the input size; the mask is
            always upsampled to the input's spatial size.
        head_weights: ``{"head_mix_q", "head_one_q", "head_mix_k"}`` loss weights (all 1); 0 skips that pass.
        label: ``"sampled"`` (official: label weights = sampled λ) or ``"realised"`` (the mask means).
    """

    name = "automix"
    aliases = ("auto_mix",)
    defaults = {"feature_layer": "layer3", "alpha": 2.0, "momentum": 0.999, "end_momentum": 0.999999,
                "lam_margin": 0.08, "mask_loss": 0.1, "mask_loss_margin": 0.1, "lam_concat": False,
                "x_qk_concat": False, "reduction": 2, "use_scale": True, "unsampling_mode": "nearest",
                "scale_factor": None, "label": "sampled"}
    summary = "learned pixel masks for pairs from an attention Mix Block trained through an EMA teacher"
    paper = "Liu, Li et al., AutoMix: Unveiling the Power of Mixup for Stronger Classifiers, ECCV 2022"

    def __init__(self, model: nn.Module, feature_layer: str = "layer3", num_classes: Optional[int] = None, *,
                 in_channels: Optional[int] = None, alpha: float = 2.0, momentum: float = 0.999,
                 end_momentum: float = 0.999999, total_steps: Optional[int] = None,
                 momentum_schedule: Optional[Callable[[int], float]] = None, lam_margin: float = 0.08,
                 mask_loss: float = 0.1, mask_loss_margin: float = 0.1, lam_concat: bool = False,
                 x_qk_concat: bool = False, reduction: int = 2, use_scale: bool = True,
                 unsampling_mode: Union[str, Sequence[str]] = "nearest", scale_factor: Optional[float] = None,
                 head_weights: Optional[Dict[str, float]] = None, label: str = "sampled") -> None:
        super().__init__(model, feature_layer, in_channels=in_channels, momentum=momentum, end_momentum=end_momentum,
                         total_steps=total_steps, momentum_schedule=momentum_schedule, head_weights=head_weights,
                         label=label, num_classes=num_classes, unsampling_mode=unsampling_mode,
                         scale_factor=scale_factor)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not 0.0 <= lam_margin < 1.0:
            raise ValueError(f"lam_margin must lie in [0, 1), got {lam_margin}")
        if mask_loss < 0 or mask_loss_margin < 0:
            raise ValueError(f"mask_loss and mask_loss_margin must be >= 0, got {mask_loss}, {mask_loss_margin}")
        self.alpha = float(alpha)
        self.lam_margin = float(lam_margin)
        self.mask_loss = float(mask_loss)
        self.mask_loss_margin = float(mask_loss_margin)
        self.mix_block = PixelMixBlock(self.in_channels, reduction, use_scale, lam_concat, x_qk_concat)

    # ------------------------------------------------------------------ draws and masks
    def _n_sources(self) -> int:
        return 2

    def _draw(self, b: int, device: torch.device, generator: Optional[torch.Generator]) -> Draws:
        lam_mb, lam_bb = sampling.sample_beta(self.alpha, self.alpha, (2,), generator, dtype=torch.float64).tolist()
        idx_bb = sampling.k_way_index(b, 2, generator).to(device)
        idx_mb = sampling.k_way_index(b, 2, generator).to(device)
        return Draws([lam_mb, 1.0 - lam_mb], [lam_bb, 1.0 - lam_bb], idx_mb, idx_bb)

    def _masks(self, feat: Tensor, index: Tensor, w: Sequence[float], size, mode: str) -> Tensor:
        return self.mix_block(feat, index, w, size, mode, self.scale_factor)

    def _extreme(self, w: Sequence[float]) -> bool:
        return self.lam_margin >= w[0] or self.lam_margin >= 1.0 - w[0]

    # ------------------------------------------------------------------ one step
    def _step(self, x: Tensor, y: Tensor, t: int, generator: Optional[torch.Generator]) -> LearnerOutput:
        d = self._draw(x.shape[0], x.device, generator)
        feat, t_logits = self.teacher_pass(x)
        self._check_classes(y, t_logits)
        size = x.shape[2:]
        m_mb = self._masks(feat, d.idx_mb, d.w_mb, size, self._mode(generator))
        m_bb = self._masks(feat, d.idx_bb, d.w_bb, size, self._mode(generator)).detach()
        fell_back = self._extreme(d.w_bb)
        if fell_back:
            m_bb = self._plain(m_bb, d.w_bb)
        x_mb, x_bb = blend(x, d.idx_mb, m_mb), blend(x, d.idx_bb, m_bb)
        hw = self.head_weights
        terms: Dict[str, Tensor] = {}
        logits: Dict[str, Tensor] = {"teacher_clean": t_logits}
        if hw["head_one_q"] > 0:  # the clean pass first, as the official forward_q
            out = self.model(x)
            terms["one_q"] = mixed_ce(out, y, d.idx_bb[:, :1], [1.0])
            logits["clean"] = out.detach()
        if hw["head_mix_q"] > 0:
            out = self.model(x_bb)
            terms["mix_q"] = mixed_ce(out, y, d.idx_bb, self._label_weights(d.w_bb, m_bb))
            logits["mixed"] = out.detach()
        if hw["head_mix_k"] > 0:
            out = self.teacher(x_mb)
            terms["mix_k"] = mixed_ce(out, y, d.idx_mb, self._label_weights(d.w_mb, m_mb))
            logits["teacher_generated"] = out.detach()
        if self.mask_loss > 0:
            area = (1.0 - m_mb[:, 1].mean() - d.w_mb[0]).abs() - self.mask_loss_margin
            terms["mask"] = area.clamp(min=0.0)
        weights = {"mix_q": hw["head_mix_q"], "one_q": hw["head_one_q"], "mix_k": hw["head_mix_k"],
                   "mask": self.mask_loss}
        loss = self._total(terms, weights, x)
        return LearnerOutput(loss=loss, terms=terms, mixed=make_result(x_bb, d.idx_bb, m_bb, d.w_bb, fallback=fell_back),
                             generated=make_result(x_mb, d.idx_mb, m_mb, d.w_mb), logits=logits, step=t,
                             fallback=fell_back)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", alpha={self.alpha}, lam_margin={self.lam_margin}, mask_loss={self.mask_loss}, "
                f"mask_loss_margin={self.mask_loss_margin}")

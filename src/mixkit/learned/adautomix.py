"""AdAutoMix (Qin, Jin, Jiang, El-Yacoubi, Gao, ICLR 2024): a cross-attention generator mixes N images;
it is trained through an EMA teacher, adversarially (to make the mix hard) on every other iteration.

One step (official ``AdAutoMix.forward_train``; N = ``mix_samples``, CIFAR N = 3)::

    N > 2:  λ = (β_1 .. β_N) / sum,  β_i ~ Beta(α, α) i.i.d.      one draw for both branches
    N = 2:  λ_mb, λ_bb ~ Beta(α, α)                               separate draws, as AutoMix
    I_mb, I_bb: N source indices each (column 0 the batch itself, the rest random permutations)
    f = teacher_features(x)
    M_mb = G(f[I_mb], λ);  M_bb = G(f[I_bb], λ).detach()          per-pixel softmax over the N sources
    if lam_margin >= λ_0 or lam_margin > 1 - λ_0:  M_bb[:, i] = λ_i   (N = 2: >= on both sides)
    x_mb = sum_i M_mb[:, i] x[I_mb_i];   x_bb = sum_i M_bb[:, i] x[I_bb_i]
    L_one  = CE(model(x), y);   N > 2: L_one = (1 - r) L_one + r coCE(model(sum_i λ_i x[I_bb_i]), I_bb)
    L_mixq = coCE(model(x_bb), I_bb)
    ℓ_k    = coCE(teacher(x_mb), I_mb)                          gradient only into the generator
    cos    = mean_b sum_i λ_i cos_sim(teacher(x_mb), teacher(x[I_mb_i]))      on logits
    L_gen  = -β ℓ_k + s (1 - β) cos   if step is even (adversarial)
             ℓ_k                       if step is odd  (cooperative)
    L = w_mix_q L_mixq + w_one_q L_one + w_mix_k L_gen;  coCE(o, I) = sum_i λ_i CE(o, y[I_i])

``r = mixup_radio`` (0.5), ``β = beta_radio`` (0.3), ``s = cos_sign``: +1 as the official code (the
minimised loss *adds* the cosine term, so adversarial steps push the mixed logits away from the sources'
logits), -1 to pull them together instead. The teacher logits of the sources are taken from the one
clean teacher pass (``teacher(x)[I_i]``, the same numbers as ``teacher(x[I_i])`` up to float rounding of
BatchNorm's batch statistics over a permuted batch) instead of N more teacher passes.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import sampling
from .base import MixLearner
from .ops import blend, mixed_ce
from .output import Draws, LearnerOutput, make_result
from .generator import AdaptiveMask

__all__ = ["AdAutoMix"]

LAM_DISTS = ("normalized_beta", "dirichlet")


class AdAutoMix(MixLearner):
    """AdAutoMix on any model: ``out = learner(x, y)`` gives the step's loss; ``learner.mix(x)`` the masks.

    Args:
        model, feature_layer, num_classes, in_channels, momentum, end_momentum, total_steps,
        momentum_schedule, reduction, use_scale, scale_factor, head_weights, label: as :class:`AutoMix`.
        mix_samples: N, the number of images per mixed sample (official CIFAR 3; ImageNet 2).
        alpha: Beta concentration (1.0).
        lam_margin: plain-mixing fallback for the classifier at extreme λ_0 (0.03).
        mixup_radio: weight ``r`` of the N-way linear-mixup term inside the clean loss (0.5; N > 2 only).
        beta_radio: ``β`` of the adversarial generator objective (0.3 on CIFAR-100; Tiny-ImageNet 0.4,
            ImageNet 0.1).
        cos_sign: sign of the cosine term in the adversarial objective (+1 = official code).
        lam_dist: ``"normalized_beta"`` (official: i.i.d. Betas divided by their sum) or ``"dirichlet"``
            (a true Dirichlet(α, ..., α)); N > 2 only.
        lam_concat: the λ channel in the generator (False on CIFAR / Tiny-ImageNet ResNets).
        unsampling_mode: ``"bilinear"`` (CIFAR R18 config), ``"nearest"``, ``"bicubic"``, or a list.
    """

    name = "adautomix"
    aliases = ("adauto_mix", "ad_automix")
    defaults = {"feature_layer": "layer3", "mix_samples": 3, "alpha": 1.0, "momentum": 0.999,
                "end_momentum": 0.999999, "lam_margin": 0.03, "mixup_radio": 0.5, "beta_radio": 0.3,
                "cos_sign": 1.0, "lam_dist": "normalized_beta", "lam_concat": False, "reduction": 2,
                "use_scale": True, "unsampling_mode": "bilinear", "scale_factor": None, "label": "sampled"}
    summary = "learned N-image masks from a cross-attention generator trained adversarially through an EMA teacher"
    paper = "Qin et al., Adversarial AutoMixup, ICLR 2024"

    def __init__(self, model: nn.Module, feature_layer: str = "layer3", num_classes: Optional[int] = None, *,
                 in_channels: Optional[int] = None, mix_samples: int = 3, alpha: float = 1.0,
                 momentum: float = 0.999, end_momentum: float = 0.999999, total_steps: Optional[int] = None,
                 momentum_schedule: Optional[Callable[[int], float]] = None, lam_margin: float = 0.03,
                 mixup_radio: float = 0.5, beta_radio: float = 0.3, cos_sign: float = 1.0,
                 lam_dist: str = "normalized_beta", lam_concat: bool = False, reduction: int = 2,
                 use_scale: bool = True, unsampling_mode: Union[str, Sequence[str]] = "bilinear",
                 scale_factor: Optional[float] = None, head_weights: Optional[Dict[str, float]] = None,
                 label: str = "sampled") -> None:
        super().__init__(model, feature_layer, in_channels=in_channels, momentum=momentum, end_momentum=end_momentum,
                         total_steps=total_steps, momentum_schedule=momentum_schedule, head_weights=head_weights,
                         label=label, num_classes=num_classes, unsampling_mode=unsampling_mode,
                         scale_factor=scale_factor)
        if isinstance(mix_samples, bool) or not isinstance(mix_samples, int) or mix_samples < 2:
            raise ValueError(f"mix_samples must be an int >= 2, got {mix_samples!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not 0.0 <= lam_margin < 1.0:
            raise ValueError(f"lam_margin must lie in [0, 1), got {lam_margin}")
        for nm, v in (("mixup_radio", mixup_radio), ("beta_radio", beta_radio)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{nm} must lie in [0, 1], got {v}")
        if lam_dist not in LAM_DISTS:
            raise ValueError(f"lam_dist must be one of {LAM_DISTS}, got {lam_dist!r}")
        self.mix_samples = mix_samples
        self.alpha = float(alpha)
        self.lam_margin = float(lam_margin)
        self.mixup_radio = float(mixup_radio)
        self.beta_radio = float(beta_radio)
        self.cos_sign = float(cos_sign)
        self.lam_dist = lam_dist
        self.mix_block = AdaptiveMask(self.in_channels, reduction, use_scale, lam_concat)

    # ------------------------------------------------------------------ draws and masks
    def _n_sources(self) -> int:
        return self.mix_samples

    def is_adversarial(self, step: int) -> bool:
        """Whether iteration ``step`` is an adversarial one (even steps, as the official ``iter % 2 == 0``)."""
        return step % 2 == 0

    def _draw(self, b: int, device: torch.device, generator: Optional[torch.Generator]) -> Draws:
        n = self.mix_samples
        if n == 2:
            lam_mb, lam_bb = sampling.sample_beta(self.alpha, self.alpha, (2,), generator, dtype=torch.float64).tolist()
            w_mb, w_bb = [lam_mb, 1.0 - lam_mb], [lam_bb, 1.0 - lam_bb]
        else:
            draw = sampling.sample_normalized_betas if self.lam_dist == "normalized_beta" else sampling.sample_dirichlet
            w_mb = w_bb = draw(self.alpha, n, (), generator).tolist()
        idx_mb = sampling.k_way_index(b, n, generator).to(device)
        idx_bb = sampling.k_way_index(b, n, generator).to(device)
        return Draws(list(w_mb), list(w_bb), idx_mb, idx_bb)

    def _masks(self, feat: Tensor, index: Tensor, w: Sequence[float], size, mode: str) -> Tensor:
        return self.mix_block(feat, index, w, size, mode, self.scale_factor)

    def _extreme(self, w: Sequence[float]) -> bool:
        if self.mix_samples == 2:
            return self.lam_margin >= w[0] or self.lam_margin >= 1.0 - w[0]
        return self.lam_margin >= w[0] or self.lam_margin > 1.0 - w[0]

    # ------------------------------------------------------------------ one step
    def _step(self, x: Tensor, y: Tensor, t: int, generator: Optional[torch.Generator]) -> LearnerOutput:
        d = self._draw(x.shape[0], x.device, generator)
        feat, t_logits = self.teacher_pass(x)
        self._check_classes(y, t_logits)
        size = x.shape[2:]
        mode = self._mode(generator)
        m_mb = self._masks(feat, d.idx_mb, d.w_mb, size, mode)
        m_bb = self._masks(feat, d.idx_bb, d.w_bb, size, mode).detach()
        fell_back = self._extreme(d.w_bb)
        if fell_back:
            m_bb = self._plain(m_bb, d.w_bb)
        x_mb, x_bb = blend(x, d.idx_mb, m_mb), blend(x, d.idx_bb, m_bb)
        hw, r, n = self.head_weights, self.mixup_radio, self.mix_samples
        terms: Dict[str, Tensor] = {}
        logits: Dict[str, Tensor] = {"teacher_clean": t_logits}
        one = None
        if hw["head_one_q"] > 0:
            out = self.model(x)
            terms["one_q"] = one = mixed_ce(out, y, d.idx_bb[:, :1], [1.0])
            logits["clean"] = out.detach()
            if n > 2 and r > 0:  # the N-way linear mixup, inside the clean term
                x_lin = blend(x, d.idx_bb, self._plain(m_bb[:1], d.w_bb))
                out = self.model(x_lin)
                terms["linear_q"] = mixed_ce(out, y, d.idx_bb, d.w_bb)
                logits["linear"] = out.detach()
                one = (1.0 - r) * terms["one_q"] + r * terms["linear_q"]
        if hw["head_mix_q"] > 0:
            out = self.model(x_bb)
            terms["mix_q"] = mixed_ce(out, y, d.idx_bb, self._label_weights(d.w_bb, m_bb))
            logits["mixed"] = out.detach()
        adversarial = self.is_adversarial(t)
        if hw["head_mix_k"] > 0:
            out = self.teacher(x_mb)
            w_k = self._label_weights(d.w_mb, m_mb)
            terms["mix_k"] = mixed_ce(out, y, d.idx_mb, w_k)
            terms["cos"] = self._cosine(out, t_logits, d.idx_mb, w_k)
            logits["teacher_generated"] = out.detach()
            if adversarial:
                b = self.beta_radio
                terms["gen"] = -b * terms["mix_k"] + self.cos_sign * (1.0 - b) * terms["cos"]
            else:
                terms["gen"] = terms["mix_k"]
        parts = dict(terms)
        if one is not None:
            parts["one"] = one
        loss = self._total(parts, {"mix_q": hw["head_mix_q"], "one": hw["head_one_q"], "gen": hw["head_mix_k"]}, x)
        return LearnerOutput(loss=loss, terms=terms, mixed=make_result(x_bb, d.idx_bb, m_bb, d.w_bb, fallback=fell_back),
                             generated=make_result(x_mb, d.idx_mb, m_mb, d.w_mb), logits=logits, step=t,
                             fallback=fell_back, adversarial=adversarial)

    @staticmethod
    def _cosine(mixed_logits: Tensor, src_logits: Tensor, index: Tensor, w) -> Tensor:
        """``mean_b sum_i w_i cos_sim(mixed_b, src[index[b, i]])`` on logits (``w``: ``(N,)`` or ``(B, N)``)."""
        mixed_logits = mixed_logits.float()
        total = None
        for i in range(index.shape[1]):
            c = F.cosine_similarity(mixed_logits, src_logits[index[:, i]].float(), dim=-1)
            c = c * (w[:, i] if isinstance(w, Tensor) else float(w[i]))
            total = c if total is None else total + c
        return total.mean()

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", mix_samples={self.mix_samples}, alpha={self.alpha}, "
                f"lam_margin={self.lam_margin}, mixup_radio={self.mixup_radio}, beta_radio={self.beta_radio}, "
                f"cos_sign={self.cos_sign}, lam_dist={self.lam_dist!r}")

"""What AutoMix and AdAutoMix share: the :class:`MixLearner` base (model, EMA teacher, feature hook, step
counter, momentum schedule, state, parameter groups, ``forward`` and ``mix``).

Design (how the official two-network code maps onto one model)
--------------------------------------------------------------
The official code has a trained classifier ``backbone_q`` with two linear heads (``head_one_q`` for
the clean loss, ``head_mix_q`` for the mixed losses), an EMA teacher ``backbone_k`` with EMA heads
``head_one_k``/``head_mix_k``, and the mask generator ``mix_block``. Here the classifier is the
user's ``model`` (any ``nn.Module`` returning logits) with its own single classifier layer: both the
clean and the mixed losses use it, so ``head_one_q`` and ``head_mix_q`` are the same layer. The teacher
is a deep copy of the whole model (its classifier layer plays ``head_mix_k``), updated by EMA of all
parameters after every iteration, never by gradients (``requires_grad=False``). The teacher's buffers
(BatchNorm statistics) are not averaged: as in the official code they evolve with the teacher's own
train-mode forwards.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import sampling
from ..hooks import LayerNotReachedError, get_module
from ..result import MixResult
from .layers import check_modes
from .ops import blend, preserved_buffers
from .output import Draws, LearnerOutput, make_result, shares
from .schedule import CosineMomentum

__all__ = ["MixLearner"]

LABEL_RULES = ("sampled", "realised")
_HEAD_KEYS = ("head_mix_q", "head_one_q", "head_mix_k")


# ----------------------------------------------------------------------------------- feature tap
class _FirstOutput:
    """Forward hook that keeps (a copy of) the first tensor output of a module, from its first call."""

    def __init__(self) -> None:
        self.value: Optional[Tensor] = None

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.value is not None:
            return
        if isinstance(output, Tensor):
            value = output
        elif isinstance(output, (tuple, list)):
            value = next((o for o in output if isinstance(o, Tensor)), None)
        else:
            value = None
        if value is None:
            raise TypeError(f"the feature layer returned a {type(output).__name__} without a tensor")
        self.value = value.detach().clone()  # a copy: later in-place ops of the model cannot change it


def infer_channels(module: nn.Module) -> Optional[int]:
    """Output channels of a feature layer guessed from its last conv / norm submodule (``None`` if none)."""
    found = None
    for m in module.modules():
        for attr in ("out_channels", "num_features", "num_channels"):
            v = getattr(m, attr, None)
            if isinstance(v, int) and not isinstance(v, bool):
                found = v
                break
    return found


# ----------------------------------------------------------------------------------- base class
class MixLearner(nn.Module):
    """Base class of the learned mixers: a model, its EMA teacher and a trainable mask generator.

    Subclasses set ``self.mix_block`` and implement ``_draw``, ``_masks``, ``_extreme`` and ``_step``.
    Class attributes describe the method for the registry (neutral defaults here).
    """

    name: Optional[str] = None
    aliases: Tuple[str, ...] = ()
    defaults: Dict[str, Any] = {}
    needs_model: bool = True
    saliency_guided: bool = False
    spatial_dims: Tuple[int, ...] = (1, 2, 3)
    summary: str = ""
    paper: str = ""
    learned: bool = True

    def __init__(self, model: nn.Module, feature_layer: str, *, in_channels: Optional[int], momentum: float,
                 end_momentum: float, total_steps: Optional[int], momentum_schedule: Optional[Callable[[int], float]],
                 head_weights: Optional[Dict[str, float]], label: str, num_classes: Optional[int],
                 unsampling_mode: Union[str, Sequence[str]], scale_factor: Optional[float]) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.teacher = copy.deepcopy(model)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
            p.grad = None
        if not isinstance(feature_layer, str):
            raise TypeError(f"feature_layer must be a dotted module name (str), got {type(feature_layer).__name__}")
        layer = get_module(self.teacher, feature_layer)  # UnknownLayerError with close matches
        self.feature_layer = feature_layer
        if in_channels is None:
            in_channels = infer_channels(layer)
            if in_channels is None:
                raise ValueError(f"cannot infer the channels of feature layer {feature_layer!r}: pass in_channels=...")
        self.in_channels = int(in_channels)
        weights = dict.fromkeys(_HEAD_KEYS, 1.0)
        for k, v in (head_weights or {}).items():
            if k not in weights:
                raise ValueError(f"unknown head weight {k!r}; the keys are {', '.join(_HEAD_KEYS)}")
            if float(v) < 0:
                raise ValueError(f"head weight {k} must be >= 0, got {v}")
            weights[k] = float(v)
        self.head_weights = weights
        label = "realised" if label == "realized" else label
        if label not in LABEL_RULES:
            raise ValueError(f"label must be 'sampled' (official) or 'realised', got {label!r}")
        self.label = label
        if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 1):
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.unsampling_mode = check_modes(unsampling_mode)
        self.scale_factor = None if scale_factor is None else float(scale_factor)
        self.momentum = float(momentum)
        self.end_momentum = float(end_momentum)
        self._schedule = CosineMomentum(self.momentum, self.end_momentum, total_steps)
        if momentum_schedule is not None and not callable(momentum_schedule):
            raise TypeError("momentum_schedule must be a callable step -> momentum")
        self._custom_schedule = momentum_schedule
        self.step = 0

    # ------------------------------------------------------------------ optimisation
    def trainable_parameters(self) -> List[nn.Parameter]:
        """The model's parameters, then the mix block's (``parameters()`` also lists the frozen teacher's,
        which never get a gradient and are skipped by torch optimizers)."""
        return list(self.model.parameters()) + list(self.mix_block.parameters())

    def param_groups(self, lr: float, mix_block_lr: Optional[float] = None, **group: Any) -> List[Dict[str, Any]]:
        """Two optimizer groups: the model at ``lr`` and the mix block at ``mix_block_lr`` (default ``lr``).

        Extra keywords (``momentum``, ``weight_decay``, ...) go into both groups. The official CIFAR configs
        train the mix block with the classifier's SGD settings; ImageNet configs give it its own lr.
        """
        mb = lr if mix_block_lr is None else mix_block_lr
        return [dict(group, params=list(self.model.parameters()), lr=lr),
                dict(group, params=list(self.mix_block.parameters()), lr=mb)]

    # ------------------------------------------------------------------ EMA teacher
    def set_total_steps(self, total_steps: int) -> None:
        """The number of training iterations, for the default cosine momentum schedule."""
        self._schedule.set_total_steps(total_steps)

    @property
    def total_steps(self) -> Optional[int]:
        """Training iterations the momentum schedule spans (``None`` until set, e.g. by ``set_total_steps``)."""
        return self._schedule.total_steps

    def momentum_at(self, step: int) -> float:
        """The EMA momentum after iteration ``step`` (the explicit schedule if given, else the cosine one)."""
        m = self._custom_schedule(step) if self._custom_schedule is not None else self._schedule(step)
        m = float(m)
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"momentum schedule gave {m} at step {step}; it must lie in [0, 1]")
        return m

    @torch.no_grad()
    def update_teacher(self, momentum: Optional[float] = None) -> float:
        """EMA update ``θ_teacher ← m θ_teacher + (1 - m) θ_model`` after ``optimizer.step()``.

        ``m`` is ``momentum`` if given, else the schedule at the iteration just run (``step - 1``).
        Returns ``m``. ``m >= 1`` leaves the teacher unchanged (as the official ``momentum_update``).
        """
        m = self.momentum_at(max(self.step - 1, 0)) if momentum is None else float(momentum)
        if m >= 1.0:
            return m
        for pt, pm in zip(self.teacher.parameters(), self.model.parameters()):
            pt.mul_(m).add_(pm.detach() * (1.0 - m))
        return m

    # ------------------------------------------------------------------ state
    def get_extra_state(self) -> Dict[str, Any]:
        return {"step": int(self.step), "schedule": self._schedule.state_dict(),
                "custom_schedule": self._custom_schedule is not None, "version": 1}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.step = int(state["step"])
        self._schedule.load_state_dict(state["schedule"])

    # ------------------------------------------------------------------ the teacher's feature pass
    def teacher_pass(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(feature, logits)`` of the teacher on ``x``, no gradient; the feature is float32 ``(B, C, *s)``."""
        module = get_module(self.teacher, self.feature_layer)
        tap = _FirstOutput()
        handle = module.register_forward_hook(tap)
        try:
            with torch.no_grad():
                logits = self.teacher(x)
        finally:
            handle.remove()
        feat = tap.value
        if feat is None:
            raise LayerNotReachedError(
                f"feature layer {self.feature_layer!r} ({type(module).__name__}) never ran during the teacher's forward "
                f"pass: it is not used by {type(self.teacher).__name__}.forward, or it is called through .forward()")
        n_sp = x.dim() - 2
        if feat.dim() != x.dim() or feat.shape[0] != x.shape[0]:
            raise ValueError(
                f"feature layer {self.feature_layer!r} returned shape {tuple(feat.shape)}; a learned mixer needs a "
                f"(B, C, *spatial) map with the input's {n_sp} spatial dim(s) and B={x.shape[0]} (input "
                f"{tuple(x.shape)}): pick a convolutional stage, not a flattened or token layer")
        if feat.shape[1] != self.in_channels:
            raise ValueError(f"feature layer {self.feature_layer!r} has {feat.shape[1]} channels but the mix block was "
                             f"built for {self.in_channels}: pass in_channels={feat.shape[1]}")
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the model must return logits (B, K); got {getattr(logits, 'shape', type(logits))}")
        return feat.detach().float(), logits.detach()

    # ------------------------------------------------------------------ calls
    def _check(self, x: Tensor, y: Optional[Tensor]) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point tensor (B, C, *spatial)")
        if x.dim() - 2 not in self.spatial_dims:
            raise ValueError(f"x must have shape (B, C, *spatial) with 1-3 spatial dims, got {tuple(x.shape)}")
        if y is None:
            return
        if not isinstance(y, Tensor) or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be a tensor with B={x.shape[0]} rows")
        if y.is_floating_point():
            if y.dim() != 2:
                raise ValueError(f"float labels must be probability rows (B, K), got {tuple(y.shape)}")
        elif y.dim() != 1:
            raise ValueError(f"class ids must have shape (B,), got {tuple(y.shape)}")

    def _check_classes(self, y: Tensor, logits: Tensor) -> None:
        k = logits.shape[1]
        if self.num_classes is not None and k != self.num_classes:
            raise ValueError(f"the model returns {k} logits but num_classes={self.num_classes}")
        if y.is_floating_point():
            if y.shape[1] != k:
                raise ValueError(f"label rows have {y.shape[1]} classes but the model returns {k} logits")
        elif y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(f"class ids must lie in [0, {k}), got [{int(y.min())}, {int(y.max())}]")

    def _mode(self, generator: Optional[torch.Generator]) -> str:
        modes = self.unsampling_mode
        if len(modes) == 1:
            return modes[0]
        return modes[int(torch.randint(len(modes), (1,), generator=generator, device=sampling.gen_device(generator)))]

    def _label_weights(self, w: List[float], mask: Tensor) -> Union[List[float], Tensor]:
        return shares(mask) if self.label == "realised" else w

    def forward(self, x: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None) -> LearnerOutput:
        """One training step's losses (call ``out.loss.backward()``, ``optimizer.step()``, then
        :meth:`update_teacher`). In training mode the step counter advances by one."""
        self._check(x, y)
        t = self.step
        out = self._step(x, y, t, generator)
        if self.training:
            self.step = t + 1
        return out

    @torch.no_grad()
    def mix(self, x: Tensor, y: Optional[Tensor] = None, *, generator: Optional[torch.Generator] = None,
            lam: Union[None, float, Sequence[float]] = None, fallback: bool = True) -> MixResult:
        """The generator's mix of ``x`` as the classifier would get it, without training anything.

        No gradient, no counter change, no lasting change of the teacher's BatchNorm statistics (they are
        restored; the teacher runs in the learner's current train/eval mode). ``lam`` fixes the source
        weights (a float for two sources, or N weights summing to 1); ``fallback=False`` shows the
        generated mask even where the λ-margin rule would replace it by plain mixing. ``y`` is unused.
        """
        self._check(x, None)
        with preserved_buffers(self.teacher):
            d = self._draw(x.shape[0], x.device, generator)
            if lam is not None:
                d.w_bb = self._fixed_weights(lam)
            feat, _ = self.teacher_pass(x)
            mask = self._masks(feat, d.idx_bb, d.w_bb, x.shape[2:], self._mode(generator))
            fell_back = bool(fallback and self._extreme(d.w_bb))
            if fell_back:
                mask = self._plain(mask, d.w_bb)
            return make_result(blend(x, d.idx_bb, mask), d.idx_bb, mask, d.w_bb, fallback=fell_back)

    def _fixed_weights(self, lam: Union[float, Sequence[float]]) -> List[float]:
        n = self._n_sources()
        w = [float(lam), 1.0 - float(lam)] if isinstance(lam, (int, float)) else [float(v) for v in lam]
        if len(w) != n or any(v < 0 for v in w) or abs(sum(w) - 1.0) > 1e-6:
            raise ValueError(f"lam must be a float in [0, 1] or {n} non-negative weights summing to 1, got {lam!r}")
        return w

    @staticmethod
    def _total(terms: Dict[str, Tensor], weights: Dict[str, float], x: Tensor) -> Tensor:
        """``sum_k weights[k] * terms[k]`` in the order of ``weights`` (the official summation order)."""
        loss = None
        for k, w in weights.items():
            if k in terms and w > 0:
                loss = w * terms[k] if loss is None else loss + w * terms[k]
        return x.new_zeros((), dtype=torch.float32) if loss is None else loss

    @staticmethod
    def _plain(mask: Tensor, w: Sequence[float]) -> Tensor:
        """The plain-mixup mask: every pixel of source i gets weight ``w_i``."""
        shape = (1, len(w)) + (1,) * (mask.dim() - 2)
        return torch.tensor([float(v) for v in w], dtype=mask.dtype, device=mask.device).view(shape).expand_as(mask).contiguous()

    # ------------------------------------------------------------------ subclass hooks
    def _n_sources(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def _draw(self, b: int, device: torch.device, generator: Optional[torch.Generator]) -> Draws:  # pragma: no cover
        raise NotImplementedError

    def _masks(self, feat: Tensor, index: Tensor, w: Sequence[float], size, mode: str) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _extreme(self, w: Sequence[float]) -> bool:  # pragma: no cover
        raise NotImplementedError

    def _step(self, x: Tensor, y: Tensor, t: int, generator) -> LearnerOutput:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"feature_layer={self.feature_layer!r}, in_channels={self.in_channels}, step={self.step}, "
                f"total_steps={self.total_steps}, label={self.label!r}")

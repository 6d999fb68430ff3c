"""Manifold Mixup (Verma et al., "Manifold Mixup: Better Representations by Interpolating Hidden
States", ICML 2019), and the base class of the hidden-layer mixers."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import sampling
from .._validate import check_batch, check_labels
from ..hooks import choose_layer, mix_at, resolve_layers
from ..result import MixResult
from ..targets import _mix_labels
from . import _ops
from .base import Mixer

__all__ = ["HiddenLayerMixer", "ManifoldMixup"]

Layers = Union[None, str, int, Sequence[Union[str, int]]]


class HiddenLayerMixer(Mixer):
    """Base class of the mixers that mix inside the forward pass (``runs_model = True``).

    ``mix(x, y=None, *, generator=None, forward=None)`` runs the model itself -- through ``forward``
    if given (e.g. a DistributedDataParallel wrapper of the same model; the hooks sit on
    ``self.model``'s submodules, which the wrapper calls), else ``self.model`` -- with the mixing
    applied at one layer drawn from ``self.layers``, and returns a :class:`~mixkit.MixResult` with
    ``inputs = x`` (unchanged), ``outputs`` = the logits, and ``index`` / ``weights`` = each source's
    share of the mixed hidden state, so that ``soft_targets(y, res, K)`` are the method's targets.

    The model is *not* a submodule of the mixer (``mixer.parameters()`` and ``state_dict()`` do not
    contain it; ``mixer.to(...)`` does not move it): it is stored as a plain attribute. The mixer never
    changes the model's train/eval state and mixes whenever it is called (the official code only
    mixes in training; calling ``mix`` is the caller's decision). Hooks are removed after every call,
    also when the forward raises.

    A batch that is not mixed (``p`` coin failed in batch mode, or B = 1) still runs the forward, with
    no hook; the result has ``weights = 1`` on the sample itself and ``params["layer"] = None``.

    Subclasses implement :meth:`_mix_with` ``(x, active, generator, run) -> MixResult``.
    """

    runs_model = True

    def __init__(self, model: nn.Module, layers: Layers = None, alpha: float = 1.0, *, mode: str = "batch",
                 p: float = 1.0, num_classes: Optional[int] = None, smoothing: float = 0.0,
                 no_self_pairs: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        super().__init__(alpha, mode=mode, p=p, num_classes=num_classes, smoothing=smoothing,
                         no_self_pairs=no_self_pairs, inplace=False)
        self.model = model
        self.layers: Tuple[str, ...] = resolve_layers(model, layers)

    def __setattr__(self, name: str, value: Any) -> None:
        # Keep the model a plain attribute, never a registered submodule (see the class docstring).
        if name == "model":
            if not isinstance(value, nn.Module):
                raise TypeError(f"model must be a torch.nn.Module, got {type(value).__name__}")
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------------ public API
    def mix(self, x: Tensor, y: Optional[Tensor] = None, *, generator: Optional[torch.Generator] = None,
            forward: Optional[Callable[[Tensor], Tensor]] = None) -> MixResult:
        """Run the model on ``x`` ``(B, C, *spatial)`` with mixing at one layer; returns a :class:`MixResult`
        whose ``outputs`` are the logits. ``y`` is accepted for the common call form and not needed."""
        x, generator = self._check_call(x, generator)
        run = self._runner(forward)
        b = x.shape[0]
        if b == 1:
            return self._unmixed(x, run)
        if self.mode == "batch":
            if self.p < 1.0 and not bool(sampling.bernoulli(self.p, (), generator)):
                return self._unmixed(x, run)
            active = None
        else:
            active = sampling.bernoulli(self.p, (b,), generator) if self.p < 1.0 else None
        return self._mix_with(x, active, generator, run)

    def forward(self, x: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None,
                forward: Optional[Callable[[Tensor], Tensor]] = None) -> Tuple[Tensor, Tensor]:
        """``(logits, y_soft)``: the model's outputs on the batch mixed inside the network, and the
        ``(B, K)`` float32 soft targets.

        Unlike input-space mixers, the first element is the **logits**, not a mixed batch: the mixing
        happens inside the model, so returning ``x`` would invite training on unmixed inputs.
        """
        x = check_batch(x)
        check_labels(y, x.shape[0], self.num_classes)
        res = self.mix(x, y, generator=generator, forward=forward)
        return res.outputs, _mix_labels(y, res, self.num_classes, self.smoothing)

    # ------------------------------------------------------------------ plumbing
    def _runner(self, forward: Optional[Callable[[Tensor], Tensor]]) -> Callable[[Tensor], Tensor]:
        if forward is None:
            return self.model
        if not callable(forward):
            raise TypeError(f"forward must be callable (x -> logits), got {type(forward).__name__}")
        return forward

    def _unmixed(self, x: Tensor, run: Callable[[Tensor], Tensor]) -> MixResult:
        res = self.identity(x)
        res.outputs = run(x)
        res.params["layer"] = None
        return res

    def _mix(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor], generator) -> MixResult:
        # Entry point used by composites (RandomChoice / Alternate): runs self.model.
        return self._mix_with(x, active, generator, self.model)

    def _mix_with(self, x: Tensor, active: Optional[Tensor], generator: Optional[torch.Generator],
                  run: Callable[[Tensor], Tensor]) -> MixResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _choose_layer(self, generator: Optional[torch.Generator]) -> str:
        return choose_layer(self.layers, generator)

    @staticmethod
    def _check_hidden(h: Tensor, b: int, layer: str) -> None:
        if not isinstance(h, Tensor) or h.dim() < 1 or h.shape[0] != b:
            shape = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise ValueError(f"the hidden state at layer {layer!r} has shape {shape}, but its first dim must be the "
                             f"batch size B={b} (batch-first tensors only)")
        if not h.is_floating_point():
            raise TypeError(f"the hidden state at layer {layer!r} has dtype {h.dtype}; only float tensors can be mixed")

    def extra_repr(self) -> str:
        return super().extra_repr() + f", layers={self.layers}"


class ManifoldMixup(HiddenLayerMixer):
    """Manifold Mixup: MixUp of the hidden state at a layer drawn at random for each batch.

    Per forward pass: ``lam ~ Beta(alpha, alpha)``, a partner permutation, and a layer ``k`` drawn
    uniformly from ``layers``; at that layer ``h <- lam * h + (1 - lam) * h[perm]`` and the targets are
    ``lam * y + (1 - lam) * y[perm]`` (``weights = (lam, 1 - lam)``). At ``"input"`` (``k = 0``) this is
    input MixUp, and it equals :class:`~mixkit.mixers.mixup.MixUp` on the same draws: the draw order is
    lambda, then partner (as in ``MixUp``), then the layer (only when there are several), so with
    ``layers=["input"]`` the same generator seed gives exactly ``model(MixUp-mixed x)``.

    Official code (``vikasverma1077/manifold_mixup``, ``models/preresnet.py``): ``k ~ U{0, 1, 2}`` =
    input, output of ``layer1``, output of ``layer2``, for PreActResNet and WRN alike; one lambda and
    one permutation per batch; alpha = 2.0 on CIFAR (0.2 on Tiny-ImageNet); trained with
    ``BCELoss(softmax(logits), y_mixed)`` (:func:`mixkit.bce_on_softmax`).

    Args:
        model: the network (an ``nn.Module``; stored as a plain attribute, not a submodule).
        layers: where to mix. ``None`` (default) = the official set: ``"input"`` and the outputs of the
            first two stages, where the stages are ``model.hidden_layers`` if the model has that
            attribute (all mixkit benchmark models: ``layer1``, ``layer2`` ...), else its top-level
            children named ``layer1``, ``layer2`` ... (torchvision ResNets), else the children of a
            top-level ``stages``/``blocks``/``layers`` container (see :func:`mixkit.hooks.stage_names`).
            ``"all"`` = the input and every stage. Or a list of dotted module names (as in
            ``model.named_modules()``), ``"input"`` and stage indices (0 = input, k = k-th stage).
        alpha: Beta concentration (default 2.0, the official CIFAR value).
        mode: ``"batch"`` (one lambda for the batch, as the paper) or ``"sample"`` (one lambda per
            sample, vectorised). In both modes the layer is drawn once per forward pass.
        p, num_classes, smoothing, no_self_pairs: see :class:`~mixkit.mixers.base.Mixer`.

    ``mix(x, y=None, *, generator=None, forward=None)`` runs the forward pass (see
    :class:`HiddenLayerMixer`) and returns ``MixResult(inputs=x, outputs=logits, index, weights,
    lam, mixed, params={"layer": name})``. Any hidden state with the batch first can be mixed (feature
    maps of any rank, token sequences, vectors); fp16/bf16 hidden states are blended in float32.
    """

    def __init__(self, model: nn.Module, layers: Layers = None, alpha: float = 2.0, **kw) -> None:
        super().__init__(model, layers, alpha, **kw)

    def _mix_with(self, x: Tensor, active: Optional[Tensor], generator: Optional[torch.Generator],
                  run: Callable[[Tensor], Tensor]) -> MixResult:
        b = x.shape[0]
        lam = sampling.sample_beta(self.alpha, self.alpha, (self._n_draws(x),), generator).to(x.device)
        partner = self._partner(x, generator)
        lam = self._deactivate(lam, active, b)
        layer = self._choose_layer(generator)

        def fn(h: Tensor) -> Tensor:
            self._check_hidden(h, b, layer)
            return _ops.lerp(h, _ops.gather(h, partner), _ops.rows_view(lam, h))

        with mix_at(self.model, layer, fn):
            logits = run(x)
        res = self._pair_result(x, partner, lam, lam=lam, active=active, layer=layer)
        res.outputs = logits
        return res

"""Manifold Mixup (Verma et al., "Manifold Mixup: Better Representations by Interpolating Hidden
States", ICML 2019). The base class of the hidden-layer mixers is in :mod:`mixkit.mixers.hidden`."""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from ..hooks import mix_at
from ..result import MixResult
from . import _ops
from .hidden import HiddenLayerMixer, Layers
from .params import MixParams

__all__ = ["HiddenLayerMixer", "ManifoldMixup"]


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

    name = "manifold_mixup"
    aliases = ("manifold", "manifoldmixup")
    defaults = {"alpha": 2.0}
    summary = "MixUp of the hidden state at a random layer (input, layer1, layer2)"
    paper = "Verma et al., ICML 2019 (arXiv:1806.05236)"

    def __init__(self, model: nn.Module, layers: Layers = None, alpha: float = 2.0, **kw) -> None:
        super().__init__(model, layers, alpha, **kw)

    def _apply(self, x: Tensor, params: MixParams, forward: Optional[Callable[[Tensor], Tensor]] = None) -> MixResult:
        run = self._run(forward)
        b, layer, partner = x.shape[0], params.draws["layer"], params.partner
        lam = self._deactivate(params.lam, params.active, b)

        def fn(h: Tensor) -> Tensor:
            self._check_hidden(h, b, layer)
            return _ops.lerp(h, _ops.gather(h, partner), _ops.rows_view(lam, h))

        with mix_at(self.model, layer, fn):
            logits = run(x)
        res = self._pair_result(x, params, lam, lam=lam, layer=layer)
        res.outputs = logits
        return res

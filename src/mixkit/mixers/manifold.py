"""Manifold Mixup (Verma et al., "Manifold Mixup: Better Representations by Interpolating Hidden
States", ICML 2019)."""
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
    """Manifold Mixup: MixUp of the hidden state at a layer drawn at random for each forward pass.

    ``lam ~ Beta(alpha, alpha)``, a partner ``perm`` and a layer uniform over ``layers``; at that layer
    ``h <- lam * h + (1 - lam) * h[perm]`` and the label weights are ``(lam, 1 - lam)``. The draw order is
    lambda, partner, then the layer (only drawn when there are several), so with ``layers=["input"]`` the same
    seed gives exactly ``model(MixUp-mixed x)``. Any batch-first hidden state can be mixed (feature maps of
    any rank, token sequences, vectors).

    Args:
        model: the network (an ``nn.Module``; a plain attribute, not a submodule).
        layers: where to mix. ``None`` (default) = the official set: ``"input"`` and the outputs of the first
            two stages, where the stages are ``model.hidden_layers`` if the model has that attribute, else its
            top-level children ``layer1``, ``layer2`` ..., else the children of a top-level
            ``stages``/``blocks``/``layers`` container (see :func:`mixkit.hooks.stage_names`). ``"all"`` = the
            input and every stage. Or a list of dotted module names (as in ``model.named_modules()``),
            ``"input"`` and stage indices (0 = input, k = k-th stage).
        alpha: Beta concentration (default 2.0, the official CIFAR value; 0.2 on Tiny-ImageNet).
        mode: ``"batch"`` (default: one lambda for the batch, as the paper) or ``"sample"`` (one per row). The
            layer is drawn once per forward pass in both modes.
        p, num_classes, smoothing, no_self_pairs: see :class:`~mixkit.mixers.base.Mixer`.

    ``mix(x, y=None, *, generator=None, forward=None)`` runs the forward pass (see :class:`HiddenLayerMixer`)
    and returns ``inputs = x``, ``outputs`` = the logits, ``weights`` ``(lam, 1 - lam)`` and ``params``:
    ``layer`` (the name of the layer mixed; ``None`` when the batch was not mixed).

    See docs/methods/manifold_mixup.md.
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

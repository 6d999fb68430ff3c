"""The base class of the mixers that mix inside the forward pass (Manifold Mixup, PatchUp)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from ..hooks import choose_layer, resolve_layers
from ..result import MixResult
from . import _model
from .base import Mixer, ModelAttr
from .params import MixParams

__all__ = ["HiddenLayerMixer", "Layers"]

Layers = Union[None, str, int, Sequence[Union[str, int]]]
Runner = _model.Runner


class HiddenLayerMixer(Mixer):
    """Base class of the mixers that mix inside the forward pass (``runs_model = True``).

    ``mix(x, y=None, *, generator=None, forward=None)`` runs the model itself -- through ``forward``
    if given (e.g. a DistributedDataParallel wrapper of the same model; the hooks sit on
    ``self.model``'s submodules, which the wrapper calls), else ``self.model`` -- with the mixing
    applied at one layer drawn from ``self.layers``, and returns a :class:`~mixkit.MixResult` with
    ``inputs = x`` (unchanged), ``outputs`` = the logits, and ``index`` / ``weights`` = each source's
    share of the mixed hidden state, so that ``soft_targets(y, res, K)`` are the method's targets.
    ``sample(x, g)`` draws lambda, partner and layer; ``apply(x, params, forward=None)`` runs the
    forward pass with them.

    The model is *not* a submodule of the mixer (``mixer.parameters()`` and ``state_dict()`` do not
    contain it; ``mixer.to(...)`` does not move it): it is stored as a plain attribute. The mixer never
    changes the model's train/eval state and mixes whenever it is called (the official code only
    mixes in training; calling ``mix`` is the caller's decision). Hooks are removed after every call,
    also when the forward raises.

    A batch that is not mixed (``p`` coin failed in batch mode, or B = 1) still runs the forward, with
    no hook; the result has ``weights = 1`` on the sample itself and ``params["layer"] = None``.

    Subclasses implement :meth:`_apply` ``(x, params, forward=None) -> MixResult`` (:meth:`_run` gives
    the callable that runs the model) and may extend :meth:`_sample`.
    """

    runs_model = True
    needs_model = True
    model = ModelAttr()
    _apply_options = ("forward",)

    def __init__(self, model: nn.Module, layers: Layers = None, alpha: float = 1.0, *, mode: str = "batch",
                 p: float = 1.0, num_classes: Optional[int] = None, smoothing: float = 0.0,
                 no_self_pairs: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        super().__init__(alpha, mode=mode, p=p, num_classes=num_classes, smoothing=smoothing,
                         no_self_pairs=no_self_pairs, inplace=False)
        self.model = model
        self.layers: Tuple[str, ...] = resolve_layers(model, layers)

    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        """Lambda, partner, then the layer (only drawn when there are several): MixUp's draws first."""
        lam = self.sample_lam(self._n_draws(x), generator).to(x.device)
        partner = self._partner(x, generator)
        layer = choose_layer(self.layers, generator)
        return MixParams(active=active, lam=lam, partner=partner, draws={"layer": layer})

    def _run(self, forward: Optional[Runner]) -> Runner:
        if forward is not None and not callable(forward):
            raise TypeError(f"forward must be callable (x -> logits), got {type(forward).__name__}")
        return _model.runner(self.model, forward)

    def _unmixed(self, x: Tensor, params: MixParams, forward: Optional[Runner] = None) -> MixResult:
        run = self._run(forward)
        res = self.identity(x)
        res.outputs = run(x)
        res.params["layer"] = None
        return res

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

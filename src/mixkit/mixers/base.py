"""The mixer base class: the one call path and the contract every mixer keeps (see docs/design.md).

A mixer draws its parameters, then applies them::

    params = mixer.sample(x, generator)    # MixParams: plain data (lambda, partner, boxes, masks ...)
    res = mixer.apply(x, params)           # MixResult; the same params always give the same result
    res = mixer.mix(x, generator=g)        # validate once + sample + apply
    x_mix, y_soft = mixer(x, y, generator=g)

A subclass implements ``_sample(x, y, active, generator) -> MixParams`` (every random draw, in a fixed
order) and ``_apply(x, params) -> MixResult`` (no draw). Everything else lives here once: argument
checks (through :mod:`mixkit._validate`, once per call), batch size 1, the ``p`` gate (one coin for the
batch, or one per row), the soft targets of ``forward``, and the helpers shared by the two-source
methods (partner, unselected rows, the box methods' end, result building). Plain, hidden-layer
(``runs_model``) and composite mixers all go through :meth:`Mixer._draw` and :meth:`Mixer._replay`.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import sampling
from .._validate import (check_batch, check_generator, check_labels, check_mode, check_not_unbatched,
                         check_num_classes, check_positive, check_prob, check_range, check_smoothing)
from ..masks import box
from ..result import Lazy, MixResult
from ..labels import check_smoothing_target
from ..targets import _mix_labels
from . import _ops
from .params import MixParams

__all__ = ["Mixer", "MixParams", "ModelAttr"]

_NO_OPTIONS: Dict[str, Any] = {}


@torch.compiler.disable  # dynamo's struct polyfill recurses without end on pack("f", ...)
def _f32(v: float) -> float:
    """``v`` rounded to float32 (to nearest), as a Python float."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _keep_subclass(res: MixResult, x: Tensor) -> MixResult:
    """The mixed batch keeps the input's tensor subclass (e.g. ``tv_tensors.Image``), whose own
    ``__torch_function__`` may return plain tensors from the ops that mixed it."""
    cls = type(x)
    if cls is not Tensor and isinstance(res.inputs, Tensor) and type(res.inputs) is not cls:
        res.inputs = res.inputs.as_subclass(cls)
    return res


class ModelAttr:
    """Class attribute holding a mixer's model as a plain attribute, never a registered submodule, so
    the mixer's ``parameters()``, ``state_dict()`` and ``.to()`` leave the model alone (the caller owns,
    moves and trains it). Assigning it again (``mixer.model = net``) keeps it plain."""

    def __init__(self, optional: bool = False) -> None:
        self.optional = optional

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        return self if obj is None else obj.__dict__.get(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        if not isinstance(value, nn.Module) and not (self.optional and value is None):
            either = " or None" if self.optional else ""
            raise TypeError(f"{self.name} must be a torch.nn.Module{either}, got {type(value).__name__}")
        obj.__dict__[self.name] = value


class Mixer(nn.Module):
    """Base class of all mixers.

    Args:
        alpha: concentration of the lambda distribution (``Beta(alpha, alpha)`` for most methods).
        mode: ``"batch"`` (one lambda and one region for the whole batch, as in the papers) or
            ``"sample"`` (independent draws per sample, vectorised).
        p: probability that the batch (batch mode) or each sample (sample mode) is mixed. Applied once.
        num_classes: number of classes, needed when calling with class ids.
        smoothing: label smoothing applied to the targets (default 0: no hidden smoothing).
        smoothing_target: ``"uniform"`` (toward ``1/K``, default) or ``"binary"`` (each class toward 0.5:
            timm's multi-label smoothing, for BCE losses).
        no_self_pairs: forbid pairing a sample with itself (for B >= 2).
        inplace: write the mixed batch into the input tensor instead of a new one.
        spatial_dims: the spatial dimensionalities the inputs will have (an int or a tuple, among the
            method's own); default: any the method supports, except that a 3-D input that reads as one
            ``(C, H, W)`` image without its batch dim is refused as ambiguous (``spatial_dims=1`` says
            it is a ``(B, C, L)`` batch).

    Call forms:
        ``x_mix, y_soft = mixer(x, y, generator=g)`` -- soft targets ``(B, K)`` float32 (the logits
        instead of ``x_mix`` for mixers that run the model, ``runs_model``).
        ``res = mixer.mix(x, generator=g)`` -- a :class:`MixResult` for two-term / custom losses.
        ``params = mixer.sample(x, g)``, ``res = mixer.apply(x, params)`` -- the two halves of ``mix``.

    The class attributes ``name`` ... ``paper`` are the method table that :mod:`mixkit.registry`
    reads; ``name = None`` means "not a registered method" (base classes, composites).
    """

    #: canonical registry name (``None``: not a registered method)
    name: Optional[str] = None
    #: other accepted names
    aliases: Tuple[str, ...] = ()
    #: constructor arguments the registry uses unless overridden (the papers' defaults)
    defaults: Dict[str, Any] = {}
    #: the constructor takes the model (``create(name, model=net)``)
    needs_model: bool = False
    #: the method places its mixing by a saliency map (drawn with it by ``mixkit show``)
    saliency_guided: bool = False
    #: one line for ``mixkit list``
    summary: str = ""
    #: short citation
    paper: str = ""
    #: spatial dimensionalities this method supports
    spatial_dims: Tuple[int, ...] = (1, 2, 3)
    #: whether the method needs labels in ``mix`` (model-aware methods)
    needs_labels: bool = False
    #: whether ``mix`` runs the model and returns logits in ``MixResult.outputs`` (hidden-layer methods)
    runs_model: bool = False
    #: lambda ~ Beta(alpha + 1, alpha) and the anchor's label only (the FMix repository's reformulation)
    reformulate: bool = False
    #: ``(a, b)``: lambda ~ U(a, b) instead of the Beta (set by the methods that offer ``lam_range=``)
    lam_range: Optional[Tuple[float, float]] = None
    #: keyword options of ``mix``/``forward``/``sample`` (e.g. ``Alternate``'s ``step``)
    _sample_options: Tuple[str, ...] = ()
    #: keyword options of ``mix``/``forward``/``apply`` (hidden-layer mixers' ``forward``)
    _apply_options: Tuple[str, ...] = ()

    def __init__(self, alpha: float = 1.0, *, mode: str = "batch", p: float = 1.0,
                 num_classes: Optional[int] = None, smoothing: float = 0.0, smoothing_target: str = "uniform",
                 no_self_pairs: bool = False, inplace: bool = False, spatial_dims: Any = None) -> None:
        super().__init__()
        self._dims_declared = spatial_dims is not None
        if spatial_dims is not None:
            dims = (spatial_dims,) if isinstance(spatial_dims, int) else tuple(spatial_dims)
            if not dims or any(isinstance(d, bool) or d not in type(self).spatial_dims for d in dims):
                raise ValueError(f"spatial_dims must be among {type(self).spatial_dims} for {type(self).__name__}, "
                                 f"got {spatial_dims!r}")
            self.spatial_dims = dims
        self.alpha = check_positive(alpha, "alpha")
        self.mode = check_mode(mode)
        self.p = check_prob(p, "p")
        self.num_classes = check_num_classes(num_classes)
        self.smoothing = check_smoothing(smoothing)
        self.smoothing_target = check_smoothing_target(smoothing_target)
        self.no_self_pairs = bool(no_self_pairs)
        self.inplace = bool(inplace)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(getattr(type(self), name, None), ModelAttr):
            object.__setattr__(self, name, value)  # the descriptor keeps it a plain attribute
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------------ public API
    def mix(self, x: Tensor, y: Optional[Tensor] = None, *, generator: Optional[torch.Generator] = None,
            **options: Any) -> MixResult:
        """Mix a batch ``x`` of shape ``(B, C, *spatial)``; returns a :class:`MixResult`."""
        x, generator = self._check_call(x, generator)
        y = self._check_mix_labels(y, x)
        s_opts, a_opts = self._options(options, "mix")
        return self._replay(x, self._draw(x, y, generator, **s_opts), **a_opts)

    def forward(self, x: Tensor, y: Tensor, *, generator: Optional[torch.Generator] = None,
                **options: Any) -> Tuple[Tensor, Tensor]:
        """``(x_mix, y_soft)``: the mixed batch and its ``(B, K)`` float32 soft targets.

        Mixers that run the model (``runs_model``) return the **logits** first instead: the mixing
        happens inside the model, so returning ``x`` would invite training on unmixed inputs.
        """
        x, generator = self._check_call(x, generator)
        check_labels(y, x.shape[0], self.num_classes)
        s_opts, a_opts = self._options(options, "forward")
        res = self._replay(x, self._draw(x, y, generator, **s_opts), **a_opts)
        return (res.outputs if self.runs_model else res.inputs), _mix_labels(y, res, self.num_classes, self.smoothing,
                                                                                  self.smoothing_target)

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None, *, y: Optional[Tensor] = None,
               **options: Any) -> MixParams:
        """Draw this call's parameters for ``x`` (every random draw ``mix`` makes, in the same order)."""
        x, generator = self._check_call(x, generator)
        y = self._check_mix_labels(y, x)
        s_opts, _ = self._options(options, "sample", apply=False)
        return self._draw(x, y, generator, **s_opts)

    def apply(self, x: Any, params: Optional[MixParams] = None, **options: Any) -> Any:
        """Mix ``x`` with drawn ``params`` (from :meth:`sample`); no random draw, the same params give the
        same :class:`MixResult`. (``apply(fn)`` with a single callable is ``nn.Module.apply``.)"""
        if params is None and callable(x) and not isinstance(x, Tensor):
            return super().apply(x)
        if not isinstance(params, MixParams):
            raise TypeError(f"params must be the MixParams returned by sample(), got {type(params).__name__}")
        x, _ = self._check_call(x, None)
        _, a_opts = self._options(options, "apply", sample=False)
        return self._replay(x, params, **a_opts)

    def identity(self, x: Tensor) -> MixResult:
        """The unmixed result: ``x`` itself (same tensor object), weight 1 on the sample itself."""
        b, dev = x.shape[0], x.device
        return MixResult(inputs=x, index=torch.arange(b, device=dev).unsqueeze(1),
                         weights=torch.ones(b, 1, device=dev), lam=torch.ones(b, device=dev),
                         mixed=torch.zeros(b, dtype=torch.bool, device=dev))

    def sample_lam(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        """``(n,)`` float32 lambdas: ``Beta(alpha, alpha)``, ``Beta(alpha + 1, alpha)`` with ``reformulate``,
        or ``U(a, b)`` when the mixer was built with ``lam_range=(a, b)`` (:meth:`_set_lam_range`)."""
        if self.lam_range is not None:
            return sampling.sample_uniform((n,), generator, *self.lam_range)
        return sampling.sample_lam(self.alpha, n, generator, self.reformulate)

    def _set_lam_range(self, lam_range: Optional[Sequence[float]]) -> None:
        """Check and store a ``lam_range=(a, b)`` option (``0 <= a <= b <= 1``): lambda is then drawn uniformly in
        ``[a, b]`` instead of from the Beta (kornia's ``lambda_val``); ``alpha`` is unused. ``None``: the Beta."""
        rng = check_range(lam_range, "lam_range")
        if rng is not None and self.reformulate:
            raise ValueError("lam_range and reformulate=True cannot be combined: reformulate draws Beta(alpha + 1, alpha)")
        self.lam_range = rng

    # ------------------------------------------------------------------ the one call path
    def _draw(self, x: Tensor, y: Optional[Tensor], generator: Optional[torch.Generator],
              active: Optional[Tensor] = None, **options: Any) -> MixParams:
        """Labels present if needed, batch size 1, the ``p`` gate, then :meth:`_sample`.

        ``active`` is a parent composite's row selection; the gate combines it with this mixer's own.
        """
        if self.needs_labels and y is None:
            raise ValueError(f"{type(self).__name__}.mix needs the labels: call mix(x, y)")
        b = x.shape[0]
        if b == 1:
            return self._skip(x, **options)
        if self.p < 1.0:  # one coin: for the batch, or one per row
            if self.mode == "batch":
                if not bool(sampling.bernoulli(self.p, (), generator)):
                    return self._skip(x, **options)
            else:
                rows = sampling.bernoulli(self.p, (b,), generator)
                active = rows if active is None else active & rows.to(active.device)
        # the draws are decisions, never differentiated: an input that requires grad must not reach
        # the solvers (in-place ops), while apply() on x keeps the mixed batch differentiable
        return self._sample(x.detach() if x.requires_grad else x, y, active, generator, **options)

    def _replay(self, x: Tensor, params: MixParams, **options: Any) -> MixResult:
        res = self._unmixed(x, params, **options) if not params.mixed else self._apply(x, params, **options)
        return _keep_subclass(res, x)

    # ------------------------------------------------------------------ for subclasses
    def _sample(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor],
                generator: Optional[torch.Generator]) -> MixParams:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _skip(self, x: Tensor) -> MixParams:
        """The params of a call that mixes nothing (B = 1, or the batch-mode coin failed)."""
        return MixParams(mixed=False)

    def _unmixed(self, x: Tensor, params: MixParams) -> MixResult:
        """The result of unmixed params: :meth:`identity`, with what the params record."""
        res = self.identity(x)
        res.params.update(params.draws)
        return res

    def _check_input(self, x: Tensor) -> None:
        """Hook for method-specific shape checks."""

    def _check_call(self, x: Tensor, generator: Optional[torch.Generator]):
        """Validate the batch (dtype, rank, supported spatial dims, method checks) and the generator."""
        x = check_batch(x)
        if not getattr(self, "_dims_declared", False):
            check_not_unbatched(x)
        generator = check_generator(generator)
        n_sp = x.dim() - 2
        if n_sp not in self.spatial_dims:
            raise ValueError(
                f"{type(self).__name__} supports inputs with {self._dims_text()} spatial dims, got x of shape "
                f"{tuple(x.shape)} ({n_sp} spatial dims)")
        self._check_input(x)
        return x, generator

    def _check_mix_labels(self, y: Optional[Tensor], x: Tensor) -> Optional[Tensor]:
        """Labels given to ``mix``/``sample`` are checked when the method uses them (class ids need no
        ``num_classes`` there: they only feed the saliency pass)."""
        if y is None:
            return y
        if not self.needs_labels:  # not used, but a y that does not match x is a caller's mistake
            if isinstance(y, Tensor) and y.dim() >= 1 and y.shape[0] != x.shape[0]:
                raise ValueError(f"y has {y.shape[0]} rows but the image batch has B={x.shape[0]}; they must match")
            return y
        return check_labels(y, x.shape[0], self.num_classes, ids_need_num_classes=False)

    def _options(self, options: Dict[str, Any], where: str, sample: bool = True,
                 apply: bool = True) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """Split keyword options into those of :meth:`_sample` and those of :meth:`_apply`."""
        if not options:
            return _NO_OPTIONS, _NO_OPTIONS
        s_opts, a_opts = {}, {}
        for k, v in options.items():
            if sample and k in self._sample_options:
                s_opts[k] = v
            elif apply and k in self._apply_options:
                a_opts[k] = v
            else:
                raise TypeError(f"{type(self).__name__}.{where}() got an unexpected keyword argument {k!r}")
        return s_opts, a_opts

    # ------------------------------------------------------------------ shared by the two-source methods
    def _n_draws(self, x: Tensor) -> int:
        """How many independent parameter draws: 1 in batch mode, B in sample mode."""
        return 1 if self.mode == "batch" else x.shape[0]

    def _partner(self, x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """Partner index ``(B,)`` on ``x``'s device."""
        return sampling.permutation(x.shape[0], generator, self.no_self_pairs).to(x.device)

    @staticmethod
    def _deactivate(v: Tensor, active: Optional[Tensor], b: int) -> Tensor:
        """Set per-row values (lambda ``(B,)`` or share maps ``(B, ...)``) to 1 on rows not selected by p."""
        if active is None:
            return v
        if v.shape[0] != b:
            v = v.expand(b, *v.shape[1:])
        rows = active.to(v.device).reshape(-1, *([1] * (v.dim() - 1)))
        return torch.where(rows, v, torch.ones((), dtype=v.dtype, device=v.device))

    def _box_apply(self, x: Tensor, params: MixParams, lam: Tensor, *, patch: Optional[Tensor] = None,
                   x_mix: Optional[Tensor] = None, realised: bool = True, **extra: Any) -> MixResult:
        """The end of the box methods (CutMix, SaliencyMix, ResizeMix), from ``draws["box_lo"/"box_hi"]``.

        Rows not selected by ``p`` get an empty box and lambda 1; the anchor's weight is the share
        outside the (clipped) box, ``1 - volume / N`` (``realised=False``: the sampled lambda). Batch mode
        pastes the one box (:func:`~mixkit.mixers._ops.paste_box`, the partners' pixels or ``patch``),
        from ``draws["box_ints"]`` when the sampler recorded it as ints, and builds the share map only
        when it is read; sample mode blends with the per-row masks, unless the method built the mixed
        batch itself (``x_mix``: ResizeMix's patches).
        """
        sizes = tuple(x.shape[2:])
        lo = params.draws["box_lo"]
        if self.mode == "batch" and params.active is None:  # one box: Python ints, no mask before it is read
            hi = params.draws["box_hi"]
            corner, end = params.draws.get("box_ints") or (lo[0].tolist(), hi[0].tolist())
            if x_mix is None:
                x_mix = _ops.paste_box(x, params.partner, corner, end, patch, self.inplace)
            w0 = _f32(box.outside_share_ints(corner, end, sizes)) if realised else lam.float()
            return self._pair_result(x_mix, params, w0, lam=lam, share_map=Lazy(box.outside_mask, lo, hi, sizes),
                                     box_lo=lo, box_hi=hi, **extra)
        hi = box.empty_rows(lo, params.draws["box_hi"], params.active)
        lam = self._deactivate(lam, params.active, x.shape[0])
        if x_mix is None and self.mode != "batch" and _ops.copies_rows(x, self.inplace):
            x_mix = _ops.paste_rows(x, params.partner, lo, hi, self.inplace)  # no full-size map needed
            share_map = Lazy(box.outside_mask, lo, hi, sizes)
        else:
            share_map = box.outside_mask(lo, hi, sizes)
        if x_mix is None and self.mode == "batch":
            corner, end = params.draws.get("box_ints") or (lo[0].tolist(), hi[0].tolist())
            x_mix = _ops.paste_box(x, params.partner, corner, end, patch, self.inplace)
        elif x_mix is None:
            x_mix = _ops.mix_pair(x, params.partner, share_map, self.inplace, box=(lo, hi))
        w0 = box.outside_share(lo, hi, sizes) if realised else lam
        return self._pair_result(x_mix, params, w0.float(), lam=lam, share_map=share_map, box_lo=lo, box_hi=hi,
                                 **extra)

    def _pair_result(self, x_mix: Tensor, params: MixParams, w0: Union[Tensor, float], *, lam: Optional[Tensor],
                     share_map: Any = None, **extra: Any) -> MixResult:
        """The result of a two-source method from the anchor's realised weight ``w0``: ``(B,)`` or ``(1,)``,
        or one float32-exact float for the batch (:meth:`MixResult.two_source`)."""
        dev = x_mix.device
        if isinstance(w0, Tensor):
            w0 = w0.to(dev, torch.float32)
        if lam is not None:
            lam = lam.to(dev, torch.float32)
        return MixResult.two_source(x_mix, params.partner.to(dev), w0, lam=lam, active=params.active,
                                    share_map=share_map, params=extra)

    def _dims_text(self) -> str:
        return " or ".join(str(v) for v in self.spatial_dims)

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, mode={self.mode!r}, p={self.p}, num_classes={self.num_classes}, smoothing={self.smoothing}"
                + ("" if self.smoothing_target == "uniform" else f", smoothing_target={self.smoothing_target!r}"))

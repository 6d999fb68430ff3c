"""Forward-hook machinery for hidden-layer mixing (Manifold Mixup, PatchUp).

Hidden-layer methods replace the output of one module of the model (a residual stage, say) by a
mixed version of it, in the middle of an ordinary ``model(x)`` call. This module does that with
PyTorch forward hooks, and refuses to fail silently: the classic bug of hook-based ports is a hook
that never changes anything (shivamsaboo17/ManifoldMixup PR #1: the hook did not *return* the mixed
tensor, so only the labels were mixed). Here

* the hook returns the new tensor, so PyTorch really substitutes it for the module's output;
* the handle records how often the module ran (``handle.calls``) and whether the output was
  replaced (``handle.replaced``); leaving :func:`mix_at` without the module having run raises
  :class:`LayerNotReachedError` (a wrong name, a module defined but not used by ``forward``, or a
  ``model.forward(x)`` call that bypasses hooks);
* a module reached twice in one forward (a shared/reused module) raises :class:`LayerReusedError`
  unless ``allow_reuse=True`` (then only the first call is mixed);
* the hook is removed when the ``with`` block ends, also when the forward raises.

Layer names
-----------
A layer is named as in ``model.named_modules()`` (dotted, e.g. ``"layer2"`` or ``"layer2.1.conv1"``),
or ``"input"`` (:data:`INPUT`) for the model's input (mixing there is input MixUp), or an int ``k``:
``0`` is the input and ``k >= 1`` the output of the k-th *stage* (see :func:`stage_names`), as in the
official Manifold Mixup code (``layer_mix = k``). Unknown names raise :class:`UnknownLayerError`
(a ``ValueError``) listing the closest valid names.

Outputs that are tuples
-----------------------
If the hooked module returns a tuple or list (or a namedtuple), the *first tensor element* is mixed
and the other elements pass through unchanged. Any other output type (dict, custom object) raises
``TypeError``. At ``"input"`` the first positional tensor argument of ``model(...)`` is mixed (or,
without positional arguments, the first tensor keyword argument).

Limitations: the hidden tensor must have the batch on dim 0 (the mixers check ``shape[0] == B``).
Activation checkpointing that re-runs the hooked region during backward (after the hook has been
removed) would recompute it *unmixed*; do not checkpoint across the mixed layer.
"""
from __future__ import annotations

import difflib
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from . import sampling

__all__ = [
    "INPUT",
    "UnknownLayerError",
    "LayerNotReachedError",
    "LayerReusedError",
    "MixHandle",
    "get_module",
    "stage_names",
    "default_layers",
    "resolve_layers",
    "choose_layer",
    "mix_at",
    "capture",
]

#: the name of the model's input in a layer list (mixing there is input MixUp / CutMix)
INPUT = "input"

LayerSpec = Union[str, int]


class UnknownLayerError(ValueError):
    """A layer name that is not ``"input"`` nor a name in ``model.named_modules()``."""


class LayerNotReachedError(RuntimeError):
    """The hooked module never ran during the forward pass: nothing was mixed."""


class LayerReusedError(RuntimeError):
    """The hooked module ran more than once in one forward pass (a shared module)."""


@dataclass
class MixHandle:
    """What :func:`mix_at` did.

    Attributes:
        name: the layer that was hooked (``"input"`` or a dotted module name).
        module: the hooked module (the model itself for ``"input"``).
        calls: how many times the module ran while the hook was active.
        replaced: whether an output (or the input) was replaced by ``fn``'s result.
        shape: shape of the tensor given to ``fn`` (``None`` until it ran).
    """

    name: str
    module: nn.Module
    calls: int = 0
    replaced: bool = False
    shape: Optional[Tuple[int, ...]] = None

    @property
    def called(self) -> bool:
        """Whether the module ran at least once."""
        return self.calls > 0


# --------------------------------------------------------------------------------------- name lookup
def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _module_names(model: nn.Module) -> List[str]:
    return [n for n, _ in model.named_modules() if n]


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted, as in ``model.named_modules()``).

    Raises:
        UnknownLayerError: no such module; the message lists the closest names (difflib).
    """
    _check_model(model)
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str, got {type(name).__name__}")
    if name == "":
        raise UnknownLayerError("layer name '' is the whole model; its output (the logits) cannot be a mixing layer: "
                                f"use {INPUT!r} for the input or a submodule name")
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    names = _module_names(model)
    close = difflib.get_close_matches(name, names + [INPUT], n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    top = [n for n, _ in model.named_children()]
    raise UnknownLayerError(
        f"unknown layer {name!r} for {type(model).__name__}.{hint} Use {INPUT!r} or a dotted name from "
        f"model.named_modules(); top-level modules: {', '.join(top) or '(none)'}")


_STAGE_RE = re.compile(r"^layer(\d+)$")
_CONTAINERS = ("stages", "blocks", "layers")


def stage_names(model: nn.Module) -> Tuple[str, ...]:
    """The model's stages (the blocks after which hidden-layer mixing happens), in forward order.

    Resolution order:
      1. ``model.hidden_layers`` if the model has it (every mixkit benchmark model does:
         ``("layer1", "layer2", ...)``);
      2. else the top-level children named ``layer<N>`` (torchvision / timm ResNet naming), sorted by N;
      3. else the children of the first top-level ``stages`` / ``blocks`` / ``layers`` container
         (``nn.Sequential`` or ``nn.ModuleList``; timm ConvNeXt / ViT naming), e.g. ``"stages.0"``.

    Raises:
        ValueError: none of these exists; pass the layer names explicitly.
    """
    _check_model(model)
    hidden = getattr(model, "hidden_layers", None)
    if hidden is not None:
        if isinstance(hidden, str) or not all(isinstance(h, str) for h in hidden):
            raise TypeError(f"{type(model).__name__}.hidden_layers must be a sequence of module names, got {hidden!r}")
        for h in hidden:
            get_module(model, h)
        return tuple(hidden)
    children = dict(model.named_children())
    numbered = sorted((int(m.group(1)), n) for n in children for m in [_STAGE_RE.match(n)] if m)
    if numbered:
        return tuple(n for _, n in numbered)
    for c in _CONTAINERS:
        mod = children.get(c)
        if isinstance(mod, (nn.Sequential, nn.ModuleList)) and len(mod) > 0:
            return tuple(f"{c}.{n}" for n, _ in mod.named_children())
    raise ValueError(
        f"cannot find the stages of {type(model).__name__}: it has no `hidden_layers` attribute, no top-level "
        f"children named layer1, layer2, ... and no `stages`/`blocks`/`layers` container; pass layers=[...] "
        f"explicitly (top-level modules: {', '.join(children) or '(none)'})")


def default_layers(model: nn.Module, depth: int = 2) -> Tuple[str, ...]:
    """``("input", *stage_names(model)[:depth])``: the official Manifold Mixup layer set for ``depth=2``.

    The official code mixes at ``k ~ U{0, 1, 2}``: the input, the output of ``layer1`` or the output of
    ``layer2`` (PreActResNet and WRN alike).
    """
    return (INPUT,) + stage_names(model)[:depth]


def _resolve_one(model: nn.Module, spec: LayerSpec, stages: Optional[Tuple[str, ...]]) -> str:
    if isinstance(spec, bool):
        raise TypeError(f"a layer must be a name (str) or a stage index (int), got {spec!r}")
    if isinstance(spec, int):
        if spec == 0:
            return INPUT
        stages = stage_names(model) if stages is None else stages
        if not 0 <= spec <= len(stages):
            raise ValueError(f"layer index {spec} is out of range: 0 is the input and 1..{len(stages)} the stages "
                             f"{stages} of {type(model).__name__}")
        return stages[spec - 1]
    if isinstance(spec, str):
        if spec == INPUT:
            return INPUT
        get_module(model, spec)
        return spec
    raise TypeError(f"a layer must be a name (str) or a stage index (int), got {type(spec).__name__}")


def resolve_layers(model: nn.Module, layers: Union[None, str, int, Sequence[LayerSpec]] = None,
                   depth: int = 2) -> Tuple[str, ...]:
    """Validate a layer specification and return the layer names.

    Args:
        model: the model whose modules are hooked.
        layers: ``None`` for :func:`default_layers` (``depth`` stages after the input), ``"all"`` for
            the input and every stage, a single name / index, or a sequence of names and indices
            (``0`` = input, ``k`` = the k-th stage of :func:`stage_names`).

    Raises:
        UnknownLayerError: an unknown name (with close matches); ValueError: an empty list, a duplicate
        or an index out of range; TypeError: an entry that is neither str nor int.
    """
    _check_model(model)
    if layers is None:
        return default_layers(model, depth)
    if isinstance(layers, str) and layers == "all":
        return (INPUT,) + stage_names(model)
    if isinstance(layers, (str, int)):
        layers = [layers]
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(f"layers must be None, 'all', a name, an index or a sequence of them, got {type(layers).__name__}") from None
    if not items:
        raise ValueError("layers must name at least one layer")
    stages = None
    if any(isinstance(s, int) and not isinstance(s, bool) and s != 0 for s in items):
        stages = stage_names(model)
    names = tuple(_resolve_one(model, s, stages) for s in items)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"layers has duplicates: {dup} (from {items!r})")
    return names


def choose_layer(layers: Sequence[str], generator: Optional[torch.Generator] = None) -> str:
    """One of ``layers`` uniformly at random (no draw at all when there is only one)."""
    if len(layers) == 0:
        raise ValueError("layers is empty")
    if len(layers) == 1:
        return layers[0]
    k = torch.randint(len(layers), (1,), generator=generator, device=sampling.gen_device(generator))
    return layers[int(k)]


# --------------------------------------------------------------------------------------- replacement
def _first_tensor(value: Any, what: str) -> int:
    for i, v in enumerate(value):
        if isinstance(v, Tensor):
            return i
    raise TypeError(f"{what} is a {type(value).__name__} without any tensor; nothing to mix")


def _apply(fn: Callable[[Tensor], Tensor], h: Tensor, handle: MixHandle) -> Tensor:
    handle.shape = tuple(h.shape)
    new = fn(h)
    if not isinstance(new, Tensor):
        raise TypeError(f"the mixing function for layer {handle.name!r} must return a tensor, got {type(new).__name__}")
    if new.shape != h.shape:
        raise ValueError(f"the mixing function for layer {handle.name!r} changed the shape from {tuple(h.shape)} "
                         f"to {tuple(new.shape)}; it must return a tensor of the same shape")
    handle.replaced = True
    return new


def _replace(value: Any, fn: Callable[[Tensor], Tensor], handle: MixHandle, what: str) -> Any:
    """``value`` with its (first) tensor replaced by ``fn(tensor)``."""
    if isinstance(value, Tensor):
        return _apply(fn, value, handle)
    if isinstance(value, (tuple, list)):
        i = _first_tensor(value, what)
        items = list(value)
        items[i] = _apply(fn, items[i], handle)
        if isinstance(value, list):
            return items
        if hasattr(value, "_fields"):  # namedtuple
            return type(value)(*items)
        return tuple(items)
    raise TypeError(f"{what} is a {type(value).__name__}; hidden-layer mixing supports a tensor or a tuple/list "
                    "whose first tensor is mixed")


@contextmanager
def mix_at(model: nn.Module, layer: Union[LayerSpec, Sequence[LayerSpec]], fn: Callable[[Tensor], Tensor], *,
           generator: Optional[torch.Generator] = None, allow_reuse: bool = False) -> Iterator[MixHandle]:
    """Replace the output of one layer by ``fn(output)`` in every forward pass run inside the block.

    >>> with mix_at(model, "layer2", lambda h: 0.7 * h + 0.3 * h.flip(0)) as handle:
    ...     logits = model(x)
    >>> handle.replaced
    True

    Args:
        model: the model; the hook goes on its submodule ``layer`` (on the model itself, as a forward
            *pre*-hook, for ``"input"``). A wrapper that calls this model (DistributedDataParallel,
            a closure ``lambda x: model(x)``) may run the forward; ``model.forward(x)`` may not at
            ``"input"`` (it bypasses the model's own hooks, and :class:`LayerNotReachedError` is raised).
        layer: a name (``"input"`` or a dotted module name), a stage index (0 = input), or a sequence
            of them, from which one is drawn uniformly with ``generator`` (no draw for a single one).
            The layer is chosen once, on entering the block.
        fn: ``hidden -> new_hidden`` of the same shape; called exactly once per forward pass
            (``handle.calls`` counts them).
        generator: for the random choice among several layers.
        allow_reuse: if the module runs more than once in one forward pass (a shared module), mix
            only its first call of that pass instead of raising :class:`LayerReusedError`.

    Yields:
        a :class:`MixHandle` (``name``, ``calls``, ``replaced``, ``shape``).

    Raises:
        LayerNotReachedError: on leaving the block, if the layer never ran (nothing was mixed).
        LayerReusedError: the module ran twice in one forward pass (raised from inside the forward).
        UnknownLayerError: an unknown name (before anything runs).

    The hook is removed when the block ends, whether it ends normally or by an exception. A forward
    pass starts with each call of ``model`` itself; when only ``model.forward`` is called, all calls
    in the block count as one pass.
    """
    _check_model(model)
    if not callable(fn):
        raise TypeError(f"fn must be callable (hidden -> new_hidden), got {type(fn).__name__}")
    if layer is None:
        raise TypeError("layer must be a name, an index or a sequence of them, got None")
    name = choose_layer(resolve_layers(model, layer), generator)
    module = model if name == INPUT else get_module(model, name)
    handle = MixHandle(name=name, module=module)
    removers = []

    if name == INPUT:
        def pre_hook(mod: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
            handle.calls += 1
            if args:
                if isinstance(args[0], Tensor):
                    return (_apply(fn, args[0], handle),) + tuple(args[1:]), kwargs
                raise TypeError(f"the first positional argument of {type(mod).__name__}(...) is a "
                                f"{type(args[0]).__name__}, not a tensor; cannot mix the input")
            for k, v in kwargs.items():
                if isinstance(v, Tensor):
                    kwargs = dict(kwargs)
                    kwargs[k] = _apply(fn, v, handle)
                    return args, kwargs
            raise TypeError(f"{type(mod).__name__}(...) was called without a tensor argument; cannot mix the input")

        removers.append(model.register_forward_pre_hook(pre_hook, with_kwargs=True))
    else:
        in_pass = [0]  # calls of the module in the current forward pass

        def new_pass(mod: nn.Module, args: Tuple[Any, ...]) -> None:
            in_pass[0] = 0

        def hook(mod: nn.Module, args: Tuple[Any, ...], output: Any):
            handle.calls += 1
            in_pass[0] += 1
            if in_pass[0] > 1:
                if allow_reuse:
                    return None
                raise LayerReusedError(
                    f"layer {name!r} ({type(mod).__name__}) ran {in_pass[0]} times in one forward pass; hidden-layer "
                    "mixing needs a module that runs once per forward (pick its parent block, or pass "
                    "allow_reuse=True to mix only the first call)")
            return _replace(output, fn, handle, f"the output of layer {name!r} ({type(mod).__name__})")

        removers.append(model.register_forward_pre_hook(new_pass))
        removers.append(module.register_forward_hook(hook))
    try:
        yield handle
    finally:
        for r in removers:
            r.remove()
    if not handle.called:
        where = ("the model was never called (hooks only run on model(x), not model.forward(x))" if name == INPUT else
                 f"module {name!r} ({type(module).__name__}) never ran during the forward pass: it is not used by "
                 f"{type(model).__name__}.forward, or it was run through .forward() / functional code that "
                 "bypasses hooks")
        raise LayerNotReachedError(f"nothing was mixed: {where}")
    if not handle.replaced:  # pragma: no cover - _apply either replaces or raises
        raise LayerNotReachedError(f"layer {name!r} ran but its output was not replaced")


@contextmanager
def capture(model: nn.Module, *layers: str, prepend: bool = False, first: bool = False,
            copy: bool = False) -> Iterator[Dict[str, Tensor]]:
    """Record (without changing) the first-tensor output of some layers during the forward passes.

    >>> with capture(model, "layer1", "layer2") as acts:
    ...     model(x)
    >>> acts["layer1"].shape

    ``"input"`` records the model's input. Later calls of a module overwrite earlier ones (with
    ``first=True`` the first call's tensor is kept). Hooks are removed on leaving the block; a layer
    that never ran is absent from the dict.

    Around a :func:`mix_at` block on the same layer, the hooks see the mixed tensor: they run after the
    hooks already registered. With ``prepend=True`` they run before them, so they see the unmixed one
    (the output the module computed, or the input the model was called with). ``copy=True`` records
    detached copies (safe from later in-place changes and from autograd) instead of the tensors themselves.
    """
    _check_model(model)
    acts: Dict[str, Tensor] = {}
    removers = []

    def keep(name: str, t: Tensor) -> None:
        if not (first and name in acts):
            acts[name] = t.detach().clone() if copy else t

    try:
        for spec in layers:
            name = resolve_layers(model, spec)[0]
            if name == INPUT:
                def pre(mod, args, kwargs, _n=name):
                    vals = list(args) + list(kwargs.values())
                    for v in vals:
                        if isinstance(v, Tensor):
                            keep(_n, v)
                            break
                removers.append(model.register_forward_pre_hook(pre, with_kwargs=True, prepend=prepend))
            else:
                def post(mod, args, out, _n=name):
                    if isinstance(out, Tensor):
                        keep(_n, out)
                    elif isinstance(out, (tuple, list)):
                        keep(_n, out[_first_tensor(out, f"the output of {_n!r}")])
                removers.append(get_module(model, name).register_forward_hook(post, prepend=prepend))
        yield acts
    finally:
        for r in removers:
            r.remove()

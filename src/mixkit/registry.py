"""Name -> mixer factory map, used by the ``mixkit`` command and the benchmark.

Every entry records where the class lives (imported lazily, so a method whose module is missing or
whose optional dependency is not installed is simply *unavailable*, never an import error of
``mixkit`` itself), the defaults we use (the papers' defaults, see each method's page in
``docs/methods/``), the spatial dimensionalities it supports and whether it needs the model.

>>> from mixkit import registry
>>> registry.available()                       # names whose implementation imports
['mixup', 'dirichlet_mixup', 'cutmix', ...]
>>> mixer = registry.create("cutmix", num_classes=10, mode="sample")
>>> registry.describe("hmix")["defaults"]
{'alpha': 1.0, 'r': 0.5}

Adding a method: append a :class:`MethodSpec` to ``_SPECS`` below (name, ``"module:Class"``,
defaults, dims, needs_model). Nothing else has to change: ``mixkit list``/``show`` and the benchmark
read this table.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = [
    "MethodSpec",
    "UnknownMethodError",
    "MethodUnavailableError",
    "names",
    "available",
    "unavailable",
    "resolve",
    "spec",
    "get_class",
    "is_available",
    "spatial_dims",
    "create",
    "describe",
]


class UnknownMethodError(ValueError):
    """The name is not in the registry (the message lists the valid names)."""


class MethodUnavailableError(ImportError):
    """The method is registered but its implementation cannot be imported (the message says why)."""


@dataclass(frozen=True)
class MethodSpec:
    """One registry entry.

    Attributes:
        name: canonical name (lower case, ``snake_case``), e.g. ``"dirichlet_mixup"``.
        target: ``"package.module:ClassName"``, imported on first use.
        defaults: keyword arguments passed to the constructor unless overridden (the paper's defaults;
            where the official code's default differs, the method's docs page says why).
        spatial_dims: spatial dimensionalities the method supports (1: sequences, 2: images, 3: volumes).
            Once the class is importable its own ``spatial_dims`` attribute is authoritative.
        needs_model: the constructor takes the model (saliency / learned methods): ``create(name, model=m)``.
        summary: one line for ``mixkit list``.
        paper: short citation.
        aliases: other accepted names.
    """

    name: str
    target: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    spatial_dims: Tuple[int, ...] = (1, 2, 3)
    needs_model: bool = False
    summary: str = ""
    paper: str = ""
    aliases: Tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def class_name(self) -> str:
        return self.target.split(":", 1)[1]


_SPECS: Tuple[MethodSpec, ...] = (
    MethodSpec(
        "mixup", "mixkit.mixers.mixup:MixUp", {"alpha": 1.0}, (1, 2, 3), False,
        "convex combination of two samples, lambda ~ Beta(alpha, alpha)",
        "Zhang et al., ICLR 2018 (arXiv:1710.09412)"),
    MethodSpec(
        "dirichlet_mixup", "mixkit.mixers.dirichlet:DirichletMixUp", {"alpha": 1.0, "k": 3}, (1, 2, 3), False,
        "convex combination of k samples, weights ~ Dirichlet(alpha)",
        "Zhang et al., ICLR 2018 (multi-sample remark)", aliases=("dmixup", "dirichlet")),
    MethodSpec(
        "cutmix", "mixkit.mixers.cutmix:CutMix", {"alpha": 1.0}, (1, 2, 3), False,
        "paste a box of the partner; label = realised box share",
        "Yun et al., ICCV 2019 (arXiv:1905.04899)"),
    MethodSpec(
        "fmix", "mixkit.mixers.fmix:FMix", {"alpha": 1.0, "decay_power": 3.0}, (1, 2, 3), False,
        "binary mask from thresholded low-frequency Fourier noise",
        "Harris et al., arXiv:2002.12047, 2020"),
    MethodSpec(
        "hmix", "mixkit.mixers.hmix:HMix", {"alpha": 1.0, "r": 0.5}, (1, 2, 3), False,
        "MixUp outside a CutMix box of area r*(1-lambda)",
        "Park, Yun, Chun, NeurIPS 2022 (arXiv:2208.09913)"),
    MethodSpec(
        "gmix", "mixkit.mixers.gmix:GMix", {"alpha": 1.0}, (1, 2, 3), False,
        "Gaussian-kernel soft mask centred at a random point",
        "Park, Yun, Chun, NeurIPS 2022 (arXiv:2208.09913)"),
    MethodSpec(
        "resizemix", "mixkit.mixers.resizemix:ResizeMix", {"scale": (0.1, 0.8)}, (1, 2, 3), False,
        "paste the whole partner, shrunk by tau ~ U(0.1, 0.8)",
        "Qin et al., arXiv:2012.11101 (CVMJ 2023)"),
    MethodSpec(
        "smoothmix", "mixkit.mixers.smoothmix:SmoothMix", {"sigma_range": (0.25, 0.5)}, (1, 2, 3), False,
        "soft-edged Gaussian blob of the partner",
        "Lee et al., CVPR Workshops 2020"),
    MethodSpec(
        "gridmix", "mixkit.mixers.gridmix:GridMix", {"alpha": (0.1, 0.9), "n_holes": (2, 6)}, (1, 2, 3), False,
        "partner pasted through a lattice of holes (GridMask + CutMix)",
        "IlyaDobrynin/GridMixup (the method OpenMixup ports as gridmix)"),
    MethodSpec(
        "manifold_mixup", "mixkit.mixers.manifold:ManifoldMixup", {"alpha": 2.0}, (1, 2, 3), True,
        "MixUp of the hidden state at a random layer (input, layer1, layer2)",
        "Verma et al., ICML 2019 (arXiv:1806.05236)", aliases=("manifold", "manifoldmixup")),
    MethodSpec(
        "patchup", "mixkit.mixers.patchup:PatchUp",
        {"patchup_type": "hard", "block_size": 7, "gamma": 0.5, "p": 0.7}, (1, 2, 3), True,
        "swap (hard) / interpolate (soft) DropBlock-style blocks of a hidden feature map",
        "Faramarzi et al., AAAI 2022 (arXiv:2006.07794)"),
    MethodSpec(
        "saliencymix", "mixkit.mixers.saliencymix:SaliencyMix", {"alpha": 1.0}, (1, 2, 3), False,
        "CutMix box centred on the source's fine-grained static-saliency peak (one map per batch)",
        "Uddin et al., ICLR 2021 (arXiv:2006.01791)"),
    MethodSpec(
        "comixup", "mixkit.mixers.comixup:CoMixup",
        {"alpha": 2.0, "m_block_num": 4, "m_part": 20, "m_beta": 0.32, "m_gamma": 1.0, "m_thres": 0.83,
         "m_eta": 0.05, "m_omega": 0.001, "set_resolve": True, "m_niter": 4, "clean_lam": 1.0},
        (1, 2, 3), True, "joint saliency-guided multi-input mixing with a supermodular diversity penalty",
        "Kim et al., ICLR 2021 (arXiv:2102.03065)", aliases=("co_mixup",)),
    MethodSpec(
        "puzzlemix", "mixkit.mixers.puzzlemix:PuzzleMix",
        {"alpha": 1.0, "n_labels": 3, "beta": 1.2, "gamma": 0.5, "eta": 0.2, "neigh_size": 4, "transport": True,
         "t_eps": 0.8, "t_size": -1, "clean_lam": 0.0, "adv_p": 0.0, "adv_eps": 10.0, "block_num": None},
        (2,), True, "saliency-guided block mixing: exact 3-label graph labelling and optimal-transport block moves",
        "Kim, Choo, Song, ICML 2020 (arXiv:2009.06962)", aliases=("puzzle_mix",)),
)

_BY_NAME: Dict[str, MethodSpec] = {s.name: s for s in _SPECS}
_ALIASES: Dict[str, str] = {}
for _s in _SPECS:
    _ALIASES[_s.name] = _s.name
    for _a in _s.aliases:
        _ALIASES[_a] = _s.name
# import outcome per target: class, or the exception that made it unavailable
_CACHE: Dict[str, Any] = {}


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def names() -> List[str]:
    """All registered canonical names, available or not, in registry order."""
    return [s.name for s in _SPECS]


def resolve(name: str) -> str:
    """Canonical name for ``name`` or an alias (case-insensitive; ``-`` and ``_`` are equivalent).

    Raises:
        UnknownMethodError: the name is not registered; the message lists the valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"method name must be a str, got {type(name).__name__}")
    key = _norm(name)
    if key in _ALIASES:
        return _ALIASES[key]
    valid = ", ".join(names())
    close = difflib.get_close_matches(key, list(_ALIASES), n=1)
    hint = f" Did you mean {_ALIASES[close[0]]!r}?" if close else ""
    aliases = ", ".join(f"{a} -> {c}" for a, c in _ALIASES.items() if a != c)
    raise UnknownMethodError(f"unknown method {name!r}.{hint} Valid names: {valid} (aliases: {aliases})")


def spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of a name or alias."""
    return _BY_NAME[resolve(name)]


def _load(s: MethodSpec) -> Any:
    """Import the class, caching the outcome (the class, or the exception)."""
    if s.target not in _CACHE:
        try:
            mod = importlib.import_module(s.module)
            cls = getattr(mod, s.class_name)
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if missing and (s.module == missing or s.module.startswith(missing + ".")):
                err: Exception = MethodUnavailableError(
                    f"{s.name}: module {s.module} is not implemented yet (not found)")
            else:
                err = MethodUnavailableError(
                    f"{s.name}: {s.module} needs the package {missing or '?'!r}, which is not installed ({e})")
            err.__cause__ = e
            _CACHE[s.target] = err
        except AttributeError as e:
            err = MethodUnavailableError(f"{s.name}: {s.module} has no class {s.class_name}")
            err.__cause__ = e
            _CACHE[s.target] = err
        except Exception as e:  # a broken module (syntax error, failing import-time code)
            err = MethodUnavailableError(f"{s.name}: importing {s.module} failed: {type(e).__name__}: {e}")
            err.__cause__ = e
            _CACHE[s.target] = err
        else:
            _CACHE[s.target] = cls
    return _CACHE[s.target]


def _clear_cache() -> None:
    """Forget import outcomes (so a module added since the last call is picked up)."""
    _CACHE.clear()
    importlib.invalidate_caches()


def get_class(name: str) -> type:
    """The mixer class of a name or alias.

    Raises:
        UnknownMethodError: not registered.
        MethodUnavailableError: registered but not importable (missing module or dependency).
    """
    s = spec(name)
    out = _load(s)
    if isinstance(out, Exception):
        raise MethodUnavailableError(str(out)) from out.__cause__
    return out


def is_available(name: str) -> bool:
    """Whether the implementation of ``name`` imports."""
    return not isinstance(_load(spec(name)), Exception)


def available() -> List[str]:
    """Canonical names whose implementation imports, in registry order."""
    return [s.name for s in _SPECS if not isinstance(_load(s), Exception)]


def unavailable() -> Dict[str, str]:
    """``{name: reason}`` for the registered methods that cannot be imported."""
    out = {}
    for s in _SPECS:
        r = _load(s)
        if isinstance(r, Exception):
            out[s.name] = str(r)
    return out


def spatial_dims(name: str) -> Tuple[int, ...]:
    """Supported spatial dims: the class's own ``spatial_dims`` when importable, else the registry's."""
    s = spec(name)
    cls = _load(s)
    dims = getattr(cls, "spatial_dims", None) if not isinstance(cls, Exception) else None
    return tuple(dims) if dims else s.spatial_dims


def create(name: str, **overrides: Any):
    """Build a mixer by name with the registry defaults, updated by ``overrides``.

    ``create("hmix", num_classes=10)`` is ``HMix(alpha=1.0, r=0.5, num_classes=10)``. Methods that
    need the model take it as ``model=``: ``create("puzzlemix", model=net)`` calls ``PuzzleMix(net, ...)``.

    Raises:
        UnknownMethodError: the name is not registered (the message lists the valid names).
        MethodUnavailableError: the implementation cannot be imported (the message says why).
        ValueError: a model-based method was created without ``model=``.
        TypeError: an override is not an argument of the constructor (the message lists the valid ones).
    """
    s = spec(name)
    cls = get_class(s.name)
    kwargs = dict(s.defaults)
    kwargs.update(overrides)
    model = kwargs.pop("model", None)
    if s.needs_model and model is None:
        raise ValueError(f"method {s.name!r} needs the model: create({s.name!r}, model=net, ...)")
    if not s.needs_model and model is not None:
        raise TypeError(f"method {s.name!r} does not take a model")
    _check_kwargs(cls, s.name, kwargs)
    return cls(model, **kwargs) if s.needs_model else cls(**kwargs)


def _accepted(cls: type) -> Optional[List[str]]:
    """Keyword names the constructor accepts through the whole ``**kw`` chain, or None if unknown."""
    seen: List[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        has_var_kw = False
        for p in params:
            if p.name == "self":
                continue
            if p.kind is p.VAR_KEYWORD:
                has_var_kw = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in seen:
                seen.append(p.name)
        if not has_var_kw:
            return seen
        if klass.__module__.startswith("torch."):
            return None
    return None


def _check_kwargs(cls: type, name: str, kwargs: Mapping[str, Any]) -> None:
    ok = _accepted(cls)
    if ok is None:
        return
    bad = [k for k in kwargs if k not in ok]
    if bad:
        raise TypeError(
            f"{cls.__name__} ({name!r}) got unexpected argument(s) {', '.join(map(repr, bad))}; "
            f"valid: {', '.join(k for k in ok if k != 'model')}")


def describe(name: str) -> Dict[str, Any]:
    """Everything the registry knows about a method, as a dict.

    Keys: ``name``, ``aliases``, ``target``, ``defaults``, ``spatial_dims``, ``needs_model``,
    ``summary``, ``paper``, ``available`` (bool), ``reason`` (why not, or ``None``; also under
    ``error``) and ``doc`` (the first paragraph of the class docstring when importable).
    """
    s = spec(name)
    cls = _load(s)
    ok = not isinstance(cls, Exception)
    doc = None
    if ok and cls.__doc__:
        doc = inspect.cleandoc(cls.__doc__).split("\n\n", 1)[0]
    return {
        "name": s.name,
        "aliases": list(s.aliases),
        "target": s.target,
        "defaults": dict(s.defaults),
        "spatial_dims": spatial_dims(s.name),
        "needs_model": s.needs_model,
        "summary": s.summary,
        "paper": s.paper,
        "available": ok,
        "reason": None if ok else str(cls),
        "error": None if ok else str(cls),
        "doc": doc,
    }

"""Name -> mixer class, derived from the classes themselves.

The class is the only method table: a mixer class that sets ``name`` (and, optionally, ``aliases``,
``defaults``, ``needs_model``, ``saliency_guided``, ``summary``, ``paper``, ``spatial_dims``) is a
method. The built-in methods are the classes of :mod:`mixkit.mixers` that set a ``name`` (every module
of that package is imported, so a new module is picked up without editing any list); a class defined
elsewhere is added at run time with :func:`register` (and removed with :func:`unregister`); other
packages add methods through the ``mixkit.methods`` entry-point group::

    # pyproject.toml of a third-party package
    [project.entry-points."mixkit.methods"]
    mymix = "mypkg.mymix:MyMix"

An entry point is imported on first use; one whose module cannot be imported (a missing optional
dependency, say) is listed as *unavailable* with the reason, never an import error of ``mixkit``.

>>> from mixkit import registry
>>> registry.names()[:3]
['cutmix', 'dirichlet_mixup', 'fmix']
>>> mixer = registry.create("cutmix", num_classes=10, mode="sample")
>>> registry.describe("hmix")["defaults"]
{'alpha': 1.0, 'r': 0.5}

See ``docs/design.md`` ("Adding a method") for a worked example.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = [
    "ENTRY_POINT_GROUP",
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
    "saliency_guided",
    "is_learned",
    "create",
    "describe",
    "check_kwargs",
    "register",
    "unregister",
]

#: the entry-point group through which other packages add methods
ENTRY_POINT_GROUP = "mixkit.methods"


class UnknownMethodError(ValueError):
    """The name is not registered (the message lists the valid names)."""


class MethodUnavailableError(ImportError):
    """The method is registered through an entry point whose module cannot be imported (the message says why)."""


@dataclass(frozen=True)
class MethodSpec:
    """What the registry knows of one method: a read-only view of the class attributes.

    Attributes:
        name: canonical name (lower case, ``snake_case``), e.g. ``"dirichlet_mixup"``.
        target: ``"package.module:ClassName"``.
        defaults: keyword arguments passed to the constructor unless overridden (the paper's defaults;
            where the official code's default differs, the method's docs page says why).
        spatial_dims: spatial dimensionalities the method supports (1: sequences, 2: images, 3: volumes).
        needs_model: the constructor takes the model: ``create(name, model=m)``.
        saliency_guided: the method mixes where a saliency map points (``mixkit show`` draws the maps).
        summary: one line for ``mixkit list``.
        paper: short citation.
        aliases: other accepted names.
    """

    name: str
    target: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    spatial_dims: Tuple[int, ...] = (1, 2, 3)
    needs_model: bool = False
    saliency_guided: bool = False
    summary: str = ""
    paper: str = ""
    aliases: Tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The module that defines the class (the part of ``target`` before the colon)."""
        return self.target.split(":", 1)[0]

    @property
    def class_name(self) -> str:
        """The class's name in its module (the part of ``target`` after the colon)."""
        return self.target.split(":", 1)[1]


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _spec_of(cls: type) -> MethodSpec:
    return MethodSpec(
        name=cls.name, target=f"{cls.__module__}:{cls.__qualname__}", defaults=dict(cls.defaults),
        spatial_dims=tuple(cls.spatial_dims), needs_model=bool(cls.needs_model),
        saliency_guided=bool(cls.saliency_guided), summary=cls.summary, paper=cls.paper,
        aliases=tuple(cls.aliases))


def _is_method(cls: type) -> bool:
    """A registered method: a class that sets ``name`` itself (base and composite classes leave it None)."""
    return isinstance(cls.__dict__.get("name"), str)


def _builtin_classes() -> List[type]:
    """The built-in method classes: the subclasses of :class:`~mixkit.mixers.base.Mixer` and of
    :class:`~mixkit.learned.MixLearner` defined in mixkit that set a ``name`` (importing
    :mod:`mixkit.mixers` imports every module of the package)."""
    from .learned import MixLearner
    from .mixers import Mixer

    out, todo, seen = [], list(Mixer.__subclasses__()) + list(MixLearner.__subclasses__()), set()
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if _is_method(cls) and cls.__module__.startswith("mixkit."):
            out.append(cls)
    return out


# methods added at run time by register()
_RUNTIME: Dict[str, type] = {}


def register(cls: type) -> type:
    """Add a mixer class defined outside mixkit (a notebook, a test, your own package without an entry
    point) under its ``name``; returns the class, so it can decorate the class statement.

    Raises:
        TypeError: ``cls`` is not a class that sets ``name`` (a ``str``) itself.
        ValueError: another class already has that name.
    """
    if not isinstance(cls, type) or not _is_method(cls):
        raise TypeError(f"register() takes a mixer class that sets a `name` attribute, got {cls!r}")
    key = _norm(cls.name)
    if key != cls.name:
        raise ValueError(f"a method name must be lower-case snake_case, got {cls.name!r} (use {key!r})")
    table = _table()[0]
    if key in table and table[key] is not cls:
        raise ValueError(f"the method name {key!r} is taken by {table[key]!r}")
    _RUNTIME[key] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a method added with :func:`register` (a no-op for a name it did not add)."""
    _RUNTIME.pop(_norm(name), None)


@functools.lru_cache(maxsize=1)
def _entry_points() -> Tuple[importlib.metadata.EntryPoint, ...]:
    """The installed ``mixkit.methods`` entry points (read once: scanning the installed packages is slow)."""
    return tuple(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


# import outcome per entry point value: the class, or the exception that made it unavailable
_EP_CACHE: Dict[str, Any] = {}


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> Any:
    if ep.value not in _EP_CACHE:
        module = ep.value.split(":", 1)[0]
        try:
            cls = ep.load()
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if missing and (module == missing or module.startswith(missing + ".")):
                err: Exception = MethodUnavailableError(f"{ep.name}: module {module} is not implemented yet (not found)")
            else:
                err = MethodUnavailableError(
                    f"{ep.name}: {module} needs the package {missing or '?'!r}, which is not installed ({e})")
            err.__cause__ = e
            _EP_CACHE[ep.value] = err
        except AttributeError as e:
            err = MethodUnavailableError(f"{ep.name}: {ep.value} does not name a class ({e})")
            err.__cause__ = e
            _EP_CACHE[ep.value] = err
        except Exception as e:  # a broken module (syntax error, failing import-time code)
            err = MethodUnavailableError(f"{ep.name}: importing {module} failed: {type(e).__name__}: {e}")
            err.__cause__ = e
            _EP_CACHE[ep.value] = err
        else:
            _EP_CACHE[ep.value] = cls if isinstance(cls, type) and _is_method(cls) else MethodUnavailableError(
                f"{ep.name}: {ep.value} is not a mixer class with a `name` attribute")
    return _EP_CACHE[ep.value]


def _clear_cache() -> None:
    """Forget the entry points and their import outcomes (so a package installed since is picked up)."""
    _entry_points.cache_clear()
    _EP_CACHE.clear()
    importlib.invalidate_caches()


def _table() -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``({name: class or MethodUnavailableError}, {alias or name: name})``.

    Hand-crafted methods come first, then the model-aware ones, each group by name; entry points that
    name a method already defined are ignored (the class wins).
    """
    classes = sorted(_builtin_classes(), key=lambda c: (bool(c.needs_model), c.name)) + list(_RUNTIME.values())
    table: Dict[str, Any] = {}
    for cls in classes:
        if cls.name in table and table[cls.name] is not cls:
            other = table[cls.name]
            raise RuntimeError(f"two mixer classes claim the method name {cls.name!r}: "
                               f"{other.__module__}.{other.__qualname__} and {cls.__module__}.{cls.__qualname__}")
        table[cls.name] = cls
    for ep in _entry_points():
        key = _norm(ep.name)
        if key in table:
            continue
        out = _load_entry_point(ep)
        table[key] = out
    aliases: Dict[str, str] = {}
    for name, cls in table.items():
        aliases[name] = name
        if isinstance(cls, type):
            for a in cls.aliases:
                aliases.setdefault(_norm(a), name)
    return table, aliases


def names() -> List[str]:
    """All registered canonical names, available or not."""
    return list(_table()[0])


def resolve(name: str) -> str:
    """Canonical name for ``name`` or an alias (case-insensitive; ``-`` and ``_`` are equivalent).

    Raises:
        UnknownMethodError: the name is not registered; the message lists the valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"method name must be a str, got {type(name).__name__}")
    table, aliases = _table()
    key = _norm(name)
    if key in aliases:
        return aliases[key]
    valid = ", ".join(table)
    close = difflib.get_close_matches(key, list(aliases), n=1)
    hint = f" Did you mean {aliases[close[0]]!r}?" if close else ""
    others = ", ".join(f"{a} -> {c}" for a, c in aliases.items() if a != c)
    raise UnknownMethodError(f"unknown method {name!r}.{hint} Valid names: {valid} (aliases: {others})")


def _entry(name: str) -> Any:
    return _table()[0][resolve(name)]


def get_class(name: str) -> type:
    """The mixer class of a name or alias.

    Raises:
        UnknownMethodError: not registered.
        MethodUnavailableError: registered through an entry point that cannot be imported.
    """
    out = _entry(name)
    if isinstance(out, Exception):
        raise MethodUnavailableError(str(out)) from out.__cause__
    return out


def spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of a name or alias (read from its class)."""
    return _spec_of(get_class(name))


def is_available(name: str) -> bool:
    """Whether the implementation of ``name`` imports."""
    return not isinstance(_entry(name), Exception)


def available() -> List[str]:
    """Canonical names whose implementation imports."""
    return [n for n, c in _table()[0].items() if not isinstance(c, Exception)]


def unavailable() -> Dict[str, str]:
    """``{name: reason}`` for the methods registered through entry points that cannot be imported."""
    return {n: str(c) for n, c in _table()[0].items() if isinstance(c, Exception)}


def spatial_dims(name: str) -> Tuple[int, ...]:
    """Spatial dimensionalities the method supports (its class's ``spatial_dims``)."""
    return tuple(get_class(name).spatial_dims)


def saliency_guided(name: str) -> bool:
    """Whether the method is guided by a saliency map (its class's ``saliency_guided``)."""
    return bool(get_class(name).saliency_guided)


def is_learned(name: str) -> bool:
    """Whether the method is a learner (AutoMix, AdAutoMix: it trains a mask generator with the model and
    returns the loss of a step, see :class:`~mixkit.learned.MixLearner`) rather than a mixer."""
    return bool(getattr(get_class(name), "learned", False))


def create(name: str, **overrides: Any):
    """Build a mixer by name with its class's ``defaults``, updated by ``overrides``.

    ``create("hmix", num_classes=10)`` is ``HMix(alpha=1.0, r=0.5, num_classes=10)``. Methods that
    need the model take it as ``model=``: ``create("puzzlemix", model=net)`` calls ``PuzzleMix(net, ...)``.

    Raises:
        UnknownMethodError: the name is not registered (the message lists the valid names).
        MethodUnavailableError: the implementation cannot be imported (the message says why).
        ValueError: a model-based method was created without ``model=``.
        TypeError: an override is not an argument of the constructor (the message lists the valid ones).
    """
    cls = get_class(name)
    kwargs = dict(cls.defaults)
    kwargs.update(overrides)
    model = kwargs.pop("model", None)
    if cls.needs_model and model is None:
        raise ValueError(f"method {cls.name!r} needs the model: create({cls.name!r}, model=net, ...)")
    if not cls.needs_model and model is not None:
        raise TypeError(f"method {cls.name!r} does not take a model")
    check_kwargs(cls, kwargs)
    return cls(model, **kwargs) if cls.needs_model else cls(**kwargs)


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


def check_kwargs(cls: type, kwargs: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` naming every key of ``kwargs`` that ``cls``'s constructor does not accept."""
    ok = _accepted(cls)
    if ok is None:
        return
    bad = [k for k in kwargs if k not in ok]
    if bad:
        label = f" ({cls.name!r})" if _is_method(cls) else ""
        raise TypeError(
            f"{cls.__name__}{label} got unexpected argument(s) {', '.join(map(repr, bad))}; "
            f"valid: {', '.join(k for k in ok if k != 'model')}")


def describe(name: str) -> Dict[str, Any]:
    """Everything the registry knows about a method, as a dict.

    Keys: ``name``, ``aliases``, ``target``, ``defaults``, ``spatial_dims``, ``needs_model``,
    ``saliency_guided``, ``summary``, ``paper``, ``available`` (bool), ``reason`` (why not, or ``None``;
    also under ``error``) and ``doc`` (the first paragraph of the class docstring when importable).
    """
    key = resolve(name)
    cls = _entry(key)
    if isinstance(cls, Exception):
        ep = next(e for e in _entry_points() if _norm(e.name) == key)
        return {"name": key, "aliases": [], "target": ep.value, "defaults": {}, "spatial_dims": (),
                "needs_model": False, "saliency_guided": False, "summary": "", "paper": "",
                "available": False, "reason": str(cls), "error": str(cls), "doc": None}
    s = _spec_of(cls)
    doc = inspect.cleandoc(cls.__doc__).split("\n\n", 1)[0] if cls.__doc__ else None
    return {
        "name": s.name,
        "aliases": list(s.aliases),
        "target": s.target,
        "defaults": dict(s.defaults),
        "spatial_dims": s.spatial_dims,
        "needs_model": s.needs_model,
        "saliency_guided": s.saliency_guided,
        "summary": s.summary,
        "paper": s.paper,
        "available": True,
        "reason": None,
        "error": None,
        "doc": doc,
    }

"""Subcommands added by installed packages: the ``mixkit.commands`` entry-point group.

Every entry point of the group names a ``register(subparsers)`` callable; it is loaded and called
with the ``argparse`` sub-parsers object after the built-in subcommands are added. An entry point
that cannot be imported (``ImportError``, e.g. the benchmark's optional dependencies are missing) is
skipped and remembered with the reason, which ``main`` prints when an unknown command is typed; any
other error while loading or registering is raised, so a broken extension is never hidden.
"""
from __future__ import annotations

from importlib import metadata
from typing import Dict, List, Optional

__all__ = ["ENTRY_POINT_GROUP", "load_extensions", "missing_command_hint"]

#: the entry-point group whose ``register(subparsers)`` callables add subcommands
ENTRY_POINT_GROUP = "mixkit.commands"
#: entry points skipped at the last parser build: name -> "target: the ImportError that skipped it"
_SKIPPED_EXTENSIONS: Dict[str, str] = {}
#: entry points registered at the last parser build, by name
_LOADED_EXTENSIONS: List[str] = []


def _entry_points() -> List[metadata.EntryPoint]:
    """The group's entry points, sorted by name (an identical one found twice on the path counts once)."""
    found: Dict[tuple, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault((ep.name, ep.value), ep)
    return [found[k] for k in sorted(found)]


def load_extensions(subparsers) -> None:
    """Load every entry point of :data:`ENTRY_POINT_GROUP` and call it with ``subparsers``."""
    _SKIPPED_EXTENSIONS.clear()
    _LOADED_EXTENSIONS.clear()
    for ep in _entry_points():
        try:
            register = ep.load()
        except ImportError as e:
            _SKIPPED_EXTENSIONS[ep.name] = f"{ep.value}: {type(e).__name__}: {e}"
            continue
        register(subparsers)
        _LOADED_EXTENSIONS.append(ep.name)


def missing_command_hint() -> Optional[str]:
    """Why a command may be missing after the last parser build (None when every extension loaded)."""
    if _SKIPPED_EXTENSIONS:
        return "Extensions not loaded: " + "; ".join(f"{n} ({e})" for n, e in _SKIPPED_EXTENSIONS.items())
    if not _LOADED_EXTENSIONS:
        return (f"No extension is installed in the entry-point group {ENTRY_POINT_GROUP!r} (mixkit's own "
                "`bench` and `report` need mixkit installed, e.g. pip install -e .)")
    return None

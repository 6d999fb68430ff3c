"""The one ``--param KEY=VALUE`` parser, shared by ``mixkit show`` and ``mixkit bench``.

``show`` takes ``KEY=VALUE`` (every method) or ``METHOD.KEY=VALUE`` (one method, useful with
``show all``); ``bench`` requires ``METHOD.KEY=VALUE`` (``qualified=True``). Both accept several
items after one ``--param`` and repeated ``--param`` options (:func:`add_param_option`).
"""
from __future__ import annotations

import argparse
import ast
from typing import Any, Dict, Optional, Sequence

from .. import registry
from .errors import CLIError

__all__ = ["ParamError", "parse_value", "parse_params", "add_param_option"]


class ParamError(CLIError, ValueError):
    """A malformed ``--param`` item (a :class:`CLIError`, and a ``ValueError`` for library callers)."""


def parse_value(text: str) -> Any:
    """A ``--param`` value: ``true``/``false``/``none``/``null`` (any case) -> True/False/None, else a
    Python literal (numbers, strings, tuples, lists, dicts), else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_params(items: Optional[Sequence[str]], *, qualified: bool = False,
                 resolve: bool = True) -> Dict[Optional[str], Dict[str, Any]]:
    """``["alpha=0.4", "cutmix.minmax=(0.2,0.8)"]`` -> ``{None: {"alpha": 0.4}, "cutmix": {"minmax": (0.2, 0.8)}}``.

    Values are read by :func:`parse_value`. ``METHOD.KEY=VALUE`` applies to one method only; with
    ``resolve`` its name goes through :func:`mixkit.registry.resolve` (aliases, case; an unknown name
    raises ``UnknownMethodError``), without it the name is kept as written. With ``qualified=True``
    every item must name its method (the result has no ``None`` key).
    Raises :class:`ParamError` for a malformed item.
    """
    if qualified:
        form, example = "METHOD.KEY=VALUE", "mixup.alpha=0.2"
    else:
        form, example = "KEY=VALUE", "alpha=0.4"
    out: Dict[Optional[str], Dict[str, Any]] = {}
    for item in items or ():
        if "=" not in item:
            raise ParamError(f"--param expects {form} (e.g. {example}), got {item!r}")
        key, val = item.split("=", 1)
        key = key.strip()
        method: Optional[str] = None
        if "." in key:
            method, key = key.split(".", 1)
            if resolve:
                method = registry.resolve(method)
        elif qualified:
            raise ParamError(f"--param expects {form} (e.g. {example}), got {item!r}")
        if not key.isidentifier():
            raise ParamError(f"--param key must be an argument name, got {key!r}")
        out.setdefault(method, {})[key] = parse_value(val)
    return out


def add_param_option(parser: argparse.ArgumentParser, *, qualified: bool = False, help: str) -> None:
    """Add ``--param`` to ``parser``: several items per option, the option repeatable (``args.param`` is
    the list of items, None when not given)."""
    parser.add_argument("--param", nargs="+", action="extend",
                        metavar="METHOD.KEY=VALUE" if qualified else "KEY=VALUE", help=help)

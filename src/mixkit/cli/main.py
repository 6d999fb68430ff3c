"""The ``mixkit`` parser, the dispatch to a subcommand's handler, and the user-facing error handling."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import registry
from . import listing, show
from .errors import CLIError
from .extensions import load_extensions, missing_command_hint

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser: the built-in subcommands plus those of the ``mixkit.commands`` entry points."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="mixkit", description="Mixed-sample data augmentation for PyTorch: inspect methods and draw them.")
    parser.add_argument("--version", action="version", version=f"mixkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing.register(sub)
    show.register(sub)
    load_extensions(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``mixkit`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    sub_choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv and not argv[0].startswith("-") and argv[0] not in sub_choices:
        why = missing_command_hint()
        if why is not None:
            parser.error(f"unknown command {argv[0]!r}. Commands: {', '.join(sub_choices)}. {why}")
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except (CLIError, registry.UnknownMethodError, registry.MethodUnavailableError) as e:
        print(f"mixkit: error: {e}", file=sys.stderr)
        return 2

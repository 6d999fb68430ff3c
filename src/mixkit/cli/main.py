"""The ``mixkit`` parser, the dispatch to a subcommand's handler, and the user-facing error handling.

One mechanism for every command: a handler raises, :func:`main` turns the user's errors
(:data:`~mixkit.cli.errors.USER_ERRORS`) into one line ``mixkit: error: ...`` with exit status 2, and
Ctrl-C into one line (the interruption's own message, e.g. ``mixkit bench``'s "interrupted; rerun the
same command to resume") with exit status 130. ``--traceback`` (anywhere on the command line) shows the
full trace instead.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import listing, show
from .errors import USER_ERRORS, user_message
from .extensions import load_extensions, missing_command_hint

_TRACEBACK_HELP = "on an error, show the full Python traceback instead of one line"

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
    parser.add_argument("--traceback", action="store_true", help=_TRACEBACK_HELP)
    for p in {id(p): p for p in sub.choices.values()}.values():  # also after the command: mixkit bench ... --traceback
        if "--traceback" not in p._option_string_actions:
            p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=_TRACEBACK_HELP)
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
    except KeyboardInterrupt as e:
        if args.traceback:
            raise
        print(user_message(e) if str(e) else "interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if args.traceback:
            raise
        print(f"mixkit: error: {user_message(e)}", file=sys.stderr)
        return 2

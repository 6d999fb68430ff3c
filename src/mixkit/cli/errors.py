"""The user-facing error of the ``mixkit`` command."""
from __future__ import annotations

__all__ = ["CLIError"]


class CLIError(Exception):
    """A user-facing error: ``main`` prints ``mixkit: error: <message>`` and returns 2."""

"""The user-facing errors of the ``mixkit`` command: which exceptions are the user's to fix, and their
one-line message.

``main`` catches :data:`USER_ERRORS` from any handler and prints ``mixkit: error: <user_message(e)>``
(exit status 2); ``--traceback`` shows the full trace instead. The library's exceptions already name
the input and the fix (an unknown method lists the valid ones, a missing dataset says how to get it, a
bad checkpoint names its path and ``--no-resume``); :func:`user_message` puts them on one line and adds
the fix for the operating system's errors (a read-only folder, a full disk). Anything else is a bug
and keeps its traceback.
"""
from __future__ import annotations

import errno

__all__ = ["CLIError", "USER_ERRORS", "user_message"]


class CLIError(Exception):
    """A user-facing error: ``main`` prints ``mixkit: error: <message>`` and returns 2."""


#: the exceptions ``main`` reports as one line: a command's own errors, bad values and names
#: (``ValueError``: configs, parameters, methods, datasets, checkpoints), files and folders
#: (``OSError``: missing, unreadable, unwritable, full disk) and missing optional packages
USER_ERRORS = (CLIError, ValueError, OSError, ImportError)

_OS_FIXES = {
    errno.EACCES: "the folder is not writable: choose another with --out DIR",
    errno.EPERM: "the folder is not writable: choose another with --out DIR",
    errno.EROFS: "the file system is read-only: choose another folder with --out DIR",
    errno.ENOSPC: "the disk is full: free some space, or write elsewhere with --out DIR",
    errno.EDQUOT: "the disk quota is exceeded: free some space, or write elsewhere with --out DIR",
}


def user_message(e: BaseException) -> str:
    """The one-line message of a user error: its text with line breaks folded, and for an ``OSError``
    with an error number the file it concerns and the fix."""
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        text = e.strerror if e.filename is None or str(e.filename) in e.strerror else f"{e.strerror}: {e.filename}"
        fix = _OS_FIXES.get(e.errno)
        if fix:
            text += f" ({fix})"
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())

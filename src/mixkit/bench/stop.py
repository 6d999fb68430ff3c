"""Stopping a benchmark cleanly on Ctrl-C: at the next training step, in serial and in parallel runs.

The first SIGINT (Ctrl-C, to the process group or to the parent alone) only sets a flag
(:class:`StopRequest`); every run asks it before each training step and raises :class:`Interrupted`
there, so the epochs already checkpointed are kept and a rerun of the same command resumes. The flag
is one byte of shared memory: worker processes (which ignore SIGINT themselves) read the very flag the
parent's handler sets, so one mechanism covers both ways the signal arrives, with no lock taken inside
a signal handler. A second Ctrl-C stops at once (a plain ``KeyboardInterrupt``).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["RESUME_MESSAGE", "Interrupted", "StopRequest"]

#: the one line ``mixkit bench`` prints when it was interrupted
RESUME_MESSAGE = "interrupted; rerun the same command to resume"


class Interrupted(KeyboardInterrupt):
    """A benchmark stopped on request at a step boundary; finished epochs are on disk."""

    def __init__(self, message: str = RESUME_MESSAGE) -> None:
        super().__init__(message)


class StopRequest:
    """A stop flag shared with worker processes (pass :attr:`flag` to them: :func:`flag_is_set` reads it),
    set by the first SIGINT while :meth:`on_sigint` is active."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self.flag = mp.get_context("spawn").RawValue("b", 0)

    def set(self) -> None:
        self.flag.value = 1

    def is_set(self) -> bool:
        return flag_is_set(self.flag)

    @contextlib.contextmanager
    def on_sigint(self) -> Iterator["StopRequest"]:
        """While active, the first SIGINT sets the flag and a second raises ``KeyboardInterrupt``; the
        previous handler comes back on exit. Outside the main thread (where no handler can be installed)
        this does nothing and Ctrl-C keeps its usual effect."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if self.is_set():
                raise KeyboardInterrupt
            self.set()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def flag_is_set(flag) -> bool:
    """Whether a :attr:`StopRequest.flag` (here or in a worker process) is set."""
    return flag.value != 0


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT for the duration (processes started meanwhile inherit it: the parallel runner starts
    its workers so, and they learn of a stop from the parent)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""Parsing JSON-lines text written by an append-only logger that may have been killed mid-line."""
from __future__ import annotations

import json
import warnings
from typing import Any, List, Optional


def parse_json_lines(text: str, *, source: Optional[str] = None, objects_only: bool = False,
                     stacklevel: int = 1) -> List[Any]:
    """The JSON values of the lines of ``text``, in order.

    Blank lines are skipped, and so is a line that is not valid JSON (typically a truncated last
    line left by a killed writer) and, with ``objects_only``, a value that is not a JSON object.
    With ``source`` (the file's name) each skipped line is reported by a :class:`RuntimeWarning`
    naming it; without, lines are skipped silently. ``stacklevel`` is :func:`warnings.warn`'s,
    counted from the caller of this function (1: the warning points at the line that called it).
    """
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    out: List[Any] = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        skip = None
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            where = "last line" if i == last else "line"
            hint = "a run killed while writing" if i == last else "an interrupted run that was resumed"
            skip = f"malformed {where} {i + 1} ({e.msg}; probably {hint})"
        else:
            if objects_only and not isinstance(value, dict):
                skip = f"line {i + 1}: a JSON {type(value).__name__}, not an object"
        if skip is None:
            out.append(value)
        elif source is not None:
            warnings.warn(f"{source}: skipping {skip}", RuntimeWarning, stacklevel=stacklevel + 1)
    return out

"""Load a script of benchmarks/ as a module, for the tests that call its functions in-process."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def load(stem: str, name: Optional[str] = None):
    """``benchmarks/<stem>.py`` as the module ``name`` (default ``stem``: under its own name a process it
    spawns, as protocol_time's packed runs do, can import it again). benchmarks/ goes on ``sys.path``
    first, for the scripts' ``_harness`` and ``goals``."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    name = name or stem
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod

"""Atomic file writes and run metadata for the benchmark (nothing is lost when a run is killed)."""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable

import torch

__all__ = ["atomic_write_text", "atomic_write_jsonl", "atomic_torch_save", "read_jsonl", "env_info"]


def _tmp_near(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    return fd, Path(tmp)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (readers never see half a file)."""
    path = Path(path)
    fd, tmp = _tmp_near(path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_jsonl(path, records: Iterable[Dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in records))


def atomic_torch_save(obj: Any, path) -> Path:
    path = Path(path)
    fd, tmp = _tmp_near(path)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_jsonl(path) -> list:
    """Records of a JSON-lines file; a truncated last line (a killed writer) is skipped."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@functools.lru_cache(maxsize=1)
def _git_hash() -> str | None:
    """The commit of the code this process loaded (read once: a long run keeps reporting the code it
    started with even if the checkout moves on)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def env_info(device: torch.device, world_size: int = 1) -> Dict[str, Any]:
    from .. import __version__

    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    return {
        "mixkit": __version__,
        "git": _git_hash(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": dev,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "world_size": world_size,
    }

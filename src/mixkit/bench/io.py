"""Atomic file writes and run metadata for the benchmark (nothing is lost when a run is killed)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator

import torch

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "atomic_write_jsonl", "atomic_torch_save",
           "read_jsonl", "env_info"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[Path]:
    """The one atomic writer: yields a temporary path beside ``path``; on success the file is flushed
    to disk, given the usual permissions (``0o666`` less the umask, where ``mkstemp`` would leave
    ``0o600``) and renamed over ``path`` with ``os.replace``, so readers never see half a file. On
    an exception the temporary file is removed and ``path`` is left as it was.

    ``suffix`` is the temporary file's ending (writers that pick a format from it, such as
    matplotlib's ``savefig``, need the real one, e.g. ``".png"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path, records: Iterable[Dict[str, Any]]) -> Path:
    """Write one JSON object per line, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in records))


def atomic_torch_save(obj: Any, path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


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

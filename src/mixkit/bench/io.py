"""Atomic file writes and run metadata for the benchmark (nothing is lost when a run is killed)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

import torch

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "atomic_write_jsonl", "atomic_torch_save",
           "parse_json_lines", "read_jsonl", "env_info", "CheckpointError", "load_checkpoint", "as_json"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (the message names its path and the fix)."""


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

    An ``OSError`` (a read-only folder, a full disk) is raised again naming ``path`` itself, not the
    temporary file, so the message says which output could not be written.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is None:
            raise
        raise OSError(e.errno, f"cannot write {path} ({e.strerror or e})", str(path)) from e
    finally:
        if tmp is not None and tmp.exists():
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


def load_checkpoint(path, map_location: Any = "cpu") -> Dict[str, Any]:
    """A checkpoint written by :func:`atomic_torch_save`; :class:`CheckpointError` when it cannot be read
    (damaged, cut short, not a checkpoint), naming its path, that it can be deleted and ``--no-resume``."""
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises RuntimeError, pickle and zip errors, EOFError, ...
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(e).__name__}: {' '.join(str(e).split())}); "
                              "delete it or rerun with --no-resume to train that run from scratch") from e
    if not isinstance(ck, dict) or "model" not in ck or "records" not in ck:
        raise CheckpointError(f"{path} is not a mixkit bench checkpoint; delete it or rerun with --no-resume")
    return ck


def as_json(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, tensors lists, paths strings), so that a
    value in memory compares equal to the same value read from ``results.jsonl``."""
    return json.loads(json.dumps(obj, default=_json_default))


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


def read_jsonl(path) -> list:
    """Records of a JSON-lines file (``[]`` if it does not exist); a truncated last line (a killed writer)
    is skipped silently."""
    p = Path(path)
    return parse_json_lines(p.read_text()) if p.exists() else []


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

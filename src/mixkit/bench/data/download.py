"""Downloads of dataset files: atomic (nothing half-written is left behind) and md5-checked."""
from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path
from typing import Optional

from ..io import atomic_path


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, md5: Optional[str] = None) -> Path:
    """Fetch ``url`` to ``dest`` atomically (``bench.io.atomic_path``); verify ``md5`` if given."""
    with atomic_path(dest, suffix=".part") as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        if md5 is not None and _md5(tmp) != md5:
            raise OSError(f"checksum mismatch for {url} (expected md5 {md5}); try again")
    return dest

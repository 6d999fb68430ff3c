"""Dataset files on disk, with torch and the standard library only: the idx format and its reader,
the directories datasets are searched in, and the Fashion-MNIST file locator.

:mod:`mixkit.bench.data` builds its loaders on this module; the CLI uses it to show Fashion-MNIST
when the bench extras (numpy, ...) are not installed. Importing it imports nothing beyond torch.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch

__all__ = [
    "PathLike",
    "DATA_ENV_VAR",
    "FASHION_MNIST_DEBIAN_DIR",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_CLASSES",
    "read_idx",
    "cache_root",
    "default_data_dirs",
    "fashion_mnist_dirs",
    "find_fashion_mnist_in",
    "find_fashion_mnist",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Environment variable naming a directory that holds datasets (searched after ``data_dir``).
DATA_ENV_VAR = "MIXKIT_DATA"

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the four ``*.gz`` idx files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The four Fashion-MNIST idx files (the key names the split and part; the value is the file stem).
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Fashion-MNIST's class names, by class id.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# --------------------------------------------------------------------------------------------------
# idx format (MNIST / Fashion-MNIST)
# --------------------------------------------------------------------------------------------------
_IDX_DTYPES = {
    0x08: torch.uint8,
    0x09: torch.int8,
    0x0B: torch.int16,
    0x0C: torch.int32,
    0x0D: torch.float32,
    0x0E: torch.float64,
}


def read_idx(path: PathLike) -> torch.Tensor:
    """Read an idx file (``.gz`` compressed or raw, chosen by the gzip magic bytes).

    Format (LeCun's MNIST page): 2 zero bytes, a dtype code byte (0x08 = uint8, 0x09 = int8,
    0x0B = int16, 0x0C = int32, 0x0D = float32, 0x0E = float64), the number of dims ``d``, then
    ``d`` big-endian int32 sizes, then the data (big-endian) in C order. Bytes after the data are
    ignored.

    Returns:
        A CPU tensor of the stored dtype (native byte order) and shape, owning its memory.

    Raises:
        ValueError: not an idx file (bad magic number), or the file is shorter than its header says.
        OSError: the file cannot be read (``FileNotFoundError`` if it does not exist).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    opener: Callable = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4]!r})")
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{path} is truncated: {ndim} dims announced, file is {len(data)} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:offset])
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    if len(data) - offset < nbytes:
        raise ValueError(f"{path} is truncated: header says {shape}, file is {len(data)} bytes")
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(bytearray(memoryview(data)[offset : offset + nbytes]), dtype=torch.uint8)
    if itemsize > 1 and sys.byteorder == "little":
        raw = raw.view(-1, itemsize).flip(1).contiguous()  # big-endian items -> native order
    return raw.view(dtype).reshape(shape)


# --------------------------------------------------------------------------------------------------
# Search paths
# --------------------------------------------------------------------------------------------------
def cache_root() -> Path:
    """``~/.cache/mixkit``: the last base searched, and where downloads go without ``data_dir``."""
    return Path(os.path.expanduser("~")) / ".cache" / "mixkit"


def default_data_dirs(data_dir: Optional[PathLike] = None) -> list[Path]:
    """Base directories searched for dataset files, in order.

    ``data_dir`` (if given), then ``$MIXKIT_DATA`` (if set), then ``~/.cache/mixkit``. Each loader
    also looks in dataset-specific sub-folders of these bases (and Fashion-MNIST in the Debian
    package directory).
    """
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_root())
    return dirs


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST locator
# --------------------------------------------------------------------------------------------------
def fashion_mnist_dirs(data_dir: Optional[PathLike] = None) -> list[Path]:
    """Directories searched for the Fashion-MNIST idx files, in order, without repeats.

    ``data_dir`` and ``$MIXKIT_DATA`` (each itself and its ``fashion-mnist/``, ``fashion_mnist/``
    and ``FashionMNIST/raw/`` sub-folders), then :data:`FASHION_MNIST_DEBIAN_DIR`, then
    ``~/.cache/mixkit/fashion-mnist``.
    """
    out: list[Path] = []
    *user_bases, cache = default_data_dirs(data_dir)
    for base in user_bases:
        out.extend([base, base / "fashion-mnist", base / "fashion_mnist", base / "FashionMNIST" / "raw"])
    out.append(FASHION_MNIST_DEBIAN_DIR)
    out.append(cache / "fashion-mnist")
    return list(dict.fromkeys(out))


def _find_idx_file(d: Path, stem: str) -> Optional[Path]:
    # Accept "train-images-idx3-ubyte[.gz]" and the LeCun-site spelling "train-images.idx3-ubyte".
    alt = stem.replace("-idx", ".idx", 1)
    for name in (stem + ".gz", stem, alt + ".gz", alt):
        p = d / name
        if p.is_file():
            return p
    return None


def find_fashion_mnist_in(dirs: Sequence[Path]) -> Optional[dict[str, Path]]:
    """The four Fashion-MNIST files in the first of ``dirs`` that holds all four, else ``None``.

    Returns:
        ``{"train_images", "train_labels", "test_images", "test_labels"}`` -> file path (each
        ``<stem>.gz``, ``<stem>``, or the LeCun-site spelling ``train-images.idx3-ubyte[.gz]``).
    """
    for d in dirs:
        if not d.is_dir():
            continue
        found = {k: _find_idx_file(d, stem) for k, stem in FASHION_MNIST_FILES.items()}
        if all(v is not None for v in found.values()):
            return found  # type: ignore[return-value]
    return None


def find_fashion_mnist(data_dir: Optional[PathLike] = None) -> Optional[dict[str, Path]]:
    """The Fashion-MNIST idx files, searched in :func:`fashion_mnist_dirs` order (``None``: absent).

    Returns the mapping of :func:`find_fashion_mnist_in`; read each file with :func:`read_idx`.
    Never raises for a missing dataset.
    """
    return find_fashion_mnist_in(fashion_mnist_dirs(data_dir))

"""Fashion-MNIST from its idx files (found and read by :mod:`mixkit.bench.idx`), or downloaded."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .. import idx as _idx
from ..idx import (
    DATA_ENV_VAR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    PathLike,
    cache_root,
    fashion_mnist_dirs,
    find_fashion_mnist_in,
)
from .download import _download
from .split import DataSplit, DatasetNotFoundError, _make_split, _uint8_to_float

__all__ = ["FASHION_MNIST_URL", "FASHION_MNIST_MD5", "read_idx", "load_fashion_mnist"]


FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: md5 of the ``.gz`` files as published in Zalando's README.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def read_idx(path: PathLike) -> np.ndarray:
    """:func:`mixkit.bench.idx.read_idx` as a numpy array (stored dtype, native byte order).

    Raises:
        ValueError: not an idx file, or truncated.
    """
    return _idx.read_idx(path).numpy()


def load_fashion_mnist(data_dir: Optional[PathLike] = None, download: bool = False) -> DataSplit:
    """Fashion-MNIST (Xiao et al. 2017), standard 60000/10000 split, shape ``(N, 1, 28, 28)``.

    Reads the four idx files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
    ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``). Directories searched, first
    hit wins: ``data_dir`` (and its ``fashion-mnist/``, ``fashion_mnist/``, ``FashionMNIST/raw/``
    sub-folders), the same under ``$MIXKIT_DATA``, the Debian package directory
    ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``), then
    ``~/.cache/mixkit/fashion-mnist``.

    Args:
        data_dir: extra directory to search first.
        download: if nothing is found, fetch the ``.gz`` files from Zalando's server (md5-checked)
            into ``data_dir`` (if given) or ``~/.cache/mixkit/fashion-mnist``. Needs internet.

    Raises:
        DatasetNotFoundError: files not found and ``download`` is False.
    """
    dirs = fashion_mnist_dirs(data_dir)
    found = find_fashion_mnist_in(dirs)
    if found is None and download:
        target = Path(data_dir).expanduser() if data_dir is not None else cache_root() / "fashion-mnist"
        for stem in FASHION_MNIST_FILES.values():
            name = stem + ".gz"
            if not (target / name).is_file():
                _download(FASHION_MNIST_URL + name, target / name, FASHION_MNIST_MD5[name])
        found = find_fashion_mnist_in([target])
    if found is None:
        searched = ", ".join(str(d) for d in dirs)
        raise DatasetNotFoundError(
            f"Fashion-MNIST idx files not found in [{searched}]. Get them with one of: "
            f"`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; installs to "
            f"{_idx.FASHION_MNIST_DEBIAN_DIR}); pass --data-dir DIR (data_dir=DIR) where DIR holds "
            f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
            f"and t10k-labels-idx1-ubyte.gz (or set ${DATA_ENV_VAR}); or pass --download "
            f"(download=True; needs internet, fetches from {FASHION_MNIST_URL})."
        )
    arrays = {k: _idx.read_idx(p) for k, p in found.items()}
    for split in ("train", "test"):
        xi, yi = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if xi.ndim != 3 or yi.ndim != 1 or xi.shape[0] != yi.shape[0]:
            raise ValueError(
                f"Fashion-MNIST {split} files have inconsistent shapes {tuple(xi.shape)} / "
                f"{tuple(yi.shape)} ({found[f'{split}_images']})"
            )
    return _make_split(
        _uint8_to_float(arrays["train_images"]).unsqueeze(1),
        arrays["train_labels"].to(torch.int64),
        _uint8_to_float(arrays["test_images"]).unsqueeze(1),
        arrays["test_labels"].to(torch.int64),
        name="fashion-mnist", num_classes=10, spatial_dims=2, class_names=FASHION_MNIST_CLASSES,
    )

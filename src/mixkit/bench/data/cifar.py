"""CIFAR-10 / CIFAR-100 from the official python-pickle batches, or downloaded and extracted."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..idx import DATA_ENV_VAR, PathLike, cache_root, default_data_dirs
from .download import _download
from .split import DataSplit, DatasetNotFoundError, _make_split, _uint8_to_float

__all__ = ["CIFAR10_CLASSES", "load_cifar"]


_CIFAR = {
    10: dict(
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        label_key="labels",
        meta="batches.meta",
        names_key="label_names",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
    ),
    100: dict(
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        label_key="fine_labels",
        meta="meta",
        names_key="fine_label_names",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
    ),
}
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def _unpickle(path: Path) -> dict:
    # The official batches are Python-2 pickles; latin1 decodes their str keys and numpy arrays.
    # Only load files you trust: pickle can execute code.
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="latin1")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_candidate_dirs(data_dir: Optional[PathLike], folder: str) -> list[Path]:
    out: list[Path] = []
    for base in default_data_dirs(data_dir):
        out.extend([base / folder, base])
    return list(dict.fromkeys(out))


def load_cifar(
    data_dir: Optional[PathLike] = None, which: int = 10, download: bool = False
) -> DataSplit:
    """CIFAR-10 or CIFAR-100 (Krizhevsky 2009), standard 50000/10000 split, ``(N, 3, 32, 32)``.

    Reads the official python-pickle release: ``cifar-10-batches-py/data_batch_1..5`` and
    ``test_batch`` (key ``labels``), or ``cifar-100-python/train`` and ``test`` (key
    ``fine_labels``, 100 classes). Directories searched: ``data_dir``, ``$MIXKIT_DATA``,
    ``~/.cache/mixkit`` -- each both as the parent of the release folder and as the folder itself.

    Args:
        data_dir: directory holding (or to receive) the release folder.
        which: 10 or 100.
        download: if not found, fetch the tarball from cs.toronto.edu (md5-checked) and extract it
            into ``data_dir`` (or ``~/.cache/mixkit``). Needs internet.

    Raises:
        DatasetNotFoundError: files not found and ``download`` is False.
    """
    if which not in _CIFAR:
        raise ValueError(f"which must be 10 or 100; got {which!r}")
    spec = _CIFAR[which]
    needed = list(spec["train"]) + list(spec["test"])

    def find() -> Optional[Path]:
        for d in _cifar_candidate_dirs(data_dir, spec["folder"]):
            if d.is_dir() and all((d / n).is_file() for n in needed):
                return d
        return None

    root = find()
    if root is None and download:
        target = Path(data_dir).expanduser() if data_dir is not None else cache_root()
        tgz = target / Path(spec["url"]).name
        if not tgz.is_file():
            _download(spec["url"], tgz, spec["md5"])
        with tarfile.open(tgz, "r:gz") as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(target, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tf.extractall(target)
        root = find()
    if root is None:
        searched = ", ".join(str(d) for d in _cifar_candidate_dirs(data_dir, spec["folder"]))
        raise DatasetNotFoundError(
            f"CIFAR-{which} python batches ({spec['folder']}/{', '.join(needed)}) not found in "
            f"[{searched}]. Get them with one of: pass --data-dir DIR (data_dir=DIR) where DIR "
            f"holds the extracted {spec['folder']}/ folder from {spec['url']} (or set "
            f"${DATA_ENV_VAR}); or pass --download (download=True; needs internet)."
        )

    def read(names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for n in names:
            d = _unpickle(root / n)
            data = np.asarray(d["data"], dtype=np.uint8)
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[spec["label_key"]], dtype=np.int64))
        return _uint8_to_float(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    x_tr, y_tr = read(spec["train"])
    x_te, y_te = read(spec["test"])
    class_names: Optional[Sequence[str]] = CIFAR10_CLASSES if which == 10 else None
    meta = root / spec["meta"]
    if meta.is_file():
        try:
            class_names = list(_unpickle(meta)[spec["names_key"]])
        except Exception:  # noqa: BLE001 - names are cosmetic
            pass
    if class_names is not None and len(class_names) != which:
        class_names = None
    return _make_split(
        x_tr, y_tr, x_te, y_te,
        name=f"cifar{which}", num_classes=which, spatial_dims=2, class_names=class_names,
    )

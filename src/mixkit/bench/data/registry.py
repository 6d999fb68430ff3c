"""The dataset names and :func:`load_dataset`, which dispatches a name to its loader."""
from __future__ import annotations

from typing import Optional

from ..idx import PathLike
from .cifar import load_cifar
from .digits import load_digits
from .fashion import load_fashion_mnist
from .folder import load_image_folder
from .mnist1d import load_mnist1d
from .split import DataSplit

__all__ = ["DATASET_NAMES", "load_dataset"]


DATASET_NAMES = ("digits", "fashion-mnist", "mnist1d", "cifar10", "cifar100", "folder:<path>")
_ALIASES = {
    "digits": "digits",
    "sklearn-digits": "digits",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist1d": "mnist1d",
    "mnist-1d": "mnist1d",
    "mnist_1d": "mnist1d",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "imagefolder": "folder",
    "image-folder": "folder",
    "folder": "folder",
}


def load_dataset(
    name: str, data_dir: Optional[PathLike] = None, download: bool = False, **kw
) -> DataSplit:
    """Load a dataset by name.

    Names (case-insensitive): ``digits``; ``fashion-mnist`` (aliases ``fashion_mnist``,
    ``fmnist``); ``mnist1d``; ``cifar10``; ``cifar100``; ``folder:<path>`` (or ``imagefolder``
    with the root passed as ``data_dir``). Extra keyword arguments go to the loader
    (e.g. ``n_train``/``seed`` for mnist1d, ``size`` for folders). ``data_dir``/``download`` are
    ignored by the generated/embedded datasets.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        DatasetNotFoundError: the data is not on disk (the message says how to get it).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    raw = name.strip()
    low = raw.lower()
    if low.startswith(("folder:", "imagefolder:")):
        return load_image_folder(raw.split(":", 1)[1], **kw)
    key = _ALIASES.get(low)
    if key is None:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)} "
            f"(aliases: fashion_mnist, fmnist, imagefolder)"
        )
    if key == "digits":
        return load_digits(**kw)
    if key == "fashion-mnist":
        return load_fashion_mnist(data_dir=data_dir, download=download, **kw)
    if key == "mnist1d":
        return load_mnist1d(**kw)
    if key in ("cifar10", "cifar100"):
        return load_cifar(data_dir=data_dir, which=int(key[5:]), download=download, **kw)
    # imagefolder
    if data_dir is None:
        raise ValueError("dataset 'imagefolder' needs data_dir=<root> (or use name 'folder:<root>')")
    return load_image_folder(data_dir, **kw)

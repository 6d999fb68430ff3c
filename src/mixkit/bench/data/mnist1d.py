"""MNIST-1D sequences, generated locally by the ``mnist1d`` package (imported lazily)."""
from __future__ import annotations

import numpy as np
import torch

from .split import DataSplit, _make_split

__all__ = ["load_mnist1d"]


def load_mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 42) -> DataSplit:
    """MNIST-1D (Greydanus & Kobak, 2020/2024), generated locally with the ``mnist1d`` package.

    Uses ``mnist1d.data.make_dataset`` with ``get_dataset_args()`` defaults (template length 12,
    padding 36-60, final sequence length 40, ...) and ``num_samples`` set to
    ``n_train + n_test`` (rounded up to a multiple of 10: the generator makes equal counts per
    class). Nothing is downloaded and no pickle is written. With the defaults
    (``4000/1000, seed=42``) this is the package's standard 5000-sample, 80/20 split.

    The generator returns a sequence standardised over the whole set (mean 0, std 1, roughly in
    ``[-6, 5]``); it is rescaled affinely to ``[0, 1]`` with the min/max over the generated set so
    that it follows the same pixel-space convention as the image datasets (an affine rescale does
    not change the task; ``mean``/``std`` restore standardisation). Shape ``(N, 1, 40)``.

    The package seeds numpy's and Python's *global* RNGs; their states are saved and restored
    around generation so calling this has no side effect on other code.

    Raises:
        ImportError: ``mnist1d`` is not installed (``pip install mnist1d``).
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1; got {n_train}, {n_test}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ImportError("load_mnist1d needs the mnist1d package: pip install mnist1d") from e
    import random as _random

    args = get_dataset_args()
    total = n_train + n_test
    args.num_samples = int(-(-total // 10) * 10)
    args.seed = int(seed)
    np_state = np.random.get_state()
    py_state = _random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        _random.setstate(py_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float64)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    lo, hi = float(x.min()), float(x.max())
    x = ((x - lo) / max(hi - lo, 1e-12)).astype(np.float32)
    xt = torch.from_numpy(x).unsqueeze(1)  # (N, 1, L)
    yt = torch.from_numpy(y)
    return _make_split(
        xt[:n_train], yt[:n_train], xt[n_train:total], yt[n_train:total],
        name="mnist1d", num_classes=10, spatial_dims=1,
        class_names=[str(i) for i in range(10)],
    )

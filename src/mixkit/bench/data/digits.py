"""scikit-learn's 8x8 digits, the embedded default dataset (scikit-learn imported lazily)."""
from __future__ import annotations

import numpy as np
import torch

from .split import DataSplit, _make_split

__all__ = ["DIGITS_TEST_SIZE", "DIGITS_SPLIT_SEED", "load_digits"]


DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0


def load_digits() -> DataSplit:
    """scikit-learn's 8x8 handwritten digits (UCI optdigits test set), always available offline.

    1797 images, 10 classes, pixel values 0..16 scaled by ``1/16`` into ``[0, 1]``; shape
    ``(N, 1, 8, 8)``. The dataset has no official split, so a fixed one is used:
    ``sklearn.model_selection.train_test_split(test_size=0.25, random_state=0, stratify=y)``, giving
    1347 train / 450 test images with class proportions preserved. The split is deterministic.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:  # pragma: no cover - sklearn is a bench dependency
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from e
    raw = _sk_load_digits()
    x = raw.images.astype(np.float32) / 16.0  # (1797, 8, 8)
    y = raw.target.astype(np.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(
        idx, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    tr, te = np.sort(tr), np.sort(te)
    xt = torch.from_numpy(x).unsqueeze(1)
    yt = torch.from_numpy(y)
    return _make_split(
        xt[tr], yt[tr], xt[te], yt[te],
        name="digits", num_classes=10, spatial_dims=2,
        class_names=[str(i) for i in range(10)],
    )

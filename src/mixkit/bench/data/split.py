"""The :class:`DataSplit` every loader returns, and what the loaders share to build one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["DataSplit", "Dataset", "DatasetNotFoundError", "channel_stats"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk. The message lists the directories searched and the fix."""


@dataclass(repr=False)
class DataSplit:
    """A dataset's train and test split as in-memory tensors.

    Attributes:
        x_train: ``(N_train, C, *spatial)`` float32 in ``[0, 1]`` (unnormalised).
        y_train: ``(N_train,)`` int64 class ids in ``[0, num_classes)``.
        x_test: ``(N_test, C, *spatial)`` float32 in ``[0, 1]``.
        y_test: ``(N_test,)`` int64.
        num_classes: number of classes ``K``.
        name: short dataset name (e.g. ``"digits"``).
        mean: per-channel mean of ``x_train`` (tuple of ``C`` floats).
        std: per-channel population std of ``x_train`` (tuple of ``C`` floats, each > 0).
        spatial_dims: 1 for sequences ``(N, C, L)``, 2 for images ``(N, C, H, W)``.
        class_names: optional human-readable name per class id.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    spatial_dims: int
    class_names: Optional[tuple[str, ...]] = field(default=None)

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dim() != 2 + self.spatial_dims:
                raise ValueError(
                    f"x_{split} must have shape (N, C, *spatial) with {self.spatial_dims} spatial "
                    f"dim(s); got {tuple(x.shape)}"
                )
            if y.dim() != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(f"y_{split} must have shape ({x.shape[0]},); got {tuple(y.shape)}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean/std need {self.in_channels} entries (one per channel)")

    @property
    def in_channels(self) -> int:
        """Number of channels ``C``."""
        return int(self.x_train.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, ``(C, *spatial)``."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:  # never print the tensors
        return (
            f"DataSplit(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, num_classes={self.num_classes}, "
            f"spatial_dims={self.spatial_dims})"
        )


#: Alias kept for readers of the design brief; :class:`DataSplit` is the canonical name.
Dataset = DataSplit


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``x`` ``(N, C, *spatial)``.

    Computed channel by channel in float64 chunks so that large uint8-derived sets stay accurate
    without materialising a float64 copy of the whole tensor. A zero std (constant channel) is
    replaced by 1 so that :func:`normalize` never divides by zero.
    """
    if x.dim() < 3:
        raise ValueError(f"x must have shape (N, C, *spatial); got {tuple(x.shape)}")
    n_per = x[:, 0].numel()
    means, stds = [], []
    chunk = max(1, 2**22 // max(1, x[0, 0].numel()))
    for c in range(x.shape[1]):
        s = 0.0
        s2 = 0.0
        for i in range(0, x.shape[0], chunk):
            xc = x[i : i + chunk, c].double()
            s += float(xc.sum())
            s2 += float((xc * xc).sum())
        m = s / n_per
        var = max(s2 / n_per - m * m, 0.0)
        sd = var**0.5
        means.append(m)
        stds.append(sd if sd > 1e-12 else 1.0)
    return tuple(means), tuple(stds)


def _make_split(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    name: str,
    num_classes: int,
    spatial_dims: int,
    class_names: Optional[Sequence[str]] = None,
) -> DataSplit:
    mean, std = channel_stats(x_train)
    return DataSplit(
        x_train=x_train.contiguous(),
        y_train=y_train.to(torch.int64).contiguous(),
        x_test=x_test.contiguous(),
        y_test=y_test.to(torch.int64).contiguous(),
        num_classes=int(num_classes),
        name=name,
        mean=mean,
        std=std,
        spatial_dims=spatial_dims,
        class_names=tuple(class_names) if class_names is not None else None,
    )


def _uint8_to_float(a: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """uint8 numpy array or tensor -> float32 tensor in [0, 1]."""
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(torch.float32).div_(255.0)

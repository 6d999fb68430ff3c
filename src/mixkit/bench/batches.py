"""The training split as batches, in host memory or resident on the training device.

``data_placement = "device"`` puts the whole split (train and test) on the device once: every batch is
then a gather on the device (``index_select`` with the epoch's order, itself drawn on the CPU from the
run's generator and moved once per epoch), so a step copies nothing from the host and no DataLoader or
worker process is involved. ``"host"`` keeps the split in host memory and copies each gathered batch to
the device. ``"auto"`` is ``"device"`` on CUDA when the split takes at most :data:`RESIDENT_FRACTION` of
the device's free memory, else ``"host"`` (on CPU both are the same memory, and ``"auto"`` is ``"host"``).

The placement never changes a number: the order and the augmentation are drawn from CPU generators,
and a gather copies values exactly, so the batches are the same tensors either way (only where they
were made differs). It is therefore not part of a run's key.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import torch

from .config import PLACEMENTS
from .data import DataSplit

__all__ = ["RESIDENT_FRACTION", "resolve_placement", "split_bytes", "TrainData"]

#: the share of the device's free memory a split may take to be placed there by ``"auto"``
RESIDENT_FRACTION = 0.25


def split_bytes(ds: DataSplit) -> int:
    """Bytes of the train and test tensors of ``ds`` (images and labels)."""
    return sum(t.numel() * t.element_size() for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))


def resolve_placement(requested: str, device: torch.device, ds: DataSplit) -> str:
    """``"host"`` or ``"device"``: what ``requested`` (one of :data:`~mixkit.bench.config.PLACEMENTS`) means
    for ``ds`` on ``device``."""
    if requested not in PLACEMENTS:
        raise ValueError(f"data_placement must be one of {', '.join(PLACEMENTS)}, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "host"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if split_bytes(ds) <= RESIDENT_FRACTION * free else "host"


class TrainData:
    """The split of one run, placed by ``placement`` (see the module docstring)."""

    def __init__(self, ds: DataSplit, device: torch.device, placement: str = "auto") -> None:
        self.device = torch.device(device)
        self.placement = resolve_placement(placement, self.device, ds)
        on = self.device if self.placement == "device" else torch.device("cpu")
        self.x_train, self.y_train = ds.x_train.to(on), ds.y_train.to(on)
        self.x_test, self.y_test = ds.x_test.to(on), ds.y_test.to(on)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def batches(self, perm: torch.Tensor, batch_size: int, rank: int = 0,
                world: int = 1) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """``(x, y)`` on the device for each batch of the order ``perm`` (a CPU permutation of the
        training indices): ``ceil(N / batch_size)`` batches; under DDP (``world > 1``) rank ``rank``
        takes every ``world``-th index of each global batch (the first index when its share is empty)."""
        if self.placement == "device":
            perm = perm.to(self.device)
        for start in range(0, perm.shape[0], batch_size):
            idx = perm[start:start + batch_size]
            if world > 1:
                idx = idx[rank::world]
                if idx.numel() == 0:
                    idx = perm[:1]
            xb, yb = self.x_train.index_select(0, idx), self.y_train.index_select(0, idx)
            if self.placement == "host":
                xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
            yield xb, yb

"""Seeded, class-stratified subsets of a :class:`DataSplit` and held-out validation splits."""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch

from .split import DataSplit

__all__ = ["subset", "validation_split"]


def _stratified_indices(y: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` indices of ``y`` with class proportions preserved (largest-remainder rounding)."""
    total = y.shape[0]
    if n >= total:
        return torch.arange(total)
    perm = torch.randperm(total, generator=generator)
    y_perm = y[perm]
    classes, counts = torch.unique(y_perm, return_counts=True)
    quota = counts.double() * n / total
    take = quota.floor().long()
    short = n - int(take.sum())
    if short > 0:
        frac = quota - take.double()
        # ties broken by a random draw so no class is systematically favoured
        noise = torch.rand(len(classes), generator=generator, dtype=torch.float64) * 1e-9
        order = torch.argsort(frac + noise, descending=True)
        take[order[:short]] += 1
    chosen = []
    for c, k in zip(classes.tolist(), take.tolist()):
        if k > 0:
            chosen.append(perm[y_perm == c][:k])
    return torch.sort(torch.cat(chosen)).values


def subset(
    ds: DataSplit,
    n_train: Optional[int] = None,
    n_test: Optional[int] = None,
    seed: int = 0,
    stratified: bool = True,
) -> DataSplit:
    """A random (by default class-stratified) subset of the train and/or test split.

    Args:
        ds: the full dataset.
        n_train, n_test: sizes to keep; ``None`` (or a size >= the split) keeps the whole split.
        seed: seed of the ``torch.Generator`` used for the draw (same seed -> same subset).
        stratified: keep class proportions (largest-remainder rounding); else uniform sampling.

    Returns:
        A new :class:`DataSplit` (indices kept in their original order). ``mean``/``std`` are
        those of the *full* training set, so quick runs normalise exactly like full ones.
    """
    g = torch.Generator().manual_seed(int(seed))

    def pick(y: torch.Tensor, n: Optional[int], which: str) -> Optional[torch.Tensor]:
        if n is None or n >= y.shape[0]:
            return None
        if n < 1:
            raise ValueError(f"{which} must be >= 1 or None; got {n}")
        if stratified:
            return _stratified_indices(y, n, g)
        return torch.sort(torch.randperm(y.shape[0], generator=g)[:n]).values

    itr = pick(ds.y_train, n_train, "n_train")
    ite = pick(ds.y_test, n_test, "n_test")
    return replace(
        ds,
        x_train=ds.x_train if itr is None else ds.x_train[itr],
        y_train=ds.y_train if itr is None else ds.y_train[itr],
        x_test=ds.x_test if ite is None else ds.x_test[ite],
        y_test=ds.y_test if ite is None else ds.y_test[ite],
    )


def validation_split(ds: DataSplit, n_val: int, seed: int = 0) -> DataSplit:
    """Hold out ``n_val`` stratified training samples as the evaluation split.

    Returns a :class:`DataSplit` whose ``x_train``/``y_train`` are the remaining training samples
    and whose ``x_test``/``y_test`` are the held-out ones -- for choosing hyper-parameters or
    epochs without looking at the real test set. ``mean``/``std`` are kept from ``ds``.
    """
    n = ds.n_train
    if not 1 <= n_val < n:
        raise ValueError(f"n_val must be in [1, {n - 1}]; got {n_val}")
    g = torch.Generator().manual_seed(int(seed))
    val = _stratified_indices(ds.y_train, n_val, g)
    keep = torch.ones(n, dtype=torch.bool)
    keep[val] = False
    return replace(
        ds,
        x_train=ds.x_train[keep], y_train=ds.y_train[keep],
        x_test=ds.x_train[val], y_test=ds.y_train[val],
        name=f"{ds.name}[val]",
    )

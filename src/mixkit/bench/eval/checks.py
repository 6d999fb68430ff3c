"""Argument checks shared by the evaluation functions (``x``, ``y``, batch size) and their default generator.

The bottom of :mod:`mixkit.bench.eval`: it imports only torch. Each check raises ``TypeError`` /
``ValueError`` with a message naming the argument, so the public functions fail the same way.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: Seed of the generator the evaluation functions use when they get ``generator=None``.
DEFAULT_SEED = 0


def check_x(x: Tensor, name: str = "x") -> None:
    """``x`` must be a non-empty float tensor ``(N, C, *spatial)`` with at least one spatial dim."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}")
    if x.ndim < 3:
        raise ValueError(f"{name} must have shape (N, C, *spatial) with >= 1 spatial dim, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample, got shape {tuple(x.shape)}")


def check_y(y: Tensor, n: int, name: str = "y") -> Tensor:
    """``y`` as int64 class ids of shape ``(n,)``."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class ids, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class ids (int64), got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the batch, got {tuple(y.shape)}")
    return y.long()


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` must be a positive int (not a bool)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def default_generator(generator: torch.Generator | None) -> torch.Generator:
    """``generator`` itself, or a fresh CPU generator seeded with :data:`DEFAULT_SEED` for ``None``."""
    if generator is None:
        return torch.Generator().manual_seed(DEFAULT_SEED)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def draw_seed(generator: torch.Generator) -> int:
    """One base seed in ``[0, 2**62)`` drawn from ``generator`` (on its device); pieces derive theirs from it."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))

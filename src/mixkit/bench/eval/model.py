"""The model as the metrics see it: input normalisation, device / dtype, eval mode, batched forward passes.

:class:`ModelView` bundles a classifier with its normalisation, batch size, device and dtype. Every
function of :mod:`mixkit.bench.eval` that runs a model accepts either a view or a plain
``nn.Module`` plus the keywords of :meth:`ModelView.of` (``normalize`` or ``mean`` / ``std``,
``batch_size``, ``device``); :func:`~mixkit.bench.eval.evaluate` builds one view and hands it to
every piece.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from .checks import check_batch_size, check_x

Normalize = Callable[[Tensor], Tensor]


def make_normalize(mean: Sequence[float] | float | Tensor, std: Sequence[float] | float | Tensor) -> Normalize:
    """Return ``f(x) = (x - mean) / std`` broadcast over the channel dim of ``(N, C, *spatial)``.

    Args:
        mean: per-channel means (length ``C`` or 1) in pixel units.
        std: per-channel standard deviations (length ``C`` or 1), all ``> 0``.

    Returns:
        A callable keeping the input's device and dtype. It raises ``ValueError`` when the number of
        channels does not match the length of ``mean`` / ``std``.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float64).flatten()
    std_t = torch.as_tensor(std, dtype=torch.float64).flatten()
    if mean_t.numel() == 0 or std_t.numel() == 0:
        raise ValueError("mean and std must not be empty")
    if not bool(torch.all(std_t > 0)):
        raise ValueError(f"std must be > 0 for every channel, got {std_t.tolist()}")

    def normalize(x: Tensor) -> Tensor:
        c = x.shape[1]
        for name, t in (("mean", mean_t), ("std", std_t)):
            if t.numel() not in (1, c):
                raise ValueError(f"{name} has {t.numel()} entries but x has {c} channels (shape {tuple(x.shape)})")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m = mean_t.to(device=x.device, dtype=x.dtype).reshape(shape)
        s = std_t.to(device=x.device, dtype=x.dtype).reshape(shape)
        return (x - m) / s

    return normalize


def _identity(x: Tensor) -> Tensor:
    return x


def resolve_normalize(normalize: Normalize | None, mean: Any = None, std: Any = None) -> Normalize:
    """One normalisation callable from ``normalize`` or ``mean``/``std`` (identity when none is given)."""
    if normalize is not None:
        if mean is not None or std is not None:
            raise ValueError("pass either normalize= or mean=/std=, not both")
        if not callable(normalize):
            raise TypeError(f"normalize must be callable, got {type(normalize).__name__}")
        return normalize
    if (mean is None) != (std is None):
        raise ValueError("mean= and std= must be given together")
    if mean is None:
        return _identity
    return make_normalize(mean, std)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every submodule's own ``training`` flag on exit."""
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in saved:
            m.training = flag


def model_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """``device`` if given, else the device of the model's first parameter (or buffer), else the CPU."""
    if device is not None:
        return torch.device(device)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 when it has none)."""
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


@dataclass(frozen=True)
class ModelView:
    """A classifier as the metrics see it: it takes pixel-space input and returns logits.

    Build it with :meth:`of`. ``normalize`` runs on every batch right before the forward pass,
    on ``device`` in ``dtype``; inputs are cut into batches of ``batch_size`` samples.
    """

    model: nn.Module
    normalize: Normalize
    batch_size: int
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def of(
        cls,
        model: nn.Module | ModelView,
        normalize: Normalize | None = None,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 512,
        device: torch.device | str | None = None,
    ) -> ModelView:
        """The view of ``model``; a :class:`ModelView` is returned as it is (then leave the rest at their defaults).

        Args:
            model: classifier mapping normalised ``(B, C, *spatial)`` to logits ``(B, K)``, or a view.
            normalize: callable applied to each batch before the forward pass (or give ``mean``/``std``,
                per-channel tuples for :func:`make_normalize`; neither: no normalisation).
            batch_size: samples per forward pass (default 512).
            device: where to run the model (default: the device of its first parameter).
        """
        if isinstance(model, ModelView):
            if normalize is not None or mean is not None or std is not None or device is not None or batch_size != 512:
                raise ValueError("model is a ModelView already: it carries normalize, batch_size and device")
            return model
        norm = resolve_normalize(normalize, mean, std)
        bs = check_batch_size(batch_size)
        return cls(model, norm, bs, model_device(model, device), model_dtype(model))

    def spans(self, n: int) -> Iterator[slice]:
        """The batches of ``n`` samples, as slices, in order."""
        for start in range(0, n, self.batch_size):
            yield slice(start, start + self.batch_size)

    def forward(self, xb: Tensor) -> Tensor:
        """Logits ``(B, K)`` of one pixel-space batch ``xb``: moved to the device and dtype, normalised, run."""
        out = self.model(self.normalize(xb.to(device=self.device, dtype=self.dtype)))
        if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != xb.shape[0]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise TypeError(f"model must return logits of shape ({xb.shape[0]}, K), got {got}")
        return out

    def n_correct(self, xb: Tensor, yb: Tensor) -> int:
        """How many samples of the batch ``xb`` the model classifies as ``yb`` (no gradients)."""
        with torch.no_grad():
            pred = self.forward(xb).argmax(dim=1).cpu()
        return int((pred == yb.cpu()).sum())

    def predict(self, x: Tensor) -> Tensor:
        """``(N, K)`` float32 CPU logits of ``x`` in eval mode, batched, without gradients."""
        check_x(x)
        outs = []
        with eval_mode(self.model), torch.no_grad():
            for sl in self.spans(x.shape[0]):
                outs.append(self.forward(x[sl]).float().cpu())
        return torch.cat(outs)


def predict(
    model: nn.Module | ModelView,
    x: Tensor,
    normalize: Normalize | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched.

    Args:
        model: classifier mapping normalised ``(B, C, *spatial)`` to logits ``(B, K)`` (or a :class:`ModelView`).
        x: ``(N, C, *spatial)`` float, pixel space ``[0, 1]``, any device.
        normalize: callable applied to each batch before the forward pass (or give ``mean``/``std``).
        batch_size: samples per forward pass (default 512).
        device: where to run the model (default: the device of its first parameter).

    Returns:
        ``(N, K)`` float32 logits on the CPU.
    """
    view = ModelView.of(model, normalize, mean=mean, std=std, batch_size=batch_size, device=device)
    return view.predict(x)

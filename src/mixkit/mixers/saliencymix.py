"""SaliencyMix (Uddin, Monira, Shin, Chung, Bae, "SaliencyMix: A Saliency Guided Data Augmentation
Strategy for Better Regularization", ICLR 2021)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..masks import box
from ..masks.static_saliency import FINE_GRAINED_SCALES, static_saliency
from ..result import MixResult
from ..saliency import input_gradient_saliency
from .base import Mixer, ModelAttr
from .params import MixParams

__all__ = ["SaliencyMix"]

_SALIENCIES = ("static", "gradient")


class SaliencyMix(Mixer):
    """SaliencyMix: a CutMix box centred on the *source* image's saliency peak.

    ``lam ~ Beta(alpha, alpha)``; the box has CutMix's size (each side ``floor(size_i * (1 - lam) **
    (1/d))``), is centred at the argmax of the saliency map of the source (partner) image, clipped at
    the border, and the source's pixels inside it are pasted into the anchor *at the same location*.
    The label weight of the anchor is ``1 - box_volume / N`` of the clipped box: its realised share.

    Modes:
        ``"batch"`` (default, the official code): one lambda, one permutation and ONE saliency map for
        the whole batch, computed on the first shuffled image ``x[perm[0]]``; the same box is pasted
        into every sample.
        ``"sample"``: a lambda and a saliency map per row (the map of that row's partner ``x[perm[i]]``),
        per-row peaks and boxes, vectorised (one saliency call on the batch, one masked ``where``).

    Saliency:
        ``"static"`` (default): the fine-grained static saliency the paper uses (OpenCV's
        ``StaticSaliencyFineGrained``), re-implemented batched in torch by
        :func:`mixkit.masks.static_saliency.static_saliency`; needs no model, runs on the input's device.
        ``"gradient"``: channel-RMS of the input gradient of the loss (PuzzleMix-style), through
        :func:`mixkit.saliency.input_gradient_saliency` with ``clean_lam=0``: the model runs in eval
        mode, and its train/eval state and parameter ``.grad`` are restored. Needs ``model`` and the
        labels (``mix(x, y)``).
        A callable ``f(x) -> (B, *spatial)`` map may also be given.

    Args:
        alpha: Beta concentration (official ``--beta 1.0``; OpenMixup CIFAR configs 0.2).
        saliency: ``"static"``, ``"gradient"`` or a callable (see above).
        model: the classifier, needed only for ``saliency="gradient"``. It is not registered as a
            submodule (the mixer's ``parameters()``/``state_dict()`` do not include it).
        scales: surround half-sizes of the static saliency (default OpenCV's).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer`.

    Works on 1-D, 2-D and 3-D data (the static saliency generalises per axis; see its module).
    ``MixResult.params``: ``box_lo``/``box_hi`` int64 ``(n, d)``, ``peak`` int64 ``(n, d)`` (the
    saliency argmax, first in row-major order on ties), ``source`` int64 ``(n,)`` (the image each map
    was computed on) and ``saliency`` ``(n, *spatial)`` float32, with ``n`` = 1 in batch mode.

    Deliberate differences from the official code (``SaliencyMix/SaliencyMix``, ``saliency_bbox``):

    * the official code feeds the *normalised float* image to OpenCV, which reads it as 8-bit: the map
      it gets is a pattern of the float bytes, not the image's saliency (see
      :mod:`mixkit.masks.static_saliency`); here the map is the saliency of the image itself;
    * the official box spans ``[c - cut // 2, c + cut // 2)``, one cell short for odd ``cut``; here it
      is ``cut`` cells, ``[c - cut // 2, c - cut // 2 + cut)``, as our CutMix;
    * non-square inputs get per-axis sides (the official names the first axis "W").
    """

    name = "saliencymix"
    defaults = {"alpha": 1.0}
    saliency_guided = True
    summary = "CutMix box centred on the source's fine-grained static-saliency peak (one map per batch)"
    paper = "Uddin et al., ICLR 2021 (arXiv:2006.01791)"
    model = ModelAttr(optional=True)

    def __init__(self, alpha: float = 1.0, *, saliency: Union[str, Callable[[Tensor], Tensor]] = "static",
                 model: Optional[nn.Module] = None, scales: Sequence[int] = FINE_GRAINED_SCALES, **kw) -> None:
        super().__init__(alpha, **kw)
        if not callable(saliency) and saliency not in _SALIENCIES:
            raise ValueError(f"saliency must be one of {_SALIENCIES} or a callable x -> (B, *spatial) map, got {saliency!r}")
        self.model = model  # a plain attribute, not a submodule (ModelAttr)
        if saliency == "gradient" and model is None:
            raise ValueError("saliency='gradient' needs the model: SaliencyMix(saliency='gradient', model=net)")
        self.saliency = saliency
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or any(s < 1 for s in self.scales):
            raise ValueError(f"scales must be a non-empty sequence of ints >= 1, got {scales!r}")
        # instance attribute: only gradient saliency needs labels in mix()
        self.needs_labels = saliency == "gradient"

    # ------------------------------------------------------------------ saliency
    def saliency_map(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """``(B, *spatial)`` float32 saliency of every image of ``x`` (no gradient)."""
        if callable(self.saliency):
            s = self.saliency(x)
            if not isinstance(s, Tensor) or tuple(s.shape) != (x.shape[0], *x.shape[2:]):
                raise ValueError(f"the saliency callable must return a (B, *spatial) = {(x.shape[0], *x.shape[2:])} tensor, "
                                 f"got {getattr(s, 'shape', type(s).__name__)}")
            return s.detach().float()
        if self.saliency == "static":
            return static_saliency(x, scales=self.scales).float()
        s = input_gradient_saliency(self.model, x, y, clean_lam=0.0).saliency
        return s.detach().float()

    # ------------------------------------------------------------------ mixing
    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        dev = x.device
        sizes = tuple(x.shape[2:])
        n = self._n_draws(x)
        lam = self.sample_lam(n, generator).to(dev)
        partner = self._partner(x, generator)
        source = partner[:1] if n == 1 else partner  # the images whose saliency places the boxes
        if n == 1:
            sal = self.saliency_map(x[source], None if y is None else y[source.to(y.device)])
        else:
            sal = self.saliency_map(x, y).index_select(0, partner)
        peak = _argmax_nd(sal)  # (n, d)
        lengths = box.cut_lengths(sizes, lam).to(dev)
        size_t = torch.tensor(sizes, dtype=torch.long, device=dev)
        lo = peak - lengths // 2
        hi = lo + lengths
        lo, hi = lo.clamp(min=0).minimum(size_t), hi.clamp(min=0).minimum(size_t)
        return MixParams(active=active, lam=lam, partner=partner,
                         draws={"box_lo": lo, "box_hi": hi, "peak": peak, "source": source, "saliency": sal})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        d = params.draws
        return self._box_apply(x, params, params.lam, peak=d["peak"], source=d["source"], saliency=d["saliency"])

    def extra_repr(self) -> str:
        sal = self.saliency if isinstance(self.saliency, str) else getattr(self.saliency, "__name__", "callable")
        return super().extra_repr() + f", saliency={sal!r}"


def _argmax_nd(s: Tensor) -> Tensor:
    """Row-major argmax of every map ``(n, *spatial)`` as coordinates ``(n, d)`` int64 (first on ties)."""
    n, sizes = s.shape[0], s.shape[1:]
    flat = s.reshape(n, -1).argmax(1)
    coords = []
    for size in reversed(sizes):
        coords.append(flat % size)
        flat = flat // size
    return torch.stack(coords[::-1], 1)

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

    ``lam ~ Beta(alpha, alpha)``; the box has CutMix's sides ``floor(size_i * (1 - lam) ** (1/d))``, spans
    ``[c - cut // 2, c - cut // 2 + cut)`` around the argmax ``c`` of the saliency map of the source (partner)
    image, is clipped at the border, and the source's pixels inside it are pasted into the anchor at the same
    place. The anchor's label weight is ``1 - |clipped box| / N``, its realised share. ``mode="batch"`` (default,
    the official code): one lambda and ONE saliency map for the batch, of ``x[perm[0]]``, and the same box in
    every sample; ``"sample"``: a lambda, a map (of the row's partner) and a box per row.

    Args:
        alpha: Beta concentration (default 1.0, the official ``--beta``; OpenMixup's CIFAR configs use 0.2).
        saliency: ``"static"`` (default, the paper's: the fine-grained static saliency of OpenCV's
            ``StaticSaliencyFineGrained``, :func:`mixkit.masks.static_saliency.static_saliency`; no model),
            ``"gradient"`` (the channel-RMS of the input gradient of the loss,
            :func:`mixkit.saliency.input_gradient_saliency` in eval mode, the model's train/eval state and
            ``.grad`` restored; needs ``model`` and the labels, ``mix(x, y)``), or a callable
            ``f(x) -> (B, *spatial)`` map.
        model: the classifier, needed only for ``saliency="gradient"`` (a plain attribute, not a submodule).
        scales: surround half-sizes of the static saliency (default OpenCV's).
        mode, p, num_classes, smoothing, no_self_pairs, inplace: see :class:`Mixer` (the official
            ``--salmix_prob`` is ``p``: 0.5 on CIFAR, 1.0 on ImageNet).

    ``MixResult.params``: ``box_lo``, ``box_hi`` and ``peak`` ``(n, d)`` int64 (``peak``: the saliency argmax,
    first in row-major order on ties), ``source`` ``(n,)`` int64 (the image each map was computed on) and
    ``saliency`` ``(n, *spatial)`` float32 (``n`` = 1 in batch mode, B in sample mode).

    See docs/methods/saliencymix.md.
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

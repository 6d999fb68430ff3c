"""PatchUp (Faramarzi, Amini, Badrinaaraayanan, Verma, Chandar, "PatchUp: A Feature-Space Block-Level
Regularization Technique for Convolutional Neural Networks", AAAI 2022; arXiv:2006.07794)."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import sampling
from .._validate import check_labels, check_num_classes, check_positive, check_prob
from ..hooks import INPUT, mix_at
from ..losses import _reduce, bce_on_softmax, soft_cross_entropy
from ..masks import box
from ..result import MixResult
from ..targets import one_hot, smooth, soft_targets
from . import _ops
from .hidden import HiddenLayerMixer, Layers
from .params import MixParams

__all__ = ["PatchUp", "adjusted_gamma", "block_keep_mask", "patchup_loss"]

_TYPES = ("hard", "soft")
_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def adjusted_gamma(gamma: float, block_size: int, sizes: Sequence[int]) -> float:
    """Seed probability of the DropBlock-style mask on a grid of ``sizes``.

    ``gamma * N / prod_i(b_i * (s_i - b_i + 1))`` with ``N = prod_i s_i`` and ``b_i = min(block_size, s_i)``
    -- the official ``gamma * w**2 / (block**2 * (w - block + 1)**2)`` for a square 2-D map, written per
    dim (non-square and 1-D/3-D maps) and with the block clipped to the map (a block larger than the map
    would divide by a non-positive number). Clipped to ``[0, 1]``.
    """
    n = math.prod(int(s) for s in sizes)
    den = 1
    for s in sizes:
        bs = min(int(block_size), int(s))
        den *= bs * (int(s) - bs + 1)
    return float(min(1.0, max(0.0, gamma * n / den)))


def block_keep_mask(shape: Sequence[int], gamma_adj: float, block_size: int,
                    generator: Optional[torch.Generator] = None, device=None) -> Tensor:
    """Boolean keep mask ``(n, C, *spatial)``: False inside the altered blocks.

    Every position of ``shape = (n, C, *spatial)`` is a block centre with probability ``gamma_adj``
    (independently per row and per channel); each centre alters the ``block_size``-wide cube around it
    (clipped at the border), computed as a stride-1 max-pool with padding ``block_size // 2`` as in
    DropBlock / the official PatchUp. Draws come from ``generator`` on its device.
    """
    shape = tuple(int(s) for s in shape)
    d = len(shape) - 2
    if d not in _POOL:
        raise ValueError(f"PatchUp block masks need (n, C, *spatial) with 1 to 3 spatial dims, got shape {shape}")
    u = torch.rand(shape, generator=generator, device=sampling.gen_device(generator))
    seeds = (u < gamma_adj).to(torch.float32)
    if device is not None:
        seeds = seeds.to(device)
    holes = _POOL[d](seeds, kernel_size=block_size, stride=1, padding=block_size // 2)
    return holes == 0


class PatchUp(HiddenLayerMixer):
    """PatchUp: swap (hard) or interpolate (soft) DropBlock-style blocks of a hidden feature map.

    Per forward pass: ``lam ~ Beta(alpha, alpha)``, a partner ``perm`` and a layer uniform over ``layers``
    (draw order: lambda, partner, layer; the block masks are drawn inside the forward, once the map's size is
    known, from the generator kept in ``MixParams.generator``, and stored in the params, so a replay draws
    nothing). At a hidden layer with map ``h (B, C, *spatial)`` every position is a block centre with
    probability ``gamma_adj = gamma * N / prod_i(b (s_i - b + 1))`` (:func:`adjusted_gamma`), each centre
    alters the ``block_size`` block around it (:func:`block_keep_mask`) and ``holes = 1 - keep``::

        hard:  h <- keep * h + holes * h[perm]
        soft:  h <- keep * h + holes * (lam * h + (1 - lam) * h[perm])

    With ``changed = mean(holes)`` over ``(C, *spatial)`` and ``u = 1 - changed``, the label weights are each
    source's share of the mixed map (the official ``target_reweighted``): hard ``(u, changed)``, soft
    ``(u + lam * changed, (1 - lam) * changed)``. At ``"input"`` PatchUp is input CutMix (``lam ~
    Beta(cutmix_alpha, cutmix_alpha)``, label = the realised box share) for both types. The paper's three-term
    loss is :meth:`loss` / :func:`patchup_loss`; ``soft_targets(y, res, K)`` is the reweighted target alone.

    Args:
        model: the network (a plain attribute, not a submodule).
        layers: where to mix; ``None`` (default) = ``"input"`` and the outputs of the first two stages, as
            :class:`~mixkit.mixers.manifold.ManifoldMixup` (see it for names). The official PreActResNet
            code mixes after ``conv1`` and ``layer1``: ``layers=("input", "conv1", "layer1")``.
        block_size: odd side of the altered blocks (default 7, official), clipped to the map size per dim.
        gamma: target probability of altering a feature before the block adjustment (default 0.9, the
            official code's; README: soft 0.75, hard 0.5).
        patchup_type: ``"soft"`` (default, official) or ``"hard"`` (the paper's best), after the official
            ``--patchup_type`` (``mode`` keeps its batch/sample meaning).
        alpha: Beta concentration of the soft lambda (default 2.0, the official hard-coded Beta(2, 2)).
        cutmix_alpha: Beta concentration of the input-CutMix lambda (default 1.0, official).
        p: probability of mixing a batch or row (default 1.0; the official ``--patchup_prob`` defaults to 0.7;
            README: soft 1.0, hard 0.7).
        mode: ``"batch"`` (default, official): one ``(C, *spatial)`` mask and one lambda shared by the batch;
            ``"sample"``: a mask and a lambda per row. The layer is drawn once per forward pass in both.
        num_classes, smoothing, no_self_pairs: see :class:`~mixkit.mixers.base.Mixer`.

    ``MixResult``: ``inputs = x``, ``outputs`` = the logits, ``index = (i, perm[i])``, ``weights`` the shares
    above, ``lam`` the sampled lambda (the CutMix lambda at the input; hard PatchUp draws one but does not use
    it), ``mask`` the CutMix mask at the input and ``None`` at a hidden layer. ``params``: ``layer``,
    ``patchup_type`` (``"hard"``/``"soft"``, or ``"cutmix"`` at the input), ``unchanged`` ``(B,)`` (the official
    ``total_unchanged_portion``; the CutMix share at the input), ``lam_b`` ``(B,)`` (the anchor's weight in the
    official ``target_b``: ``lam`` for soft, 0 for hard and CutMix), ``keep`` (the bool keep mask,
    ``(n, C, *spatial)`` at a hidden layer, ``(n, 1, *spatial)`` at the input) and ``gamma_adj`` (``None`` at
    the input).

    See docs/methods/patchup.md.
    """

    name = "patchup"
    defaults = {"patchup_type": "hard", "block_size": 7, "gamma": 0.5, "p": 0.7}
    summary = "swap (hard) / interpolate (soft) DropBlock-style blocks of a hidden feature map"
    paper = "Faramarzi et al., AAAI 2022 (arXiv:2006.07794)"

    def __init__(self, model: nn.Module, layers: Layers = None, *, block_size: int = 7, gamma: float = 0.9,
                 patchup_type: str = "soft", alpha: float = 2.0, cutmix_alpha: float = 1.0, **kw) -> None:
        super().__init__(model, layers, alpha, **kw)
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1 or block_size % 2 == 0:
            raise ValueError(f"block_size must be an odd int >= 1 (the block is centred on its seed), got {block_size!r}")
        self.block_size = int(block_size)
        self.gamma = check_prob(gamma, "gamma")
        if patchup_type not in _TYPES:
            raise ValueError(f"patchup_type must be one of {_TYPES}, got {patchup_type!r}")
        self.patchup_type = patchup_type
        self.cutmix_alpha = check_positive(cutmix_alpha, "cutmix_alpha")

    # ------------------------------------------------------------------ masks
    def sample_keep(self, shape: Sequence[int], gamma_adj: float, generator: Optional[torch.Generator],
                    device) -> Tensor:
        """Keep mask ``(n, C, *spatial)`` bool for a hidden map with seed probability ``gamma_adj``
        (:func:`block_keep_mask`; override to inject a fixed mask)."""
        return block_keep_mask(shape, gamma_adj, self.block_size, generator, device)

    def _draw_keep(self, h: Tensor, params: MixParams, layer: str) -> None:
        """The masks of the layer's map ``h``, drawn once its shape is known (see ``MixParams.generator``)."""
        n, generator = params.lam.shape[0], params.generator
        if layer == INPUT:  # input CutMix: its own lambda and box
            lam = sampling.sample_beta(self.cutmix_alpha, self.cutmix_alpha, (n,), generator)
            lo, hi = box.sample_boxes(tuple(h.shape[2:]), lam, generator)
            params.draws["cutmix_lam"] = lam.to(h.device)
            params.draws["keep"] = box.outside_mask(lo.to(h.device), hi.to(h.device), tuple(h.shape[2:]))
            return
        shape = (n,) + tuple(h.shape[1:])
        keep = self.sample_keep(shape, adjusted_gamma(self.gamma, self.block_size, h.shape[2:]), generator, h.device)
        if keep.dtype != torch.bool or keep.shape != shape:
            raise ValueError(f"sample_keep must return a bool mask of shape {shape}, got {keep.dtype} {tuple(keep.shape)}")
        params.draws["keep"] = keep

    # ------------------------------------------------------------------ mixing
    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        params = super()._sample(x, y, active, generator)
        params.generator = generator  # the masks are drawn inside the forward, once the map's size is known
        return params

    def _apply(self, x: Tensor, params: MixParams, forward: Optional[Callable[[Tensor], Tensor]] = None) -> MixResult:
        run = self._run(forward)
        b, dev, active, partner = x.shape[0], x.device, params.active, params.partner
        layer = params.draws["layer"]
        lam = self._deactivate(params.lam, active, b)
        out: Dict[str, Any] = {}

        def fn(h: Tensor) -> Tensor:
            self._check_hidden(h, b, layer)
            if h.dim() - 2 not in _POOL:
                raise ValueError(f"PatchUp needs a feature map (B, C, *spatial) with 1 to 3 spatial dims at layer "
                                 f"{layer!r}, got shape {tuple(h.shape)}")
            rows = (slice(None),) + (None,) * (h.dim() - 1)
            if "keep" not in params.draws:
                self._draw_keep(h, params, layer)
            if layer != INPUT:
                out["gamma_adj"] = adjusted_gamma(self.gamma, self.block_size, h.shape[2:])
            keep = params.draws["keep"]
            if active is not None:  # rows not selected by p keep everything
                keep = keep | ~active.to(keep.device)[rows]
            out["keep"] = keep
            partner_h = _ops.gather(h, partner)
            if layer == INPUT or self.patchup_type == "hard":
                out["share_map"] = keep
                return _ops.where(keep, h, partner_h)
            w = torch.where(keep, torch.ones((), device=keep.device), lam.to(keep.device)[rows])
            out["share_map"] = w
            return _ops.lerp(h, partner_h, w)

        with mix_at(self.model, layer, fn):
            logits = run(x)

        keep, share_map = out["keep"], out["share_map"]
        dims = tuple(range(1, keep.dim()))
        unchanged = keep.float().mean(dims).to(dev)
        w0 = share_map.float().mean(dims).to(dev)
        if layer == INPUT:
            kind, lam_res, lam_b = "cutmix", self._deactivate(params.draws["cutmix_lam"].to(dev), active, b), torch.zeros_like(w0)
        else:
            kind, lam_res, lam_b = self.patchup_type, lam, (lam if self.patchup_type == "soft" else torch.zeros_like(w0))
        res = self._pair_result(x, params, w0, lam=lam_res, share_map=keep if layer == INPUT else None,
                                layer=layer, patchup_type=kind, unchanged=_rows(unchanged, b),
                                lam_b=_rows(lam_b.float(), b), keep=keep, gamma_adj=out.get("gamma_adj"))
        res.outputs = logits
        return res

    # ------------------------------------------------------------------ loss
    def loss(self, logits: Tensor, y: Tensor, res: MixResult, num_classes: Optional[int] = None, **kw) -> Tensor:
        """:func:`patchup_loss` with this mixer's ``num_classes`` and ``smoothing`` as defaults."""
        kw.setdefault("smoothing", self.smoothing)
        return patchup_loss(logits, y, res, num_classes if num_classes is not None else self.num_classes, **kw)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", patchup_type={self.patchup_type!r}, block_size={self.block_size}, "
                f"gamma={self.gamma}, cutmix_alpha={self.cutmix_alpha}")


def _rows(v: Tensor, b: int) -> Tensor:
    return v.expand(b) if v.numel() == 1 else v


def patchup_loss(logits: Tensor, y: Tensor, res: MixResult, num_classes: Optional[int] = None, *,
                 loss_alpha: float = 1.0, loss_beta: float = 1.0, official_precedence: bool = False,
                 criterion: str = "bce", smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """The PatchUp objective: ``alpha_l * (u * L(t_a) + (1 - u) * L(t_b)) + beta_l * L(t_rw)`` per sample.

    With ``u`` = ``res.params["unchanged"]`` (the official ``portion``: unchanged share of the hidden map,
    or the CutMix area share at the input) and the official targets:

    * ``t_a = y`` (the anchor's label),
    * ``t_b = y[perm]`` (hard and input CutMix) or ``lam * y + (1 - lam) * y[perm]`` (soft),
    * ``t_rw = soft_targets(y, res)`` (the reweighted target),

    and ``L = BCELoss(softmax(logits), t)`` averaged over the classes (``criterion="bce"``, the official
    loss, :func:`mixkit.bce_on_softmax`) or soft-target cross-entropy (``criterion="ce"``). The paper's
    objective is the sum of the three terms with unit weights, the default ``loss_alpha = loss_beta = 1``
    (official ``--loss_params 1 1``). The official ``main.py`` writes
    ``loss_alpha * L(t_a) * portion + L(t_b) * (1 - portion) + loss_beta * L(t_rw)``, so ``loss_alpha``
    scales only the first term; ``official_precedence=True`` reproduces that (identical at the default
    weights). Rows that were not mixed (``res.mixed`` False: the ``p`` coin failed, B = 1) get the plain
    ``L(y)``, as the official code when ``patchup_prob`` says no.

    Args:
        logits: ``(B, K)``.
        y: class ids ``(B,)`` or probabilities ``(B, K)``.
        res: the :class:`PatchUp` result for this batch.
        num_classes: K (needed for class ids).
        smoothing: label smoothing of each source label (default 0).
        reduction: ``"mean"`` (default; equals the official batch-mean BCE), ``"sum"`` or ``"none"``.
    """
    if criterion not in ("bce", "ce"):
        raise ValueError(f"criterion must be 'bce' (official BCELoss on softmax) or 'ce', got {criterion!r}")
    num_classes = check_num_classes(num_classes)
    y = check_labels(y, res.batch_size, num_classes)
    if logits.dim() != 2 or logits.shape[0] != res.batch_size:
        raise ValueError(f"logits must have shape (B, K) with B={res.batch_size}, got {tuple(logits.shape)}")
    crit = bce_on_softmax if criterion == "bce" else soft_cross_entropy
    Y = one_hot(y, num_classes, smoothing) if y.dim() == 1 else smooth(y, smoothing)
    Y = Y.to(logits.device)
    b = res.batch_size
    dev = logits.device
    t_rw = soft_targets(y, res, num_classes, smoothing).to(dev)
    l_a = crit(logits, Y, reduction="none")
    mixed = res.mixed.to(dev) if res.mixed is not None else torch.ones(b, dtype=torch.bool, device=dev)
    if res.k < 2 or "unchanged" not in res.params:
        per = l_a
    else:
        u = res.params["unchanged"].to(dev, torch.float32)
        lam_b = res.params["lam_b"].to(dev, torch.float32).unsqueeze(1)
        Yp = Y[res.index[:, 1].to(dev)]
        t_b = lam_b * Y + (1.0 - lam_b) * Yp
        l_b = crit(logits, t_b, reduction="none")
        l_rw = crit(logits, t_rw, reduction="none")
        if official_precedence:
            per = loss_alpha * u * l_a + (1.0 - u) * l_b + loss_beta * l_rw
        else:
            per = loss_alpha * (u * l_a + (1.0 - u) * l_b) + loss_beta * l_rw
        per = torch.where(mixed, per, l_a)
    return _reduce(per, reduction)

"""PuzzleMix (Kim, Choo, Song, "Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal
Mixup", ICML 2020)."""
from __future__ import annotations

import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import sampling
from .._validate import check_channel_stats, check_int, check_nonneg, check_prob
from ..masks import graphcut, transport
from ..masks.puzzle_costs import block_saliency, boundary_penalty, largest_divisor_at_most, puzzle_costs
from ..result import MixResult
from ..saliency import input_gradient_saliency
from . import _model, _ops
from .base import Mixer, ModelAttr
from .params import MixParams

__all__ = ["PuzzleMix", "puzzle_costs", "block_saliency", "boundary_penalty"]

_DEFAULT_BLOCKS = (2, 4, 8, 16)


class PuzzleMix(Mixer):
    """PuzzleMix: saliency-guided 3-level masks from an exact grid MRF, plus block transport.

    For the anchor ``x1`` and its partner ``x2 = x[perm]``: the saliency is the channel-RMS of the input
    gradient of the loss (one forward and backward of the model); a ``block_num x block_num`` grid and
    ``lam ~ Beta(alpha, alpha)``; the anchor's share ``m`` of each block, in ``{1, 0.5, 0}`` (``n_labels``
    levels), minimises the saliency thrown away, a binomial prior centred on ``lam`` (``eta``) and label and data
    smoothness (``beta``, ``gamma``; :func:`mixkit.masks.puzzle_costs.puzzle_costs`), exactly
    (:func:`mixkit.masks.graphcut.solve_grid`); then each source's blocks may be moved towards where it is kept
    (``transport``, :mod:`mixkit.masks.transport`) and adversarial noise added (``adv_p``).
    ``x~ = m * x1 + (1 - m) * x2``; the anchor's label weight is ``mean(m)`` per sample.

    Args:
        model: the classifier being trained (for the saliency pass; a plain attribute, not a submodule).
        alpha: ``lam ~ Beta(alpha, alpha)``, the prior mean of the anchor's share (default 1.0, official).
        n_labels: mask levels (default 3, official: shares {1, 0.5, 0}; 2 gives binary masks).
        beta: label smoothness (default 1.2, official; rescaled by ``1 / (block_num * 16)`` as the official).
        gamma: data smoothness weight (default 0.5, official).
        eta: prior weight (default 0.2, official; rescaled by ``1 / block_num**2``).
        neigh_size: pooling size of the data-smoothness term (default 4, official; capped at the block size,
            and reduced to a divisor of the block size where it does not divide it).
        transport: move each source's salient blocks towards where it is kept (default True, official).
        t_eps: transport distance weight (default 0.8, official).
        t_size: transport block size in pixels; -1 (default, official) = the labelling block (the official
            CIFAR commands use 4). Capped at the labelling block and reduced to a divisor.
        clean_lam: 0 (default, official): the saliency pass runs in eval mode and leaves ``.grad`` as it was;
            > 0: it runs in train mode and the gradient of ``clean_lam * 2/K * CE`` is left in the parameters'
            ``.grad`` (call ``optimizer.zero_grad()`` *before* ``mix``). See :mod:`mixkit.saliency`.
        adv_p: probability of adversarial noise on the anchors and, independently, on the partners (default 0,
            official; 0.1 in the adversarial CIFAR runs).
        adv_eps: noise radius in pixel units out of 255 (default 10, official).
        block_num: ``None`` (default, official): drawn uniformly from {2, 4, 8, 16} for every batch (every row
            in sample mode), among the values that divide both ``H`` and ``W``; an int fixes it; a sequence of
            ints gives the candidates.
        mean, std: the per-channel normalisation of the inputs (your ``Normalize``), to de-normalise for the
            data-smoothness term and the pixel-space noise (default ``None``: inputs already in ``[0, 1]``).
        solver: ``"auto"`` (default, exact for PuzzleMix's costs), ``"dp"``, ``"mincut"`` or ``"strips"``,
            passed to :func:`mixkit.masks.graphcut.solve_grid` (its min-cut, used from 8x8 grids on, runs
            on PyMaxflow on the CPU when installed, ``pip install mixkit[fast]``: the same minimum energy).
        mode: ``"batch"`` (default, official: one ``lam``, one ``block_num``, one permutation and one set of
            adversarial draws per batch; the masks are per sample) or ``"sample"`` (``lam``, ``block_num`` and
            adversarial draws per row, grouped by grid size, no Python loop over samples).
        p, num_classes, smoothing, no_self_pairs, inplace: see :class:`~mixkit.mixers.base.Mixer`.

    Call ``mix(x, y)`` with ``x (B, C, H, W)`` as fed to the model (normalised) and ``y`` class ids ``(B,)`` or
    probabilities ``(B, K)``. ``MixResult.share_map``: the anchor's mask ``(B, 1, H, W)`` float32 with values in
    ``{0, 1/(L-1), ..., 1}``; ``params``: ``block_num`` ``(B,)``, ``clean_loss`` (detached, or ``None``),
    ``adv_anchor`` / ``adv_partner`` ``(B,)`` bool.

    See docs/methods/puzzlemix.md.
    """

    name = "puzzlemix"
    aliases = ("puzzle_mix",)
    defaults = {"alpha": 1.0, "n_labels": 3, "beta": 1.2, "gamma": 0.5, "eta": 0.2, "neigh_size": 4, "transport": True,
                "t_eps": 0.8, "t_size": -1, "clean_lam": 0.0, "adv_p": 0.0, "adv_eps": 10.0, "block_num": None}
    needs_model = True
    saliency_guided = True
    summary = "saliency-guided block mixing: exact 3-label graph labelling and optimal-transport block moves"
    paper = "Kim, Choo, Song, ICML 2020 (arXiv:2009.06962)"
    needs_labels = True
    spatial_dims = (2,)
    model = ModelAttr()

    def __init__(self, model: nn.Module, alpha: float = 1.0, *, n_labels: int = 3, beta: float = 1.2,
                 gamma: float = 0.5, eta: float = 0.2, neigh_size: int = 4, transport: bool = True,
                 t_eps: float = 0.8, t_size: int = -1, clean_lam: float = 0.0, adv_p: float = 0.0,
                 adv_eps: float = 10.0, block_num: Union[None, int, Sequence[int]] = None,
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 solver: str = "auto", **kw) -> None:
        super().__init__(alpha, **kw)
        self.model = model  # a plain attribute, not a submodule (ModelAttr)
        self.n_labels = check_int(n_labels, "n_labels", 2)
        self.beta, self.gamma, self.eta = (check_nonneg(v, k) for k, v in (("beta", beta), ("gamma", gamma), ("eta", eta)))
        self.t_eps, self.clean_lam, self.adv_eps = (check_nonneg(v, k) for k, v in
                                                    (("t_eps", t_eps), ("clean_lam", clean_lam), ("adv_eps", adv_eps)))
        self.neigh_size = check_int(neigh_size, "neigh_size", 1)
        self.t_size = check_int(t_size, "t_size", 1, allow=(-1,))  # -1: the labelling block
        self.transport = bool(transport)
        self.adv_p = check_prob(adv_p, "adv_p")
        if block_num is None:
            blocks: Tuple[int, ...] = _DEFAULT_BLOCKS
        elif isinstance(block_num, numbers.Integral) and not isinstance(block_num, bool):
            blocks = (int(block_num),)
        else:
            try:
                blocks = tuple(int(v) for v in block_num)
            except TypeError:
                raise TypeError(f"block_num must be None, an int or a sequence of ints, got {block_num!r}") from None
        if not blocks or any(v < 2 for v in blocks):
            raise ValueError(f"block_num values must be ints >= 2, got {block_num!r}")
        self.block_num = None if block_num is None else blocks
        self._blocks = blocks
        self.mean = check_channel_stats(mean, "mean")
        self.std = check_channel_stats(std, "std", positive=True)
        if solver not in ("auto", "dp", "mincut", "strips"):
            raise ValueError(f"solver must be 'auto', 'dp', 'mincut' or 'strips', got {solver!r}")
        self.solver = solver

    # ------------------------------------------------------------------ helpers
    def _candidates(self, h: int, w: int) -> Tuple[int, ...]:
        return tuple(v for v in self._blocks if h % v == 0 and w % v == 0)

    def _check_input(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if not self._candidates(h, w):
            raise ValueError(f"PuzzleMix: no block_num in {self._blocks} divides the image size {(h, w)}; "
                             "pass block_num= values that divide both H and W")
        c = x.shape[1]
        for name, t in (("mean", self.mean), ("std", self.std)):
            if t is not None and t.numel() not in (1, c):
                raise ValueError(f"{name} has {t.numel()} values but x has {c} channels")

    def _stats(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        shape = (1, -1, 1, 1)
        mean = torch.zeros(1) if self.mean is None else self.mean
        std = torch.ones(1) if self.std is None else self.std
        return mean.to(x.device).view(shape), std.to(x.device).view(shape)

    # ------------------------------------------------------------------ mixing
    def _sample(self, x: Tensor, y: Optional[Tensor], active: Optional[Tensor], generator) -> MixParams:
        """The draws, the saliency pass, the adversarial noise, and per grid size the masks and the
        transport plans: everything but building the sources and the blend."""
        b, c, h, w = x.shape
        dev = x.device
        n = self._n_draws(x)
        # ---- random draws (this order is part of the determinism contract)
        partner = self._partner(x, generator)
        lam = self.sample_lam(n, generator).to(dev)
        cands = self._candidates(h, w)
        pick = torch.randint(len(cands), (n,), generator=generator, device=sampling.gen_device(generator)).to(dev)
        bnum = torch.tensor(cands, device=dev)[pick].expand(b)
        lam = lam.expand(b)
        act = torch.ones(b, dtype=torch.bool, device=dev) if active is None else active.to(dev)
        mean, std = self._stats(x)
        x_pix = x.float() * std + mean
        adv1 = adv2 = torch.zeros(b, dtype=torch.bool, device=dev)
        noise = None
        if self.adv_p > 0:
            adv1 = sampling.bernoulli(self.adv_p, (n,), generator).to(dev).expand(b) & act
            adv2 = sampling.bernoulli(self.adv_p, (n,), generator).to(dev).expand(b) & act
        use_adv = bool(adv1.any() or adv2.any())
        eps = self.adv_eps / 255.0
        x_sal = x
        if use_adv:
            need = adv1.clone()
            need[partner[adv2]] = True                 # the partner copies in rows with adv2 use the partner's noise
            u0 = sampling.sample_uniform(x.shape, generator, -eps, eps).to(dev)
            noise = (self._clamp_pix(x_pix + u0, x_pix) - x_pix) * need.view(b, 1, 1, 1)
            x_sal = torch.where(need.view(b, 1, 1, 1), ((x_pix + noise - mean) / std).to(x.dtype), x)
        # ---- 1. saliency (one forward + backward of the model)
        sal_out = input_gradient_saliency(self.model, x_sal, y, self.clean_lam, "l2", return_grad=use_adv,
                                         forward=_model.runner(self.model, y=y))
        sal = sal_out.saliency.to(dev)
        if use_adv:
            noise = (noise + (eps + 2.0 / 255.0) * sal_out.grad.float().sign()).clamp(-eps, eps)
            coef = sampling.sample_uniform((n,), generator).to(dev).expand(b)
            noise = noise * coef.view(b, 1, 1, 1)
        # ---- 2-4. labelling and transport plans, per grid size
        share_map = torch.ones(b, 1, h, w, dtype=torch.float32, device=dev)
        moves: List[Tuple[Tensor, Tensor, Tensor, Tuple[int, int]]] = []
        for bn in torch.unique(bnum).tolist():
            rows = ((bnum == bn) & act).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            move = self._label_rows(rows, int(bn), x_pix, sal, partner, lam, share_map)
            if move is not None:
                moves.append((rows,) + move)
        draws: Dict[str, Any] = {"share_map": share_map, "moves": moves, "noise": noise, "adv_anchor": adv1,
                                 "adv_partner": adv2, "block_num": bnum, "clean_loss": sal_out.clean_loss}
        return MixParams(active=active, lam=lam, partner=partner, draws=draws)

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        b, d = x.shape[0], params.draws
        share_map, partner, active = d["share_map"], params.partner, params.active
        adv1, adv2 = d["adv_anchor"], d["adv_partner"]
        # ---- 5. the two sources (adversarial noise where drawn), in the input dtype
        x1, x2 = x, _ops.gather(x, partner)
        if d["noise"] is not None:
            mean, std = self._stats(x)
            x_pix = x.float() * std + mean
            pert = ((self._clamp_pix(x_pix + d["noise"], x_pix) - mean) / std).to(x.dtype)
            x1 = torch.where(adv1.view(b, 1, 1, 1), pert, x1)
            x2 = torch.where(adv2.view(b, 1, 1, 1), _ops.gather(pert, partner), x2)
        # ---- 4. transport: each source's blocks moved towards where it is kept
        if d["moves"]:
            x1t, x2t = x1.clone(), x2.clone()
            for rows, d1, d2, gshape in d["moves"]:
                x1t[rows] = transport.permute_blocks(x1[rows], d1, gshape)
                x2t[rows] = transport.permute_blocks(x2[rows], d2, gshape)
            x1, x2 = x1t, x2t
        # ---- 6. mix
        x_mix = _ops.lerp(x1, x2, share_map)
        if active is not None:
            x_mix = torch.where(active.to(x.device).view(b, 1, 1, 1), x_mix, x)
        x_mix = _ops.keep_format(x_mix, x)
        if self.inplace:
            x.copy_(x_mix)
            x_mix = x
        w0 = share_map.mean((1, 2, 3))
        lam = self._deactivate(params.lam, active, b)
        return self._pair_result(x_mix, params, w0, lam=lam, share_map=share_map, block_num=d["block_num"].clone(),
                                 clean_loss=d["clean_loss"], adv_anchor=adv1, adv_partner=adv2)

    @staticmethod
    def _clamp_pix(v: Tensor, ref: Tensor) -> Tensor:
        """Clamp to [0, 1] but never beyond the reference pixel where it already lies outside."""
        return torch.maximum(torch.minimum(v, torch.clamp(ref, min=1.0)), torch.clamp(ref, max=0.0))

    def _label_rows(self, rows: Tensor, bn: int, x_pix: Tensor, sal: Tensor, partner: Tensor, lam: Tensor,
                    share_map: Tensor) -> Optional[Tuple[Tensor, Tensor, Tuple[int, int]]]:
        """The masks of the rows that use a ``bn x bn`` grid (written into ``share_map``), and their
        transport plans ``(d1, d2, transport grid)`` (``None`` without transport)."""
        h, w = x_pix.shape[-2:]
        bh, bw = h // bn, w // bn
        prow = partner[rows]
        sal1 = block_saliency(sal[rows], (bh, bw))
        sal2 = block_saliency(sal[prow], (bh, bw))
        unary, w_v, w_h = puzzle_costs(sal1, sal2, x_pix[rows], x_pix[prow], lam[rows], bn, beta=self.beta,
                                       gamma=self.gamma, eta=self.eta, neigh_size=self.neigh_size,
                                       n_labels=self.n_labels)
        labels = graphcut.solve_grid(unary, w_v, w_h, graphcut.label_cost(self.n_labels, device=unary.device),
                                     method=self.solver)
        grid = 1.0 - labels.to(torch.float32) / (self.n_labels - 1)           # (r, bn, bn) anchor share
        share_map[rows] = grid.repeat_interleave(bh, 1).repeat_interleave(bw, 2).unsqueeze(1)
        if not self.transport:
            return None
        th = bh if self.t_size < 0 else largest_divisor_at_most(bh, self.t_size)
        tw = bw if self.t_size < 0 else largest_divisor_at_most(bw, self.t_size)
        fh, fw = bh // th, bw // tw
        tgrid = grid.repeat_interleave(fh, 1).repeat_interleave(fw, 2)
        if (fh, fw) == (1, 1):
            ts1, ts2 = sal1, sal2
        else:
            ts1, ts2 = block_saliency(sal[rows], (th, tw)), block_saliency(sal[prow], (th, tw))
        d1 = transport.mask_transport(tgrid, ts1, self.t_eps)
        d2 = transport.mask_transport(1.0 - tgrid, ts2, self.t_eps)
        return d1, d2, tuple(tgrid.shape[1:])

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", n_labels={self.n_labels}, beta={self.beta}, gamma={self.gamma}, eta={self.eta}, "
                f"neigh_size={self.neigh_size}, transport={self.transport}, t_eps={self.t_eps}, t_size={self.t_size}, "
                f"clean_lam={self.clean_lam}, adv_p={self.adv_p}, adv_eps={self.adv_eps}, block_num={self.block_num}, "
                f"solver={self.solver!r}")

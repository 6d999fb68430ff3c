"""Co-Mixup (Kim, Choo, Jeong, Song, "Co-Mixup: Saliency Guided Joint Mixup with Supermodular
Diversity", ICLR 2021 oral)."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import sampling
from .._validate import check_int, check_nonneg
from ..masks.comixup_labeling import co_mixup_labeling
from ..masks.grid_mrf import grid_energy, solve_grid_mrf  # noqa: F401 - re-exported (they lived here)
from ..result import MixResult
from ..saliency import input_gradient_saliency
from . import _model, _ops
from .base import Mixer, ModelAttr
from .params import MixParams

__all__ = ["CoMixup"]


class CoMixup(Mixer):
    """Co-Mixup: every output mixes blocks of several inputs, chosen jointly for the whole group.

    Each group of ``m_part`` inputs gives as many outputs. Output ``o`` labels each block ``p`` of a grid
    (``m_block_num`` blocks per axis) with the input ``z_o(p)`` it comes from, or half of each of two, and the
    labellings minimise jointly (paper eq. 3, official ``obj_fn``)::

        sum_o sum_p c(p, z_o(p))  +  beta'/2 sum_o sum_{p~q} ||z_o(p) - z_o(q)||^2
          + gamma' [ (sum_o n_o)^T A (sum_o n_o) - sum_o n_o^T A n_o ]

    with ``c_i(p) = -s_i(p) - eta' log pi_i`` (``s_i`` the block saliency of input ``i``, the channel-RMS of the
    input gradient of the loss pooled to blocks, summing to 1; ``pi ~ Dirichlet(alpha * 1)`` per group),
    ``n_o(i)`` the number of blocks of output ``o`` taken from input ``i``, ``A = (1 - omega) I + omega * D /
    sum(D) * n`` (``D``: L1 distances between the inputs' saliency peaks) and ``beta' = beta / N``,
    ``gamma' = gamma / N``, ``eta' = eta / N`` for ``N`` blocks. An output's label weight for input ``i`` is the
    share of its pixels taken from ``i`` (half blocks count half).

    Args:
        model: the classifier (for the saliency pass; a plain attribute, not a submodule).
        alpha: Dirichlet concentration of the prior ``pi`` (default 2.0, official ``--mixup_alpha``);
            ``mixup_alpha=`` is accepted as an alias.
        m_block_num: blocks per spatial axis (default 4, official); ``-1`` draws ``2 ** U{1..4}`` per call, as
            the official code. Axes shorter than ``m_block_num`` get one block per cell.
        m_part: group (partition) size (default 20, official).
        m_beta: label smoothness ``beta`` (default 0.32, official; README range 0.16 to 0.48).
        m_gamma: diversity coefficient ``gamma`` (default 1.0, official).
        m_thres: threshold ``tau / N`` of the modular approximation of the diversity term (default 0.83, official).
        m_thres_type: ``"hard"`` (default, official) or ``"soft"``.
        m_eta: prior coefficient ``eta`` (default 0.05, official).
        m_omega: compatibility coefficient ``omega``, in ``[0, 1]`` (default 0.001, official).
        set_resolve: break identical outputs (default True, official).
        m_niter: outer iterations of the solver (default 4, official; its README suggests 3 to save time).
        m_penalty: the hard modular penalty as the official code computes it (``"official"``, default:
            ``((mask * A) @ p)``, see :func:`mixkit.masks.comixup_labeling.modular_penalty`) or as the
            paper's formula reads (``"elementwise"``: ``mask_i (A p)_i``).
        clean_lam: > 0 (default 1.0, official): the saliency pass runs in train mode on the clean batch and the
            gradient of ``2 * clean_lam * CE / num_classes`` is left in the parameters' ``.grad``, the official
            "clean input regularisation" (call ``optimizer.zero_grad()`` *before* ``mix``); 0: eval mode,
            ``.grad`` left as it was. The model's train/eval state is restored either way; ``optimizer.step``
            is never called.
        shuffle_partition: form the groups from a random permutation of the batch (default True).
        compat_kernel: window of the saliency averaging that locates each input's peak for ``A`` (default 8,
            official).
        solver_sweeps: maximum sweeps of the per-output grid solver (default 8).
        mode: only changes how ``p`` is applied (``"batch"``: the whole batch is mixed or not; ``"sample"``: the
            rows selected with probability ``p`` form the groups); masks and label weights are always per output.
        p, num_classes, smoothing, inplace: see :class:`Mixer` (``no_self_pairs`` has no effect: an output is
            not paired with a particular input).

    ``mix(x, y)`` needs the labels (class ids ``(B,)`` or probabilities ``(B, K)``). ``MixResult.index``
    ``(B, k)``: column 0 is the row itself, columns 1.. the other inputs of its output (largest share first),
    padded with the row's own index and weight 0. ``weights`` ``(B, k)`` float32: the realised pixel shares
    (rows sum to 1). ``mask`` (stored whole in ``share_map``) ``(B, k, *spatial)`` float32 in ``{0, 0.5, 1}``,
    summing to 1 at every pixel. ``lam`` is ``None``. ``params``: ``labels`` ``(B, *grid, k)`` block shares,
    ``grid``, ``groups`` (list of row index tensors), ``prior`` ``(B,)`` (each input's Dirichlet prior in its
    group), ``objective`` ``(n_groups,)`` (the final objective), ``saliency`` ``(B, *spatial)``, ``clean_loss``.

    See docs/methods/comixup.md.
    """

    name = "comixup"
    aliases = ("co_mixup",)
    defaults = {"alpha": 2.0, "m_block_num": 4, "m_part": 20, "m_beta": 0.32, "m_gamma": 1.0, "m_thres": 0.83,
                "m_eta": 0.05, "m_omega": 0.001, "set_resolve": True, "m_niter": 4, "clean_lam": 1.0}
    needs_model = True
    saliency_guided = True
    summary = "joint saliency-guided multi-input mixing with a supermodular diversity penalty"
    paper = "Kim et al., ICLR 2021 (arXiv:2102.03065)"
    needs_labels = True
    model = ModelAttr()

    def __init__(self, model: nn.Module, alpha: float = 2.0, *, mixup_alpha: Optional[float] = None,
                 m_block_num: int = 4, m_part: int = 20, m_beta: float = 0.32, m_gamma: float = 1.0,
                 m_thres: float = 0.83, m_thres_type: str = "hard", m_eta: float = 0.05, m_omega: float = 0.001,
                 set_resolve: bool = True, m_niter: int = 4, clean_lam: float = 1.0,
                 shuffle_partition: bool = True, compat_kernel: int = 8, solver_sweeps: int = 8,
                 m_penalty: str = "official", **kw) -> None:
        if mixup_alpha is not None:
            alpha = mixup_alpha
        super().__init__(alpha, **kw)
        self.model = model  # a plain attribute, not a submodule (ModelAttr)
        self.m_block_num = check_int(m_block_num, "m_block_num", 1, allow=(-1,))
        self.m_part = check_int(m_part, "m_part", 1)
        self.m_beta = check_nonneg(m_beta, "m_beta")
        self.m_gamma = check_nonneg(m_gamma, "m_gamma")
        self.m_thres = check_nonneg(m_thres, "m_thres")
        if m_thres_type not in ("hard", "soft"):
            raise ValueError(f"m_thres_type must be 'hard' or 'soft', got {m_thres_type!r}")
        self.m_thres_type = m_thres_type
        self.m_eta = check_nonneg(m_eta, "m_eta")
        self.m_omega = check_nonneg(m_omega, "m_omega")
        if not 0.0 <= self.m_omega <= 1.0:
            raise ValueError(f"m_omega must be in [0, 1], got {m_omega}")
        self.set_resolve = bool(set_resolve)
        self.m_niter = check_int(m_niter, "m_niter", 1)
        self.clean_lam = check_nonneg(clean_lam, "clean_lam")
        self.shuffle_partition = bool(shuffle_partition)
        self.compat_kernel = check_int(compat_kernel, "compat_kernel", 1)
        self.solver_sweeps = check_int(solver_sweeps, "solver_sweeps", 1)
        if m_penalty not in ("official", "elementwise"):
            raise ValueError(f"m_penalty must be 'official' or 'elementwise', got {m_penalty!r}")
        self.m_penalty = m_penalty

    # ------------------------------------------------------------------ saliency
    def saliency_map(self, x: Tensor, y: Tensor):
        """``(saliency (B, *spatial) float32, clean_loss or None)``: the input-gradient saliency pass.

        See the class docstring for its side effects on the model (train/eval flags, ``.grad``).
        """
        out = input_gradient_saliency(self.model, x, y, clean_lam=self.clean_lam, forward=_model.runner(self.model, y=y))
        return out.saliency.detach().float(), out.clean_loss

    # ------------------------------------------------------------------ mixing
    def _sample(self, x: Tensor, y, active: Optional[Tensor], generator) -> MixParams:
        """The saliency pass, the draws (block grid, groups, prior, initial labelling) and the joint
        labelling: everything but the final blend."""
        b, dev = x.shape[0], x.device
        sizes = tuple(x.shape[2:])
        sal, clean_loss = self.saliency_map(x, y)
        sal = sal.to(dev)
        rows = torch.arange(b, device=dev) if active is None else active.to(dev).nonzero().squeeze(1)
        n_act = int(rows.numel())
        block_num = self.m_block_num
        if block_num == -1:
            block_num = 2 ** int(torch.randint(1, 5, (1,), generator=generator, device=sampling.gen_device(generator)))
        grid = tuple(min(block_num, s) for s in sizes)
        if n_act < 2 or min(n_act, self.m_part) < 2:  # too few rows to mix: returned unmixed
            return MixParams(mixed=False, draws={"grid": grid, "saliency": sal, "clean_loss": clean_loss})

        # ---- groups
        order = (sampling.permutation(n_act, generator).to(dev) if self.shuffle_partition
                 else torch.arange(n_act, device=dev))
        n_groups = -(-n_act // self.m_part)
        gsize = torch.full((n_groups,), n_act // n_groups, dtype=torch.long)
        gsize[: n_act % n_groups] += 1
        n_max = int(gsize.max())
        slot = torch.arange(n_max)
        valid = slot.unsqueeze(0) < gsize.unsqueeze(1)  # (G, n)
        start = torch.cumsum(gsize, 0) - gsize
        pos = (start.unsqueeze(1) + slot.unsqueeze(0)).clamp_max(n_act - 1)
        valid, pos = valid.to(dev), pos.to(dev)
        members = rows[order[pos]]  # (G, n) batch rows (padding slots repeat a valid row; masked by `valid`)

        # ---- costs
        blocks = _block_pool(sal, grid)  # (B, *grid)
        bsum = blocks.flatten(1).sum(1)
        n_blocks = math.prod(grid)
        blocks = torch.where(bsum.view(-1, *([1] * len(grid))) > 0,
                             blocks / bsum.clamp_min(1e-30).view(-1, *([1] * len(grid))),
                             torch.full_like(blocks, 1.0 / n_blocks))
        cost = -blocks[members]  # (G, n, *grid)
        peaks = _compat_peaks(sal, self.compat_kernel)  # (B, d)
        pm = peaks[members].double()
        dist = (pm.unsqueeze(2) - pm.unsqueeze(1)).abs().sum(-1)  # (G, n, n)
        vv = valid.unsqueeze(2) & valid.unsqueeze(1)
        dist = torch.where(vv, dist, torch.zeros_like(dist))
        dsum = dist.sum((1, 2), keepdim=True)
        nv = valid.sum(1).view(-1, 1, 1).double()
        dist = torch.where(dsum > 0, dist / dsum.clamp_min(1e-30) * nv, torch.zeros_like(dist))
        eye = torch.eye(n_max, dtype=torch.float64, device=dev).expand_as(dist) * vv
        A = ((1.0 - self.m_omega) * eye + self.m_omega * dist).float()

        z, prior, objective = co_mixup_labeling(
            cost, A, valid, beta=self.m_beta, gamma=self.m_gamma, eta=self.m_eta, thres=self.m_thres,
            thres_type=self.m_thres_type, alpha=self.alpha, niter=self.m_niter, set_resolve=self.set_resolve,
            sweeps=self.solver_sweeps, generator=generator, penalty=self.m_penalty)
        # z: (G, n_out, *grid, n_in) block shares

        # ---- compact (B, k) representation: column 0 = the row itself
        G = members.shape[0]
        counts = z.flatten(2, -2).sum(2)  # (G, n_out, n_in) block counts
        self_slot = slot.to(dev).view(1, -1).expand(G, -1)
        other = counts.clone()
        other.scatter_(2, self_slot.unsqueeze(2), -1.0)  # exclude self from the ranking
        other = torch.where(valid.unsqueeze(1), other, torch.full_like(other, -1.0))
        n_other = int((other > 0).sum(-1).max()) if other.numel() else 0
        k = 1 + n_other
        rank = torch.sort(other, dim=2, descending=True, stable=True).indices[..., :n_other]  # (G, n_out, k-1)
        cols = torch.cat([self_slot.unsqueeze(2), rank], 2)  # (G, n_out, k) input slots
        used = torch.cat([torch.ones_like(rank[..., :1], dtype=torch.bool),
                          other.gather(2, rank) > 0], 2)
        zc = z.movedim(-1, 2)  # (G, n_out, n_in, *grid)
        gidx = cols.view(G, n_max, k, *([1] * len(grid))).expand(-1, -1, -1, *grid)
        zk = zc.gather(2, gidx) * used.view(G, n_max, k, *([1] * len(grid)))  # (G, n_out, k, *grid)
        src_rows = torch.gather(members.unsqueeze(1).expand(-1, n_max, -1), 2, cols)  # (G, n_out, k)
        out_rows = members  # output slot o of group g is batch row members[g, o]
        flat_valid = valid.reshape(-1)
        out_r = out_rows.reshape(-1)[flat_valid]
        index = torch.arange(b, device=dev).unsqueeze(1).repeat(1, k)
        index[out_r] = torch.where(used.reshape(-1, k)[flat_valid], src_rows.reshape(-1, k)[flat_valid],
                                   out_r.unsqueeze(1))
        block_mask = torch.zeros(b, k, *grid, device=dev)
        block_mask[:, 0] = 1.0
        block_mask[out_r] = zk.reshape(-1, k, *grid)[flat_valid].float()
        share_map = _upsample(block_mask, sizes)  # (B, k, *spatial), values in {0, 0.5, 1}
        mixed = torch.zeros(b, dtype=torch.bool, device=dev)
        mixed[out_r] = True
        prior_b = torch.zeros(b, device=dev)
        prior_b[out_r] = prior.reshape(-1)[flat_valid].float()
        groups = [members[g][valid[g]] for g in range(G)]
        return MixParams(active=active, draws={
            "index": index, "share_map": share_map, "mixed": mixed, "labels": block_mask.movedim(1, -1),
            "grid": grid, "groups": groups, "prior": prior_b, "objective": objective, "saliency": sal,
            "clean_loss": clean_loss})

    def _apply(self, x: Tensor, params: MixParams) -> MixResult:
        d = dict(params.draws)
        index, share_map, mixed = d.pop("index"), d.pop("share_map"), d.pop("mixed")
        weights = share_map.double().flatten(2).mean(2).float()
        x_mix = _ops.blend(x, index, share_map, self.inplace)
        return MixResult(inputs=x_mix, index=index, weights=weights, lam=None, mixed=mixed, share_map=share_map,
                         params=d)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", m_block_num={self.m_block_num}, m_part={self.m_part}, m_beta={self.m_beta}, "
                f"m_gamma={self.m_gamma}, m_thres={self.m_thres}, m_thres_type={self.m_thres_type!r}, m_eta={self.m_eta}, "
                f"m_omega={self.m_omega}, set_resolve={self.set_resolve}, m_niter={self.m_niter}, clean_lam={self.clean_lam}")


# ====================================================================== helpers
def _block_pool(s: Tensor, grid) -> Tensor:
    """Average ``(B, *spatial)`` over a grid of blocks ``(B, *grid)`` (adaptive bins)."""
    pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[len(grid) - 1]
    return pool(s.unsqueeze(1).float(), list(grid)).squeeze(1)


def _upsample(m: Tensor, sizes) -> Tensor:
    """Nearest upsampling of block masks ``(B, k, *grid)`` to ``(B, k, *sizes)``."""
    if tuple(m.shape[2:]) == tuple(sizes):
        return m
    return F.interpolate(m, size=list(sizes), mode="nearest")


def _compat_peaks(s: Tensor, kernel: int) -> Tensor:
    """Location ``(B, d)`` of the maximum of the saliency averaged over ``kernel``-cell windows (stride 1)."""
    d = s.dim() - 1
    ks = [min(kernel, n) for n in s.shape[1:]]
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[d - 1]
    zz = pool(s.unsqueeze(1).float(), ks, stride=1).squeeze(1)
    flat = zz.flatten(1).argmax(1)
    coords = []
    for n in reversed(zz.shape[1:]):
        coords.append(flat % n)
        flat = flat // n
    return torch.stack(coords[::-1], 1)

"""The grid-MRF costs of PuzzleMix's labelling step (official ``mixup_graph``), batched.

PuzzleMix (Kim, Choo, Song, ICML 2020) labels each block of a ``block_num x block_num`` grid with the
anchor's share {1, 0.5, 0}: the unary terms are the saliency thrown away plus a binomial prior centred
on ``lam``, the pairwise terms label smoothness plus the data smoothness of the de-normalised images
across block boundaries. :func:`puzzle_costs` builds them; :func:`mixkit.masks.graphcut.solve_grid`
minimises them.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["block_saliency", "boundary_penalty", "puzzle_costs", "largest_divisor_at_most"]


def block_saliency(saliency: Tensor, block: Tuple[int, int]) -> Tensor:
    """Average-pool a ``(B, H, W)`` saliency map over ``block`` and normalise each sample to sum 1.

    A sample whose pooled saliency sums to 0 (or is not finite: e.g. an fp16 gradient that
    underflowed) gets a uniform map instead of the official code's division by zero (NaN costs).
    """
    pooled = F.avg_pool2d(saliency.float().unsqueeze(1), block).squeeze(1)
    s = pooled.sum((1, 2), keepdim=True)
    ok = torch.isfinite(s) & (s > 0)
    uniform = torch.full_like(pooled, 1.0 / pooled[0].numel())
    return torch.where(ok, pooled / torch.where(ok, s, torch.ones_like(s)), uniform)


def largest_divisor_at_most(n: int, cap: int) -> int:
    cap = max(1, min(int(cap), n))
    return max(d for d in range(1, cap + 1) if n % d == 0)


def boundary_penalty(img_a: Tensor, img_b: Tensor, block_num: int, neigh: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Mean absolute difference across block boundaries when ``img_a`` is before and ``img_b`` after.

    ``img_*``: ``(B, C, H, W)`` de-normalised images; both are average-pooled by ``neigh`` first. For
    the vertical boundary below block row ``r`` the last pooled row of block row ``r`` of ``img_a`` is
    compared with the first pooled row of block row ``r + 1`` of ``img_b`` (mean over channels, then
    over the pooled cells along the boundary): ``(B, block_num - 1, block_num)``; likewise the
    horizontal boundaries ``(B, block_num, block_num - 1)``. The official ``neigh_penalty``.
    """
    pa = F.avg_pool2d(img_a, neigh)
    pb = F.avg_pool2d(img_b, neigh)
    b, _, ph, pw = pa.shape
    kh, kw = ph // block_num, pw // block_num
    n = block_num
    top = pa[:, :, kh - 1:(n - 1) * kh:kh, :]
    bottom = pb[:, :, kh:n * kh:kh, :]
    pv = (top - bottom).abs().mean(1).reshape(b, n - 1, n, kw).mean(-1)
    left = pa[:, :, :, kw - 1:(n - 1) * kw:kw]
    right = pb[:, :, :, kw:n * kw:kw]
    ph_ = (left - right).abs().mean(1).reshape(b, n, kh, n - 1).mean(2)
    return pv, ph_


def puzzle_costs(sal1: Tensor, sal2: Tensor, img1: Tensor, img2: Tensor, lam: Tensor, block_num: int, *,
                 beta: float = 1.2, gamma: float = 0.5, eta: float = 0.2, neigh_size: int = 4,
                 n_labels: int = 3) -> Tuple[Tensor, Tensor, Tensor]:
    """The grid-MRF costs of PuzzleMix's ``mixup_graph`` for anchors 1 and partners 2.

    Args:
        sal1, sal2: ``(B, block_num, block_num)`` block saliency of the anchor / partner, each summing
            to 1 (:func:`block_saliency`).
        img1, img2: ``(B, C, H, W)`` de-normalised (pixel-space) anchor / partner images.
        lam: ``(B,)`` or scalar prior mean of the anchor's share.
        block_num: grid side; ``H`` and ``W`` must be multiples of it.
        beta, gamma, eta, neigh_size, n_labels: the official hyper-parameters.

    Returns:
        ``unary (B, n, n, L)`` float32 where label ``i`` means the anchor's share ``1 - i / (L - 1)``,
        ``w_v (B, n - 1, n)`` and ``w_h (B, n, n - 1)`` edge weights for the label cost
        ``(i - j)**2 / (L - 1)**2`` (:func:`mixkit.masks.graphcut.label_cost`). Exactly the official
        terms before its ``* 1000 * block_num**2`` int32 scaling:

        * ``beta' = beta / block_num / 16``, ``eta' = eta / block_num**2``;
        * keeping the anchor at a block costs the partner's saliency there, showing the partner costs
          the anchor's (mask 0.5 costs half of each);
        * prior ``-eta' * log(C(L-1, i) lam**(L-1-i) (1-lam)**i + 1e-8)`` for label ``i``;
        * data smoothness ``beta' * gamma * |a - b|`` (:func:`boundary_penalty`) for the four
          (anchor/partner) x (anchor/partner) combinations of each boundary, decomposed into unary
          terms (half to each side) plus the edge weight ``(p_12 + p_21 - p_11 - p_22) / 2``;
        * edge weights ``+ beta'``.
    """
    b, _, h, w = img1.shape
    n = int(block_num)
    if h % n or w % n:
        raise ValueError(f"block_num={n} must divide the image size {(h, w)}")
    bh, bw = h // n, w // n
    neigh = (largest_divisor_at_most(bh, neigh_size), largest_divisor_at_most(bw, neigh_size))
    beta_ = beta / n / 16.0
    img1, img2 = img1.float(), img2.float()
    # p[s][t]: source s before the boundary, t after (0 = partner, 1 = anchor), as the official pw_x[:, s, t]
    imgs = (img2, img1)
    pv = [[None, None], [None, None]]
    ph = [[None, None], [None, None]]
    for s in (0, 1):
        for t in (0, 1):
            v_, h_ = boundary_penalty(imgs[s], imgs[t], n, neigh)
            pv[s][t], ph[s][t] = beta_ * gamma * v_, beta_ * gamma * h_
    keep = sal2.float().clone()      # cost of a block showing the anchor (mask 1)
    swap = sal1.float().clone()      # cost of a block showing the partner (mask 0)
    keep[:, :-1, :] += (pv[1][0] + pv[1][1]) / 2
    swap[:, :-1, :] += (pv[0][1] + pv[0][0]) / 2
    keep[:, 1:, :] += (pv[0][1] + pv[1][1]) / 2
    swap[:, 1:, :] += (pv[1][0] + pv[0][0]) / 2
    keep[:, :, :-1] += (ph[1][0] + ph[1][1]) / 2
    swap[:, :, :-1] += (ph[0][1] + ph[0][0]) / 2
    keep[:, :, 1:] += (ph[0][1] + ph[1][1]) / 2
    swap[:, :, 1:] += (ph[1][0] + ph[0][0]) / 2
    w_v = (pv[1][0] + pv[0][1] - pv[1][1] - pv[0][0]) / 2 + beta_
    w_h = (ph[1][0] + ph[0][1] - ph[1][1] - ph[0][0]) / 2 + beta_
    L = int(n_labels)
    lam = torch.as_tensor(lam, dtype=torch.float64, device=img1.device).reshape(-1).expand(b)
    i = torch.arange(L, dtype=torch.float64, device=img1.device)
    comb = torch.tensor([math.comb(L - 1, k) for k in range(L)], dtype=torch.float64, device=img1.device)
    prob = comb * lam[:, None] ** (L - 1 - i) * (1 - lam[:, None]) ** i
    prior = (-eta / n ** 2) * torch.log(prob + 1e-8)                          # (B, L)
    m = 1.0 - i / (L - 1)                                                     # anchor share of label i
    unary = (m.view(1, 1, 1, L) * keep.unsqueeze(-1).double() + (1 - m).view(1, 1, 1, L) * swap.unsqueeze(-1).double()
             + prior.view(b, 1, 1, L))
    return unary.float(), w_v, w_h

"""AdAutoMix's mask generator (``AdaptiveMask`` in the official ``Ada_mix_pine.py``), for N >= 2 sources.

For the teacher's feature maps of the N sources ``f_i = f[index[:, i]]`` ``(B, C, *s)``::

    [f_i = cat(f_i, constant channel λ_i)           with lam_concat]
    q_i = relu(conv_q(f_i))                          1x1 conv C -> C/r, then ReLU (mmcv ConvModule default)
    k_i = relu(conv_k(f_i))                          a separate 1x1 conv + ReLU
    v_i = conv_v(f_i)                                1x1 conv C -> 1 (no activation)
    A_i = softmax( sum_{j != i} q_i k_j^T / sqrt(C/r) )   cross-attention of image i against the others, fp32
    m_i = A_i v_i                                    (B, 1, *s)
    M   = softmax_over_i( upsample([m_1 .. m_N]) )   (B, N, *input_spatial): convex per pixel

For N = 2 this is the official ``normal_mix`` (``A = softmax(q_1 k_2^T)``, ``A_ = softmax(q_2 k_1^T)``);
for N > 2 ``co_mix``. ``sum_j q_i k_j^T`` is computed as ``q_i (sum_j k_j)^T`` (equal up to float
rounding, N-1 fewer ``P x P`` products).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .layers import Pointwise, lam_channel, scaled_softmax, upsample

__all__ = ["AdaptiveMask"]


class AdaptiveMask(nn.Module):
    """The AdAutoMix mask generator.

    Args:
        in_channels: channels ``C`` of the feature map.
        reduction: ``C/r`` channels for query and key (official 2).
        use_scale: divide the attention logits by ``sqrt(C/r)`` (official True).
        lam_concat: append the constant λ_i channel to each source's features (False in the CIFAR and
            Tiny-ImageNet ResNet configs, True for ImageNet, CUB and the ViTs).
    """

    def __init__(self, in_channels: int, reduction: int = 2, use_scale: bool = True, lam_concat: bool = False) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.inter_channels = max(self.in_channels // int(reduction), 1)
        self.use_scale = bool(use_scale)
        self.lam_concat = bool(lam_concat)
        ch = self.in_channels + int(self.lam_concat)
        self.conv_q = Pointwise(ch, self.inter_channels, relu=True)
        self.conv_k = Pointwise(ch, self.inter_channels, relu=True)
        self.conv_v = Pointwise(ch, 1)

    def logits(self, feat: Tensor, index: Tensor, weights: Sequence[float]) -> Tensor:
        """Per-source mask logits at the feature resolution, ``(B, N, *feature_spatial)``."""
        b, n = index.shape
        f = feat.float().flatten(2)  # (B, C, P)
        srcs = [f[index[:, i]] for i in range(n)]
        if self.lam_concat:
            srcs = [lam_channel(s, w) for s, w in zip(srcs, weights)]
        stacked = torch.cat(srcs, 0)  # (N*B, C, P): one conv call for all sources
        p = stacked.shape[-1]
        q = self.conv_q(stacked).view(n, b, self.inter_channels, p).transpose(2, 3)  # (N, B, P, C')
        k = self.conv_k(stacked).view(n, b, self.inter_channels, p)  # (N, B, C', P)
        v = self.conv_v(stacked).view(n, b, 1, p).transpose(2, 3)  # (N, B, P, 1)
        others = torch.stack([sum(k[j] for j in range(n) if j != i) for i in range(n)])  # (N, B, C', P)
        attn = scaled_softmax(q, others, self.use_scale)  # (N, B, P, P)
        m = torch.matmul(attn, v.float())  # (N, B, P, 1)
        return m.squeeze(-1).transpose(0, 1).reshape(b, n, *feat.shape[2:])

    def forward(self, feat: Tensor, index: Tensor, weights: Sequence[float], size: Sequence[int], mode: str,
                scale_factor: Optional[float] = None) -> Tensor:
        """Mask ``(B, N, *size)`` float32 for sources ``index`` ``(B, N)``; ``weights`` are the sampled
        source weights (used only by the λ embedding)."""
        with torch.autocast(device_type=feat.device.type, enabled=False):
            return upsample(self.logits(feat, index, weights), size, mode, scale_factor).softmax(dim=1)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, inter_channels={self.inter_channels}, use_scale={self.use_scale}, "
                f"lam_concat={self.lam_concat}")

"""AutoMix's Mix Block (OpenMixup ``PixelMixBlock``, ``mask_mode="none_v_"``, the CIFAR configs' setting).

For the feature map ``f`` ``(B, C, *s)`` of the teacher, the anchor ``x`` and its partner ``x[j]``
(``j = index[:, 1]``)::

    x_lam = f,  x_lam_ = f[j]                  [+ a constant channel λ / 1-λ with lam_concat]
    v_ = value(x_lam_)                          1x1 conv C -> 1
    q  = query(x_lam)                           1x1 conv C -> C/r (no activation)
    k  = query(x_lam_)                          the same conv (a separate key conv only with x_qk_concat)
    P  = softmax(q k^T / sqrt(C/r))             (B, P, P), float32
    m_ = sigmoid(upsample(P v_))                the partner's share, per pixel
    mask = [1 - m_, m_]                         (B, 2, *input_spatial): convex per pixel

With ``x_qk_concat`` both query and key read ``cat(x_lam, x_lam_)`` (2C channels) and the key conv is
separate. Everything runs in float32 with autocast off (the official ``force_fp32``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .layers import Pointwise, lam_channel, scaled_softmax, upsample

__all__ = ["PixelMixBlock"]


class PixelMixBlock(nn.Module):
    """The AutoMix mask generator for two sources.

    Args:
        in_channels: channels ``C`` of the feature map.
        reduction: ``C/r`` channels for the query and key (official 2).
        use_scale: divide the attention logits by ``sqrt(C/r)`` (official True).
        lam_concat: append the λ channel (λ to the anchor's features, 1-λ to the partner's); False on CIFAR,
            True in the ImageNet configs.
        x_qk_concat: query and key on the concatenated pair with a separate key conv (official False).
    """

    def __init__(self, in_channels: int, reduction: int = 2, use_scale: bool = True, lam_concat: bool = False,
                 x_qk_concat: bool = False) -> None:
        super().__init__()
        if lam_concat and x_qk_concat:
            raise ValueError("lam_concat and x_qk_concat exclude each other (as in the official PixelMixBlock)")
        self.in_channels = int(in_channels)
        self.inter_channels = max(self.in_channels // int(reduction), 1)
        self.use_scale = bool(use_scale)
        self.lam_concat = bool(lam_concat)
        self.x_qk_concat = bool(x_qk_concat)
        qk_in = 2 * self.in_channels if x_qk_concat else self.in_channels + int(self.lam_concat)
        self.value = Pointwise(self.in_channels + int(self.lam_concat), 1)
        self.query = Pointwise(qk_in, self.inter_channels)
        self.key: Optional[Pointwise] = Pointwise(qk_in, self.inter_channels) if x_qk_concat else None

    def logits(self, feat: Tensor, index: Tensor, weights: Sequence[float]) -> Tensor:
        """The partner's mask logits ``P v_`` at the feature resolution, ``(B, 1, *feature_spatial)``."""
        b = feat.shape[0]
        f = feat.float().flatten(2)  # (B, C, P)
        x_lam, x_lam_ = f, f[index[:, 1]]
        if self.lam_concat:
            x_lam, x_lam_ = lam_channel(x_lam, weights[0]), lam_channel(x_lam_, weights[1])
        v_ = self.value(x_lam_).transpose(1, 2)  # (B, P, 1)
        if self.x_qk_concat:
            x_lam = x_lam_ = torch.cat([x_lam, x_lam_], dim=1)
        q = self.query(x_lam).transpose(1, 2)  # (B, P, C/r)
        k = (self.key if self.key is not None else self.query)(x_lam_)  # (B, C/r, P)
        attn = scaled_softmax(q, k, self.use_scale)  # (B, P, P)
        return torch.matmul(attn, v_).view(b, 1, *feat.shape[2:])

    def forward(self, feat: Tensor, index: Tensor, weights: Sequence[float], size: Sequence[int], mode: str,
                scale_factor: Optional[float] = None) -> Tensor:
        """Mask ``(B, 2, *size)`` float32 for sources ``index`` ``(B, 2)`` (column 0 the anchor).

        ``weights`` are the sampled source weights ``(λ, 1-λ)``, used only by the λ embedding.
        """
        with torch.autocast(device_type=feat.device.type, enabled=False):
            m_ = torch.sigmoid(upsample(self.logits(feat, index, weights), size, mode, scale_factor))
            return torch.cat([1.0 - m_, m_], dim=1)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, inter_channels={self.inter_channels}, use_scale={self.use_scale}, "
                f"lam_concat={self.lam_concat}, x_qk_concat={self.x_qk_concat}")

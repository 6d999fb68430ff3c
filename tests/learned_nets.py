"""Tiny conv nets for the learned-mixer tests (AutoMix, AdAutoMix): 1-D, 2-D or 3-D, a few layers."""
from __future__ import annotations

import torch
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class TinyNet(nn.Module):
    """stem -> layer1 (w, full res) -> layer2 (2w, 1/2) -> layer3 (2w, 1/4) -> mean pool -> linear.

    ``unused`` is a module that forward never calls; ``flat`` (a Flatten) is called on the pooled
    features, so its output is (B, D), not a feature map.
    """

    def __init__(self, dims: int = 2, in_ch: int = 3, num_classes: int = 5, w: int = 8) -> None:
        super().__init__()
        conv, bn = _CONV[dims], _BN[dims]
        self.stem = conv(in_ch, w, 3, padding=1)
        self.layer1 = nn.Sequential(conv(w, w, 3, padding=1, bias=False), bn(w), nn.ReLU())
        self.layer2 = nn.Sequential(conv(w, 2 * w, 3, stride=2, padding=1, bias=False), bn(2 * w), nn.ReLU())
        self.layer3 = nn.Sequential(conv(2 * w, 2 * w, 3, stride=2, padding=1, bias=False), bn(2 * w), nn.ReLU())
        self.unused = nn.Linear(3, 3)
        self.flat = nn.Flatten()
        self.linear = nn.Linear(2 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.linear(self.flat(h.flatten(2).mean(-1)))


def batch(dims: int = 2, b: int = 8, size: int = 16, in_ch: int = 3, num_classes: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, in_ch, *([size] * dims), generator=g)
    y = torch.randint(0, num_classes, (b,), generator=g)
    return x, y

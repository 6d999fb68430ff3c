"""A small torchvision-style ResNet for tests: the naming of ``torchvision.models.resnet18``
(conv1/bn1/relu/maxpool/layer1..4/avgpool/fc) without its size, and without ``hidden_layers``, so the
model-aware methods are tested on a model that was not written for them (torchvision itself does not
install beside the pinned CPU torch)."""
from __future__ import annotations

import torch
from torch import nn


class TVBasicBlock(nn.Module):
    """torchvision-style BasicBlock: one inplace ReLU module used twice."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class TVResNet(nn.Module):
    """``blocks`` BasicBlocks per stage (each stage an ``nn.Sequential``), widths ``width * (1, 2, 4, 8)``.
    ``unused=True`` adds a module that is defined but never called (for "layer never reached" tests)."""

    def __init__(self, num_classes: int = 10, width: int = 8, blocks: int = 1, unused: bool = False):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = w
        for i, c in enumerate((w, 2 * w, 4 * w, 8 * w)):
            stage = [TVBasicBlock(cin, c, 1 if i == 0 else 2)] + [TVBasicBlock(c, c) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        if unused:
            self.unused = nn.Linear(3, 3)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

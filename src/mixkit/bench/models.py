"""Models for ``mixkit bench``: the CIFAR ResNets of the MSDA literature plus CPU-sized nets.

=====================  ===========================================  ==========================
registry name          architecture                                 params (10 classes, 3 ch)
=====================  ===========================================  ==========================
``preactresnet18``     :class:`PreActResNet18` (MixUp/CutMix/FMix/   11,171,146
                       PuzzleMix/Co-Mixup CIFAR tables)
``resnet18``           :class:`ResNet18` (CIFAR variant, OpenMixup)  11,173,962
``resnet20``           :class:`CifarResNet` depth 20 (He et al.)      269,722 (width 1)
``resnet8``            :class:`CifarResNet` depth 8                   75,290 (width 1)
``cnn1d``              :class:`CNN1d` for sequences (MNIST-1D)       35,754 (width 32, 1 ch)
=====================  ===========================================  ==========================

Conventions shared by every model (what the bench trainer and hidden-layer mixers rely on):

* Input ``(B, C, H, W)`` (``(B, C, L)`` for :class:`CNN1d`), already normalised; output logits
  ``(B, num_classes)``.
* No stem down-sampling and a global *adaptive* average pool, so any input from 8x8 (sklearn
  digits) to 32x32 and beyond works.
* The residual stages are named submodules ``layer1``, ``layer2``, ... and their names are listed
  in the class attribute ``hidden_layers``; Manifold Mixup / PatchUp hook the *output* of one of
  them (mixing "at layer k" = after ``layer{k}``; k = 0 is the input). The classifier is
  ``linear``; :meth:`forward_features` returns the pooled features fed to it.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "PreActBlock",
    "BasicBlock",
    "PreActResNet18",
    "ResNet18",
    "CifarResNet",
    "resnet8",
    "resnet20",
    "CNN1d",
    "MODEL_NAMES",
    "build_model",
    "count_parameters",
]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _scaled(base: int, width: float) -> int:
    if width <= 0:
        raise ValueError(f"width must be > 0; got {width}")
    return max(1, int(round(base * width)))


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class _Backbone(nn.Module):
    """Shared ``forward``: stem -> layer1..layerN -> (head) -> adaptive pool -> ``linear``."""

    hidden_layers: tuple[str, ...] = ()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, D)`` that feed the classifier ``linear``."""
        out = self._stem(x)
        for name in self.hidden_layers:
            out = getattr(self, name)(out)
        out = self._head(out)
        return torch.flatten(F.adaptive_avg_pool2d(out, 1) if out.dim() == 4
                             else F.adaptive_avg_pool1d(out, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.linear(self.forward_features(x))


# --------------------------------------------------------------------------------------------------
# ResNet-18 family (CIFAR variants: 3x3 stem, stride 1, no max-pool)
# --------------------------------------------------------------------------------------------------
class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016b, "Identity Mappings in Deep Residual Networks").

    ``BN-ReLU -> conv3x3(stride) -> BN-ReLU -> conv3x3``, plus the shortcut: identity, or a 1x1
    strided conv (no BN) applied to the *pre-activated* input when the shape changes -- as in
    Kuang Liu's ``pytorch-cifar`` code used by the MixUp, Manifold Mixup, PuzzleMix and FMix repos.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        sc = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + sc


class BasicBlock(nn.Module):
    """Post-activation basic block (He et al. 2016a).

    ``conv3x3(stride)-BN-ReLU -> conv3x3-BN``, add the shortcut, then ReLU. When the shape changes
    the shortcut is ``shortcut="B"``: a 1x1 strided conv + BN (projection; ImageNet ResNets,
    ResNet-18), or ``shortcut="A"``: parameter-free stride-2 subsampling + zero channel padding
    (the paper's CIFAR ResNets).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B'; got {shortcut!r}")
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = _ShortcutA(in_planes, planes, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(out + sc)


class _ShortcutA(nn.Module):
    """Parameter-free "option A" shortcut: stride subsampling + zero channel padding."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cout < cin:
            raise ValueError("option-A shortcut cannot reduce channels")
        self.stride = stride
        extra = cout - cin
        self.pad_front, self.pad_back = extra // 2, extra - extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))


def _make_stage(
    block: Callable[..., nn.Module], cin: int, cout: int, n: int, stride: int, **kw
) -> nn.Sequential:
    layers = []
    for s in [stride] + [1] * (n - 1):
        layers.append(block(cin, cout, s, **kw))
        cin = cout
    return nn.Sequential(*layers)


class PreActResNet18(_Backbone):
    """Pre-activation ResNet-18 for CIFAR, as used in the MixUp (Zhang et al. 2018), Manifold
    Mixup, CutMix-on-CIFAR, FMix, PuzzleMix and Co-Mixup papers' CIFAR tables.

    Architecture (Kuang Liu's ``pytorch-cifar`` ``PreActResNet18``, which the official MixUp and
    PuzzleMix code copy): ``conv1`` 3x3 stride 1 (no BN, no max-pool) -> ``layer1..layer4`` of 2
    :class:`PreActBlock` each, widths 64-128-256-512 (strides 1, 2, 2, 2) -> global average pool ->
    ``linear``. 11,171,146 parameters for 10 classes and 3 input channels.

    That reference code has **no** final BN-ReLU after ``layer4`` (He et al.'s pre-activation
    paper does have one). ``final_bn=True`` adds it (``bn_final``; +2*512 parameters =
    11,172,170), matching the "proper" pre-activation design.

    Args:
        num_classes: output logits.
        in_channels: input channels (3 for CIFAR, 1 for grayscale).
        width: multiplier on the base width 64 (1 = the published model).
        final_bn: add the final BN-ReLU before pooling (default False, as in the reference code).

    Hidden layers (``hidden_layers``): ``layer1`` (64w ch, full res), ``layer2`` (128w, 1/2),
    ``layer3`` (256w, 1/4), ``layer4`` (512w, 1/8).
    """

    hidden_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: float = 1, final_bn: bool = False
    ) -> None:
        super().__init__()
        c = [_scaled(64 * m, width) for m in (1, 2, 4, 8)]
        self.conv1 = _conv3x3(in_channels, c[0])
        self.layer1 = _make_stage(PreActBlock, c[0], c[0], 2, 1)
        self.layer2 = _make_stage(PreActBlock, c[0], c[1], 2, 2)
        self.layer3 = _make_stage(PreActBlock, c[1], c[2], 2, 2)
        self.layer4 = _make_stage(PreActBlock, c[2], c[3], 2, 2)
        self.bn_final = nn.BatchNorm2d(c[3]) if final_bn else None
        self.linear = nn.Linear(c[3], num_classes)
        self.num_classes = num_classes
        self.feature_dim = c[3]

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn_final(x)) if self.bn_final is not None else x


class ResNet18(_Backbone):
    """CIFAR ResNet-18 (post-activation), the backbone of OpenMixup's CIFAR tables
    (``ResNet_CIFAR`` depth 18) and of Kuang Liu's ``pytorch-cifar`` ``ResNet18``.

    ``conv1`` 3x3 stride 1 -> ``bn1`` -> ReLU (no max-pool) -> ``layer1..layer4`` of 2
    :class:`BasicBlock` each, widths 64-128-256-512 (strides 1, 2, 2, 2; projection shortcuts
    1x1 conv + BN) -> global average pool -> ``linear``. 11,173,962 parameters for 10 classes.

    Args:
        num_classes: output logits.
        in_channels: input channels.
        width: multiplier on the base width 64.

    Hidden layers (``hidden_layers``): ``layer1`` .. ``layer4`` as in :class:`PreActResNet18`.
    """

    hidden_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1) -> None:
        super().__init__()
        c = [_scaled(64 * m, width) for m in (1, 2, 4, 8)]
        self.conv1 = _conv3x3(in_channels, c[0])
        self.bn1 = nn.BatchNorm2d(c[0])
        self.layer1 = _make_stage(BasicBlock, c[0], c[0], 2, 1)
        self.layer2 = _make_stage(BasicBlock, c[0], c[1], 2, 2)
        self.layer3 = _make_stage(BasicBlock, c[1], c[2], 2, 2)
        self.layer4 = _make_stage(BasicBlock, c[2], c[3], 2, 2)
        self.linear = nn.Linear(c[3], num_classes)
        self.num_classes = num_classes
        self.feature_dim = c[3]

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


# --------------------------------------------------------------------------------------------------
# He et al. CIFAR ResNets (6n+2 layers, widths 16/32/64)
# --------------------------------------------------------------------------------------------------
class CifarResNet(_Backbone):
    """The CIFAR ResNets of He et al. 2016a, Sec. 4.2 (ResNet-20/32/44/56/110 ...).

    ``depth = 6n + 2``: ``conv1`` 3x3 (16w channels) -> ``bn1`` -> ReLU -> ``layer1``, ``layer2``,
    ``layer3`` of ``n`` :class:`BasicBlock` each with 16w, 32w, 64w channels (strides 1, 2, 2)
    -> global average pool -> ``linear``. Kaiming-normal conv/linear initialisation.

    Shortcuts: the paper uses parameter-free identity / zero-padding shortcuts ("option A": "our
    residual models have exactly the same depth, width, and number of parameters as the plain
    counterparts"), which is the default here: ResNet-20 = 269,722 parameters and ResNet-8 =
    75,290 for 10 classes at width 1 (the paper's "0.27M"). ``shortcut="B"`` uses 1x1-conv + BN
    projections where the shape changes (as in several popular re-implementations):
    ResNet-20 = 272,474, ResNet-8 = 78,042.

    Args:
        depth: 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...).
        num_classes: output logits.
        in_channels: input channels.
        width: channel multiplier on 16/32/64 (e.g. 2 or 4 for a wider CPU-sized net).
        shortcut: ``"A"`` (paper, default) or ``"B"`` (projection).

    Hidden layers (``hidden_layers``): ``layer1`` (16w ch, full res), ``layer2`` (32w, 1/2),
    ``layer3`` (64w, 1/4).
    """

    hidden_layers = ("layer1", "layer2", "layer3")

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1,
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...); got {depth}")
        n = (depth - 2) // 6
        c = [_scaled(b, width) for b in (16, 32, 64)]
        self.depth = depth
        self.conv1 = _conv3x3(in_channels, c[0])
        self.bn1 = nn.BatchNorm2d(c[0])
        self.layer1 = _make_stage(BasicBlock, c[0], c[0], n, 1, shortcut=shortcut)
        self.layer2 = _make_stage(BasicBlock, c[0], c[1], n, 2, shortcut=shortcut)
        self.layer3 = _make_stage(BasicBlock, c[1], c[2], n, 2, shortcut=shortcut)
        self.linear = nn.Linear(c[2], num_classes)
        self.num_classes = num_classes
        self.feature_dim = c[2]
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


def resnet8(
    num_classes: int = 10, in_channels: int = 3, width: float = 1, shortcut: str = "A"
) -> CifarResNet:
    """He et al. CIFAR ResNet-8 (n=1); 75,290 params at width 1 / 10 classes (78,042 with "B")."""
    return CifarResNet(8, num_classes, in_channels, width, shortcut)


def resnet20(
    num_classes: int = 10, in_channels: int = 3, width: float = 1, shortcut: str = "A"
) -> CifarResNet:
    """He et al. CIFAR ResNet-20 (n=3); 269,722 params at width 1 / 10 classes (272,474 with "B")."""
    return CifarResNet(20, num_classes, in_channels, width, shortcut)


# --------------------------------------------------------------------------------------------------
# 1-D CNN for sequences
# --------------------------------------------------------------------------------------------------
def _conv_bn_relu_1d(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm1d(cout),
        nn.ReLU(inplace=True),
    )


class CNN1d(_Backbone):
    """A small 1-D conv net for sequences ``(B, C, L)`` such as MNIST-1D (L = 40).

    ``conv1``: Conv1d(k=5)-BN-ReLU (``width`` ch) -> ``layer1``: Conv1d(k=3)-BN-ReLU (``width``)
    -> ``layer2``: Conv1d(k=3, stride 2)-BN-ReLU (2 ``width``) -> ``layer3``: Conv1d(k=3,
    stride 2)-BN-ReLU (4 ``width``) -> global average pool -> ``linear``. Works for any ``L >= 1``.

    Args:
        num_classes: output logits.
        in_channels: input channels (1 for MNIST-1D).
        width: channels of the first stage (default 32).

    Hidden layers (``hidden_layers``): ``layer1`` (w ch, L), ``layer2`` (2w, L/2), ``layer3``
    (4w, L/4).
    """

    hidden_layers = ("layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1; got {width}")
        w = int(width)
        self.conv1 = _conv_bn_relu_1d(in_channels, w, 5)
        self.layer1 = _conv_bn_relu_1d(w, w, 3)
        self.layer2 = _conv_bn_relu_1d(w, 2 * w, 3, stride=2)
        self.layer3 = _conv_bn_relu_1d(2 * w, 4 * w, 3, stride=2)
        self.linear = nn.Linear(4 * w, num_classes)
        self.num_classes = num_classes
        self.feature_dim = 4 * w

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
MODEL_NAMES = ("preactresnet18", "resnet18", "resnet8", "resnet20", "cnn1d")
_MODEL_DIMS = {"preactresnet18": 2, "resnet18": 2, "resnet8": 2, "resnet20": 2, "cnn1d": 1}


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    spatial_dims: int = 2,
    width: float = 1,
) -> nn.Module:
    """Build a model by name.

    Args:
        name: one of ``preactresnet18``, ``resnet18``, ``resnet8``, ``resnet20``, ``cnn1d``
            (case-insensitive; ``-``/``_`` ignored, e.g. ``preact_resnet18``).
        num_classes: number of output logits.
        in_channels: channels of the input (``DataSplit.in_channels``).
        spatial_dims: 1 for sequences, 2 for images (``DataSplit.spatial_dims``); must match the
            model.
        width: channel multiplier (1 = published sizes; for ``cnn1d`` the first stage has
            ``32 * width`` channels).

    Raises:
        ValueError: unknown name (lists the valid ones) or a model/data dimensionality mismatch.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _MODEL_DIMS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    if num_classes < 1 or in_channels < 1:
        raise ValueError(f"num_classes and in_channels must be >= 1; got {num_classes}, {in_channels}")
    dims = _MODEL_DIMS[key]
    if spatial_dims != dims:
        kind = {1: "1-D sequences (B, C, L)", 2: "2-D images (B, C, H, W)"}
        compatible = [n for n, d in _MODEL_DIMS.items() if d == spatial_dims]
        raise ValueError(
            f"model {name!r} takes {kind[dims]} but the data has spatial_dims={spatial_dims}; "
            f"use one of: {', '.join(compatible) or 'none'}"
        )
    if key == "preactresnet18":
        return PreActResNet18(num_classes, in_channels, width=width)
    if key == "resnet18":
        return ResNet18(num_classes, in_channels, width=width)
    if key == "resnet8":
        return resnet8(num_classes, in_channels, width=width)
    if key == "resnet20":
        return resnet20(num_classes, in_channels, width=width)
    return CNN1d(num_classes, in_channels, width=_scaled(32, width))

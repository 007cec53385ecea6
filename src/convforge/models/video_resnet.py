"""R3D-18, the 3-D ResNet for video (torchvision's ``r3d_18``).

Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018
(https://arxiv.org/abs/1711.11248).

ResNet-18 with every convolution made 3-D: a (3, 7, 7) stem strided (1, 2, 2) in space only, four stages of
basic blocks of 3x3x3 convolutions (stages 2-4 halve time and space), global average pooling over
``(T, H, W)`` and a linear classifier (400 Kinetics classes by default). 33,371,472 parameters. Input
``(N, 3, T, H, W)``. Names, defaults and init are torchvision's.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Type

from .. import nn
from ._blocks import init_conv_fan_out, reject_weights

__all__ = ["VideoResNet", "BasicBlock", "BasicStem", "Conv3DSimple", "r3d_18"]


class Conv3DSimple(nn.Conv3d):
    """A 3x3x3 convolution, strided equally in time and space, no bias. ``midplanes`` is unused (it sizes the
    factorised (2+1)-D convolutions of torchvision's other video models)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: Optional[int] = None, stride: int = 1,
                 padding: int = 1):
        super().__init__(in_channels=in_planes, out_channels=out_planes, kernel_size=(3, 3, 3), stride=stride,
                         padding=padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> Tuple[int, int, int]:
        return stride, stride, stride


class BasicBlock(nn.Module):
    """``relu(conv2(conv1(x)) + shortcut(x))``, where ``conv1`` is conv-BN-ReLU and ``conv2`` conv-BN."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder: Callable[..., nn.Module], stride: int = 1,
                 downsample: Optional[nn.Module] = None):
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        super().__init__()
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class BasicStem(nn.Sequential):
    """Conv (3, 7, 7) strided (1, 2, 2), BatchNorm, ReLU."""

    def __init__(self):
        super().__init__(nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                         nn.BatchNorm3d(64), nn.ReLU(inplace=True))


class VideoResNet(nn.Module):
    """A video ResNet (torchvision's ``VideoResNet``).

    Args:
        block: the residual block class (:class:`BasicBlock`).
        conv_makers: the convolution class of each of the four stages (:class:`Conv3DSimple`).
        layers: blocks per stage.
        stem: builds the stem module (:class:`BasicStem`).
        num_classes: outputs. Default 400 (Kinetics-400).
        zero_init_residual: accepted for torchvision compatibility; like torchvision's, it changes only bottleneck
            blocks, so it has no effect on basic-block networks such as R3D-18.

    Shape:
        ``(N, 3, T, H, W) -> (N, num_classes)``.
    """

    def __init__(self, block: Type[BasicBlock], conv_makers: Sequence[Type[Conv3DSimple]], layers: List[int],
                 stem: Callable[..., nn.Module], num_classes: int = 400, zero_init_residual: bool = False):
        super().__init__()
        self.inplanes = 64
        self.stem = stem()
        self.layer1 = self._make_layer(block, conv_makers[0], 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        init_conv_fan_out(self, "relu", conv_types=(nn.Conv3d,), norm_types=(nn.BatchNorm3d,), linear_std=0.01)

    def _make_layer(self, block, conv_builder, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, kernel_size=1,
                          stride=conv_builder.get_downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes * block.expansion))
        layers = [block(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, conv_builder) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def r3d_18(*, weights=None, **kwargs) -> VideoResNet:
    """R3D-18 (torchvision ``r3d_18``): 3-D basic blocks [2, 2, 2, 2], 33,371,472 parameters.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`VideoResNet` (``num_classes``, default 400).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = r3d_18(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 4, 16, 16), np.float32)).shape
        (1, 10)
    """
    reject_weights("r3d_18", weights)
    return VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, **kwargs)

"""ResNet and ResNeXt (torchvision's ``resnet18``, ``resnet34``, ``resnet50``, ``resnext50_32x4d``).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (https://arxiv.org/abs/1512.03385);
Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017
(https://arxiv.org/abs/1611.05431).

The network: a 7x7/2 stem conv and a 3x3/2 max-pool, four stages of residual blocks (the first block of stages 2-4
halves the resolution and doubles the width), global average pooling and one linear classifier. Like
torchvision, the Bottleneck puts the stride on its 3x3 conv ("ResNet v1.5"), and module names, defaults and
initialisation are torchvision's, so ``model.load_state_dict(torchvision_state_dict)`` works with ``strict=True``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Type, Union

from .. import nn
from ..nn import init
from ._blocks import init_conv_fan_out, reject_weights

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnext50_32x4d"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' padding and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution with no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``downsample`` (a 1x1 conv + norm) maps the shortcut when the stride or the width changes.
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                             f"base_width={base_width}; use Bottleneck for ResNeXt / wide ResNets")
        if dilation > 1:
            raise NotImplementedError(f"Dilation > 1 not supported in BasicBlock (got dilation={dilation})")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, possibly grouped), 1x1 expand by ``expansion`` = 4, plus the shortcut.

    The inner width is ``int(planes * base_width / 64) * groups`` (ResNeXt's cardinality x bottleneck width).
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet / ResNeXt classifier (torchvision's ``ResNet``).

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: number of blocks in each of the four stages.
        num_classes: outputs of the classifier. Default 1000.
        zero_init_residual: start each residual branch's last BatchNorm at weight 0 (each block = identity).
        groups, width_per_group: ResNeXt's cardinality and bottleneck width (Bottleneck only).
        replace_stride_with_dilation: three bools: dilate stages 2-4 instead of striding them.
        norm_layer: called with the channel count. Default ``nn.BatchNorm2d``.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``; the features are ``H/32 x W/32`` before pooling.
    """

    def __init__(self, block: Type[Union[BasicBlock, Bottleneck]], layers: List[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64,
                 replace_stride_with_dilation: Optional[List[bool]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        init_conv_fan_out(self, "relu")
        if zero_init_residual:  # Goyal et al. 2017: each residual block starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                        norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def resnet18(*, weights=None, **kwargs) -> ResNet:
    """ResNet-18 (torchvision ``resnet18``): BasicBlocks [2, 2, 2, 2], 11,689,512 parameters, 1.82 GMACs at 224.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`ResNet` (``num_classes``, ``zero_init_residual``, ``norm_layer``, ...).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = resnet18(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("resnet18", weights)
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(*, weights=None, **kwargs) -> ResNet:
    """ResNet-34 (torchvision ``resnet34``): BasicBlocks [3, 4, 6, 3], 21,797,672 parameters. Args as
    :func:`resnet18`."""
    reject_weights("resnet34", weights)
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(*, weights=None, **kwargs) -> ResNet:
    """ResNet-50 (torchvision ``resnet50``): Bottlenecks [3, 4, 6, 3], 25,557,032 parameters. Args as
    :func:`resnet18`."""
    reject_weights("resnet50", weights)
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnext50_32x4d(*, weights=None, **kwargs) -> ResNet:
    """ResNeXt-50 32x4d (torchvision ``resnext50_32x4d``): Bottlenecks [3, 4, 6, 3] with 32 groups of width 4,
    25,028,904 parameters. Args as :func:`resnet18` (``groups`` and ``width_per_group`` are fixed)."""
    reject_weights("resnext50_32x4d", weights)
    kwargs["groups"] = 32
    kwargs["width_per_group"] = 4
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)

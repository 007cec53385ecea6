"""MobileNetV2 (torchvision's ``mobilenet_v2``).

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
(https://arxiv.org/abs/1801.04381).

A 3x3/2 stem, then inverted residual blocks: a 1x1 expansion (factor t), a 3x3 depthwise conv, and a linear 1x1
projection, with a shortcut when the shape is kept; ReLU6 activations; a 1x1 conv to 1280 channels, global average
pooling and a dropout + linear classifier. 3,504,872 parameters. Names, defaults and init are torchvision's.
"""
from __future__ import annotations

from typing import Callable, List, Optional

from .. import nn
from ..nn import functional as F
from ._blocks import Conv2dNormActivation, init_conv_fan_out, make_divisible, reject_weights

__all__ = ["MobileNetV2", "InvertedResidual", "mobilenet_v2"]


class InvertedResidual(nn.Module):
    """Expand (1x1, unless ``expand_ratio`` is 1), depthwise 3x3, project (1x1, no activation); ``x +`` that when
    the stride is 1 and the channels are kept.

    Args:
        inp, oup: input and output channels.
        stride: 1 or 2 (of the depthwise conv).
        expand_ratio: hidden channels = ``round(inp * expand_ratio)``.
        norm_layer: default ``nn.BatchNorm2d``.
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        self.stride = stride
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup

        layers: List[nn.Module] = []
        if expand_ratio != 1:  # pointwise expansion
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer,
                                 activation_layer=nn.ReLU6),           # depthwise
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),          # pointwise, linear
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier (torchvision's ``MobileNetV2``).

    Args:
        num_classes: outputs of the classifier. Default 1000.
        width_mult: scales every layer's channels (rounded to ``round_nearest``).
        inverted_residual_setting: rows ``[t, c, n, s]``: expansion, channels, repeats, first stride.
        round_nearest: channel rounding; 1 turns it off.
        block: the block class. Default :class:`InvertedResidual`.
        norm_layer: default ``nn.BatchNorm2d``.
        dropout: before the classifier. Default 0.2.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: Optional[List[List[int]]] = None, round_nearest: int = 8,
                 block: Optional[Callable[..., nn.Module]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, dropout: float = 0.2):
        super().__init__()
        if block is None:
            block = InvertedResidual
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        input_channel = 32
        last_channel = 1280
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t, c, n, s
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        if len(inverted_residual_setting) == 0 or len(inverted_residual_setting[0]) != 4:
            raise ValueError("inverted_residual_setting should be non-empty or a 4-element list, got "
                             f"{inverted_residual_setting}")

        input_channel = make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: List[nn.Module] = [
            Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer, activation_layer=nn.ReLU6)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(block(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t,
                                      norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

        init_conv_fan_out(self, "leaky_relu", linear_std=0.01)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.reshape(x.shape[0], -1))


def mobilenet_v2(*, weights=None, **kwargs) -> MobileNetV2:
    """MobileNetV2 (torchvision ``mobilenet_v2``), 3,504,872 parameters.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`MobileNetV2` (``num_classes``, ``width_mult``, ``dropout``, ...).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = mobilenet_v2(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("mobilenet_v2", weights)
    return MobileNetV2(**kwargs)

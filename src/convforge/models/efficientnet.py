"""EfficientNet-B0 (torchvision's ``efficientnet_b0``).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019
(https://arxiv.org/abs/1905.11946).

A 3x3/2 stem, seven stages of MBConv blocks (MobileNetV2's inverted residual with a squeeze-and-excitation gate
and SiLU activations; the residual branch is dropped per sample in training with a probability that grows with
depth, "stochastic depth"), a 1x1 conv to 1280 channels, global pooling and a dropout + linear classifier.
5,288,548 parameters. Width and depth multipliers give B1-B7. Names, defaults and init are torchvision's.
"""
from __future__ import annotations

import copy
import math
from functools import partial
from typing import Callable, List, Optional, Sequence

from .. import nn
from ..nn import init
from ._blocks import Conv2dNormActivation, SqueezeExcitation, init_conv_fan_out, make_divisible, reject_weights

__all__ = ["EfficientNet", "MBConv", "MBConvConfig", "efficientnet_b0"]


class MBConvConfig:
    """One stage of the paper's Table 1: expansion ratio, kernel, first stride, channels in/out and the number
    of blocks, scaled by ``width_mult`` (channels, rounded to 8) and ``depth_mult`` (blocks, rounded up)."""

    def __init__(self, expand_ratio: float, kernel: int, stride: int, input_channels: int, out_channels: int,
                 num_layers: int, width_mult: float = 1.0, depth_mult: float = 1.0,
                 block: Optional[Callable[..., nn.Module]] = None):
        self.expand_ratio = expand_ratio
        self.kernel = kernel
        self.stride = stride
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.num_layers = int(math.ceil(num_layers * depth_mult))
        self.block = MBConv if block is None else block

    @staticmethod
    def adjust_channels(channels: int, width_mult: float, min_value: Optional[int] = None) -> int:
        return make_divisible(channels * width_mult, 8, min_value)


class MBConv(nn.Module):
    """Expand (1x1), depthwise kxk, squeeze-excitation (squeeze to ``input_channels // 4``), project (1x1,
    linear); with the same shape in and out, ``input + stochastic_depth(branch)``."""

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float, norm_layer: Callable[..., nn.Module],
                 se_layer: Callable[..., nn.Module] = SqueezeExcitation):
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"illegal stride value {cnf.stride}: MBConv blocks have stride 1 or 2")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels

        layers: List[nn.Module] = []
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=cnf.kernel,
                                           stride=cnf.stride, groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))
        layers.append(se_layer(expanded_channels, max(1, cnf.input_channels // 4),
                               activation=partial(nn.SiLU, inplace=True)))
        layers.append(Conv2dNormActivation(expanded_channels, cnf.out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + input
        return result


class EfficientNet(nn.Module):
    """EfficientNet classifier (torchvision's ``EfficientNet``, MBConv stages only).

    Args:
        inverted_residual_setting: the stages (:class:`MBConvConfig`).
        dropout: before the classifier.
        stochastic_depth_prob: drop probability of the last block; block ``i`` of ``n`` uses ``p * i / n``.
        num_classes: outputs. Default 1000.
        norm_layer: default ``nn.BatchNorm2d``.
        last_channel: width of the head conv. Default ``4 * last stage's channels`` (1280 for B0).

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.
    """

    def __init__(self, inverted_residual_setting: Sequence[MBConvConfig], dropout: float,
                 stochastic_depth_prob: float = 0.2, num_classes: int = 1000,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, last_channel: Optional[int] = None):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if not (isinstance(inverted_residual_setting, Sequence)
                and all(isinstance(s, MBConvConfig) for s in inverted_residual_setting)):
            raise TypeError("The inverted_residual_setting should be List[MBConvConfig]")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d

        layers: List[nn.Module] = [Conv2dNormActivation(3, inverted_residual_setting[0].input_channels,
                                                        kernel_size=3, stride=2, norm_layer=norm_layer,
                                                        activation_layer=nn.SiLU)]
        total_stage_blocks = sum(cnf.num_layers for cnf in inverted_residual_setting)
        stage_block_id = 0
        for cnf in inverted_residual_setting:
            stage: List[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:  # later blocks of a stage keep the resolution and the width
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
                stage.append(block_cnf.block(block_cnf, sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))

        lastconv_input_channels = inverted_residual_setting[-1].out_channels
        lastconv_output_channels = last_channel if last_channel is not None else 4 * lastconv_input_channels
        layers.append(Conv2dNormActivation(lastconv_input_channels, lastconv_output_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(lastconv_output_channels, num_classes))

        init_conv_fan_out(self, "leaky_relu")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                init.uniform_(m.weight, -init_range, init_range)
                init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


def _efficientnet_b_setting(width_mult: float, depth_mult: float) -> List[MBConvConfig]:
    """The B0 stages (Table 1), scaled."""
    stage = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    return [stage(1, 3, 1, 32, 16, 1), stage(6, 3, 2, 16, 24, 2), stage(6, 5, 2, 24, 40, 2),
            stage(6, 3, 2, 40, 80, 3), stage(6, 5, 1, 80, 112, 3), stage(6, 5, 2, 112, 192, 4),
            stage(6, 3, 1, 192, 320, 1)]


def efficientnet_b0(*, weights=None, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (torchvision ``efficientnet_b0``), 5,288,548 parameters; dropout 0.2 by default.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`EfficientNet` (``num_classes``, ``dropout``, ``stochastic_depth_prob``, ...).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = efficientnet_b0(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("efficientnet_b0", weights)
    return EfficientNet(_efficientnet_b_setting(1.0, 1.0), kwargs.pop("dropout", 0.2), **kwargs)

"""MobileNetV3 Small and Large (torchvision's ``mobilenet_v3_small``, ``mobilenet_v3_large``).

Howard et al., "Searching for MobileNetV3", ICCV 2019 (https://arxiv.org/abs/1905.02244).

MobileNetV2's inverted residual blocks, found by architecture search, with 3x3 or 5x5 depthwise kernels,
squeeze-and-excitation (hard-sigmoid gate) in some blocks, and hard-swish ("HS") or ReLU ("RE") activations; the
head is a 1x1 conv, global pooling and a two-layer classifier. Names, defaults (BatchNorm eps 0.001, momentum
0.01) and init are torchvision's.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .. import nn
from ._blocks import (Conv2dNormActivation, SqueezeExcitation, init_conv_fan_out, make_divisible,
                      reject_weights)

__all__ = ["MobileNetV3", "InvertedResidual", "InvertedResidualConfig", "mobilenet_v3_small",
           "mobilenet_v3_large"]


class InvertedResidualConfig:
    """One row of the paper's Tables 1 and 2; channel counts are scaled by ``width_mult`` and rounded to 8."""

    def __init__(self, input_channels: int, kernel: int, expanded_channels: int, out_channels: int, use_se: bool,
                 activation: str, stride: int, dilation: int, width_mult: float):
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride = stride
        self.dilation = dilation

    @staticmethod
    def adjust_channels(channels: int, width_mult: float) -> int:
        return make_divisible(channels * width_mult, 8)


class InvertedResidual(nn.Module):
    """Expand (1x1, when the width changes), depthwise kxk, optional SE, project (1x1, linear), plus the input
    when the stride is 1 and the channels are kept (section 5 of the paper)."""

    def __init__(self, cnf: InvertedResidualConfig, norm_layer: Callable[..., nn.Module],
                 se_layer: Callable[..., nn.Module] = partial(SqueezeExcitation, scale_activation=nn.Hardsigmoid)):
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError(f"illegal stride value {cnf.stride}: MobileNetV3 blocks have stride 1 or 2")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        activation_layer = nn.Hardswish if cnf.use_hs else nn.ReLU

        layers: List[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, cnf.expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.expanded_channels, kernel_size=cnf.kernel,
                                           stride=1 if cnf.dilation > 1 else cnf.stride, dilation=cnf.dilation,
                                           groups=cnf.expanded_channels, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        if cnf.use_se:
            layers.append(se_layer(cnf.expanded_channels, make_divisible(cnf.expanded_channels // 4, 8)))
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.out_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels
        self._is_cn = cnf.stride > 1

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = result + input
        return result


class MobileNetV3(nn.Module):
    """MobileNetV3 classifier (torchvision's ``MobileNetV3``).

    Args:
        inverted_residual_setting: the blocks (:class:`InvertedResidualConfig` rows).
        last_channel: width of the classifier's hidden layer.
        num_classes: outputs. Default 1000.
        block: the block class. Default :class:`InvertedResidual`.
        norm_layer: default ``BatchNorm2d(eps=0.001, momentum=0.01)``.
        dropout: in the classifier. Default 0.2.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.
    """

    def __init__(self, inverted_residual_setting: List[InvertedResidualConfig], last_channel: int,
                 num_classes: int = 1000, block: Optional[Callable[..., nn.Module]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, dropout: float = 0.2, **kwargs: Any):
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if not (isinstance(inverted_residual_setting, Sequence)
                and all(isinstance(s, InvertedResidualConfig) for s in inverted_residual_setting)):
            raise TypeError("The inverted_residual_setting should be List[InvertedResidualConfig]")
        if block is None:
            block = InvertedResidual
        if norm_layer is None:
            norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)

        first_channels = inverted_residual_setting[0].input_channels
        layers: List[nn.Module] = [Conv2dNormActivation(3, first_channels, kernel_size=3, stride=2,
                                                        norm_layer=norm_layer, activation_layer=nn.Hardswish)]
        layers += [block(cnf, norm_layer) for cnf in inverted_residual_setting]
        lastconv_input_channels = inverted_residual_setting[-1].out_channels
        lastconv_output_channels = 6 * lastconv_input_channels
        layers.append(Conv2dNormActivation(lastconv_input_channels, lastconv_output_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(lastconv_output_channels, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )

        init_conv_fan_out(self, "leaky_relu", linear_std=0.01)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


# (input channels, kernel, expanded channels, output channels, squeeze-excitation, activation, stride);
# C4 and C5 mark the blocks that reduced_tail halves and dilated dilates
_LARGE = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2), (24, 3, 72, 24, False, "RE", 1),
          (24, 5, 72, 40, True, "RE", 2), (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
          (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
          (80, 3, 184, 80, False, "HS", 1), (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1)]
_LARGE_C4 = [(112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1), (160, 5, 960, 160, True, "HS", 1)]
_SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
          (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
          (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1)]
_SMALL_C4 = [(48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1)]
_ARCHS = {"mobilenet_v3_large": (_LARGE, _LARGE_C4, 1280), "mobilenet_v3_small": (_SMALL, _SMALL_C4, 1024)}


def _mobilenet_v3_conf(arch: str, width_mult: float = 1.0, reduced_tail: bool = False, dilated: bool = False,
                       **kwargs: Any) -> Tuple[List[InvertedResidualConfig], int]:
    """The block configs and the classifier width of an architecture (torchvision's ``_mobilenet_v3_conf``).
    ``reduced_tail`` halves the channels of the last stage (C4) and the head (C5); ``dilated`` dilates C4."""
    body, tail, last = _ARCHS[arch]
    div = 2 if reduced_tail else 1
    dilation = 2 if dilated else 1
    setting = [InvertedResidualConfig(*row, 1, width_mult) for row in body]
    for i, (cin, k, exp, cout, se, act, s) in enumerate(tail):
        cin = cin if i == 0 else cin // div     # the first C4 block's input comes from the unreduced C3
        setting.append(InvertedResidualConfig(cin, k, exp // div if i else exp, cout // div, se, act, s, dilation,
                                              width_mult))
    return setting, InvertedResidualConfig.adjust_channels(last // div, width_mult)


def mobilenet_v3_large(*, weights=None, **kwargs) -> MobileNetV3:
    """MobileNetV3-Large (torchvision ``mobilenet_v3_large``), 5,483,032 parameters.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: ``width_mult``, ``reduced_tail``, ``dilated`` and :class:`MobileNetV3`'s arguments.

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = mobilenet_v3_large(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("mobilenet_v3_large", weights)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large", **kwargs)
    return MobileNetV3(setting, last_channel, **kwargs)


def mobilenet_v3_small(*, weights=None, **kwargs) -> MobileNetV3:
    """MobileNetV3-Small (torchvision ``mobilenet_v3_small``), 2,542,856 parameters. Args as
    :func:`mobilenet_v3_large`."""
    reject_weights("mobilenet_v3_small", weights)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_small", **kwargs)
    return MobileNetV3(setting, last_channel, **kwargs)

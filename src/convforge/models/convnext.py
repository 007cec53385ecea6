"""ConvNeXt-Tiny (torchvision's ``convnext_tiny``).

Liu et al., "A ConvNet for the 2020s", CVPR 2022 (https://arxiv.org/abs/2201.03545).

A 4x4/4 "patchify" stem with LayerNorm, four stages of ConvNeXt blocks separated by LayerNorm + 2x2/2 convs, and
a LayerNorm + linear head. A block is a 7x7 depthwise conv, LayerNorm over channels, an inverted MLP (x4, GELU),
a learnable per-channel scale ("layer scale", init 1e-6) and stochastic depth, added to the input.
28,589,128 parameters. Names, defaults and init (truncated normal, std 0.02) are torchvision's.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from .. import nn
from ..nn import functional as F, init
from ._blocks import Conv2dNormActivation, Permute, reject_weights

__all__ = ["ConvNeXt", "CNBlock", "CNBlockConfig", "LayerNorm2d", "convnext_tiny"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` input (normalises each pixel's channel vector)."""

    def forward(self, x):
        x = x.transpose(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.transpose(0, 3, 1, 2)


class CNBlock(nn.Module):
    """``input + stochastic_depth(layer_scale * pwconv2(gelu(pwconv1(norm(dwconv7x7(input))))))``; the MLP
    runs channels-last (``Permute``) so that LayerNorm and Linear act on the channel axis."""

    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        if norm_layer is None:
            norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            norm_layer(dim),
            nn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(np.full((dim, 1, 1), layer_scale, dtype=np.float32))
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        return self.stochastic_depth(result) + input


class CNBlockConfig:
    """One stage (section 3 of the paper): its width, the width after its downsampling layer (None for the last
    stage) and its number of blocks."""

    def __init__(self, input_channels: int, out_channels: Optional[int], num_layers: int):
        self.input_channels = input_channels
        self.out_channels = out_channels
        self.num_layers = num_layers

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_channels={self.input_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers})")


class ConvNeXt(nn.Module):
    """ConvNeXt classifier (torchvision's ``ConvNeXt``).

    Args:
        block_setting: the stages (:class:`CNBlockConfig`).
        stochastic_depth_prob: drop probability of the last block; block ``i`` of ``n`` uses ``p * i / (n - 1)``.
        layer_scale: initial value of every block's per-channel scale. Default 1e-6.
        num_classes: outputs. Default 1000.
        block: the block class. Default :class:`CNBlock`.
        norm_layer: default ``LayerNorm2d(eps=1e-6)``.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``; the features are ``H/32 x W/32``.
    """

    def __init__(self, block_setting: List[CNBlockConfig], stochastic_depth_prob: float = 0.0,
                 layer_scale: float = 1e-6, num_classes: int = 1000, block: Optional[Callable[..., nn.Module]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, **kwargs: Any):
        super().__init__()
        if not block_setting:
            raise ValueError("The block_setting should not be empty")
        if not (isinstance(block_setting, Sequence) and all(isinstance(s, CNBlockConfig) for s in block_setting)):
            raise TypeError("The block_setting should be List[CNBlockConfig]")
        if block is None:
            block = CNBlock
        if norm_layer is None:
            norm_layer = partial(LayerNorm2d, eps=1e-6)

        layers: List[nn.Module] = [Conv2dNormActivation(3, block_setting[0].input_channels, kernel_size=4, stride=4,
                                                        padding=0, norm_layer=norm_layer, activation_layer=None,
                                                        bias=True)]
        total_stage_blocks = sum(cnf.num_layers for cnf in block_setting)
        stage_block_id = 0
        for cnf in block_setting:
            stage: List[nn.Module] = []
            for _ in range(cnf.num_layers):
                sd_prob = stochastic_depth_prob * stage_block_id / (total_stage_blocks - 1.0)
                stage.append(block(cnf.input_channels, layer_scale, sd_prob))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
            if cnf.out_channels is not None:  # downsampling between stages
                layers.append(nn.Sequential(norm_layer(cnf.input_channels),
                                            nn.Conv2d(cnf.input_channels, cnf.out_channels, kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last = block_setting[-1]
        lastconv_output_channels = last.out_channels if last.out_channels is not None else last.input_channels
        self.classifier = nn.Sequential(norm_layer(lastconv_output_channels), nn.Flatten(1),
                                        nn.Linear(lastconv_output_channels, num_classes))

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def convnext_tiny(*, weights=None, **kwargs) -> ConvNeXt:
    """ConvNeXt-Tiny (torchvision ``convnext_tiny``): stages 96-192-384-768 with 3-3-9-3 blocks, stochastic depth
    0.1 by default, 28,589,128 parameters.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`ConvNeXt` (``num_classes``, ``stochastic_depth_prob``, ``layer_scale``, ...).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = convnext_tiny(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("convnext_tiny", weights)
    block_setting = [CNBlockConfig(96, 192, 3), CNBlockConfig(192, 384, 3), CNBlockConfig(384, 768, 9),
                     CNBlockConfig(768, None, 3)]
    return ConvNeXt(block_setting, stochastic_depth_prob=kwargs.pop("stochastic_depth_prob", 0.1), **kwargs)

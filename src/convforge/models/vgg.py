"""VGG-16 (torchvision's ``vgg16``).

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015
(https://arxiv.org/abs/1409.1556).

Thirteen 3x3 convolutions with ReLU in five stages separated by 2x2 max-pools, an adaptive average pool to 7x7,
and three fully connected layers with dropout. 138,357,544 parameters, most of them in the first classifier layer
(25088 x 4096). Module names, defaults and initialisation are torchvision's.
"""
from __future__ import annotations

from typing import Dict, List, Union

from .. import nn
from ._blocks import init_conv_fan_out, reject_weights

__all__ = ["VGG", "make_layers", "cfgs", "vgg16"]

# layer plans: an int is a 3x3 conv with that many output channels, "M" a 2x2 max-pool
cfgs: Dict[str, List[Union[str, int]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: List[Union[str, int]], batch_norm: bool = False) -> nn.Sequential:
    """The convolutional trunk for a plan from :data:`cfgs` (optionally with a BatchNorm after each conv)."""
    layers: List[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG classifier over a convolutional trunk (torchvision's ``VGG``).

    Args:
        features: the trunk (see :func:`make_layers`), ending with 512 channels.
        num_classes: outputs of the classifier. Default 1000.
        init_weights: torchvision's init (convs kaiming-normal fan-out, linears N(0, 0.01), biases 0).
        dropout: dropout probability in the classifier. Default 0.5.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            init_conv_fan_out(self, "relu", linear_std=0.01)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


def vgg16(*, weights=None, **kwargs) -> VGG:
    """VGG-16 (configuration "D", torchvision ``vgg16``), 138,357,544 parameters.

    Args:
        weights: must be None (convforge downloads nothing; load a state dict instead).
        **kwargs: passed to :class:`VGG` (``num_classes``, ``init_weights``, ``dropout``).

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> model = vgg16(num_classes=10).eval()
        >>> model(np.zeros((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    reject_weights("vgg16", weights)
    return VGG(make_layers(cfgs["D"], batch_norm=False), **kwargs)

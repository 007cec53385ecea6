"""Layers (stateful modules), as in ``torch.nn``."""
from . import functional, grad
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .module import Module
from .parameter import Parameter
from . import utils
from . import init
from .activation import GELU, Hardsigmoid, Hardswish, LeakyReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .container import Sequential
from .containers_more import Identity, ModuleDict, ModuleList
from .dropout import Dropout, StochasticDepth
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .normalization import LayerNorm
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d, AvgPool1d, AvgPool2d,
                      AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d)
from .upsample import Upsample

__all__ = ["functional", "Module", "Parameter", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
           "ConvTranspose2d", "ConvTranspose3d"]
__all__ += ["utils", "Sequential", "ReLU", "LeakyReLU", "SiLU", "Hardswish", "Sigmoid", "BatchNorm1d", "BatchNorm2d",
            "BatchNorm3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
            "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Flatten", "Linear", "Dropout", "Upsample",
            "MSELoss", "CrossEntropyLoss"]
__all__ += ["init", "Identity", "ModuleList", "ModuleDict", "ReLU6", "GELU", "Hardsigmoid", "Softmax", "LayerNorm",
            "AdaptiveMaxPool2d", "StochasticDepth"]

"""Layers (stateful modules), as in ``torch.nn``."""
from . import functional, grad
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .module import Module
from .parameter import Parameter
from . import utils
from .activation import Hardswish, LeakyReLU, ReLU, Sigmoid, SiLU
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .container import Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      MaxPool1d, MaxPool2d, MaxPool3d)
from .upsample import Upsample

__all__ = ["functional", "Module", "Parameter", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
           "ConvTranspose2d", "ConvTranspose3d"]
__all__ += ["utils", "Sequential", "ReLU", "LeakyReLU", "SiLU", "Hardswish", "Sigmoid", "BatchNorm1d", "BatchNorm2d",
            "BatchNorm3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
            "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Flatten", "Linear", "Dropout", "Upsample",
            "MSELoss", "CrossEntropyLoss"]

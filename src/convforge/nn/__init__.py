"""Layers (stateful modules), as in ``torch.nn``."""
from . import functional, grad
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .module import Module
from .parameter import Parameter

__all__ = ["functional", "Module", "Parameter", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
           "ConvTranspose2d", "ConvTranspose3d"]

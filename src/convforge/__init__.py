"""convforge: PyTorch's convolution layer family on NumPy, exact, complete, fast and self-explaining.

>>> import numpy as np, convforge
>>> import convforge.nn as nn
>>> convforge.manual_seed(0)
>>> nn.Conv2d(8, 14, (3, 2), (2, 1))(np.zeros((5, 8, 10, 5), np.float32)).shape
(5, 14, 4, 4)
"""
from . import shapes
from ._config import config
from ._grad_mode import enable_grad, is_grad_enabled, no_grad
from ._random import manual_seed
from .autograd import Tensor, cat, stack, tensor
from . import nn
from . import optim
from .summary import summary
from .explain import explain
from .io import UnsafeCheckpointError, load, save

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("tf", "onnx", "convert", "draw", "models")   # loaded on first use (tf/onnx never import TF or onnx)


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["nn", "optim", "shapes", "config", "manual_seed", "no_grad", "enable_grad", "is_grad_enabled",
           "__version__"]
__all__ += ["summary", "explain", "Tensor", "tensor", "cat", "stack"]
__all__ += ["load", "save", "UnsafeCheckpointError"]

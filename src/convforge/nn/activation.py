"""Element-wise activations and softmax, as in ``torch.nn``: ``ReLU``, ``ReLU6``, ``LeakyReLU``, ``SiLU``,
``GELU``, ``Hardswish``, ``Hardsigmoid``, ``Sigmoid``, ``Softmax``.

Each module calls its ``convforge.nn.functional`` op (an autograd Function with an exact backward, PyTorch's
conventions at the kinks; see ``convforge.nn._ops.activation``).
"""
from __future__ import annotations

from .module import Module
from ._ops import activation as ops

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "SiLU", "GELU", "Hardswish", "Hardsigmoid", "Sigmoid", "Softmax"]


class _Inplace(Module):
    """An activation with PyTorch's ``inplace`` flag (write the result into the input array)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """``max(x, 0)``, as ``torch.nn.ReLU``.

    Args:
        inplace: overwrite the input array with the result.

    Shape:
        any shape -> the same shape.

    Example:
        >>> import numpy as np
        >>> ReLU()(np.array([-1.0, 0.0, 2.0])).tolist()
        [0.0, 0.0, 2.0]
    """

    def forward(self, input):
        return ops.relu(input, self.inplace)


class ReLU6(_Inplace):
    """``min(max(x, 0), 6)``, as ``torch.nn.ReLU6`` (MobileNet's activation).

    Example:
        >>> import numpy as np
        >>> ReLU6()(np.array([-1.0, 3.0, 7.0])).tolist()
        [0.0, 3.0, 6.0]
    """

    def forward(self, input):
        return ops.relu6(input, self.inplace)


class LeakyReLU(_Inplace):
    """``x`` for ``x > 0`` else ``negative_slope * x``, as ``torch.nn.LeakyReLU``.

    Args:
        negative_slope: slope for negative inputs (default 0.01).
        inplace: overwrite the input array with the result.

    Example:
        >>> import numpy as np
        >>> LeakyReLU(0.1)(np.array([-2.0, 3.0])).tolist()
        [-0.2, 3.0]
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, input):
        return ops.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(_Inplace):
    """``x * sigmoid(x)`` (swish), as ``torch.nn.SiLU``.

    Example:
        >>> import numpy as np
        >>> round(float(SiLU()(np.array([1.0]))[0]), 6)
        0.731059
    """

    def forward(self, input):
        return ops.silu(input, self.inplace)


class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``, as ``torch.nn.Hardswish``.

    Example:
        >>> import numpy as np
        >>> Hardswish()(np.array([-4.0, 0.0, 1.0, 4.0])).tolist()
        [-0.0, 0.0, 0.6666666666666666, 4.0]
    """

    def forward(self, input):
        return ops.hardswish(input, self.inplace)

    def extra_repr(self) -> str:
        return ""                    # PyTorch's Hardswish shows no arguments, even with inplace=True


class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``, as ``torch.nn.Hardsigmoid`` (MobileNetV3's squeeze-excitation gate).

    Example:
        >>> import numpy as np
        >>> Hardsigmoid()(np.array([-4.0, 0.0, 1.5])).tolist()
        [0.0, 0.5, 0.75]
    """

    def forward(self, input):
        return ops.hardsigmoid(input, self.inplace)

    def extra_repr(self) -> str:
        return ""                    # PyTorch's Hardsigmoid shows no arguments, even with inplace=True


class GELU(Module):
    """``x * Phi(x)``, as ``torch.nn.GELU`` (ConvNeXt's activation).

    Args:
        approximate: ``'none'`` (exact, through erf) or ``'tanh'``.

    Example:
        >>> import numpy as np
        >>> GELU()
        GELU(approximate='none')
        >>> GELU()(np.array([0.0, 1.0])).round(6).tolist()
        [0.0, 0.841345]
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return ops.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``.

    Example:
        >>> import numpy as np
        >>> Sigmoid()(np.array([0.0])).tolist()
        [0.5]
    """

    def forward(self, input):
        return ops.sigmoid(input)


class Softmax(Module):
    """Softmax along ``dim``, as ``torch.nn.Softmax``.

    Args:
        dim: the axis whose entries sum to 1 (None: PyTorch's deprecated implicit choice).

    Example:
        >>> import numpy as np
        >>> Softmax(dim=1)
        Softmax(dim=1)
        >>> Softmax(dim=-1)(np.zeros((1, 4))).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return ops.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

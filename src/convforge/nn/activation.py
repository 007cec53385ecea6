"""Element-wise activations, as in ``torch.nn``: ``ReLU``, ``LeakyReLU``, ``SiLU``, ``Hardswish``, ``Sigmoid``.

Each keeps what its derivative needs (the input or the output) during a forward pass with gradients enabled, and
``backward(grad_output)`` multiplies by that derivative, using PyTorch's conventions at the kinks (ReLU'(0) = 0,
Hardswish'(-3) = 0, Hardswish'(3) = 1).
"""
from __future__ import annotations

import numpy as np

from .._grad_mode import is_grad_enabled
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "SiLU", "Hardswish", "Sigmoid"]


def _as_float(x, op):
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        raise TypeError(f"{op} expects a floating-point input, got dtype {x.dtype}; use x.astype(np.float32)")
    return x


def _sigmoid(x):
    # 1 / (1 + exp(-x)) without overflow warnings for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class _Elementwise(Module):
    """Shared plumbing: remember a tensor for backward only when gradients are enabled."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)
        self._saved = None

    def _save(self, value):
        self._saved = value if is_grad_enabled() else None

    def _take_saved(self):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called without a forward pass with gradients "
                               f"enabled (forward under convforge.no_grad() keeps nothing for backward)")
        return self._saved

    def _write(self, x, y):
        """Return ``y``; with ``inplace=True`` write it into ``x`` (like PyTorch) and return ``x``."""
        if self.inplace and isinstance(x, np.ndarray) and x.flags.writeable:
            x[...] = y
            return x
        return y

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Elementwise):
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
        x = _as_float(input, "ReLU")
        y = self._write(x, np.maximum(x, 0))
        self._save(y > 0)
        return y

    def backward(self, grad_output):
        return np.where(self._take_saved(), grad_output, 0).astype(np.result_type(grad_output), copy=False)


class LeakyReLU(_Elementwise):
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
        x = _as_float(input, "LeakyReLU")
        positive = x > 0
        self._save(positive)
        return self._write(x, np.where(positive, x, x * self.negative_slope).astype(x.dtype, copy=False))

    def backward(self, grad_output):
        g = np.asarray(grad_output)
        return np.where(self._take_saved(), g, g * self.negative_slope).astype(g.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(_Elementwise):
    """``x * sigmoid(x)`` (swish), as ``torch.nn.SiLU``.

    Example:
        >>> import numpy as np
        >>> round(float(SiLU()(np.array([1.0]))[0]), 6)
        0.731059
    """

    def forward(self, input):
        x = _as_float(input, "SiLU")
        self._save(np.array(x, copy=True) if self.inplace else x)
        return self._write(x, x * _sigmoid(x))

    def backward(self, grad_output):
        x = self._take_saved()
        s = _sigmoid(x)
        # d/dx x*s(x) = s * (1 + x * (1 - s))
        return grad_output * (s * (1 + x * (1 - s)))


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``, as ``torch.nn.Hardswish``.

    Example:
        >>> import numpy as np
        >>> Hardswish()(np.array([-4.0, 0.0, 1.0, 4.0])).tolist()
        [-0.0, 0.0, 0.6666666666666666, 4.0]
    """

    def forward(self, input):
        x = _as_float(input, "Hardswish")
        self._save(np.array(x, copy=True) if self.inplace else x)
        return self._write(x, x * np.clip(x + 3, 0, 6) / 6)

    def backward(self, grad_output):
        x = self._take_saved()
        # PyTorch: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 from 3 on
        slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return grad_output * slope


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``.

    Example:
        >>> import numpy as np
        >>> Sigmoid()(np.array([0.0])).tolist()
        [0.5]
    """

    def __init__(self):
        super().__init__(False)

    def forward(self, input):
        x = _as_float(input, "Sigmoid")
        y = _sigmoid(x).astype(x.dtype, copy=False)
        self._save(y)
        return y

    def backward(self, grad_output):
        y = self._take_saved()
        return grad_output * (1 - y) * y

"""``Dropout``: zero random elements in training, as ``torch.nn.Dropout`` (seeded by ``convforge.manual_seed``)."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _random
from .._grad_mode import is_grad_enabled
from .module import Module

__all__ = ["Dropout"]

_IDENTITY = object()   # marker: the last forward was the identity


class Dropout(Module):
    """During training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (inverted dropout, so evaluation is the identity).

    The mask is drawn from convforge's generator (:func:`convforge.manual_seed` makes it reproducible); it is not
    the same random stream as PyTorch's.

    Args:
        p: probability of an element being zeroed (default 0.5).
        inplace: write the result into the input array.

    Shape:
        any shape -> the same shape.

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> d = Dropout(0.5)
        >>> y = d(np.ones(1000))
        >>> sorted(set(y.tolist())), d.eval()(np.ones(3)).tolist()
        ([0.0, 2.0], [1.0, 1.0, 1.0])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = float(p), bool(inplace)
        self._mask = None

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input):
        x = np.asarray(input)
        if not self.training or self.p == 0:
            self._mask = _IDENTITY if is_grad_enabled() else None
            return x
        if self.p == 1:
            scaled_mask = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = _random.generator().random(x.shape) >= self.p
            scaled_mask = keep.astype(x.dtype) * np.asarray(1 / (1 - self.p), dtype=x.dtype)
        self._mask = scaled_mask if is_grad_enabled() else None
        if self.inplace and x.flags.writeable:
            x *= scaled_mask
            return x
        return x * scaled_mask

    def backward(self, grad_output):
        if self._mask is None:
            raise RuntimeError("Dropout.backward() called without a forward pass with gradients enabled")
        if self._mask is _IDENTITY:
            return np.asarray(grad_output)          # eval mode or p == 0
        return grad_output * self._mask

"""``Parameter``: a tensor that a module owns and learns (``requires_grad=True`` by default)."""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor


def native_byte_order(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a copy in the machine's byte order when it is byte-swapped (``'>f4'`` on x86)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


class Parameter(Tensor):
    """A learnable tensor. It *is* an ``np.ndarray`` (shape, dtype, indexing, ``np.asarray``) and a
    :class:`convforge.Tensor`: operations on it are recorded and ``loss.backward()`` accumulates ``.grad``.

    The values are copied in, in the machine's byte order (a ``'>f4'`` array gives a float32 parameter).

    >>> import numpy as np
    >>> p = Parameter(np.zeros((2, 3)))
    >>> p.shape, p.grad is None, p.requires_grad, type(p + 1).__name__
    ((2, 3), True, True, 'Tensor')
    """

    def __new__(cls, data=None, requires_grad: bool = True):
        values = np.zeros(0, np.float32) if data is None else np.asarray(data).view(np.ndarray)
        obj = native_byte_order(np.array(values, copy=True)).view(cls)
        obj.requires_grad_(bool(requires_grad))
        return obj

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def accumulate_grad(self, g) -> None:
        """Add ``g`` to ``.grad`` (creating it on first use); for modules that still hand-write a backward."""
        g = np.array(g, dtype=self.dtype, copy=None).reshape(self.shape)
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

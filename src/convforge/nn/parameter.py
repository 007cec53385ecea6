"""``Parameter``: a NumPy array that a module owns and learns, with room for its gradient."""
from __future__ import annotations

import numpy as np


class Parameter(np.ndarray):
    """A learnable array. It *is* an ``np.ndarray`` (shape, dtype, indexing, in-place assignment, ``np.asarray``)
    with two extra attributes: ``grad`` (None until a backward pass accumulates into it) and ``requires_grad``.

    Results of arithmetic on a Parameter are plain ndarrays.

    >>> import numpy as np
    >>> p = Parameter(np.zeros((2, 3)))
    >>> p.shape, p.grad is None, type(p + 1).__name__
    ((2, 3), True, 'ndarray')
    """

    def __new__(cls, data, requires_grad: bool = True):
        arr = np.array(data, copy=True)
        obj = arr.view(cls)
        obj.grad = None
        obj.requires_grad = bool(requires_grad)
        return obj

    def __array_finalize__(self, obj):
        self.grad = None
        self.requires_grad = getattr(obj, "requires_grad", True)

    def __array_wrap__(self, out, context=None, return_scalar=False):
        # ufunc results (p + 1, p * q) are plain arrays, not new parameters
        if return_scalar:
            return out[()]
        return np.asarray(out)

    def __reduce__(self):
        fn, args, state = super().__reduce__()
        return fn, args, (state, self.requires_grad)

    def __setstate__(self, state):
        nd_state, self.requires_grad = state
        super().__setstate__(nd_state)
        self.grad = None

    def __repr__(self):
        return "Parameter containing:\n" + repr(np.asarray(self))

    def accumulate_grad(self, g) -> None:
        """Add ``g`` to ``.grad`` (creating it on first use)."""
        g = np.asarray(g, dtype=self.dtype).reshape(self.shape)
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    @property
    def data(self) -> np.ndarray:
        """The values as a plain ndarray view (writing into it changes the parameter)."""
        return self.view(np.ndarray)

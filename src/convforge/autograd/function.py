"""``Function``: one differentiable operation, written exactly as ``torch.autograd.Function``.

An op author writes ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` on plain ``np.ndarray`` values
(the tracked inputs arrive unwrapped, without a copy) and never sees :class:`Tensor`.  ``Fn.apply(*args)`` runs
``forward`` with recording switched off and, when gradients are enabled and some input requires one, wraps the
outputs as tensors whose ``grad_fn`` is a graph node holding ``ctx``.

Example:
    >>> import numpy as np, convforge
    >>> class Square(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> t = convforge.tensor(np.array([1.0, 3.0]), requires_grad=True)
    >>> y = Square.apply(t)
    >>> y.sum().backward()
    >>> t.grad.tolist(), type(y).__name__, y.grad_fn.name()
    ([2.0, 6.0], 'Tensor', 'SquareBackward')
"""
from __future__ import annotations

import numpy as np

from .. import _backend, _grad_mode
from .graph import FREED_MESSAGE, Node
from .tensor import Tensor



class FunctionCtx:
    """What ``forward`` leaves for ``backward``: saved arrays, flags, and any attribute the author sets."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._freed = False
        self._non_differentiable = ()

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or None) for ``backward``; they are released once backward has consumed them."""
        self._saved = tuple(None if a is None else _raw(a) for a in arrays)

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        return self._saved

    def mark_non_differentiable(self, *outputs) -> None:
        """Outputs (e.g. pooling indices) that never carry a gradient."""
        self._non_differentiable = tuple(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """With ``False``, ``backward`` receives None (not zeros) for outputs that got no gradient."""
        self._materialize = bool(value)

    def release(self) -> None:
        """Drop the saved arrays and every attribute the author set (the graph was consumed)."""
        keep = {"needs_input_grad": self.needs_input_grad, "_non_differentiable": ()}
        self.__dict__.clear()
        self.__dict__.update(keep, _saved=(), _freed=True)


def _raw(a):
    """The plain ndarray behind a tensor (a view, no copy); anything else unchanged."""
    return np.ndarray.view(a, np.ndarray) if isinstance(a, Tensor) else a


class Function:
    """Base class of differentiable operations (``torch.autograd.Function``'s API).

    Subclasses define the static methods ``forward(ctx, *args, **kwargs)`` (plain arrays in, an array or a tuple
    of arrays out) and ``backward(ctx, *grad_outputs)`` (one gradient per output in, one gradient or None per
    positional input of ``forward`` out).  Call ``Fn.apply(*args, **kwargs)``; keyword arguments never carry
    gradients.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args, **kwargs):
        backend = _backend.backend_for(args)    # None: NumPy (the seam; e.g. Dask arrays run on convforge.dask)
        if backend is not None:
            return backend.apply(cls, args, kwargs)
        any_tensor = False
        needs = []
        for a in args:
            if isinstance(a, Tensor):
                any_tensor = True
                needs.append(a.requires_grad)
            else:
                needs.append(False)
        record = any_tensor and _grad_mode.is_grad_enabled() and any(needs)
        ctx = FunctionCtx(tuple(needs))
        raw_args = [_raw(a) for a in args] if any_tensor else args
        with _grad_mode.no_grad():
            out = cls.forward(ctx, *raw_args, **kwargs)
        if not any_tensor:
            return out
        if not record:
            return _wrap_plain(out)
        return _recorded(Node(cls, ctx, args), out)


def _as_tensor(o):
    if isinstance(o, np.generic):
        o = np.asarray(o)
    return np.ndarray.view(o, Tensor) if isinstance(o, np.ndarray) else o


def _wrap_plain(out):
    """Outputs of an op on tensors that records nothing are tensors too (as torch's are), never copies."""
    if isinstance(out, tuple):
        return tuple(_as_tensor(o) for o in out)
    return _as_tensor(out)


def _recorded(node, out):
    """Wrap forward's outputs as tensors whose ``grad_fn`` is ``node``; integer and marked outputs carry none."""
    outs = out if isinstance(out, tuple) else (out,)
    skip = node.ctx._non_differentiable
    wrapped, meta = [], []
    for i, o in enumerate(outs):
        differentiable = id(o) not in skip
        t = _as_tensor(o)
        if isinstance(t, Tensor):
            meta.append((t.shape, t.dtype))
            if differentiable and t.dtype.kind in "fc":
                t.grad_fn = node
                t._output_nr = i
                t.requires_grad = True
        else:
            meta.append(None)
        wrapped.append(t)
    node.out_meta = tuple(meta)
    return tuple(wrapped) if isinstance(out, tuple) else wrapped[0]

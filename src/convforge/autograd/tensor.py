"""``Tensor``: an ``np.ndarray`` that can carry a gradient, as ``torch.Tensor`` does.

A tensor *is* an ndarray (shape, dtype, indexing, ``np.asarray`` gives it back without a copy) with four extra
attributes: ``requires_grad``, ``grad`` (a plain ndarray, None until a backward pass reaches it), ``grad_fn``
(the graph node that produced it, None for leaves) and ``is_leaf``.  Arithmetic, NumPy ufuncs, the methods and the
NumPy functions listed in ``convforge.autograd.ops`` are recorded when gradients are enabled; any other operation
that would need a gradient raises a ``RuntimeError`` naming it, so a gradient is never silently wrong.

Example:
    >>> import numpy as np, convforge
    >>> x = convforge.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.tolist(), y.item()
    ([2.0, 4.0, 6.0], 14.0)
"""
from __future__ import annotations

import sys

import numpy as np

from .. import _grad_mode
from .graph import run_backward, unrecorded_node

# Filled by convforge.autograd.ops: how each ufunc / NumPy function / method is recorded.
UFUNC_RULES: dict = {}          # (ufunc, method) -> callable(*inputs, **kwargs) recording the op
FUNCTION_RULES: dict = {}       # numpy function -> callable with the same signature
UNTRACKED_UFUNCS: set = set()   # ufuncs whose outputs never carry a gradient (comparisons, sign, floor, ...)
UNTRACKED_FUNCTIONS: set = set()   # numpy functions whose results do not depend differentiably on the values


class Tensor(np.ndarray):
    """An ndarray that records the operations applied to it when ``requires_grad`` (see the module docstring)."""

    requires_grad = False
    grad = None
    grad_fn = None
    _output_nr = 0

    def __array_finalize__(self, obj):
        # An array NumPy derived by itself (an ndarray method autograd does not know) from a tensor that requires
        # grad gets a node that refuses a gradient, naming where it was made: never a silently dropped path.
        if getattr(obj, "requires_grad", False) and _grad_mode.is_grad_enabled():
            caller = sys._getframe(1)
            self.grad_fn = unrecorded_node(f"made at {caller.f_code.co_filename}:{caller.f_lineno}")
            self.requires_grad = True

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError("only tensors created explicitly by the user (graph leaves) support the deepcopy "
                               "protocol; detach() first")
        out = np.array(np.ndarray.view(self, np.ndarray), copy=True).view(type(self))
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "grad"})
        out.grad = None if self.grad is None else self.grad.copy()
        memo[id(self)] = out
        return out

    def __copy__(self):
        return self.__deepcopy__({})

    # -- autograd attributes ------------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; use detach() to get a "
                               "tensor that does not require grad")
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(f"only tensors of floating point dtype can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """The same values (shared memory) outside the graph."""
        return np.ndarray.view(np.ndarray.view(self, np.ndarray), Tensor)

    def numpy(self) -> np.ndarray:
        """The values as a plain ndarray (shared memory); as torch, refused while the tensor requires grad."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                               "instead.")
        return np.ndarray.view(self, np.ndarray)

    @property
    def data(self) -> np.ndarray:
        """The values as a plain ndarray view (writing into it changes the tensor, recording nothing)."""
        return np.ndarray.view(self, np.ndarray)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on.

        Args:
            gradient: d(something)/d(self), same shape as self; may be omitted for a one-element tensor (then 1).
            retain_graph: keep the saved values so that backward may run through the graph again.
        """
        if create_graph:
            raise NotImplementedError("create_graph=True (higher-order gradients) is not supported")
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this tensor has "
                                   f"shape {self.shape}: pass gradient= of that shape")
            gradient = np.ones(self.shape, self.dtype.newbyteorder("="))
        else:
            gradient = np.asarray(gradient)
            if gradient.shape != self.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {gradient.shape} and "
                                   f"output[0] has a shape of {self.shape}.")
        run_backward((self,), (np.ndarray.view(gradient, np.ndarray),), bool(retain_graph))

    def item(self, *args):
        return np.ndarray.item(self, *args)

    def dim(self) -> int:
        return self.ndim

    def __repr__(self):
        body = np.array2string(np.ndarray.view(self, np.ndarray), separator=", ", prefix="tensor(")
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn=<{self.grad_fn.name()}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        return f"tensor({body}{extra})"

    __str__ = __repr__

    def __reduce__(self):
        fn, args, state = super().__reduce__()
        return fn, args, (state, self.requires_grad)

    def __setstate__(self, state):
        nd_state, requires_grad = state
        super().__setstate__(nd_state)
        self.requires_grad = requires_grad

    # -- NumPy protocols ----------------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        tracked = _needs_recording(inputs)
        if out is not None and (tracked or _any_non_leaf(out)):
            raise RuntimeError(f"in-place / out= use of np.{ufunc.__name__} with a tensor that requires grad is not "
                               f"recorded by autograd; write the out-of-place form (or use convforge.no_grad())")
        if tracked:
            if ufunc not in UNTRACKED_UFUNCS:
                rule = UFUNC_RULES.get((ufunc, method))
                if rule is None:
                    name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
                    result = getattr(ufunc, method)(*[_plain(a) for a in inputs], **kwargs)
                    return unrecorded_result(result, f"np.{name}")
                return rule(*inputs, **kwargs)
        raw_inputs = [_plain(a) for a in inputs]
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*raw_inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _as_plain_tensor(result)

    def __array_function__(self, func, types, args, kwargs):
        rule = FUNCTION_RULES.get(func)
        if rule is not None:
            return rule(*args, **kwargs)
        result = func._implementation(*_plain_tree(args), **_plain_tree(kwargs)) \
            if hasattr(func, "_implementation") else super().__array_function__(func, types, args, kwargs)
        if func not in UNTRACKED_FUNCTIONS and _grad_mode.is_grad_enabled() and _any_requires_grad(args, kwargs):
            return unrecorded_result(result, f"np.{func.__name__}")
        return _as_plain_tensor(result)


def unrecorded_result(result, name: str):
    """The result of an operation autograd does not record, computed on the plain values.  Floating results keep
    ``requires_grad`` with a node that raises, naming ``name``, if a backward pass ever reaches it: inference code
    may use any NumPy operation, and a gradient through one that is not recorded is an error, never wrong."""
    if isinstance(result, tuple):
        return tuple(unrecorded_result(r, name) for r in result)
    if isinstance(result, np.generic):   # a scalar would carry no node: its gradient would silently be lost
        result = np.asarray(result)
    result = _as_plain_tensor(result)
    if isinstance(result, Tensor) and result.dtype.kind in "fc":
        result.grad_fn = unrecorded_node(name)
        result.requires_grad = True
    return result


def _plain(a):
    return np.ndarray.view(a, np.ndarray) if isinstance(a, Tensor) else a


def _plain_tree(obj):
    if isinstance(obj, Tensor):
        return np.ndarray.view(obj, np.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_tree(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain_tree(v) for k, v in obj.items()}
    return obj


def _as_plain_tensor(result):
    if isinstance(result, np.ndarray) and not isinstance(result, Tensor):
        return np.ndarray.view(result, Tensor)
    if isinstance(result, tuple):
        return tuple(_as_plain_tensor(r) for r in result)
    return result


def _needs_recording(arrays) -> bool:
    if not _grad_mode.is_grad_enabled():
        return False
    for a in arrays:
        if isinstance(a, Tensor) and a.requires_grad:
            return True
    return False


def _any_non_leaf(arrays) -> bool:
    """Writing into a recorded result would change what its graph saw; writing into a leaf is allowed (as under
    torch.no_grad(): parameter initialisation and optimiser steps)."""
    return _grad_mode.is_grad_enabled() and any(isinstance(a, Tensor) and a.grad_fn is not None for a in arrays)


def _any_requires_grad(args, kwargs) -> bool:
    stack = list(args) + list(kwargs.values())
    while stack:
        a = stack.pop()
        if isinstance(a, Tensor):
            if a.requires_grad:
                return True
        elif isinstance(a, (list, tuple)):
            stack.extend(a)
    return False


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (as ``torch.tensor``).

    Args:
        data: array-like values.
        dtype: NumPy dtype; default keeps the data's (Python floats give float64).
        requires_grad: record operations on it and accumulate its gradient in ``.grad``.

    >>> import convforge
    >>> convforge.tensor([[1.0, 2.0]], requires_grad=True)
    tensor([[1., 2.]], requires_grad=True)
    """
    arr = np.array(_plain_tree(data), dtype=dtype, copy=True)
    out = arr.view(Tensor)
    if requires_grad:
        out.requires_grad_(True)
    return out

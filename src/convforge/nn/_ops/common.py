"""Argument checks shared by the functional ops."""
from __future__ import annotations

import numpy as np

from ... import _api, _backend
from ...autograd import Tensor

__all__ = ["array_arg", "float_input", "batched", "check_output_size", "checked_inplace", "inplace_target", "reduction_name",
           "apply_along_spatial"]


def float_input(x, op: str) -> np.ndarray:
    """``x`` as an array (an ndarray, or a subclass such as a tracked tensor, is kept as it is), which must be
    floating point."""
    x = array_arg(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating-point input, got dtype {x.dtype}; use x.astype(np.float32)")
    return x


def array_arg(value):
    """``value`` itself when it is an ndarray (subclasses such as Parameter keep their identity: autograd needs
    it) or an array of another backend (a Dask array stays lazy), else ``np.asarray(value)``."""
    return value if isinstance(value, np.ndarray) or _backend.backend_for((value,)) else np.asarray(value)


def batched(x, n_spatial: int, op: str):
    """``(C, *S)`` or ``(N, C, *S)`` -> ``(N, C, *S)`` and whether a batch axis was added (the conv rule)."""
    return _api._batch(array_arg(x), n_spatial, op)


def checked_inplace(x, inplace: bool, op: str) -> bool:
    """``inplace`` as a bool; in-place on a leaf tensor that requires grad is refused, as PyTorch refuses it (the
    values the gradient is taken at would be overwritten)."""
    if inplace and isinstance(x, Tensor) and x.requires_grad and x.is_leaf:
        raise RuntimeError(f"{op}(inplace=True): a leaf tensor that requires grad is being used in an in-place "
                           f"operation; use inplace=False (or apply it to the result of another operation)")
    return bool(inplace)


def inplace_target(x, inplace: bool):
    """The array to write an in-place result into (``x`` itself when allowed), or None for a new array."""
    return x if inplace and isinstance(x, np.ndarray) and x.flags.writeable else None


_MAX_OUTPUT_BYTES = 1 << 40


def check_output_size(shape, dtype, op: str) -> None:
    """Refuse an output no machine can hold (sizes from a typo such as ``scale_factor=1e9``) with a clear error
    instead of a MemoryError deep inside NumPy."""
    elements = 1
    for v in shape:
        elements *= int(v)
    if elements * np.dtype(dtype).itemsize > _MAX_OUTPUT_BYTES:
        raise ValueError(f"{op}: the output would have shape {tuple(int(v) for v in shape)} "
                         f"({elements * np.dtype(dtype).itemsize / 2 ** 40:.3g} TiB); check the requested size")


_REDUCTIONS = ("mean", "sum", "none")


def reduction_name(size_average, reduce, reduction: str, op: str) -> str:
    """torch's legacy ``size_average``/``reduce`` flags folded into ``reduction``, which is checked."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def apply_along_spatial(x, mats):
    """``x (N, C, *S)``: one ``(o, i)`` matrix per spatial dim applied along that dim (``(..., i) @ (i, o)``)."""
    for dim, a in enumerate(mats):
        axis = 2 + dim
        if a.shape[0] == 1:
            x = np.moveaxis(x, axis, -1) @ a[0][:, None]
        else:
            x = np.moveaxis(x, axis, -1) @ a.T
        x = np.moveaxis(x, -1, axis)
    return x

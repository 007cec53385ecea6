"""Tensor storages from checkpoint bytes, and tensors as bounds-checked NumPy views of them.

A storage is the flat buffer a PyTorch tensor points into; several tensors (views, slices, transposes) may share
one.  :func:`view` makes the tensor with ``as_strided`` after checking that every element it reaches lies inside
the storage, so a hostile size/stride can neither read outside the buffer nor allocate more than the file holds.
Tensors that share a storage share memory, as after ``torch.load``.
"""
from __future__ import annotations

import warnings

import numpy as np

TORCH_DTYPES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32", "float16": "float16",
    "half": "float16", "bfloat16": "bfloat16", "complex128": "complex128", "cdouble": "complex128",
    "complex64": "complex64", "cfloat": "complex64", "int64": "int64", "long": "int64", "int32": "int32",
    "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "uint64": "uint64", "bool": "bool",
    # torch dtypes NumPy has no equivalent for: a clear error if a tensor uses one
    "complex32": None, "chalf": None, "float8_e4m3fn": None, "float8_e5m2": None, "float8_e4m3fnuz": None,
    "float8_e5m2fnuz": None, "float8_e8m0fnu": None, "qint8": None, "quint8": None, "qint32": None,
    "quint4x2": None, "quint2x4": None,
}
"""torch dtype name -> NumPy dtype name ("bfloat16" is widened to float32; None: no NumPy equivalent)."""

STORAGE_TYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128", "ComplexFloatStorage": "complex64", "LongStorage": "int64",
    "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
    "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
}
"""torch storage class name -> the torch dtype name of its elements."""

_ITEMSIZE = {"bfloat16": 2, "qint8": 1, "quint8": 1, "qint32": 4, "complex32": 4, "chalf": 4}


def itemsize(dtype_name):
    """Bytes per element of a torch dtype name (also for dtypes NumPy lacks)."""
    if dtype_name in _ITEMSIZE:
        return _ITEMSIZE[dtype_name]
    target = TORCH_DTYPES.get(dtype_name)
    return np.dtype(target).itemsize if target else 1


def _numpy_dtype(dtype_name):
    target = TORCH_DTYPES.get(dtype_name, dtype_name)
    if target is None:
        raise ValueError(f"a tensor has dtype torch.{dtype_name}, which NumPy cannot represent; convert it in "
                         "PyTorch first (e.g. tensor.float()) and save again")
    return target


class Storage:
    """One checkpoint storage: its raw bytes and their byte order; :meth:`elements` decodes them once per dtype.

    Args:
        dtype_name: the torch dtype of the storage's elements (``"uint8"`` for an untyped storage).
        raw: the storage's bytes, already checked to be exactly ``numel * itemsize`` long; None for a storage
            only declared so far (its elements read as zeros without allocating: a dry run over the object).
        byteorder: ``"little"`` or ``"big"``.
        numel: element count of a declared-only storage.
    """

    def __init__(self, dtype_name, raw, byteorder="little", numel=0):
        self.dtype_name = dtype_name
        self.raw = raw
        self.byteorder = byteorder
        self.numel = numel
        self._decoded = {}

    def elements(self, dtype_name):
        """The storage as a writable 1-D native-order array of ``dtype_name`` (bfloat16 widened to float32)."""
        if dtype_name not in self._decoded:
            self._decoded[dtype_name] = self._decode(dtype_name)
        return self._decoded[dtype_name]

    def _decode(self, dtype_name):
        target = _numpy_dtype(dtype_name)
        if self.raw is None:
            count = self.numel * itemsize(self.dtype_name) // itemsize(dtype_name)
            return np.broadcast_to(np.zeros((), "float32" if target == "bfloat16" else target), (count,))
        order = "<" if self.byteorder == "little" else ">"
        source = np.dtype("uint16" if target == "bfloat16" else target).newbyteorder(order)
        usable = len(self.raw) - len(self.raw) % source.itemsize
        flat = np.frombuffer(self.raw, source, count=usable // source.itemsize).astype(source.newbyteorder("="))
        return widen_bfloat16(flat) if target == "bfloat16" else flat


def widen_bfloat16(bits):
    """float32 array equal to the bfloat16 values whose bit patterns are ``bits`` (uint16); warns once per call site.

    Example:
        >>> widen_bfloat16(np.array([0x3F80, 0xC000], np.uint16))
        array([ 1., -2.], dtype=float32)
    """
    warnings.warn("bfloat16 tensors were widened to float32 (exactly: NumPy has no bfloat16)", stacklevel=2)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _overlaps(size, strides):
    """True when two indices of the strided layout reach the same element (e.g. a stride-0 expanded tensor)."""
    dims = sorted((s, n) for n, s in zip(size, strides) if n > 1)
    reach = 1
    for stride, n in dims:
        if stride < reach:
            return True
        reach = stride * n
    return False


def view(storage, dtype_name, offset, size, stride):
    """The tensor ``storage[offset + sum(i_k * stride_k)]`` of shape ``size`` as a NumPy view, bounds-checked.

    Example:
        >>> s = Storage("float32", np.arange(6, dtype="<f4").tobytes())
        >>> view(s, "float32", 0, (3, 2), (1, 3))          # a transpose
        array([[0., 3.],
               [1., 4.],
               [2., 5.]], dtype=float32)
    """
    if len(size) != len(stride):
        raise ValueError(f"a tensor record has size {size} but stride {stride} (lengths differ)")
    if offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise ValueError(f"a tensor record has a negative offset, size or stride: offset {offset}, size {size}, "
                         f"stride {stride}")
    elements = storage.elements(dtype_name)
    if any(n == 0 for n in size):
        return np.empty(size, elements.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(elements):
        raise ValueError(f"a tensor of size {list(size)}, stride {list(stride)} and offset {offset} reaches element "
                         f"{last}, but its storage holds only {len(elements)} {dtype_name} elements")
    step = elements.dtype.itemsize
    out = np.lib.stride_tricks.as_strided(elements[offset:], size, [s * step for s in stride],
                                          writeable=not _overlaps(size, stride))
    return out

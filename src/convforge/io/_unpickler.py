"""A pickle reader that can rebuild tensor checkpoints and nothing else.

Pickle runs code: every ``GLOBAL`` names a callable that the stream then calls.  This reader never imports or
calls what a file names.  ``find_class`` looks the ``(module, name)`` pair up in :data:`ALLOWED`, an exact table
(no dotted lookups, no attribute walks), and returns convforge's *own* stand-in for it: a function that accepts
only the argument types a checkpoint contains (storages, ints, tuples) and returns NumPy arrays.  Anything else
raises :class:`UnsafeCheckpointError` before any call is made, so a file asking for ``os.system``,
``builtins.eval``, ``subprocess.Popen`` or a class outside the table is refused with nothing run.

Storages (``persistent_load``) are handed to the format reader (zip or legacy), which checks each storage's
declared size against the bytes actually present before anything is allocated.
"""
from __future__ import annotations

import collections
import io
import pickle

import numpy as np

from ._errors import unsafe
from ._storage import Storage, TORCH_DTYPES, STORAGE_TYPES, view

_SAFE_NUMPY_KINDS = "biufc"      # bool, int, uint, float, complex: no objects, no structured or void dtypes


class _DtypeName:
    """Stand-in for a ``torch.<dtype>`` global (``_rebuild_tensor_v3`` receives one)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType(_DtypeName):
    """Stand-in for ``torch.FloatStorage`` & co. (only ever passed to ``persistent_load``)."""


class _TensorType:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` as the ``new_type`` of ``_rebuild_from_type_v2``."""


class _NumpyDtype:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` followed by ``BUILD`` (its ``__setstate__``)."""

    def __init__(self, spec, align=False, copy=False):
        if not isinstance(spec, str):
            raise unsafe(f"numpy.dtype({spec!r}) in the pickle is not a plain dtype")
        try:
            dtype = np.dtype(spec)
        except TypeError as e:
            raise unsafe(f"numpy.dtype({spec!r}) in the pickle is not a NumPy dtype") from e
        if dtype.kind not in _SAFE_NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise unsafe(f"numpy.dtype({spec!r}) (kind {dtype.kind!r}) is refused: only bool, int, "
                                        "float and complex data can be read without running code")
        self.dtype = dtype

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise unsafe(f"numpy dtype state {state!r} is not a plain dtype's")
        if any(part is not None for part in state[2:5]):
            raise unsafe("structured numpy dtypes are refused")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _NumpyArray:
    """Stand-in for ``numpy.core.multiarray._reconstruct``; ``BUILD`` fills it, :func:`finish` swaps in the array."""

    def __init__(self, cls=None, shape=None, typecode=None):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _NumpyDtype)
                and isinstance(state[4], (bytes, bytearray))):
            raise unsafe("a pickled numpy array whose state is not (version, shape, dtype, "
                                        "fortran, bytes) is refused (object arrays would run code)")
        _, shape, dtype, fortran, data = state
        shape = _int_tuple(shape, "numpy array shape")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.dtype.itemsize != len(data):
            raise ValueError(f"a pickled numpy array of shape {shape} and dtype {dtype.dtype} needs "
                             f"{count * dtype.dtype.itemsize} bytes, the pickle holds {len(data)}")
        flat = np.frombuffer(bytes(data), dtype.dtype).astype(dtype.dtype.newbyteorder("="))
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _int_tuple(value, what):
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise ValueError(f"{what} must be a tuple of ints, got {value!r}")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, dtype=None):
    if not isinstance(storage, Storage):
        raise ValueError(f"a tensor record's storage is {type(storage).__name__}, not a storage")
    if type(storage_offset) is not int:
        raise ValueError(f"a tensor record's storage offset is {storage_offset!r}, not an int")
    name = storage.dtype_name if dtype is None else dtype.name
    return view(storage, name, storage_offset, _int_tuple(size, "tensor size"), _int_tuple(stride, "tensor stride"))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(dtype, _DtypeName):
        raise ValueError(f"a tensor record's dtype is {dtype!r}, not a torch dtype")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, np.ndarray):
        raise ValueError(f"a parameter record holds {type(data).__name__}, not a tensor")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in _TENSOR_REBUILDERS or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
        raise unsafe(f"_rebuild_from_type_v2 asked to call {func!r}; only the tensor rebuild "
                                    "functions are allowed there")
    return func(*args)


def _numpy_scalar(dtype, data):
    if not isinstance(dtype, _NumpyDtype) or not isinstance(data, (bytes, bytearray)):
        raise unsafe("numpy.core.multiarray.scalar with anything but a plain dtype and bytes is "
                                    "refused (object scalars would run code)")
    if len(data) != dtype.dtype.itemsize:
        raise ValueError(f"a numpy {dtype.dtype} scalar needs {dtype.dtype.itemsize} bytes, got {len(data)}")
    return np.frombuffer(bytes(data), dtype.dtype)[0]


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding != "latin1":
        raise unsafe(f"_codecs.encode is only allowed for latin1 text (numpy's bytes), got "
                                    f"{encoding!r}")
    return text.encode("latin1")


def _torch_global(name):
    if name in TORCH_DTYPES:
        return _DtypeName(name)
    if name in STORAGE_TYPES:
        return _StorageType(name)
    if name == "Tensor":
        return _TensorType()
    return None


def _stand_in(module, name):
    """What the checkpoint's global ``module.name`` is replaced by, or None when it is not allowed."""
    if module == "torch":
        return _torch_global(name)
    if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        return {"scalar": _numpy_scalar, "_reconstruct": _NumpyArray}.get(name)
    return ALLOWED.get((module, name))


ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): _TensorType(),
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): _NumpyDtype,
    ("numpy", "ndarray"): _TensorType(),
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
}
"""``(module, name)`` globals a tensor checkpoint may name, beyond ``torch.<dtype>``, ``torch.<X>Storage``,
``torch.Tensor`` and numpy's ``scalar`` / ``_reconstruct`` (see :func:`_stand_in`)."""

_CODE_MODULES = ("os", "posix", "nt", "subprocess", "sys", "builtins", "__builtin__", "shutil", "socket", "runpy",
                 "importlib", "code", "ctypes", "pickle", "marshal", "types", "functools", "operator", "webbrowser",
                 "pty", "commands", "platform", "multiprocessing", "asyncio", "io", "codecs", "_codecs")


def refusal(module, name):
    """The UnsafeCheckpointError for a global outside the allow-list (says what to do when it is a model class)."""
    where = f"{module}.{name}"
    msg = (f"the checkpoint names the global {where!r}, which convforge.load refuses: only tensor-rebuild "
           "functions, storages, OrderedDict and plain containers are allowed")
    top = module.split(".")[0]
    looks_like_class = name[:1].isupper() and top not in _CODE_MODULES
    if module.startswith("torch.nn.modules") or looks_like_class:
        msg += (f". {where} looks like a model class: the file holds a whole pickled model (torch.save(model, ...)). "
                "Save its weights instead, in PyTorch: torch.save(model.state_dict(), path) (or "
                "safetensors.torch.save_file(model.state_dict(), path)), then load those with convforge.load")
    return unsafe(msg)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns stand-ins from the allow-list.

    Args:
        data: the pickle bytes.
        storage: ``storage(dtype_name, key, numel)`` returning a :class:`Storage` for a persistent id, or None
            when the stream may not reference storages.
    """

    def __init__(self, stream, storage=None):
        super().__init__(stream)
        self._storage = storage

    def find_class(self, module, name):
        found = _stand_in(module, name) if isinstance(module, str) and isinstance(name, str) else None
        if found is None:
            raise refusal(module, name)
        return found

    def persistent_load(self, pid):
        if self._storage is None:
            raise unsafe(f"the pickle references external object {pid!r}; plain pickles may not")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and type(pid[4]) is int):
            raise ValueError(f"a storage record {pid!r} is not ('storage', type, key, location, numel)")
        if len(pid) == 6 and pid[5] is not None:
            raise ValueError("storage views (pre-1.0 checkpoints) are not supported; re-save the checkpoint")
        return self._storage(STORAGE_TYPES[pid[1].name], pid[2], pid[4])


def finish(obj, memo=None):
    """Replace filled numpy-array stand-ins by their arrays, in place, through dicts, lists and tuples."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _NumpyArray):
        if obj.array is None:
            raise ValueError("a pickled numpy array has no data")
        return obj.array
    if isinstance(obj, _NumpyDtype):
        return obj.dtype
    if isinstance(obj, (_DtypeName, _TensorType)):
        return obj
    memo[id(obj)] = obj
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = finish(obj[key], memo)
    elif isinstance(obj, list):
        obj[:] = [finish(v, memo) for v in obj]
    elif isinstance(obj, tuple):
        memo[id(obj)] = obj = type(obj)(finish(v, memo) for v in obj) if type(obj) is tuple else obj
    return obj


def unpickle(data, storage=None):
    """Load one pickle from ``data`` (bytes or a binary stream) with the allow-list; returns the finished object."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    return finish(RestrictedUnpickler(stream, storage).load())

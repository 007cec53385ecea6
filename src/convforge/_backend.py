"""The backend seam: which backend runs an op, keyed by the type of its array arguments.

NumPy is the default and costs nothing: ``Function.apply`` asks :func:`backend_for` about its arguments, which
returns None for NumPy arrays, tensors, Python numbers, tuples, strings and None.  Any other argument type is
looked up once (then cached per type): first among types registered with :func:`register`, walking the type's
MRO, then by the root of the module that defines it (``dask.array.core.Array`` -> ``"dask"``) among the
backends registered *by name*, which are imported only when such an array first arrives.  So nothing imports
Dask unless a Dask array is passed.

A backend is any object with ``apply(function_class, args, kwargs)``: it runs the op (a
:class:`convforge.autograd.Function` subclass) on its own array type and returns the result, or raises naming
the op it cannot run.  Adding a backend is one module plus one :func:`register` line (or one entry in
``_BY_MODULE``); the engine does not change.

Example:
    >>> import numpy as np
    >>> backend_for((np.ones(3), 2, None)) is None
    True
    >>> class Echo:                                # a toy backend for a toy array type
    ...     def apply(self, fn, args, kwargs):
    ...         return f"{fn.__name__} on {type(args[0]).__name__}"
    >>> class Box:
    ...     pass
    >>> register(Box, Echo())
    >>> backend_for((Box(),)).apply(int, (Box(),), {})
    'int on Box'
    >>> unregister(Box)
"""
from __future__ import annotations

import importlib
import numbers

import numpy as np

__all__ = ["backend_for", "register", "unregister", "register_module"]

# types that always run on NumPy (scalars, argument tuples, strings, dtypes); ndarray subclasses are added lazily
_NUMPY_TYPES = {type(None), bool, int, float, complex, str, tuple, list, dict, slice, np.ndarray, np.dtype}
_BY_TYPE: dict = {}                               # array type -> backend object
_BY_MODULE = {"dask": "convforge.dask._backend:BACKEND"}   # module root -> "module:attribute", loaded lazily
_LOADED: dict = {}                                # module root -> backend object
_CACHE: dict = {}                                 # argument type -> backend object or None


def backend_for(args):
    """The backend of the first non-NumPy array among ``args``, or None (NumPy runs the op).

    Cost on the NumPy path: one set lookup per argument.
    """
    for a in args:
        t = type(a)
        if t in _NUMPY_TYPES:
            continue
        backend = _CACHE[t] if t in _CACHE else _resolve(t)
        if backend is not None:
            return backend
    return None


def _resolve(t):
    """Find (and cache) the backend for type ``t``; None marks a NumPy-run type."""
    backend = None
    for base in t.__mro__:
        if base in _BY_TYPE:
            backend = _BY_TYPE[base]
            break
    if backend is None and not issubclass(t, (np.ndarray, np.generic, numbers.Number)):
        root = (t.__module__ or "").split(".")[0]
        if root in _BY_MODULE:
            backend = _load(root)
    _CACHE[t] = backend
    if backend is None and issubclass(t, np.ndarray):
        _NUMPY_TYPES.add(t)
    return backend


def _load(root):
    if root not in _LOADED:
        module, attr = _BY_MODULE[root].split(":")
        _LOADED[root] = getattr(importlib.import_module(module), attr)
    return _LOADED[root]


def register(array_type: type, backend) -> None:
    """Run every op whose arguments include an ``array_type`` (or subclass) instance on ``backend``."""
    if not hasattr(backend, "apply"):
        raise TypeError(f"a backend needs an apply(function_class, args, kwargs) method; got {backend!r}")
    _BY_TYPE[array_type] = backend
    _CACHE.clear()


def unregister(array_type: type) -> None:
    """Undo :func:`register` (NumPy runs ops on ``array_type`` again, i.e. converts it)."""
    _BY_TYPE.pop(array_type, None)
    _CACHE.clear()


def register_module(root: str, target: str) -> None:
    """Lazily load ``target`` (``"package.module:attribute"``) as the backend for arrays whose type is defined
    under the top-level module ``root``; the module is imported only when such an array arrives."""
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:attribute', got {target!r}")
    _BY_MODULE[root] = target
    _LOADED.pop(root, None)
    _CACHE.clear()

"""The engine's runtime below its algorithms (``convforge.engine.algorithms``): the one loader of the optional
Numba kernels (:func:`kernel_module`), the thread pool (:mod:`.threads`) and two small reshaping helpers the
kernels' callers share.  ``convforge.nn._ops`` uses the same loader and pool.

Numba is optional: :func:`kernel_module` returns a compiled-kernel module of ``convforge._kernels``, or None when
Numba is not installed, is switched off (``convforge.config(numba=False)`` or the environment variable
``CONVFORGE_NUMBA=0``) or cannot be used.  Every algorithm has a pure-NumPy path that gives the same results.
A Numba that is installed but fails -- its import raising (a missing llvmlite, a library that does not load,
``NUMBA_NUM_THREADS=0``), ``NUMBA_DISABLE_JIT=1``, a kernel module that does not load -- gives one warning saying
what happened and then the NumPy paths; Numba not installed at all is the documented NumPy-only setup and gives
none.  No call ever fails because of Numba.
"""
from __future__ import annotations

import importlib
import os
import threading

import numpy as np

from .. import _config

_modules = {}          # kernel module name -> module, or None when it cannot be used
_LOCK = threading.Lock()
NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def kernel_module(name: str, dtype=None):
    """``convforge._kernels.<name>`` if Numba is usable and switched on (and ``dtype``, when given, is one the
    kernels are compiled for), else None."""
    if not _config.numba_enabled() or os.environ.get("CONVFORGE_NUMBA", "1") == "0":
        return None
    if dtype is not None and np.dtype(dtype) not in NUMBA_DTYPES:
        return None
    if name not in _modules:
        with _LOCK:         # threads of a split call may ask first at the same time: the import must finish
            if name not in _modules:
                _modules[name] = _load(name)
    return _modules[name]


def numba_kernels(dtype=None):
    """The engine's Numba kernel module (:mod:`convforge._kernels.numba_kernels`), or None (see
    :func:`kernel_module`)."""
    return kernel_module("numba_kernels", dtype)


def _load(name):
    """Import a kernel module; on any trouble warn once and return None."""
    package = __name__.rsplit(".", 1)[0] + "._kernels"
    try:
        jit = importlib.import_module(package + ".jit")      # imports numba first (simd, its extension API, after)
    except Exception as exc:     # noqa: BLE001 - a broken install raises anything (OSError, ValueError, ...)
        if isinstance(exc, ModuleNotFoundError) and exc.name == "numba":
            return None         # not installed: NumPy-only, as documented
        problem = f"Numba is installed but cannot be imported ({type(exc).__name__}: {exc})"
    else:
        problem = jit.unusable_reason()
        if problem is None:
            try:
                return importlib.import_module(f"{package}.{name}")
            except Exception as exc:     # noqa: BLE001
                problem = f"the Numba kernels {package}.{name} cannot be loaded ({type(exc).__name__}: {exc})"
    _config.warn_once(problem, f"{problem}; using the pure-NumPy paths instead (same results, slower; set "
                               f"CONVFORGE_NUMBA=0 to choose them without this warning)")
    return None


def as_3d(a, lead: int, n_spatial: int):
    """View ``a`` with size-1 dims inserted after its first ``lead`` axes so it has 3 spatial dims."""
    return a.reshape(a.shape[:lead] + (1,) * (3 - n_spatial) + a.shape[lead:])


def triple(values, fill):
    """Pad a per-dim tuple on the left to 3 dims (the dims :func:`as_3d` inserts)."""
    return (fill,) * (3 - len(values)) + tuple(values)

"""Convolution algorithms behind the engine.  Each takes canonical arguments in the compute dtype (``x (N, C,
*S)`` unpadded, weight ``(O, C/g, *K)``, int tuples, ``padding`` as ``(lo, hi)`` pairs) and returns
``(N, O, *out)``; selection lives in ``convforge._algorithms``.

Numba is optional: :func:`numba_kernels` returns the compiled-kernel module, or None when Numba is not
installed or is switched off (``convforge.config(numba=False)`` or the environment variable
``CONVFORGE_NUMBA=0``).  Every algorithm has a pure-NumPy path that gives the same results.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from .. import _config

_KERNELS = None
_TRIED = False
_LOCK = threading.Lock()
NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def numba_kernels(dtype=None):
    """The Numba kernel module if Numba is usable (and ``dtype`` is one it is compiled for), else None."""
    global _KERNELS, _TRIED
    if not _config.numba_enabled() or os.environ.get("CONVFORGE_NUMBA", "1") == "0":
        return None
    if dtype is not None and np.dtype(dtype) not in NUMBA_DTYPES:
        return None
    if not _TRIED:
        with _LOCK:         # threads of a split call may ask first at the same time: the import must finish
            if not _TRIED:
                try:
                    from .._kernels import numba_kernels as kernels
                    _KERNELS = kernels
                except ImportError:
                    _KERNELS = None
                _TRIED = True
    return _KERNELS


def as_3d(a, lead: int, n_spatial: int):
    """View ``a`` with size-1 dims inserted after its first ``lead`` axes so it has 3 spatial dims."""
    return a.reshape(a.shape[:lead] + (1,) * (3 - n_spatial) + a.shape[lead:])


def triple(values, fill):
    """Pad a per-dim tuple on the left to 3 dims (the dims :func:`as_3d` inserts)."""
    return (fill,) * (3 - len(values)) + tuple(values)

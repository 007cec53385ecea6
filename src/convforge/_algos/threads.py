"""Coarse-grained parallelism: a convolution is split into a few independent parts (batch halves, bands of
output rows, or output-channel blocks) that run on a small thread pool, each with a single-threaded BLAS.

Why not simply let OpenBLAS and Numba thread every call?  Measured on the 2-core benchmark machine while other
processes used the CPUs (docs/PERFORMANCE.md): a 2-thread OpenBLAS product that must wait at every barrier for
a descheduled worker ran 10x *slower* than one thread (182 ms instead of 17 ms for a ResNet 3x3 layer at batch
8), and the idle spinning of several thread pools (OpenBLAS, Numba's OpenMP, torch's) slowed the others down.
One fork/join per call, with the BLAS held at one thread for its duration, keeps both cores busy when they are
free and degrades gently when they are not.

The BLAS thread count is changed through OpenBLAS's ``*_set_num_threads`` function found among the loaded
libraries (NumPy's wheels bundle OpenBLAS); if none is found (another BLAS), parts still run in threads and the
BLAS keeps its own setting.  ``convforge.config(threads=1)`` turns the splitting off.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import _config

_lock = threading.Lock()
_blas = None           # (get, set) ctypes functions, or () when unavailable
_depth = 0
_saved = None
_pool = None
_pool_size = 0


def _find_openblas():
    global _blas
    if _blas is not None:
        return _blas
    _blas = ()
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    except OSError:
        return _blas
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                _blas = (get, set_)
                return _blas
    return _blas


@contextlib.contextmanager
def single_threaded_blas():
    """Hold the BLAS at one thread (re-entrant; restores the previous count when the outermost exits)."""
    global _depth, _saved
    blas = _find_openblas()
    if not blas:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = blas[0]()
            if _saved != 1:
                blas[1](1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved not in (None, 1):
                blas[1](_saved)


def thread_count() -> int:
    """Threads a convolution may use: ``convforge.config(threads=...)``, else ``CONVFORGE_NUM_THREADS``, else the
    CPUs this process may run on."""
    n = _config.threads()
    if n is None:
        env = os.environ.get("CONVFORGE_NUM_THREADS")
        if env:
            n = int(env)
        else:
            try:
                n = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - not Linux
                n = os.cpu_count() or 1
    return max(1, int(n))


def even_parts(n, parts, multiple=1):
    """Split ``range(n)`` into at most ``parts`` contiguous chunks (boundaries on multiples of ``multiple``)."""
    step = -(-n // parts)
    step = -(-step // multiple) * multiple
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _executor(workers):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convforge")
            _pool_size = workers
        return _pool


def run_parts(parts):
    """Run zero-argument callables concurrently (the first in the calling thread), each under the caller's
    ``convforge.config`` settings and a single-threaded BLAS; returns their results in order."""
    if len(parts) == 1:
        return [parts[0]()]
    settings = _config.snapshot()

    def under_settings(fn):
        def run():
            with _config.restored(settings):
                return fn()
        return run

    with single_threaded_blas():
        pool = _executor(len(parts) - 1)
        futures = [pool.submit(under_settings(p)) for p in parts[1:]]
        first = parts[0]()
        return [first] + [f.result() for f in futures]

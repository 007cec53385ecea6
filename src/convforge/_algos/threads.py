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

Concurrency: convforge may be called from several threads at once, each with its own ``config(threads=...)``.
They share one pool, which only grows: a call that needs more workers than it has replaces it with a bigger one
and leaves the old one to finish what was submitted to it and end its threads when the last call holding it
lets go (it is never shut down under a call still submitting to it).  A call runs its first part itself, and a
part that splits again runs its own parts serially, so pool threads never wait for other parts: calls sharing
the pool cannot deadlock, only queue.  The BLAS is held at
one thread while any split call runs (a counter) and restored when the last one ends.
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
_in_part = threading.local()      # set in pool threads while they run a part


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
    CPUs this process may run on.  An unusable ``CONVFORGE_NUM_THREADS`` (not a positive integer) is ignored
    with one warning naming it."""
    n = _config.threads()
    if n is None:
        env = os.environ.get("CONVFORGE_NUM_THREADS", "").strip()
        n = int(env) if env.isdigit() and int(env) > 0 else None
        if n is None:
            n = _available_cpus()
            if env:
                _config.warn_once(("CONVFORGE_NUM_THREADS", env),
                                  f"the environment variable CONVFORGE_NUM_THREADS={env!r} is not a positive integer; "
                                  f"ignoring it and using {n} thread(s), the CPUs available")
    return max(1, int(n))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def even_parts(n, parts, multiple=1):
    """Split ``range(n)`` into at most ``parts`` contiguous chunks (boundaries on multiples of ``multiple``)."""
    step = -(-n // parts)
    step = -(-step // multiple) * multiple
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _executor(workers):
    """The shared pool, grown to at least ``workers`` threads (see the module docstring: a replaced pool is not
    shut down, another thread may still be submitting to it; it ends its idle threads when garbage-collected)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convforge")
            _pool_size = workers
        return _pool


def run_parts(parts):
    """Run zero-argument callables concurrently (the first in the calling thread), each under the caller's
    ``convforge.config`` settings and a single-threaded BLAS; returns their results in order."""
    if len(parts) == 1 or getattr(_in_part, "active", False):
        return [part() for part in parts]
    settings = _config.snapshot()

    def under_settings(fn):
        def run():
            _in_part.active = True
            try:
                with _config.restored(settings):
                    return fn()
            finally:
                _in_part.active = False
        return run

    with single_threaded_blas():
        pool = _executor(len(parts) - 1)
        futures = [pool.submit(under_settings(p)) for p in parts[1:]]
        first = parts[0]()
        return [first] + [f.result() for f in futures]

"""The one place convforge compiles with Numba: the options every kernel shares (:func:`kernel`), where compiled
kernels are cached, and the inter-process lock that makes concurrent first use safe.

Import only through :func:`convforge._algos.kernel_module`; it raises ImportError (or whatever a broken Numba
raises) without a usable Numba.

**Caching.**  Kernels are compiled with ``cache=True``: the first process compiles, later ones load the machine
code.  Numba needs a writable directory for that (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, the
user's cache directory) and, when none is writable (a read-only install and HOME), refuses to create the kernel
at all.  Then the kernels are cached in a private directory under the system temp dir (created mode 0700 and
used only if this user owns it and nobody else can write to it: cache files are machine code), else compiled
once per process without a cache; one warning says which.

**Concurrent first use.**  Numba's cache is one index file per kernel plus one data file per compiled signature.
Two processes compiling different signatures of a kernel at once can overwrite each other's data files, and a
process loading in between can run one signature's machine code with another's argument types: a segfault
(numba issues 4807, 10128; seen as an xdist worker crash from a cold cache).  So every kernel's ``compile`` --
the step in which Numba loads a signature from the cache, or compiles it and saves it -- runs under an exclusive
``flock`` on ``convforge-compile.lock`` in the kernel's cache directory, taken by one thread of one process at a
time.  All kernels live in this package's directory, so they share one cache directory and one lock; a nested
compilation (a kernel calling another) runs under the lock its outermost compilation took.  The lock file is
opened afresh for each outermost compilation (a forked child never shares its parent's lock), and closing it
releases the lock, also when a process dies.  Once a signature is compiled the dispatcher runs it from Numba's
C fast path without ever calling ``compile`` again, so the lock costs nothing after the first call.  Where
``flock`` is not available (Windows) or the file cannot be locked, compilation runs unlocked, as before.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading

from numba import config as numba_config
from numba import njit

from .. import _config

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

#: options of every kernel: serial, releasing the GIL (``convforge._algos.threads`` runs parts of a call on
#: threads), exact IEEE arithmetic (every sum in a fixed order); kernels add their own (``boundscheck=False``)
OPTIONS = dict(nogil=True, fastmath=False)
LOCK_NAME = "convforge-compile.lock"

_lock = threading.RLock()
_depth = 0


def unusable_reason():
    """Why Numba, although importable, cannot run the kernels (None when it can)."""
    if numba_config.DISABLE_JIT:
        return ("NUMBA_DISABLE_JIT is set, so Numba compiles nothing (the kernels would run as slow Python and "
                "their SIMD intrinsics not at all)")
    return None


def kernel(fn=None, **extra):
    """``numba.njit`` with :data:`OPTIONS` (plus ``extra``), cached where possible and compiled under the
    inter-process lock.  Use as ``@kernel`` or ``@kernel(boundscheck=False)``."""
    if fn is None:
        return lambda f: kernel(f, **extra)
    dispatcher = _cached_njit(fn, {**OPTIONS, **extra})
    compile_unlocked = dispatcher.compile
    cache_dir = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)

    def compile_locked(sig):
        with compile_lock(cache_dir):
            return compile_unlocked(sig)
    dispatcher.compile = compile_locked       # Numba calls self.compile for every signature it has not seen
    return dispatcher


@contextlib.contextmanager
def compile_lock(cache_dir):
    """Hold the compile lock of ``cache_dir`` (None: uncached kernels, only this process's lock)."""
    global _depth
    with _lock:
        held = _open_locked(cache_dir) if _depth == 0 and cache_dir else None
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if held is not None:
                os.close(held)          # releases the flock


def _open_locked(cache_dir):
    """A descriptor of ``cache_dir``'s lock file holding an exclusive flock, or None where locking is not
    possible."""
    if fcntl is None:
        return None
    try:
        fd = os.open(os.path.join(cache_dir, LOCK_NAME), os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:             # a file system without locks
        os.close(fd)
        return None
    return fd


def _cached_njit(fn, options):
    try:
        return njit(cache=True, **options)(fn)
    except RuntimeError as exc:          # "cannot cache function ...: no locator available" (nothing writable)
        problem = str(exc)
    private = _private_cache_dir()
    if private is not None:
        saved = numba_config.CACHE_DIR
        numba_config.CACHE_DIR = private     # read once, when the kernel's cache is set up
        try:
            dispatcher = njit(cache=True, **options)(fn)
        except RuntimeError:
            dispatcher = None
        finally:
            numba_config.CACHE_DIR = saved
        if dispatcher is not None:
            _config.warn_once("numba-cache", f"Numba cannot cache compiled kernels where it looks ({problem}); "
                                             f"caching them in {private} instead (set NUMBA_CACHE_DIR to a writable "
                                             f"directory to choose another)")
            return dispatcher
    _config.warn_once("numba-cache", f"Numba cannot cache compiled kernels ({problem}) and no private temporary "
                                     f"directory is usable; compiling them in every process instead (set "
                                     f"NUMBA_CACHE_DIR to a writable directory to keep them)")
    return njit(cache=False, **options)(fn)


def _private_cache_dir():
    """``<tempdir>/convforge-numba-<uid>`` if this user owns it and nobody else can write to it, else None."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        path = os.path.join(tempfile.gettempdir(), f"convforge-numba-{uid if uid is not None else 'user'}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        probe = tempfile.TemporaryFile(dir=path)
        probe.close()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o022 or uid is not None and info.st_uid != uid:
        return None
    return path

"""Process-wide settings: workspace bound, forced algorithm and the Numba switch (for tests and users), and the
one-time warnings the engine gives when its environment is not what it should be."""
from __future__ import annotations

import contextlib
import threading
import warnings

_state = threading.local()
_warned = set()
_warned_lock = threading.Lock()
_DEFAULTS = {"workspace_bytes": 64 * 2 ** 20, "algorithm": None, "numba": True, "threads": None}

#: algorithm names by operation ("conv", "conv_transpose"), announced by ``convforge.engine.registry``
_ALGORITHMS = {"conv": (), "conv_transpose": ()}


def register_algorithms(kind: str, names) -> None:
    """The names ``config(algorithm=...)`` accepts for ``kind`` (called by the engine's registry)."""
    _ALGORITHMS[kind] = tuple(names)


def _all_algorithms():
    return tuple(dict.fromkeys(_ALGORITHMS["conv"] + _ALGORITHMS["conv_transpose"]))


def _get(key):
    return getattr(_state, key, _DEFAULTS[key])


def workspace_limit(output_bytes: int) -> int:
    """Largest extra buffer one call may allocate: ``max(workspace_bytes, output size)``."""
    return max(_get("workspace_bytes"), int(output_bytes))


def forced_algorithm(kind: str):
    """The algorithm forced for ``kind`` ("conv" or "conv_transpose"), or None for automatic selection.

    A forced name that belongs to the other kind leaves this kind automatic, so that
    ``config(algorithm="winograd")`` also runs code that contains transposed convolutions."""
    name = _get("algorithm")
    if name is None:
        return None
    return name if name in _ALGORITHMS[kind] else None


def numba_enabled() -> bool:
    return bool(_get("numba"))


def threads():
    """Threads per convolution call set by ``config(threads=...)``, or None (automatic)."""
    return _get("threads")


def warn_once(key, message: str) -> None:
    """Warn (a ``RuntimeWarning`` starting with ``convforge:``) the first time ``key`` is seen in this process:
    trouble in the environment (a broken Numba, a bad environment variable) degrades to a slower path with one
    warning, never one per call."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"convforge: {message}", RuntimeWarning, stacklevel=3)


def snapshot() -> dict:
    """This thread's settings, to apply in worker threads (settings are thread-local)."""
    return {k: _get(k) for k in _DEFAULTS}


@contextlib.contextmanager
def restored(settings: dict):
    old = snapshot()
    try:
        for k, v in settings.items():
            setattr(_state, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(_state, k, v)


@contextlib.contextmanager
def config(workspace_bytes: int = None, algorithm: str = None, numba: bool = None, threads: int = None):
    """Temporarily set engine options (per thread).

    Args:
        workspace_bytes: bound on the extra memory one convolution call allocates, besides its output (the bound
            is ``max(workspace_bytes, output size)``; default 64 MiB).
        algorithm: force an algorithm: one of ``"im2col"``, ``"pointwise"``, ``"direct"``, ``"winograd"``,
            ``"implicit"`` (Numba) for convolution, ``"col2im"`` or ``"direct"`` (Numba) for transposed
            convolution; ``"auto"`` restores automatic selection.  A forced algorithm that cannot handle a call
            raises ValueError saying why.  Gradients follow it where the algorithm has a gradient form
            (Winograd's, the direct kernels' and, at stride 1, the implicit kernels' weight gradients) and take
            another route where it cannot run a gradient's convolution.
        numba: False runs the pure-NumPy paths even when Numba is installed (as does ``CONVFORGE_NUMBA=0``).
            A Numba that is installed but unusable is never an error: one warning, then the NumPy paths.
        threads: how many threads one call may use (default: the environment variable
            ``CONVFORGE_NUM_THREADS`` if it is a positive integer -- anything else is ignored with one warning --,
            else the CPUs available); the call is split into that many independent parts, each running with a
            single-threaded BLAS.  1 runs serially with the BLAS's own threads.  Settings are per thread; calls
            from several threads at once are safe.

    >>> import numpy as np, convforge
    >>> from convforge.nn import functional as F
    >>> with convforge.config(workspace_bytes=2**20, algorithm="im2col", numba=False):
    ...     F.conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))).shape
    (1, 3, 3, 3)
    """
    if algorithm is not None and algorithm != "auto" and algorithm not in _all_algorithms():
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of "
                         f"{', '.join(map(repr, _all_algorithms()))} or 'auto'")
    if workspace_bytes is not None and workspace_bytes <= 0:
        raise ValueError(f"workspace_bytes must be positive, got {workspace_bytes}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    old = {k: _get(k) for k in _DEFAULTS}
    try:
        if workspace_bytes is not None:
            _state.workspace_bytes = int(workspace_bytes)
        if algorithm is not None:
            _state.algorithm = None if algorithm == "auto" else algorithm
        if numba is not None:
            _state.numba = bool(numba)
        if threads is not None:
            _state.threads = threads
        yield
    finally:
        for k, v in old.items():
            setattr(_state, k, v)

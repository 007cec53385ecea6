"""Process-wide settings: workspace bound and forced algorithm (for tests and users)."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()
_DEFAULTS = {"workspace_bytes": 64 * 2 ** 20, "algorithm": None}


def _get(key):
    return getattr(_state, key, _DEFAULTS[key])


def workspace_limit(output_bytes: int) -> int:
    """Largest extra buffer one call may allocate: ``max(workspace_bytes, output size)``."""
    return max(_get("workspace_bytes"), int(output_bytes))


def forced_algorithm(kind: str):
    return _get("algorithm")


@contextlib.contextmanager
def config(workspace_bytes: int = None, algorithm: str = None):
    """Temporarily set engine options.

    >>> import convforge
    >>> with convforge.config(workspace_bytes=2**20):
    ...     pass
    """
    old = {k: _get(k) for k in _DEFAULTS}
    try:
        if workspace_bytes is not None:
            if workspace_bytes <= 0:
                raise ValueError(f"workspace_bytes must be positive, got {workspace_bytes}")
            _state.workspace_bytes = int(workspace_bytes)
        if algorithm is not None:
            _state.algorithm = algorithm
        yield
    finally:
        for k, v in old.items():
            setattr(_state, k, v)

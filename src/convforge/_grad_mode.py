"""``no_grad``: a switch telling modules not to keep what backward would need."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Inside this block, forward passes keep nothing for backward (inference uses no extra memory)."""
    old = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = old


@contextlib.contextmanager
def enable_grad():
    old = is_grad_enabled()
    _state.enabled = True
    try:
        yield
    finally:
        _state.enabled = old

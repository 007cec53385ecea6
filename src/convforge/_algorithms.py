"""Algorithm selection for the engine.  Each algorithm gets canonical arguments in the compute dtype and
returns ``(N, O, *out)``; the engine adds the bias and casts back."""
from __future__ import annotations

import threading

from . import _config, _engine

_last = threading.local()


def last_choice():
    """Name of the algorithm the last engine call on this thread used (for benchmarks and tests)."""
    return getattr(_last, "name", None)


def conv(x, w, stride, padding, dilation, groups, out_sizes):
    algo = _config.forced_algorithm("conv")
    _last.name = "im2col"
    return _engine.conv_im2col(x, w, stride, padding, dilation, groups, out_sizes)


def conv_transpose(x, w, stride, padding, groups, dilation, out_sizes):
    algo = _config.forced_algorithm("conv_transpose")
    _last.name = "col2im"
    return _engine.conv_transpose_col2im(x, w, stride, padding, groups, dilation, out_sizes)

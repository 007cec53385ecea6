"""Algorithm selection for the engine.

Each algorithm gets canonical arguments in the compute dtype and returns ``(N, O, *out)``; the engine adds the
bias and casts back.  ``convforge.config(algorithm=...)`` forces one (tests use it to run every algorithm through
the differential suite); a forced algorithm that cannot handle the call raises ValueError with the reason.

Automatic choice (see docs/PERFORMANCE.md for the measurements behind it):

* ``pointwise`` -- every kernel size is 1: the input pixels already are the columns (any stride, padding, groups).
* ``direct`` -- depthwise and thin groups (few channels per group) when Numba is available: no matrix product has
  enough work there, a direct loop over taps is faster and needs no workspace.
* ``winograd`` -- float32 3x3 2-D, stride 1, dilation 1, >= 16 channels in and out and outputs of at least
  20x20: F(4x4, 3x3) needs 4x fewer multiplications, but its weight transform costs 36*O*C, which small outputs
  (14x14, 7x7) do not amortise.  float64 never uses it (its error is ~1e-5 relative, fine for float32 only).
* ``im2col`` -- everything else.
* transposed: ``col2im``.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from . import _config
from ._algos import direct as _direct
from ._algos import gemm as _gemm
from ._algos import numba_kernels
from ._algos import transpose as _transpose

_last = threading.local()


def last_choice():
    """Name of the algorithm the last engine call on this thread used (for benchmarks and tests)."""
    return getattr(_last, "name", None)


def _why_not_winograd(x, w, stride, padding, dilation, groups):
    if x.dtype != np.float32:
        return (f"winograd is only used for float32 (its transforms lose accuracy; float64 needs exact "
                f"algorithms), got {x.dtype}")
    if w.shape[2:] != (3, 3):
        return f"winograd needs a 2-D 3x3 kernel, got kernel {tuple(w.shape[2:])}"
    if any(s != 1 for s in stride) or any(d != 1 for d in dilation):
        return f"winograd needs stride 1 and dilation 1, got stride {stride} and dilation {dilation}"
    return None


def _why_not_pointwise(x, w, stride, padding, dilation, groups):
    if any(k != 1 for k in w.shape[2:]):
        return f"pointwise needs a 1x1 kernel, got kernel {tuple(w.shape[2:])}"
    return None


def _why_not_direct(x, w, stride, padding, dilation, groups):
    return None


def _winograd(*args):
    from ._algos import winograd
    return winograd.winograd(*args)


CONV = {
    "im2col": (_gemm.im2col, lambda *a: None),
    "pointwise": (_gemm.pointwise, _why_not_pointwise),
    "direct": (_direct.direct, _why_not_direct),
    "winograd": (_winograd, _why_not_winograd),
}
CONV_TRANSPOSE = {
    "col2im": (_transpose.col2im, lambda *a: None),
}


def choose_conv(x, w, stride, padding, dilation, groups, out_sizes):
    """Name of the algorithm automatic selection uses for this convolution."""
    o_ch, cg = w.shape[:2]
    kernel = w.shape[2:]
    if all(k == 1 for k in kernel):
        return "pointwise"
    fast_dtype = x.dtype in (np.float32, np.float64)
    if groups > 1 and fast_dtype and numba_kernels(x.dtype) is not None and cg * (o_ch // groups) <= 64:
        return "direct"
    if "winograd" in _available and _why_not_winograd(x, w, stride, padding, dilation, groups) is None \
            and groups == 1 and cg >= 16 and o_ch >= 16 and min(out_sizes) >= 20:
        return "winograd"
    return "im2col"


_available = {"im2col", "pointwise", "direct", "winograd"}


def _run(table, kind, name, args, why_args):
    fn, why_not = table[name]
    reason = why_not(*why_args)
    if reason is not None:
        raise ValueError(f"convforge.config(algorithm={name!r}) cannot run this {kind}: {reason}; "
                         f"use algorithm='auto' to let convforge choose")
    _last.name = name
    return fn(*args)


def conv(x, w, stride, padding, dilation, groups, out_sizes):
    name = _config.forced_algorithm("conv") or choose_conv(x, w, stride, padding, dilation, groups, out_sizes)
    return _run(CONV, "convolution", name, (x, w, stride, padding, dilation, groups, out_sizes),
                (x, w, stride, padding, dilation, groups))


def conv_transpose(x, w, stride, padding, groups, dilation, out_sizes):
    name = _config.forced_algorithm("conv_transpose") or "col2im"
    return _run(CONV_TRANSPOSE, "transposed convolution", name,
                (x, w, stride, padding, groups, dilation, out_sizes), (x, w, stride, padding, dilation, groups))


def flops(w, out_sizes, n):
    """Multiply-adds of a convolution (for benchmarks)."""
    return n * w.shape[0] * math.prod(out_sizes) * w.shape[1] * math.prod(w.shape[2:])

"""Algorithm selection for the engine.

Each algorithm gets canonical arguments in the compute dtype and returns ``(N, O, *out)``; the engine adds the
bias and casts back.  ``convforge.config(algorithm=...)`` forces one (tests use it to run every algorithm through
the differential suite); a forced algorithm that cannot handle the call raises ValueError with the reason.

Automatic choice (see docs/PERFORMANCE.md for the measurements behind it):

* ``pointwise`` -- every kernel size is 1: the input pixels already are the columns (any stride, padding, groups).
* ``direct`` -- depthwise (one input channel per group) when Numba is available: no matrix product has enough
  work there, a direct loop over taps is faster and needs no workspace.
* ``implicit`` -- every other kernel larger than 1x1 (strided ones split into phases), when Numba is available,
  the CPU has AVX-512 (64-byte vectors) and one sample's workspace fits the bound: register-blocked products
  read straight from the padded input run at about twice the BLAS's rate here (NumPy's OpenBLAS uses AVX2
  kernels on this CPU) and thin groups run at the dense rate.  Without AVX-512 the kernels are correct but
  not faster, so they are used only when forced.
* ``winograd`` -- float32 3x3 2-D, stride 1, dilation 1, >= 16 channels in and out and outputs of at least
  20x20: F(4x4, 3x3) needs 4x fewer multiplications, but its weight transform costs 36*O*C, which small outputs
  (14x14, 7x7) do not amortise.  float64 never uses it (its error is ~1e-5 relative, fine for float32 only).
  Only with Numba: with its NumPy transforms (tensordots over strided tile views) it was never clearly faster
  than im2col (forward, 2 shared cores, best of 7: 64@56 batch 8 54 vs 52 ms) and up to 3.2x slower (64@56
  batch 1 167 vs 53 ms, 128@28 batch 8 139 vs 71 ms); its weight gradient 1.6-13x slower.  Without Numba the
  choice is im2col.
* ``im2col`` -- everything else.
* transposed: ``direct`` (Numba) when every group has one output channel (a depthwise layer's input
  gradient), else ``col2im``.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from . import _config
from ._algos import direct as _direct
from ._algos import gemm as _gemm
from ._algos import implicit as _implicit
from ._algos import numba_kernels
from ._algos import threads as _threads
from ._algos import transpose as _transpose
from ._algos.gemm import padded_band
from ._algos.threads import even_parts as _even

# Below this many multiply-adds one thread beats a fork/join (~0.1 ms of Python overhead).  The direct kernels
# run fewer multiply-adds per second than a product, so they split from a 2x smaller size (measured: 144@56
# depthwise at batch 1, 4.1M multiply-adds, 0.25 ms on one thread and 0.42 ms split; MobileNet's 960@7 at
# batch 8, 3.4M, 0.27 ms either way; 144@56 at batch 8, 33M, 2.4 ms on one thread and 1.7 ms split).
MIN_PARALLEL_MACS = 8_000_000
DIRECT_SPEED_RATIO = 2


def worth_splitting(name, macs):
    """Whether a call of ``macs`` multiply-adds with algorithm ``name`` pays for a fork/join."""
    return macs * (DIRECT_SPEED_RATIO if name == "direct" else 1) >= MIN_PARALLEL_MACS

# Algorithms whose time is one big BLAS product: at batch sizes below the thread count they are not split.
BLAS_THREADED_WHEN_SMALL_BATCH = frozenset({"im2col", "pointwise", "winograd"})
MAX_BLAS_THREADED_MACS = 400_000_000

_last = threading.local()


def last_choice():
    """Name of the algorithm the last engine call on this thread used (for benchmarks and tests)."""
    return getattr(_last, "name", None)


def winograd_unfit(dtype, kernel, stride, dilation):
    """Why Winograd F(4x4, 3x3) cannot compute this convolution (or its weight gradient), or None."""
    if dtype != np.float32:
        return (f"winograd is only used for float32 (its transforms lose accuracy; float64 needs exact "
                f"algorithms), got {dtype}")
    if tuple(kernel) != (3, 3):
        return f"winograd needs a 2-D 3x3 kernel, got kernel {tuple(kernel)}"
    if any(s != 1 for s in stride) or any(d != 1 for d in dilation):
        return f"winograd needs stride 1 and dilation 1, got stride {stride} and dilation {dilation}"
    return None


def winograd_pays(cg, og, out_sizes):
    """Automatic selection's rule for Winograd (forward and weight gradient): the Numba transform kernels, enough
    channels per group and outputs of at least 20x20 (see the module docstring)."""
    return numba_kernels(np.float32) is not None and cg >= 16 and og >= 16 and min(out_sizes) >= 20


def _why_not_winograd(x, w, stride, padding, dilation, groups):
    return winograd_unfit(x.dtype, w.shape[2:], stride, dilation)


def _why_not_pointwise(x, w, stride, padding, dilation, groups):
    if any(k != 1 for k in w.shape[2:]):
        return f"pointwise needs a 1x1 kernel, got kernel {tuple(w.shape[2:])}"
    return None


def _why_not_direct(x, w, stride, padding, dilation, groups):
    return None


def _winograd(*args, **kwargs):
    from ._algos import winograd
    return winograd.winograd(*args, **kwargs)


def _why_not_implicit(x, w, stride, padding, dilation, groups):
    return _implicit.unfit(x.dtype)


CONV = {
    "im2col": (_gemm.im2col, lambda *a: None),
    "implicit": (_implicit.implicit, _why_not_implicit),
    "pointwise": (_gemm.pointwise, _why_not_pointwise),
    "direct": (_direct.direct, _why_not_direct),
    "winograd": (_winograd, _why_not_winograd),
}


def _why_not_direct_transpose(x, w, stride, padding, dilation, groups):
    from ._algos import depthwise
    if not depthwise.available(x.dtype):
        return (f"the direct transposed kernels need Numba (installed and not switched off) and float32 or "
                f"float64, got {x.dtype}")
    if w.ndim > 5:
        return f"the direct transposed kernels cover 1 to 3 spatial dims, got {w.ndim - 2}"
    return None


def _direct_transpose(*args):
    from ._algos import depthwise
    return depthwise.transpose_direct(*args)


CONV_TRANSPOSE = {
    "col2im": (_transpose.col2im, lambda *a: None),
    "direct": (_direct_transpose, _why_not_direct_transpose),
}


def choose_conv(x, w, stride, padding, dilation, groups, out_sizes):
    """Name of the algorithm automatic selection uses for this convolution."""
    o_ch, cg = w.shape[:2]
    kernel = w.shape[2:]
    if all(k == 1 for k in kernel):
        return "pointwise"
    fast_dtype = x.dtype in (np.float32, np.float64)
    if groups > 1 and cg == 1 and fast_dtype and len(kernel) <= 3 and numba_kernels(x.dtype) is not None:
        return "direct"
    if o_ch // groups >= 2 and _implicit.fast_here() and _implicit.unfit(x.dtype) is None and \
            _implicit.sample_workspace(x, w, stride, padding, dilation, out_sizes) <= _config.workspace_limit(
                x.shape[0] * o_ch * math.prod(out_sizes) * x.itemsize):
        return "implicit"
    if "winograd" in _available and _why_not_winograd(x, w, stride, padding, dilation, groups) is None \
            and groups == 1 and winograd_pays(cg, o_ch, out_sizes):
        return "winograd"
    return "im2col"


_available = {"im2col", "pointwise", "direct", "winograd", "implicit"}

# Algorithms that split their own work over threads (``_split_conv`` leaves them whole).
SELF_THREADED = frozenset({"implicit"})


def _run(table, kind, name, args, why_args, split):
    fn, why_not = table[name]
    reason = why_not(*why_args)
    if reason is not None:
        raise ValueError(f"convforge.config(algorithm={name!r}) cannot run this {kind}: {reason}; "
                         f"use algorithm='auto' to let convforge choose")
    _last.name = name
    return split(name, fn, *args)


def _split_conv(name, fn, x, w, stride, padding, dilation, groups, out_sizes):
    """Run ``fn`` on independent parts of the convolution on several threads (see ``_algos.threads``):
    batch chunks, else bands of output rows, else channel groups, else output-channel blocks."""
    t = _threads.thread_count()
    n, c = x.shape[:2]
    o_ch, cg = w.shape[:2]
    macs = n * o_ch * math.prod(out_sizes) * cg * math.prod(w.shape[2:])
    if t == 1 or not worth_splitting(name, macs) or name in SELF_THREADED:
        return fn(x, w, stride, padding, dilation, groups, out_sizes)
    if n < t and name in BLAS_THREADED_WHEN_SMALL_BATCH and macs < MAX_BLAS_THREADED_MACS:
        # Fewer samples than threads on a small layer: splitting one sample into row bands (each with a
        # one-thread BLAS) costs band copies and a fork/join, and measured ~2x slower on a quiet machine than one
        # product that the BLAS threads itself (ResNet batch-1 layers, docs/PERFORMANCE.md), so the BLAS keeps
        # its own threads.  Big layers still split: Winograd's transforms (serial Numba) dominate at VGG's 224.
        return fn(x, w, stride, padding, dilation, groups, out_sizes)
    y_bytes = n * o_ch * math.prod(out_sizes) * x.itemsize
    limit = _config.workspace_limit(y_bytes)
    if name == "winograd":      # transform the weight once for all parts (batch chunks and row bands share it)
        from ._algos import winograd
        u = winograd.weight_transform(w, groups)
        limit -= u.nbytes
        full_w, plain = w, fn
        fn = lambda xx, ww, *rest: plain(xx, ww, *rest, u=u if ww is full_w else None)   # noqa: E731
    padded_bytes = c * math.prod(i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding)) * n * x.itemsize
    if y_bytes > limit // 2:       # the parts' results are extra memory too: keep the call under the bound
        return fn(x, w, stride, padding, dilation, groups, out_sizes)
    jobs, band_copies = [], 0
    if n >= t:
        for a, z in _even(n, t):
            jobs.append(((slice(a, z),), lambda a=a, z=z: fn(x[a:z], w, stride, padding, dilation, groups,
                                                              out_sizes)))
    elif out_sizes[0] >= 2 * t and padded_bytes + y_bytes <= limit // 2:
        band_copies = padded_bytes
        s0, d0, k0, lo0 = stride[0], dilation[0], w.shape[2], padding[0][0]
        span0 = d0 * (k0 - 1) + 1
        zero = ((0, 0),) * len(out_sizes)

        def band(r0, r1):
            xb = padded_band(x, r0 * s0 - lo0, (r1 - 1) * s0 + span0 - lo0, padding[1:])
            return fn(xb, w, stride, zero, dilation, groups, (r1 - r0,) + tuple(out_sizes[1:]))
        for r0, r1 in _even(out_sizes[0], t, 4 if name == "winograd" else 1):
            jobs.append(((slice(None), slice(None), slice(r0, r1)), lambda r0=r0, r1=r1: band(r0, r1)))
    elif groups >= t:
        og = o_ch // groups
        for g0, g1 in _even(groups, t):
            jobs.append(((slice(None), slice(g0 * og, g1 * og)),
                         lambda g0=g0, g1=g1: fn(x[:, g0 * cg:g1 * cg], w[g0 * og:g1 * og], stride, padding,
                                                 dilation, g1 - g0, out_sizes)))
    elif groups == 1 and o_ch >= t:
        for o0, o1 in _even(o_ch, t):
            jobs.append(((slice(None), slice(o0, o1)),
                         lambda o0=o0, o1=o1: fn(x, w[o0:o1], stride, padding, dilation, 1, out_sizes)))
    else:
        return fn(x, w, stride, padding, dilation, groups, out_sizes)
    y = np.empty((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    return _gather(jobs, y, limit - y_bytes - band_copies)


def _split_conv_transpose(name, fn, x, w, stride, padding, groups, dilation, out_sizes):
    """Transposed convolution in parts: batch chunks, else output-channel blocks (groups == 1), else groups."""
    t = _threads.thread_count()
    n, c = x.shape[:2]
    og = w.shape[1]
    macs = n * c * math.prod(x.shape[2:]) * og * math.prod(w.shape[2:])
    if t == 1 or not worth_splitting(name, macs):
        return fn(x, w, stride, padding, groups, dilation, out_sizes)
    y_bytes = n * og * groups * math.prod(out_sizes) * x.itemsize
    limit = _config.workspace_limit(y_bytes)
    if y_bytes > limit // 2:       # the parts' results are extra memory too: keep the call under the bound
        return fn(x, w, stride, padding, groups, dilation, out_sizes)
    jobs = []
    if n >= t:
        for a, z in _even(n, t):
            jobs.append(((slice(a, z),), lambda a=a, z=z: fn(x[a:z], w, stride, padding, groups, dilation,
                                                              out_sizes)))
    elif groups == 1 and og >= t:
        for o0, o1 in _even(og, t):
            jobs.append(((slice(None), slice(o0, o1)),
                         lambda o0=o0, o1=o1: fn(x, w[:, o0:o1], stride, padding, 1, dilation, out_sizes)))
    elif groups >= t:
        cg = c // groups
        for g0, g1 in _even(groups, t):
            jobs.append(((slice(None), slice(g0 * og, g1 * og)),
                         lambda g0=g0, g1=g1: fn(x[:, g0 * cg:g1 * cg], w[g0 * cg:g1 * cg], stride, padding,
                                                 g1 - g0, dilation, out_sizes)))
    else:
        return fn(x, w, stride, padding, groups, dilation, out_sizes)
    y = np.empty((n, og * groups) + tuple(out_sizes), dtype=x.dtype)
    return _gather(jobs, y, limit - y_bytes)


def _gather(jobs, y, budget):
    """Run the parts, each with an equal share of ``budget`` (the workspace left after the parts' results and
    band copies), and write their results into ``y``."""
    share = max(1, budget // len(jobs))

    def job(where, fn):
        def run():
            with _config.config(workspace_bytes=share):
                y[where] = fn()
        return run
    _threads.run_parts([job(where, fn) for where, fn in jobs])
    return y


def conv(x, w, stride, padding, dilation, groups, out_sizes):
    name = _config.forced_algorithm("conv") or choose_conv(x, w, stride, padding, dilation, groups, out_sizes)
    return _run(CONV, "convolution", name, (x, w, stride, padding, dilation, groups, out_sizes),
                (x, w, stride, padding, dilation, groups), _split_conv)


def choose_conv_transpose(x, w, stride, padding, groups, dilation):
    """``direct`` for depthwise-like transposed convolutions (one output channel per group: the input gradient
    of a depthwise layer), where col2im's products are 1xK matrices; ``col2im`` otherwise."""
    if groups > 1 and w.shape[1] == 1 and _why_not_direct_transpose(x, w, stride, padding, dilation,
                                                                      groups) is None:
        return "direct"
    return "col2im"


def forced_accepts(kind, x, w, stride, padding, dilation, groups):
    """False when ``convforge.config(algorithm=...)`` forces a ``kind`` ("conv" or "conv_transpose") algorithm
    that cannot run this call (internal convolutions, e.g. in gradients, then take another route instead of
    raising)."""
    name = _config.forced_algorithm(kind)
    table = CONV if kind == "conv" else CONV_TRANSPOSE
    return name is None or table[name][1](x, w, stride, padding, dilation, groups) is None


def conv_transpose(x, w, stride, padding, groups, dilation, out_sizes):
    name = _config.forced_algorithm("conv_transpose") or choose_conv_transpose(x, w, stride, padding, groups,
                                                                                dilation)
    return _run(CONV_TRANSPOSE, "transposed convolution", name,
                (x, w, stride, padding, groups, dilation, out_sizes), (x, w, stride, padding, dilation, groups),
                _split_conv_transpose)

"""The N-d convolution engine: one core for every rank, for convolution and transposed convolution.

Everything here takes canonical, validated arguments (see ``_api``):
``x (N, C, *S)`` batched, weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``), ``stride``/``dilation``/
``output_padding`` int tuples, ``padding`` a tuple of ``(lo, hi)`` pairs.

The computation itself is done by one of several algorithms chosen per call in ``convforge._algorithms``
(implementations in ``convforge._algos``): ``pointwise`` (1x1), ``im2col`` (windows + one batched matrix
product over ``(N, G)``), ``direct`` (depthwise, Numba), ``winograd`` (float32 3x3) and, for transposed
convolution, ``col2im`` (one product, then a scatter-add over kernel taps).  The basic forms::

    cols (N, G, Cg*K, P)  = windows of the zero-padded input          (P = prod(out spatial), K = prod(kernel))
    y    (N, G, Og, P)    = W (G, Og, Cg*K) @ cols (N, G, Cg*K, P)

    cols (N, G, Og*K, Pin) = W^T (G, Og*K, Cg) @ x (N, G, Cg, Pin)    (transposed)
    y[..., t*d + j*s] += cols[..., t, j]   for every tap t, cropped by the padding

Workspace is bounded: every algorithm works in tiles so that its extra memory stays below
:func:`convforge.config` ``workspace_limit`` (default max(64 MiB, output size)); see docs/PERFORMANCE.md.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided



def compute_dtype(dtype) -> np.dtype:
    """float16 is accumulated in float32 (as PyTorch does on CPU); everything else in its own dtype."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def crop_negative(x, padding):
    """Apply the negative parts of per-side ``padding`` (crops, as views) to ``x (N, C, *S)``; returns the
    cropped ``x`` and the padding left, all non-negative."""
    if all(lo >= 0 and hi >= 0 for lo, hi in padding):
        return x, padding
    crop = (slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding))
    return x[crop], tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)


def pad_zeros(x, padding):
    """Zero-pad the spatial dims of ``x (N, C, *S)`` by per-side pairs; negative values crop."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    x, padding = crop_negative(x, padding)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(padding))


def window_view(xp, kernel, stride, dilation, out_sizes):
    """Strided view ``(N, C, *K, *O)`` of a padded input: element ``[n, c, t, o] = xp[n, c, o*s + t*d]``."""
    n_sp = len(kernel)
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sizes)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n_sp)) + \
        tuple(st[2 + i] * stride[i] for i in range(n_sp))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def stride1_dual(weight, padding, dilation, groups):
    """At stride 1, a transposed convolution with ``weight (O, C/g, *K)`` and per-side ``padding`` equals the
    plain convolution with the flipped, transposed weight ``W' (C, O/g, *K)`` (``W'[g*Cg + c, o] =
    W[g*Og + o, c]`` reversed along every kernel dim) and padding ``d*(k-1) - pad`` per side -- and the other way
    round.  Returns ``(W', dual padding)``; a negative dual padding means the original padding exceeds the
    kernel span."""
    o_ch, cg = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    og = o_ch // groups
    w = weight.reshape((groups, og, cg) + kernel).swapaxes(1, 2)
    w = w[(slice(None),) * 3 + (slice(None, None, -1),) * len(kernel)]
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, d, (lo, hi) in zip(kernel, dilation, padding))
    return np.ascontiguousarray(w).reshape((groups * cg, og) + kernel), pads


def _batch_tiles(n, per_sample_bytes, limit):
    """Split ``range(n)`` into chunks whose workspace stays under ``limit``."""
    per = max(1, int(limit // max(per_sample_bytes, 1)))
    return [(i, min(i + per, n)) for i in range(0, n, per)]


def conv_forward(x, w, b, stride, padding, dilation, groups, out_sizes=None):
    """Convolution of canonical arguments. Returns ``(N, O, *out)`` in ``x.dtype``."""
    from . import _algorithms
    out_dtype = x.dtype
    cdt = compute_dtype(out_dtype)
    x = x.astype(cdt, copy=False)
    w = w.astype(cdt, copy=False)
    kernel = w.shape[2:]
    if out_sizes is None:
        from . import shapes
        out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d)
                          for i, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation))
    n, o_ch = x.shape[0], w.shape[0]
    if n == 0 or math.prod(out_sizes) == 0:
        y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=cdt)
    else:
        y = _algorithms.conv(x, w, stride, padding, dilation, groups, tuple(out_sizes))
    if b is not None:
        y += b.astype(cdt, copy=False).reshape((1, -1) + (1,) * len(kernel))
    return y.astype(out_dtype, copy=False)


def conv_transpose_forward(x, w, b, stride, padding, output_padding, groups, dilation, out_sizes=None):
    """Transposed convolution of canonical arguments. Returns ``(N, O, *out)`` in ``x.dtype``."""
    from . import _algorithms, shapes
    out_dtype = x.dtype
    cdt = compute_dtype(out_dtype)
    x = x.astype(cdt, copy=False)
    w = w.astype(cdt, copy=False)
    kernel = w.shape[2:]
    if out_sizes is None:
        out_sizes = tuple(shapes.conv_transpose_output_size(i, k, s, p, d, op) for i, k, s, p, d, op in
                          zip(x.shape[2:], kernel, stride, padding, dilation, output_padding))
    n, o_ch = x.shape[0], w.shape[1] * groups
    if n == 0 or math.prod(out_sizes) == 0 or math.prod(x.shape[2:]) == 0:
        y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=cdt)
    else:
        y = _algorithms.conv_transpose(x, w, stride, padding, groups, dilation, tuple(out_sizes))
    if b is not None:
        y += b.astype(cdt, copy=False).reshape((1, -1) + (1,) * len(kernel))
    return y.astype(out_dtype, copy=False)

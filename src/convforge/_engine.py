"""The N-d convolution engine: one core for every rank, for convolution and transposed convolution.

Everything here takes canonical, validated arguments (see ``_api``):
``x (N, C, *S)`` batched, weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``), ``stride``/``dilation``/
``output_padding`` int tuples, ``padding`` a tuple of ``(lo, hi)`` pairs.

Forward convolution is im2col + one batched matrix product over ``(N, G)``::

    cols (N, G, Cg*K, P)  = windows of the zero-padded input          (P = prod(out spatial), K = prod(kernel))
    y    (N, G, Og, P)    = W (G, Og, Cg*K) @ cols (N, G, Cg*K, P)

Transposed convolution is the adjoint: one product then a scatter-add (col2im) over kernel taps::

    cols (N, G, Og*K, Pin) = W^T (G, Og*K, Cg) @ x (N, G, Cg, Pin)
    y[..., t*d + j*s] += cols[..., t, j]   for every tap t, cropped by the padding

Workspace is bounded: the batch (and if needed the first output dimension) is processed in tiles so that an
im2col buffer stays below :func:`convforge.config` ``workspace_limit`` (default max(64 MiB, output size)).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _config


def compute_dtype(dtype) -> np.dtype:
    """float16 is accumulated in float32 (as PyTorch does on CPU); everything else in its own dtype."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def pad_zeros(x, padding):
    """Zero-pad the spatial dims of ``x (N, C, *S)`` by per-side pairs; negative values crop."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        crop = (slice(None), slice(None)) + tuple(
            slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding))
        x = x[crop]
        padding = tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(padding))


def window_view(xp, kernel, stride, dilation, out_sizes):
    """Strided view ``(N, C, *K, *O)`` of a padded input: element ``[n, c, t, o] = xp[n, c, o*s + t*d]``."""
    n_sp = len(kernel)
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sizes)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n_sp)) + \
        tuple(st[2 + i] * stride[i] for i in range(n_sp))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


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


def conv_im2col(x, w, stride, padding, dilation, groups, out_sizes):
    n, c = x.shape[:2]
    o_ch, cg = w.shape[:2]
    kernel = w.shape[2:]
    g, og = groups, o_ch // groups
    k_prod, p_prod = math.prod(kernel), math.prod(out_sizes)
    xp = pad_zeros(x, padding)
    wmat = w.reshape(g, og, cg * k_prod)                                # (G, Og, Cg*K)
    y = np.empty((n, g, og, p_prod), dtype=x.dtype)
    per_sample = c * k_prod * p_prod * x.itemsize
    limit = _config.workspace_limit(n * o_ch * p_prod * x.itemsize)
    if per_sample > limit and len(out_sizes) > 0 and out_sizes[0] > 1:
        return _conv_im2col_rows(xp, w, stride, dilation, groups, out_sizes, limit)
    for a, z in _batch_tiles(n, per_sample, limit):
        win = window_view(xp[a:z], kernel, stride, dilation, out_sizes)  # (n, C, *K, *O) view
        cols = win.reshape(z - a, g, cg * k_prod, p_prod)                # copy: (n, G, Cg*K, P)
        np.matmul(wmat, cols, out=y[a:z])                                # (n, G, Og, P)
    return y.reshape((n, o_ch) + tuple(out_sizes))


def _conv_im2col_rows(xp, w, stride, dilation, groups, out_sizes, limit):
    # one sample's im2col is over the limit: tile along the first output dimension too
    n = xp.shape[0]
    kernel = w.shape[2:]
    rest = math.prod(out_sizes[1:])
    per_row = xp.shape[1] * math.prod(kernel) * rest * xp.itemsize
    rows = max(1, int(limit // max(per_row, 1)))
    y = np.empty((n, w.shape[0]) + tuple(out_sizes), dtype=xp.dtype)
    s0, d0 = stride[0], dilation[0]
    span0 = d0 * (kernel[0] - 1) + 1
    for bi in range(n):
        for r0 in range(0, out_sizes[0], rows):
            r1 = min(r0 + rows, out_sizes[0])
            sub = xp[bi:bi + 1, :, r0 * s0:(r1 - 1) * s0 + span0]
            part = conv_im2col(sub, w, stride, ((0, 0),) * len(kernel), dilation, groups,
                               (r1 - r0,) + tuple(out_sizes[1:]))
            y[bi:bi + 1, :, r0:r1] = part
    return y


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


def conv_transpose_col2im(x, w, stride, padding, groups, dilation, out_sizes):
    n, c = x.shape[:2]
    og = w.shape[1]
    kernel, in_sizes = w.shape[2:], x.shape[2:]
    g, cg = groups, c // groups
    k_prod, p_in = math.prod(kernel), math.prod(in_sizes)
    wt = w.reshape(g, cg, og * k_prod).transpose(0, 2, 1)              # (G, Og*K, Cg)
    # buffer covering every scatter target and the requested output window
    lo = tuple(p[0] for p in padding)
    full = tuple(max((i - 1) * s + d * (k - 1) + 1, l + o)
                 for i, s, d, k, l, o in zip(in_sizes, stride, dilation, kernel, lo, out_sizes))
    y = np.empty((n, g * og) + tuple(out_sizes), dtype=x.dtype)
    per_sample = (g * og * k_prod * p_in + g * og * math.prod(full)) * x.itemsize
    limit = _config.workspace_limit(y.nbytes)
    for a, z in _batch_tiles(n, per_sample, limit):
        xs = x[a:z].reshape(z - a, g, cg, p_in)
        cols = np.matmul(wt, xs)                                        # (n, G, Og*K, Pin)
        cols = cols.reshape((z - a, g * og) + tuple(kernel) + tuple(in_sizes))
        buf = np.zeros((z - a, g * og) + full, dtype=x.dtype)
        for tap in itertools.product(*(range(k) for k in kernel)):
            target = (slice(None), slice(None)) + tuple(
                slice(t * d, t * d + (i - 1) * s + 1, s) for t, d, i, s in zip(tap, dilation, in_sizes, stride))
            buf[target] += cols[(slice(None), slice(None)) + tap]
        crop = (slice(None), slice(None)) + tuple(slice(l, l + o) for l, o in zip(lo, out_sizes))
        y[a:z] = buf[crop]
    return y

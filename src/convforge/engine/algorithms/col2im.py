"""Transposed convolution by col2im: one product, then a scatter-add over kernel taps::

    cols (n, G, Og*K, Pin) = W^T (G, Og*K, Cg) @ x (n, G, Cg, Pin)
    y[..., i*s + t*d] += cols[..., t, i]          (every tap t; then cropped by the padding)

The batch is tiled so ``cols`` and the scatter buffer stay in cache and under the workspace bound; a sample
whose columns alone exceed the bound is split into blocks of output channels times bands of input rows.  With Numba
the scatter is one compiled kernel; without it, one strided NumPy add per tap.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _config
from ..._algos import as_3d, numba_kernels, triple
from ..arrays import batch_tiles
from . import Algorithm, Role

CACHE_TILE_BYTES = 8 * 2 ** 20


def col2im(x, w, stride, padding, dilation, groups, out_sizes):
    n, c = x.shape[:2]
    og = w.shape[1]
    kernel, in_sizes = w.shape[2:], x.shape[2:]
    g, cg = groups, c // groups
    k_prod, p_in = math.prod(kernel), math.prod(in_sizes)
    lo = tuple(p[0] for p in padding)
    full = tuple(max((i - 1) * s + d * (k - 1) + 1, l + o)
                 for i, s, d, k, l, o in zip(in_sizes, stride, dilation, kernel, lo, out_sizes))
    y = np.empty((n, g * og) + tuple(out_sizes), dtype=x.dtype)
    per_sample = (g * og * k_prod * p_in + g * og * math.prod(full)) * x.itemsize
    limit = _config.workspace_limit(y.nbytes)
    kernels = numba_kernels(x.dtype) if len(w.shape) <= 5 else None    # kernels cover 1 to 3 spatial dims
    if per_sample > limit:
        for b in range(n):
            _col2im_bands(x[b:b + 1], w, stride, dilation, groups, lo, full, limit, kernels, y[b:b + 1])
        return y
    wt = w.reshape(g, cg, og * k_prod).transpose(0, 2, 1)              # (G, Og*K, Cg)
    crop = (slice(None), slice(None)) + tuple(slice(l, l + o) for l, o in zip(lo, out_sizes))
    for a, z in batch_tiles(n, per_sample, min(limit, max(CACHE_TILE_BYTES, per_sample))):
        xs = x[a:z].reshape(z - a, g, cg, p_in)
        cols = np.matmul(wt, xs)                                        # (n, G, Og*K, Pin)
        cols = cols.reshape((z - a, g * og) + tuple(kernel) + tuple(in_sizes))
        buf = np.zeros((z - a, g * og) + full, dtype=x.dtype)
        _scatter(cols, stride, dilation, buf, kernels)
        y[a:z] = buf[crop]
        del xs, cols, buf                                               # before the next tile is allocated
    return y


def _scatter(cols, stride, dilation, buf, kernels):
    """``buf[..., i*s + t*d] += cols[..., t, i]`` for ``cols (n, O, *K, *S)`` (Numba, else a strided add per tap)."""
    nd = len(stride)
    kernel, in_sizes = cols.shape[2:2 + nd], cols.shape[2 + nd:]
    if kernels is not None:
        kernels.col2im(as_3d(as_3d(cols, 2 + nd, nd), 2, nd), *triple(stride, 1), *triple(dilation, 1),
                       as_3d(buf, 2, nd))
        return
    for tap in itertools.product(*(range(k) for k in kernel)):
        target = (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (i - 1) * s + 1, s) for t, d, i, s in zip(tap, dilation, in_sizes, stride))
        buf[target] += cols[(slice(None), slice(None)) + tap]


ADD_BUFFER_ELEMENTS = 1024


def _add_into(target, part):
    """``target += part`` for strided views without a copy of the slice (``y[...] += part`` copies it on
    assignment) and with small iteration buffers (NumPy's default buffers 3 x 8192 elements per strided ufunc
    call, more than a small workspace bound allows; the setting is per thread/context)."""
    old = np.setbufsize(ADD_BUFFER_ELEMENTS)
    try:
        np.add(target, part, out=target)
    finally:
        np.setbufsize(old)


def _col2im_bands(x, w, stride, dilation, groups, lo, full, limit, kernels, y):
    """One sample ``x (1, C, *S)`` whose columns and buffer exceed the bound: blocks of output channels times
    bands of input rows, each band's columns scattered into a buffer of the rows it reaches and added into
    ``y`` (bands overlap by the kernel span, so they accumulate)."""
    c, og = x.shape[1], w.shape[1]
    g, cg = groups, c // groups
    kernel, in_sizes, out_sizes = w.shape[2:], x.shape[2:], y.shape[2:]
    k_prod, item = math.prod(kernel), x.itemsize
    rest_in, rest_full = math.prod(in_sizes[1:]), math.prod(full[1:])
    s0, span0 = stride[0], dilation[0] * (kernel[0] - 1) + 1
    per_channel_row = g * (k_prod * rest_in + s0 * rest_full)          # columns and buffer rows, elements
    per_channel_fixed = g * span0 * rest_full
    room = limit // item - c * rest_in
    ob = max(1, min(og, room // (per_channel_row + per_channel_fixed)))
    rows = max(1, (limit // item - ob * per_channel_fixed) // (ob * per_channel_row + c * rest_in))
    y[...] = 0
    yg = y.reshape((g, og) + tuple(out_sizes))
    rest_crop = tuple(slice(l, l + o) for l, o in zip(lo[1:], out_sizes[1:]))
    for o0 in range(0, og, ob):
        o1 = min(o0 + ob, og)
        wt = w.reshape(g, cg, og, k_prod)[:, :, o0:o1].reshape(g, cg, (o1 - o0) * k_prod).transpose(0, 2, 1)
        for r0 in range(0, in_sizes[0], rows):
            r1 = min(r0 + rows, in_sizes[0])
            xs = x[:, :, r0:r1].reshape(1, g, cg, (r1 - r0) * rest_in)                 # copy
            cols = np.matmul(wt, xs).reshape((1, g * (o1 - o0)) + tuple(kernel) + (r1 - r0,) + in_sizes[1:])
            reach = (r1 - r0 - 1) * s0 + span0                                          # buffer rows
            buf = np.zeros((1, g * (o1 - o0), reach) + tuple(full[1:]), dtype=x.dtype)
            _scatter(cols, stride, dilation, buf, kernels)
            first = r0 * s0                                                             # its first full row
            a, z = max(first, lo[0]), min(first + reach, lo[0] + out_sizes[0])
            if a < z:
                part = buf.reshape((g, o1 - o0) + buf.shape[2:])[(slice(None), slice(None),
                                                                  slice(a - first, z - first)) + rest_crop]
                _add_into(yg[(slice(None), slice(o0, o1), slice(a - lo[0], z - lo[0]))], part)
                del part                            # a view: it would keep buf alive
            del xs, cols, buf


def _transpose(x, w, p):
    return col2im(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


ALGORITHM = Algorithm("col2im", {"transpose": Role(_transpose, rank=100)})

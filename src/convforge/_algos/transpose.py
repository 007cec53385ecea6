"""Transposed convolution by col2im: one product, then a scatter-add over kernel taps::

    cols (n, G, Og*K, Pin) = W^T (G, Og*K, Cg) @ x (n, G, Cg, Pin)
    y[..., i*s + t*d] += cols[..., t, i]          (every tap t; then cropped by the padding)

The batch is tiled so ``cols`` and the scatter buffer stay in cache and under the workspace bound.  With Numba
the scatter is one compiled kernel; without it, one strided NumPy add per tap.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _config
from .._engine import _batch_tiles
from . import as_3d, numba_kernels, triple

CACHE_TILE_BYTES = 8 * 2 ** 20


def col2im(x, w, stride, padding, groups, dilation, out_sizes):
    n, c = x.shape[:2]
    og = w.shape[1]
    kernel, in_sizes = w.shape[2:], x.shape[2:]
    nd = len(kernel)
    g, cg = groups, c // groups
    k_prod, p_in = math.prod(kernel), math.prod(in_sizes)
    wt = w.reshape(g, cg, og * k_prod).transpose(0, 2, 1)              # (G, Og*K, Cg)
    lo = tuple(p[0] for p in padding)
    full = tuple(max((i - 1) * s + d * (k - 1) + 1, l + o)
                 for i, s, d, k, l, o in zip(in_sizes, stride, dilation, kernel, lo, out_sizes))
    y = np.empty((n, g * og) + tuple(out_sizes), dtype=x.dtype)
    per_sample = (g * og * k_prod * p_in + g * og * math.prod(full)) * x.itemsize
    limit = _config.workspace_limit(y.nbytes)
    kernels = numba_kernels(x.dtype) if len(w.shape) <= 5 else None    # kernels cover 1 to 3 spatial dims
    crop = (slice(None), slice(None)) + tuple(slice(l, l + o) for l, o in zip(lo, out_sizes))
    for a, z in _batch_tiles(n, per_sample, min(limit, max(CACHE_TILE_BYTES, per_sample))):
        xs = x[a:z].reshape(z - a, g, cg, p_in)
        cols = np.matmul(wt, xs)                                        # (n, G, Og*K, Pin)
        cols = cols.reshape((z - a, g * og) + tuple(kernel) + tuple(in_sizes))
        buf = np.zeros((z - a, g * og) + full, dtype=x.dtype)
        if kernels is not None:
            kernels.col2im(as_3d(as_3d(cols, 2 + nd, nd), 2, nd), *triple(stride, 1), *triple(dilation, 1),
                           as_3d(buf, 2, nd))
        else:
            for tap in itertools.product(*(range(k) for k in kernel)):
                target = (slice(None), slice(None)) + tuple(
                    slice(t * d, t * d + (i - 1) * s + 1, s)
                    for t, d, i, s in zip(tap, dilation, in_sizes, stride))
                buf[target] += cols[(slice(None), slice(None)) + tap]
        y[a:z] = buf[crop]
        del xs, cols, buf                                               # before the next tile is allocated
    return y

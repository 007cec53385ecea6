"""``pointwise``: every kernel size is 1, so the input pixels already are the columns: ``y[n] = W @ x[n]`` on
the (strided) pixels, one batched product over groups per batch tile (any stride, padding, groups).
"""
from __future__ import annotations

import math

import numpy as np

from ... import _config
from ..arrays import batch_tiles, pad_zeros
from . import Algorithm, Role, Threading


def pointwise(x, w, stride, padding, dilation, groups, out_sizes):
    """1x1 kernels: no windows at all, ``y[n] = W @ x[n]`` on the (strided) input pixels."""
    n, c = x.shape[:2]
    o_ch = w.shape[0]
    g = groups
    p = math.prod(out_sizes)
    wmat = w.reshape(g, o_ch // g, c // g)                              # (G, Og, Cg)
    y = np.empty((n, g, o_ch // g, p), dtype=x.dtype)
    copies = any(s != 1 for s in stride) or any(lo or hi for lo, hi in padding)
    padded = math.prod(i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding))
    per_sample = c * (padded + p) * x.itemsize if copies else 1           # padded copy + strided pixels
    for a, z in batch_tiles(n, per_sample, _config.workspace_limit(y.nbytes)):
        xp = pad_zeros(x[a:z], padding)
        xp = xp[(slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in zip(out_sizes, stride))]
        xs = np.ascontiguousarray(xp).reshape(z - a, g, c // g, p)    # (n, G, Cg, P)
        np.matmul(wmat, xs, out=y[a:z])                                 # (n, G, Og, P)
        del xp, xs                                                      # before the next tile is allocated
    return y.reshape((n, o_ch) + tuple(out_sizes))


def _unfit(problem):
    if not problem.is_pointwise:
        return f"pointwise needs a 1x1 kernel, got kernel {problem.kernel}"
    return None


def _forward(x, w, p):
    return pointwise(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


ALGORITHM = Algorithm("pointwise", {"forward": Role(_forward, rank=0, unfit=_unfit)},
                      Threading(blas_threaded=True))

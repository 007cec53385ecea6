"""Plain-loop reference convolution: slow, obvious, and the oracle for every fast path.

Inputs are canonical and batched: ``x (N, C, *S)``, weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``),
padding as ``(lo, hi)`` pairs.  Only for small sizes (tests and explanations).
"""
from __future__ import annotations

import itertools

import numpy as np

from . import shapes
from ._indexing import conv_window, transpose_scatter


def _acc_dtype(dtype):
    return np.float32 if dtype == np.float16 else dtype.type


def conv_reference(x, w, b, stride, padding, dilation, groups):
    x, w = np.asarray(x), np.asarray(w)
    n, c = x.shape[:2]
    o_ch, cg = w.shape[:2]
    kernel, sizes = w.shape[2:], x.shape[2:]
    out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d)
                      for i, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    acc = _acc_dtype(x.dtype)
    y = np.zeros((n, o_ch) + out_sizes, dtype=acc)
    og = o_ch // groups
    for bi, oc in itertools.product(range(n), range(o_ch)):
        g = oc // og
        for pos in itertools.product(*(range(o) for o in out_sizes)):
            total = acc(0)
            for tap, idx, inside in conv_window(pos, kernel, stride, padding, dilation, sizes):
                if not inside:
                    continue
                for ci in range(cg):
                    total = total + acc(x[(bi, g * cg + ci) + idx]) * acc(w[(oc, ci) + tap])
            if b is not None:
                total = total + acc(b[oc])
            y[(bi, oc) + pos] = total
    return y.astype(x.dtype)


def conv_transpose_reference(x, w, b, stride, padding, output_padding, groups, dilation):
    x, w = np.asarray(x), np.asarray(w)
    n, c = x.shape[:2]
    cg, og = c // groups, w.shape[1]
    kernel, sizes = w.shape[2:], x.shape[2:]
    out_sizes = tuple(shapes.conv_transpose_output_size(i, k, s, p, d, op)
                      for i, k, s, p, d, op in zip(sizes, kernel, stride, padding, dilation, output_padding))
    acc = _acc_dtype(x.dtype)
    y = np.zeros((n, og * groups) + out_sizes, dtype=acc)
    for bi, ci in itertools.product(range(n), range(c)):
        g = ci // cg
        for pos in itertools.product(*(range(i) for i in sizes)):
            for tap, idx, inside in transpose_scatter(pos, kernel, stride, padding, dilation, out_sizes):
                if not inside:
                    continue
                for oj in range(og):
                    y[(bi, g * og + oj) + idx] += acc(x[(bi, ci) + pos]) * acc(w[(ci, oj) + tap])
    if b is not None:
        y += np.asarray(b, dtype=acc).reshape((1, -1) + (1,) * len(sizes))
    return y.astype(x.dtype)

"""Matrix-product algorithms: ``pointwise`` (1x1 kernels, any stride) and ``im2col`` (everything).

im2col copies the windows of the padded input into a ``(C*K, P)`` matrix per sample and multiplies it by the
weight ``(O, C*K)`` (one batched product over groups)::

    cols (n, G, Cg*K, P) = windows of xp              (P = prod(out), K = prod(kernel))
    y    (n, G, Og, P)   = W (G, Og, Cg*K) @ cols

The batch is processed in tiles small enough to stay in cache (and always under the workspace bound); a single
sample whose windows exceed the bound is tiled along its output dimensions.  The windows are copied by NumPy from
a strided view (measured faster than a Numba packing loop: NumPy copies whole contiguous rows).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _config
from .._engine import _batch_tiles, pad_zeros, window_view

# A tile of im2col columns this size stays in the last-level cache between packing and the product.
CACHE_TILE_BYTES = 8 * 2 ** 20


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
    for a, z in _batch_tiles(n, per_sample, _config.workspace_limit(y.nbytes)):
        xp = pad_zeros(x[a:z], padding)
        xp = xp[(slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in zip(out_sizes, stride))]
        xs = np.ascontiguousarray(xp).reshape(z - a, g, c // g, p)    # (n, G, Cg, P)
        np.matmul(wmat, xs, out=y[a:z])                                 # (n, G, Og, P)
        del xp, xs                                                      # before the next tile is allocated
    return y.reshape((n, o_ch) + tuple(out_sizes))


def im2col(x, w, stride, padding, dilation, groups, out_sizes):
    """Windows copied into columns, then one batched matrix product per tile."""
    n, c = x.shape[:2]
    o_ch = w.shape[0]
    kernel = w.shape[2:]
    p_prod = math.prod(out_sizes)
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding))
    per_sample = (unfold_elements(c, o_ch, kernel, stride, dilation, groups, out_sizes)
                  + c * math.prod(padded)) * x.itemsize                    # columns + padded copy
    limit = _config.workspace_limit(n * o_ch * p_prod * x.itemsize)
    y = np.empty((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    if per_sample > limit and out_sizes[0] > 1:
        for bi in range(n):
            _im2col_rows(x[bi:bi + 1], w, stride, padding, dilation, groups, out_sizes, limit, y[bi:bi + 1])
        return y
    tile = min(limit, max(CACHE_TILE_BYTES, per_sample))
    for a, z in _batch_tiles(n, per_sample, tile):
        _im2col_tile(pad_zeros(x[a:z], padding), w, stride, dilation, groups, out_sizes, y[a:z])
    return y


def uses_slabs(kernel, stride, dilation, groups):
    """3-D kernels deeper than their depth stride: unfold each input depth slice once (see :func:`_slab_tile`)."""
    return len(kernel) == 3 and groups == 1 and dilation[0] == 1 and kernel[0] > stride[0]


def unfold_elements(c, o_ch, kernel, stride, dilation, groups, out_sizes):
    """Workspace elements (columns, plus the product buffer of the slab path) of one sample's ``out_sizes``."""
    if uses_slabs(kernel, stride, dilation, groups):
        depth = (out_sizes[0] - 1) * stride[0] + kernel[0]
        plane = math.prod(out_sizes[1:])
        return depth * c * math.prod(kernel[1:]) * plane + o_ch * math.prod(out_sizes)
    return c * math.prod(kernel) * math.prod(out_sizes)


def _slab_tile(xp, w, stride, dilation, out_sizes, y):
    """3-D im2col that unfolds every input depth slice only once (over the height/width taps), instead of once
    per depth tap: output depth ``od`` is one product with ``kd`` consecutive unfolded slices, which lie next to
    each other in memory (a view, no copy)::

        cols (n, Dused, C*kh*kw, Ho*Wo)                                unfolded depth slices
        y[:, :, od] = W' (O, kd*C*kh*kw) @ cols[:, od*sd : od*sd + kd]  W' = w with the depth tap outermost
    """
    n, c = xp.shape[:2]
    o_ch = w.shape[0]
    kd, kh, kw = w.shape[2:]
    sd, sh, sw = stride
    _, dh, dw = dilation
    do_, ho, wo = out_sizes
    used = (do_ - 1) * sd + kd
    st = xp.strides
    win = as_strided(xp, shape=(n, used, c, kh, kw, ho, wo),
                     strides=(st[0], st[2], st[1], st[3] * dh, st[4] * dw, st[3] * sh, st[4] * sw),
                     writeable=False)                                   # (n, D, C, kh, kw, Ho, Wo) view
    cols = win.reshape(n, used, c * kh * kw, ho * wo)                  # copy
    wmat = w.transpose(0, 2, 1, 3, 4).reshape(o_ch, kd * c * kh * kw)  # (O, kd*C*kh*kw)
    out = np.empty((n, do_, o_ch, ho * wo), dtype=xp.dtype)
    for od in range(do_):
        slab = cols[:, od * sd:od * sd + kd].reshape(n, kd * c * kh * kw, ho * wo)   # view
        np.matmul(wmat, slab, out=out[:, od])                          # (n, O, Ho*Wo)
    y[...] = out.transpose(0, 2, 1, 3).reshape(y.shape)


def _im2col_tile(xp, w, stride, dilation, groups, out_sizes, y):
    """``y (n, O, *out) = W @ cols(xp)`` for one tile ``xp (n, C, *padded)``."""
    if uses_slabs(w.shape[2:], stride, dilation, groups):
        return _slab_tile(xp, w, stride, dilation, out_sizes, y)
    n, c = xp.shape[:2]
    o_ch, cg = w.shape[:2]
    kernel = w.shape[2:]
    g = groups
    k_prod, p_prod = math.prod(kernel), math.prod(out_sizes)
    wmat = w.reshape(g, o_ch // g, cg * k_prod)                         # (G, Og, Cg*K)
    win = window_view(xp, kernel, stride, dilation, out_sizes)         # (n, C, *K, *O) view
    cols = win.reshape(n, g, cg * k_prod, p_prod)                       # copy: (n, G, Cg*K, P)
    if y.flags.c_contiguous:
        np.matmul(wmat, cols, out=y.reshape(n, g, o_ch // g, p_prod))  # (n, G, Og, P)
    else:
        y[...] = np.matmul(wmat, cols).reshape(y.shape)


def _im2col_rows(x, w, stride, padding, dilation, groups, out_sizes, limit, y):
    """One sample ``x (1, C, *S)`` whose columns exceed the bound: bands of output rows, each padded and
    unfolded on its own (so neither the columns nor the padded copy of the whole sample ever exist)."""
    c, o_ch = x.shape[1], w.shape[0]
    kernel = w.shape[2:]
    k_prod, rest_out = math.prod(kernel), math.prod(out_sizes[1:])
    s0, d0 = stride[0], dilation[0]
    span0 = d0 * (kernel[0] - 1) + 1
    rest_padded = math.prod(i + lo + hi for i, (lo, hi) in zip(x.shape[3:], padding[1:]))
    if uses_slabs(kernel, stride, dilation, groups):      # each output depth row adds s0 unfolded slices
        per_row = ((c * math.prod(kernel[1:]) * s0 + 2 * o_ch) * rest_out + c * s0 * rest_padded) * x.itemsize
        fixed = (c * math.prod(kernel[1:]) * kernel[0] * rest_out + c * span0 * rest_padded) * x.itemsize
    else:
        per_row = ((c * k_prod + o_ch) * rest_out + c * s0 * rest_padded) * x.itemsize   # cols, product, band
        fixed = c * span0 * rest_padded * x.itemsize
    rows = max(1, int((limit - fixed) // max(per_row, 1)))
    lo0 = padding[0][0]
    for r0 in range(0, out_sizes[0], rows):
        r1 = min(r0 + rows, out_sizes[0])
        first, last = r0 * s0 - lo0, (r1 - 1) * s0 + span0 - lo0          # input rows [first, last)
        xp = padded_band(x, first, last, padding[1:])
        sub_out = (r1 - r0,) + tuple(out_sizes[1:])
        _im2col_blocks(xp, w, stride, dilation, groups, sub_out, limit - xp.nbytes, y[:, :, r0:r1], 1)
        del xp


def _im2col_blocks(xp, w, stride, dilation, groups, out_sizes, limit, y, dim):
    """``y = conv(xp)`` for a padded region, tiled along spatial dim ``dim`` (and deeper ones) when the
    columns of the whole region exceed ``limit``."""
    c, o_ch = xp.shape[1], w.shape[0]
    k_prod = math.prod(w.shape[2:])
    cost = (unfold_elements(c, o_ch, w.shape[2:], stride, dilation, groups, out_sizes)
            + o_ch * math.prod(out_sizes)) * xp.itemsize
    if cost <= limit or dim >= len(out_sizes) or out_sizes[dim] == 1 and dim + 1 >= len(out_sizes):
        _im2col_tile(np.ascontiguousarray(xp), w, stride, dilation, groups, out_sizes, y)
        return
    s, d, k = stride[dim], dilation[dim], w.shape[2 + dim]
    span = d * (k - 1) + 1
    outer_in = math.prod(xp.shape[2:2 + dim]) * math.prod(xp.shape[3 + dim:])     # input cells per row
    per_row = ((c * k_prod + o_ch) * math.prod(out_sizes[dim + 1:]) * math.prod(out_sizes[:dim])
               + c * s * outer_in) * xp.itemsize
    rows = max(1, int(limit // max(per_row, 1)))
    for r0 in range(0, out_sizes[dim], rows):
        r1 = min(r0 + rows, out_sizes[dim])
        take = (slice(None),) * (2 + dim)
        sub = xp[take + (slice(r0 * s, (r1 - 1) * s + span),)]
        sub_out = tuple(out_sizes[:dim]) + (r1 - r0,) + tuple(out_sizes[dim + 1:])
        _im2col_blocks(sub, w, stride, dilation, groups, sub_out, limit, y[take + (slice(r0, r1),)], dim + 1)


def padded_band(x, first, last, padding_rest):
    """Rows ``[first, last)`` of ``x`` zero-padded along the first spatial dim (rows outside ``[0, H)`` are
    zeros) and by ``padding_rest`` along the others: ``(N, C, last - first, *padded rest)``, built in one buffer
    (no intermediate padded copy: bands exist to save memory)."""
    if any(lo < 0 or hi < 0 for lo, hi in padding_rest):       # cropping: crop the other dims first
        x = pad_zeros(x, ((0, 0),) + tuple(padding_rest))
        padding_rest = ((0, 0),) * len(padding_rest)
    sizes = tuple(i + lo + hi for i, (lo, hi) in zip(x.shape[3:], padding_rest))
    band = np.zeros(x.shape[:2] + (last - first,) + sizes, dtype=x.dtype)
    a, z = max(first, 0), max(min(last, x.shape[2]), 0)
    if z > a:
        inner = tuple(slice(lo, lo + i) for i, (lo, _) in zip(x.shape[3:], padding_rest))
        band[(slice(None), slice(None), slice(a - first, z - first)) + inner] = x[:, :, a:z]
    return band

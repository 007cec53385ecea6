"""``im2col``: the algorithm that runs everything (the fallback of automatic selection), forward and weight
gradient.

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

from ... import _config
from ..._algos import threads
from ..arrays import band_of_rows, batch_tiles, pad_zeros, window_view
from ..parallel import worth_splitting
from . import Algorithm, Role, Threading

# A tile of im2col columns this size stays in the last-level cache between packing and the product.
CACHE_TILE_BYTES = 8 * 2 ** 20


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
    for a, z in batch_tiles(n, per_sample, tile):
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
    for r0, r1, xp in _row_bands(x, kernel, stride, padding, dilation, out_sizes[0], rows):
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
    take = (slice(None),) * (2 + dim)
    for r0, r1, reads in _row_slices(out_sizes[dim], rows, s, span):
        sub = xp[take + (reads,)]
        sub_out = tuple(out_sizes[:dim]) + (r1 - r0,) + tuple(out_sizes[dim + 1:])
        _im2col_blocks(sub, w, stride, dilation, groups, sub_out, limit, y[take + (slice(r0, r1),)], dim + 1)


def weight_grad(x, gy, kernel, stride, padding, dilation, groups):
    """Gradient w.r.t. the weight ``(O, C/g, *kernel)`` of ``gy = conv(x, w)``: windows of the padded input
    times ``grad_output``, one batched matmul over groups per batch (and row) tile::

        gW (G, Og, Cg*K) = gy (G, Og, N*P) @ cols(xp)^T (G, N*P, Cg*K)
    """
    n, c = x.shape[:2]
    o_ch = gy.shape[1]
    cg, og = c // groups, o_ch // groups
    kernel = tuple(kernel)
    gw = np.zeros((groups, og, cg * math.prod(kernel)), dtype=x.dtype)
    if n > 0 and math.prod(gy.shape[2:]) > 0 and c > 0:
        parts = _weight_grad_parts(x, gy, kernel, stride, padding, dilation, groups, gw.nbytes)
        for part in threads.run_parts(parts) if len(parts) > 1 else [parts[0]()]:
            gw += part
    return gw.reshape((o_ch, cg) + kernel)


def _weight_grad_parts(x, gy, kernel, stride, padding, dilation, g, gw_bytes):
    """Independent partial sums of the weight gradient: batch chunks run on separate threads (with a
    single-threaded BLAS, see ``_algos.threads``), each with its own accumulator and an equal share of the
    workspace bound."""
    n = x.shape[0]
    t = threads.thread_count()
    macs = gy.size * (x.shape[1] // g) * math.prod(kernel)
    chunks = t if t > 1 and n >= t and worth_splitting(macs) else 1
    step = -(-n // chunks)
    share = max(1, (_config.workspace_limit(gw_bytes) - (chunks - 1) * gw_bytes) // chunks)

    def part(a, z):
        def run():
            acc = np.zeros((g, gy.shape[1] // g, (x.shape[1] // g) * math.prod(kernel)), dtype=x.dtype)
            for xs, gys in _weight_grad_tiles(x[a:z], gy[a:z], kernel, stride, padding, dilation, share):
                acc += _weight_grad_tile(xs, gys, kernel, stride, dilation, g)
            return acc
        return run
    return [part(a, min(a + step, n)) for a in range(0, n, step)]


def _weight_grad_tile(xp, gy, kernel, stride, dilation, g):
    n, c = xp.shape[:2]
    o_ch, out_sizes = gy.shape[1], gy.shape[2:]
    n_sp = len(kernel)
    k_prod, p_prod = math.prod(kernel), math.prod(out_sizes)
    win = window_view(xp, kernel, stride, dilation, out_sizes)      # (n, C, *K, *O) view
    order = (1,) + tuple(range(2, 2 + n_sp)) + (0,) + tuple(range(2 + n_sp, 2 + 2 * n_sp))
    cols = win.transpose(order).reshape(g, (c // g) * k_prod, n * p_prod)   # copy: (G, Cg*K, n*P)
    gys = gy.reshape(n, g, o_ch // g, p_prod).transpose(1, 2, 0, 3)        # (G, Og, n, P)
    gys = gys.reshape(g, o_ch // g, n * p_prod)                             # (G, Og, n*P), a copy if n > 1
    return np.matmul(gys, cols.transpose(0, 2, 1))                          # (G, Og, Cg*K)


def _weight_grad_tiles(x, gy, kernel, stride, padding, dilation, limit):
    """(zero-padded input, grad_output) tiles over the batch, and over bands of the first output dim when one
    sample's workspace exceeds ``limit``; each tile is padded on its own, so that its padded copy, columns and
    reordered grad_output together stay under ``limit``."""
    n, c = x.shape[:2]
    o_ch, out_sizes = gy.shape[1], gy.shape[2:]
    k_prod, item = math.prod(kernel), x.itemsize
    rest_padded = math.prod(i + lo + hi for i, (lo, hi) in zip(x.shape[3:], padding[1:]))
    rest_out = math.prod(out_sizes[1:])
    padded0 = x.shape[2] + sum(padding[0])
    per_sample = ((c * k_prod + o_ch) * math.prod(out_sizes) + c * padded0 * rest_padded) * item
    if per_sample <= limit or len(out_sizes) == 0 or out_sizes[0] <= 1:
        for a, z in batch_tiles(n, per_sample, limit):
            yield pad_zeros(x[a:z], padding), gy[a:z]
        return
    span0 = dilation[0] * (kernel[0] - 1) + 1
    per_row = ((c * k_prod + o_ch) * rest_out + c * stride[0] * rest_padded) * item
    rows = max(1, int((limit - c * span0 * rest_padded * item) // max(per_row, 1)))
    for b in range(n):
        for r0, r1, band in _row_bands(x[b:b + 1], kernel, stride, padding, dilation, out_sizes[0], rows):
            yield from _weight_grad_blocks(band, gy[b:b + 1, :, r0:r1], kernel, stride, dilation,
                                           limit - band.nbytes, 1)


def _weight_grad_blocks(xp, gy, kernel, stride, dilation, limit, dim):
    """Views of a padded region ``xp`` and its ``gy`` split along spatial dim ``dim`` (and deeper ones) until
    one block's columns and reordered ``gy`` fit ``limit`` (one output row of a 3-D sample can be too big)."""
    c, o_ch = xp.shape[1], gy.shape[1]
    out_sizes = gy.shape[2:]
    cost = (c * math.prod(kernel) + o_ch) * math.prod(out_sizes) * xp.itemsize
    if cost <= limit or dim >= len(out_sizes):
        yield xp, gy
        return
    rows = max(1, int(limit // max(cost // out_sizes[dim], 1)))
    s, span = stride[dim], dilation[dim] * (kernel[dim] - 1) + 1
    take = (slice(None),) * (2 + dim)
    for r0, r1, reads in _row_slices(out_sizes[dim], rows, s, span):
        yield from _weight_grad_blocks(xp[take + (reads,)],
                                       gy[take + (slice(r0, r1),)], kernel, stride, dilation, limit, dim + 1)


def _row_slices(out_rows, rows, step, span):
    """Blocks of ``rows`` output rows along one dim (stride ``step``, kernel reach ``span``): ``(r0, r1, the slice
    of input rows they read)``; the tiling the forward and the weight gradient share."""
    for r0 in range(0, out_rows, rows):
        r1 = min(r0 + rows, out_rows)
        yield r0, r1, slice(r0 * step, (r1 - 1) * step + span)


def _row_bands(x, kernel, stride, padding, dilation, out_rows, rows):
    """Bands of ``rows`` output rows of ``x (n, C, *S)`` along its first spatial dim: ``(r0, r1, band)`` with
    ``band`` the input rows they read, zero-padded on its own (:func:`~convforge.engine.arrays.band_of_rows`).
    The generator keeps no reference: a caller that drops each band holds one at a time."""
    for r0 in range(0, out_rows, rows):
        r1 = min(r0 + rows, out_rows)
        yield r0, r1, band_of_rows(x, r0, r1, kernel, stride, padding, dilation)


def _forward(x, w, p):
    return im2col(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


def _weight_grad(x, gy, p):
    return weight_grad(x, gy, p.kernel, p.stride, p.padding, p.dilation, p.groups)


ALGORITHM = Algorithm("im2col", {"forward": Role(_forward, rank=100), "weight_grad": Role(_weight_grad, rank=100)},
                      Threading(blas_threaded=True))

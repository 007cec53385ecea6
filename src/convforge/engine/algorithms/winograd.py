"""Winograd F(4x4, 3x3) convolution for float32 3x3 kernels, stride 1, dilation 1 (Lavin & Gray, 2015).

Each 4x4 output tile is computed from a 6x6 input tile with 36 multiplications per (input, output) channel pair
instead of 144; the channel sums become 36 independent matrix products::

    U (36, G, Og, Cg)  = G w G^T            weight transform
    V (36, G, Cg, T)   = B^T d B            input transform of every tile d (T = tiles in the batch tile)
    M (36, G, Og, T)   = U @ V              36 batched matrix products
    y                  = A^T M A            output transform, cropped to the output size

The transforms use fractions (1/4, 1/6, 1/24) and sums of up to 6 values, so float32 results carry a relative
error of a few 1e-6 (see docs/PERFORMANCE.md); float64 never uses this algorithm.  With Numba the transforms
are compiled kernels with the F(4, 3) formulas written out; without, NumPy tensordots on a strided view of the tiles.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ... import _config
from ..._algos import numba_kernels
from ..._algos import threads as _threads
from ..arrays import all_finite, batch_tiles, pad_zeros, padded_band
from ..parallel import worth_splitting
from . import Algorithm, Role, Threading
from . import im2col as _im2col
from .im2col import im2col

M_OUT, R, ALPHA = 4, 3, 6
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], dtype=np.float64)

CACHE_TILE_BYTES = 8 * 2 ** 20


def weight_transform(w, groups):
    """``U (36, G, Og, Cg)`` from ``w (O, Cg, 3, 3)``: ``G w G^T`` per filter (a Numba kernel, else two plain
    matrix products)."""
    o_ch, cg = w.shape[:2]
    kernels = numba_kernels(w.dtype)
    if kernels is not None:
        u = np.empty((ALPHA * ALPHA, o_ch, cg), dtype=w.dtype)
        kernels.winograd_weight(w, u)
        return u.reshape(ALPHA * ALPHA, groups, o_ch // groups, cg)
    g = G.astype(w.dtype)
    t = w.reshape(o_ch * cg * 3, 3) @ g.T                               # (O*Cg*3a, 6v): w G^T
    t = t.reshape(o_ch * cg, 3, 6).transpose(1, 0, 2).reshape(3, -1)    # (3a, O*Cg*6v)
    u = (g @ t).reshape(6, o_ch * cg, 6).transpose(0, 2, 1)             # (6u, 6v, O*Cg): G (w G^T)
    return np.ascontiguousarray(u).reshape(ALPHA * ALPHA, groups, o_ch // groups, cg)


def winograd(x, w, stride, padding, dilation, groups, out_sizes, u=None):
    """``u``: the weight transform, when the caller already has it (the parts of a split call share one).

    The transforms mix neighbouring cells (and the tile padding), so one ``inf`` would spread as ``inf - inf =
    NaN`` over its tiles where a direct sum gives ``inf``; calls with non-finite values run through im2col, which
    gives torch's ``inf`` / ``NaN`` pattern."""
    if not all_finite(x, w):
        return im2col(x, w, stride, padding, dilation, groups, out_sizes)
    n, c = x.shape[:2]
    o_ch = w.shape[0]
    ho, wo = out_sizes
    ti, tj = -(-ho // M_OUT), -(-wo // M_OUT)
    own_u = u is None
    if own_u:
        u = weight_transform(w, groups)
    y = np.empty((n, o_ch, ho, wo), dtype=x.dtype)
    # zero padding so that every tile (rows i*4 .. i*4+5) lies inside the padded input
    need_h, need_w = ti * M_OUT + R - 1, tj * M_OUT + R - 1
    (plo, _), (qlo, _) = padding
    pads = ((plo, need_h - x.shape[2] - plo), (qlo, need_w - x.shape[3] - qlo))
    # V and M for one row of tiles (the NumPy path holds a few transposed copies of each at once)
    copies = (1, 1) if numba_kernels(x.dtype) is not None else (3, 3)
    per_tile_row = ALPHA * ALPHA * tj * (copies[0] * c + copies[1] * o_ch) * x.itemsize
    per_sample = per_tile_row * ti + c * need_h * need_w * x.itemsize    # ... plus the padded copy
    limit = max(_config.workspace_limit(y.nbytes) - (u.nbytes if own_u else 0), 1)
    if per_sample > limit:
        # one sample's transforms exceed the bound: bands of tile rows, each padded on its own
        per_band_row = per_tile_row + (c * need_w + o_ch * wo) * M_OUT * x.itemsize    # + its input and output
        band = max(1, int((limit - c * R * need_w * x.itemsize) // per_band_row))
        for bi in range(n):
            for i0 in range(0, ti, band):
                i1 = min(i0 + band, ti)
                xp = padded_band(x[bi:bi + 1], i0 * M_OUT - plo, i1 * M_OUT + R - 1 - plo, pads[1:])
                part = y[bi:bi + 1, :, i0 * M_OUT:i1 * M_OUT]
                out = np.empty(part.shape, dtype=x.dtype)
                _tile(xp, u, i1 - i0, tj, out)
                part[...] = out
                del xp, out
        return y
    for a, z in batch_tiles(n, per_sample, min(limit, max(CACHE_TILE_BYTES, per_sample))):
        _tile(np.ascontiguousarray(pad_zeros(x[a:z], pads)), u, ti, tj, y[a:z])
    return y


def _tile(xp, u, ti, tj, y):
    n, c = xp.shape[:2]
    g, og, cg = u.shape[1:]
    t = n * ti * tj
    kernels = numba_kernels(xp.dtype)
    v = _input_transform(xp, ti, tj, kernels)                                       # (36, C, T)
    mm = np.matmul(u, v.reshape(ALPHA * ALPHA, g, cg, t))                           # (36, G, Og, T)
    mm = mm.reshape(ALPHA * ALPHA, g * og, t)
    if kernels is not None:
        kernels.winograd_output(mm, ti, tj, y)
        return
    m6 = mm.reshape(ALPHA, ALPHA, g * og, n, ti, tj)
    out = np.tensordot(AT.astype(mm.dtype), m6, axes=([1], [0]))                    # (4u, 6, O, n, ti, tj)
    out = np.tensordot(out, AT.astype(mm.dtype), axes=([1], [1]))                   # (4u, O, n, ti, tj, 4v)
    out = out.transpose(2, 1, 3, 0, 4, 5).reshape(n, g * og, ti * M_OUT, tj * M_OUT)
    y[...] = out[:, :, :y.shape[2], :y.shape[3]]


def weight_grad(x, gy, padding, groups):
    """Gradient w.r.t. the weight ``(O, Cg, 3, 3)`` of the 3x3, stride-1 convolution ``gy = conv(x, w)``, by the
    adjoint of the Winograd forward pass: the forward is ``y = A^T [U * V] A`` per tile with ``U = G w G^T``, so::

        Z  (36, O, T)      = A gy A^T       every 4x4 tile of grad_output (cells past the output are zeros)
        dU (36, G, Og, Cg) = Z @ V^T        36 batched products summed over the tiles; V as in the forward
        gw                 = G^T dU G

    which is 4x fewer multiplications than the direct windows-times-gradient product.  The tiles are processed
    in chunks (batch chunks, or bands of tile rows of one sample) under the workspace bound, split over the
    threads; each part keeps its own float32 ``dU`` (a few tiles' worth of float32 rounding, like the forward) and
    the parts are summed in float64 before the (float64) weight transform adjoint."""
    n, c, h, wd = x.shape
    o_ch = gy.shape[1]
    ho, wo = gy.shape[2:]
    cg, og = c // groups, o_ch // groups
    ti, tj = -(-ho // M_OUT), -(-wo // M_OUT)
    need_h, need_w = ti * M_OUT + R - 1, tj * M_OUT + R - 1
    (plo, _), (qlo, _) = padding
    pads = ((plo, need_h - h - plo), (qlo, need_w - wd - qlo))
    kernels = numba_kernels(x.dtype)
    copies = 1 if kernels is not None else 6     # NumPy: tensordot/einsum intermediates and their copies
    per_tile_row = ALPHA * ALPHA * tj * copies * (c + o_ch) * x.itemsize       # V and Z of one row of tiles
    per_row_in = (c * M_OUT * need_w + o_ch * M_OUT * wo) * x.itemsize        # its padded input, gy copy
    du_bytes = ALPHA * ALPHA * o_ch * cg * x.itemsize
    budget = _config.workspace_limit(du_bytes)
    # Each thread's part keeps its own dU and one product; split only when they fit the bound several times over.
    t = _threads.thread_count() if 4 * du_bytes * _threads.thread_count() <= budget else 1
    limit = max(budget // t - 2 * du_bytes, 1)
    rows = max(1, min(ti, int(limit // (per_tile_row + per_row_in))))
    # chunks: (first sample, last sample, first tile row, last tile row)
    if rows >= ti:
        per = max(1, min(int(limit // ((per_tile_row + per_row_in) * ti)), -(-n // t)))
        chunks = [(a, min(a + per, n), 0, ti) for a in range(0, n, per)]
    else:
        chunks = [(b, b + 1, i0, min(i0 + rows, ti)) for b in range(n) for i0 in range(0, ti, rows)]
    if len(chunks) < t and n == 1 and ti >= 2 * t:             # one sample: split its tile rows over threads
        step = -(-ti // t)
        chunks = [(0, 1, i0, min(i0 + step, ti)) for i0 in range(0, ti, step)]

    def run(part):
        def go():
            du = np.zeros((ALPHA * ALPHA, groups, og, cg), dtype=x.dtype)
            product = np.empty_like(du)
            for a, z, i0, i1 in part:
                xp = padded_band(x[a:z], i0 * M_OUT - plo, i1 * M_OUT + R - 1 - plo, pads[1:])
                g = gy[a:z, :, i0 * M_OUT:min(i1 * M_OUT, ho)]
                v = _input_transform(xp, i1 - i0, tj, kernels)
                zz = _grad_output_transform(g, i1 - i0, tj, kernels)
                tiles = v.shape[-1]
                np.matmul(zz.reshape(ALPHA * ALPHA, groups, og, tiles),
                          v.reshape(ALPHA * ALPHA, groups, cg, tiles).transpose(0, 1, 3, 2), out=product)
                du += product
                del xp, v, zz
            return du
        return go

    if t > 1 and len(chunks) > 1 and worth_splitting(n * o_ch * cg * ho * wo * 9):
        parts = [chunks[i::t] for i in range(min(t, len(chunks)))]
    else:
        parts = [chunks]
    dus = _threads.run_parts([run(p) for p in parts])
    total = np.zeros((ALPHA * ALPHA, o_ch, cg), dtype=np.float64)
    for du in dus:
        total += du.reshape(ALPHA * ALPHA, o_ch, cg)
    gw = np.empty((o_ch, cg, R, R), dtype=np.float64)
    if kernels is not None:
        kernels.winograd_weight_adjoint(total, gw)
    else:
        m = total.reshape(ALPHA, ALPHA, o_ch, cg)
        gw[...] = np.einsum("ua,uvoc,vb->ocab", G, m, G)
    return gw.astype(x.dtype)


def _input_transform(xp, ti, tj, kernels):
    """``V (36, C, T)`` of a padded tile-aligned input ``xp (n, C, 4*ti + 2, 4*tj + 2)``."""
    n, c = xp.shape[:2]
    if kernels is not None:
        v = np.empty((ALPHA * ALPHA, c, n * ti * tj), dtype=xp.dtype)
        kernels.winograd_input(np.ascontiguousarray(xp), ti, tj, v)
        return v
    s = xp.strides
    d = as_strided(xp, (n, c, ti, tj, ALPHA, ALPHA), (s[0], s[1], s[2] * M_OUT, s[3] * M_OUT, s[2], s[3]),
                   writeable=False)                                                # (n, C, ti, tj, 6, 6) view
    d = np.tensordot(d, BT.astype(xp.dtype), axes=([4], [1]))                      # (n, C, ti, tj, 6b, 6u)
    d = np.tensordot(d, BT.astype(xp.dtype), axes=([4], [1]))                      # (n, C, ti, tj, 6u, 6v)
    return np.ascontiguousarray(d.transpose(4, 5, 1, 0, 2, 3)).reshape(ALPHA * ALPHA, c, n * ti * tj)


def _grad_output_transform(gy, ti, tj, kernels):
    """``Z (36, O, T)``: ``A D A^T`` of every 4x4 tile ``D`` of ``gy (n, O, <= 4*ti, <= 4*tj)`` (zero-extended)."""
    n, o_ch = gy.shape[:2]
    if kernels is not None:
        z = np.empty((ALPHA * ALPHA, o_ch, n * ti * tj), dtype=gy.dtype)
        kernels.winograd_grad_output(np.ascontiguousarray(gy), ti, tj, z)
        return z
    full = np.zeros((n, o_ch, ti * M_OUT, tj * M_OUT), dtype=gy.dtype)
    full[:, :, :gy.shape[2], :gy.shape[3]] = gy
    d = full.reshape(n, o_ch, ti, M_OUT, tj, M_OUT)
    a = AT.T.astype(gy.dtype)                                                      # A (6, 4)
    z = np.einsum("ur,noirjs,vs->uvonij", a, d, a)                                 # (6u, 6v, O, n, ti, tj)
    return np.ascontiguousarray(z).reshape(ALPHA * ALPHA, o_ch, n * ti * tj)


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
    """Automatic selection's rule (forward and weight gradient): the Numba transform kernels, >= 16 channels per
    group in and out and outputs of at least 20x20.  F(4x4, 3x3) needs 4x fewer multiplications, but its weight
    transform costs 36*O*C, which small outputs (14x14, 7x7) do not amortise.  With its NumPy transforms
    (tensordots over strided tile views) it was never clearly faster than im2col (forward, 2 shared cores, best
    of 7: 64@56 batch 8 54 vs 52 ms) and up to 3.2x slower (64@56 batch 1 167 vs 53 ms, 128@28 batch 8 139 vs
    71 ms); its weight gradient 1.6-13x slower."""
    return numba_kernels(np.float32) is not None and cg >= 16 and og >= 16 and min(out_sizes) >= 20


def _unfit(p):
    return winograd_unfit(p.dtype, p.kernel, p.stride, p.dilation)


def _pays(p):
    return p.groups == 1 and winograd_pays(p.in_per_group, p.out_per_group, p.out_sizes)


def _forward(x, w, p, u=None):
    return winograd(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes, u=u)


def _weight_grad(x, gy, p):
    """Its transforms would turn one inf into NaN over whole tiles: non-finite values take im2col's path."""
    if not p.is_empty and p.in_channels > 0 and all_finite(x, gy):
        return weight_grad(x, gy, p.padding, p.groups)
    return _im2col.weight_grad(x, gy, p.kernel, p.stride, p.padding, p.dilation, p.groups)


ALGORITHM = Algorithm("winograd", {
    "forward": Role(_forward, rank=30, unfit=_unfit, pays=_pays),
    "weight_grad": Role(_weight_grad, rank=10, unfit=_unfit, pays=_pays),
}, Threading(blas_threaded=True, band_multiple=M_OUT, shared=lambda w, p: weight_transform(w, p.groups)))

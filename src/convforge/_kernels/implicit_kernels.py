"""Implicit-GEMM convolution kernels (Numba, explicit SIMD vectors from :mod:`convforge._kernels.simd`).

Layout (see :mod:`convforge.engine.algorithms.implicit`): the zero-padded input is flat, one plane per channel, so at
stride 1 every kernel tap is a constant offset ``offs[t]`` and output position ``j`` (counted in the padded
plane's flat coordinates) reads ``xf[channel_base + j + offs[t]]``.  A block of ``R`` output channels times
``V`` vectors of consecutive positions is accumulated in ``R*V`` vector registers over the group's channels
and the taps: each step loads ``V`` input vectors and ``R`` weights and issues ``R*V`` fused multiply-adds.
Positions in the padding columns are computed and dropped: results are written with masked stores, one per
padded row the vectors span, ``rowmap[r]`` giving the output offset of padded row ``r`` (-1: not an output
row; ``row_width`` outputs per row).

The weight is read in its own layout ``(O, Cg, K)``, a step's ``R`` weights from ``R`` sequential streams
(packing them side by side costs a strided copy of the whole weight per call, more than the product on small
layers); when ``Og`` is not a multiple of ``R`` the caller appends zero rows.
Loops: samples, groups, bands of positions (sized by the caller so a band's input stays in cache),
output-channel blocks, vectors.  Kernels are serial and release the GIL; ``convforge.engine.algorithms.implicit`` runs
parts on threads.  ``lanes`` is the vector length (:func:`convforge._kernels.simd.lanes`).

Import this module only through :func:`convforge._algos.kernel_module`; it raises ImportError without Numba.
"""
from __future__ import annotations

from .jit import kernel
from .simd import at, vfma, vload, vstore_lanes, vsum, vzero


@kernel(boundscheck=False)
def conv_8x2(xf, xbs, xcs, cg, wf, offs, y, ybs, ycs, og, rowmap, row_len, row_width,
             b0, b1, g0, g1, ob0, ob1, j_lo, j_hi, band, lanes):
    """Output channels in blocks of 8, positions in 2 vectors per step (see the module docstring)."""
    R = 8
    n = lanes
    span = 2 * n
    k = offs.shape[0]
    rs = cg * k
    nrows = rowmap.shape[0]
    for b in range(b0, b1):
        for g in range(g0, g1):
            xb = b * xbs + g * cg * xcs
            for jb in range(j_lo, j_hi, band):
                je = min(j_hi, jb + band)
                for ob in range(ob0, ob1):
                    rows = min(R, og - ob * R)
                    wg = (g * og + ob * R) * rs
                    yb = b * ybs + (g * og + ob * R) * ycs
                    for j0 in range(jb, je, span):
                        a00 = vzero(y); a01 = vzero(y)
                        a10 = vzero(y); a11 = vzero(y)
                        a20 = vzero(y); a21 = vzero(y)
                        a30 = vzero(y); a31 = vzero(y)
                        a40 = vzero(y); a41 = vzero(y)
                        a50 = vzero(y); a51 = vzero(y)
                        a60 = vzero(y); a61 = vzero(y)
                        a70 = vzero(y); a71 = vzero(y)
                        for c in range(cg):
                            xc = xb + c * xcs + j0
                            wc = wg + c * k
                            for t in range(k):
                                xt = xc + at(offs, t)
                                v0 = vload(xf, xt); v1 = vload(xf, xt + n)
                                q = wc + t
                                s = at(wf, q); a00 = vfma(a00, v0, s); a01 = vfma(a01, v1, s)
                                s = at(wf, q + rs); a10 = vfma(a10, v0, s); a11 = vfma(a11, v1, s)
                                s = at(wf, q + 2 * rs); a20 = vfma(a20, v0, s); a21 = vfma(a21, v1, s)
                                s = at(wf, q + 3 * rs); a30 = vfma(a30, v0, s); a31 = vfma(a31, v1, s)
                                s = at(wf, q + 4 * rs); a40 = vfma(a40, v0, s); a41 = vfma(a41, v1, s)
                                s = at(wf, q + 5 * rs); a50 = vfma(a50, v0, s); a51 = vfma(a51, v1, s)
                                s = at(wf, q + 6 * rs); a60 = vfma(a60, v0, s); a61 = vfma(a61, v1, s)
                                s = at(wf, q + 7 * rs); a70 = vfma(a70, v0, s); a71 = vfma(a71, v1, s)
                        r = j0 // row_len
                        while r < nrows and r * row_len < j0 + span:
                            if rowmap[r] >= 0:
                                lo = r * row_len - j0
                                hi = lo + row_width
                                dst = yb + rowmap[r] - lo
                                _store2(y, dst, a00, a01, lo, hi, n)
                                if rows > 1:
                                    _store2(y, dst + ycs, a10, a11, lo, hi, n)
                                if rows > 2:
                                    _store2(y, dst + 2 * ycs, a20, a21, lo, hi, n)
                                if rows > 3:
                                    _store2(y, dst + 3 * ycs, a30, a31, lo, hi, n)
                                if rows > 4:
                                    _store2(y, dst + 4 * ycs, a40, a41, lo, hi, n)
                                if rows > 5:
                                    _store2(y, dst + 5 * ycs, a50, a51, lo, hi, n)
                                if rows > 6:
                                    _store2(y, dst + 6 * ycs, a60, a61, lo, hi, n)
                                if rows > 7:
                                    _store2(y, dst + 7 * ycs, a70, a71, lo, hi, n)
                            r += 1


@kernel(boundscheck=False)
def conv_4x4(xf, xbs, xcs, cg, wf, offs, y, ybs, ycs, og, rowmap, row_len, row_width,
             b0, b1, g0, g1, ob0, ob1, j_lo, j_hi, band, lanes):
    """Output channels in blocks of 4, positions in 4 vectors per step (see the module docstring)."""
    R = 4
    n = lanes
    span = 4 * n
    k = offs.shape[0]
    rs = cg * k
    nrows = rowmap.shape[0]
    for b in range(b0, b1):
        for g in range(g0, g1):
            xb = b * xbs + g * cg * xcs
            for jb in range(j_lo, j_hi, band):
                je = min(j_hi, jb + band)
                for ob in range(ob0, ob1):
                    rows = min(R, og - ob * R)
                    wg = (g * og + ob * R) * rs
                    yb = b * ybs + (g * og + ob * R) * ycs
                    for j0 in range(jb, je, span):
                        a00 = vzero(y); a01 = vzero(y); a02 = vzero(y); a03 = vzero(y)
                        a10 = vzero(y); a11 = vzero(y); a12 = vzero(y); a13 = vzero(y)
                        a20 = vzero(y); a21 = vzero(y); a22 = vzero(y); a23 = vzero(y)
                        a30 = vzero(y); a31 = vzero(y); a32 = vzero(y); a33 = vzero(y)
                        for c in range(cg):
                            xc = xb + c * xcs + j0
                            wc = wg + c * k
                            for t in range(k):
                                xt = xc + at(offs, t)
                                v0 = vload(xf, xt); v1 = vload(xf, xt + n); v2 = vload(xf, xt + 2 * n); v3 = vload(xf, xt + 3 * n)
                                q = wc + t
                                s = at(wf, q); a00 = vfma(a00, v0, s); a01 = vfma(a01, v1, s); a02 = vfma(a02, v2, s); a03 = vfma(a03, v3, s)
                                s = at(wf, q + rs); a10 = vfma(a10, v0, s); a11 = vfma(a11, v1, s); a12 = vfma(a12, v2, s); a13 = vfma(a13, v3, s)
                                s = at(wf, q + 2 * rs); a20 = vfma(a20, v0, s); a21 = vfma(a21, v1, s); a22 = vfma(a22, v2, s); a23 = vfma(a23, v3, s)
                                s = at(wf, q + 3 * rs); a30 = vfma(a30, v0, s); a31 = vfma(a31, v1, s); a32 = vfma(a32, v2, s); a33 = vfma(a33, v3, s)
                        r = j0 // row_len
                        while r < nrows and r * row_len < j0 + span:
                            if rowmap[r] >= 0:
                                lo = r * row_len - j0
                                hi = lo + row_width
                                dst = yb + rowmap[r] - lo
                                _store4(y, dst, a00, a01, a02, a03, lo, hi, n)
                                if rows > 1:
                                    _store4(y, dst + ycs, a10, a11, a12, a13, lo, hi, n)
                                if rows > 2:
                                    _store4(y, dst + 2 * ycs, a20, a21, a22, a23, lo, hi, n)
                                if rows > 3:
                                    _store4(y, dst + 3 * ycs, a30, a31, a32, a33, lo, hi, n)
                            r += 1


@kernel(boundscheck=False)
def _store2(y, dst, a0, a1, lo, hi, n):
    vstore_lanes(y, dst, a0, lo, hi)
    vstore_lanes(y, dst + n, a1, lo - n, hi - n)


@kernel(boundscheck=False)
def _store4(y, dst, a0, a1, a2, a3, lo, hi, n):
    vstore_lanes(y, dst, a0, lo, hi)
    vstore_lanes(y, dst + n, a1, lo - n, hi - n)
    vstore_lanes(y, dst + 2 * n, a2, lo - 2 * n, hi - 2 * n)
    vstore_lanes(y, dst + 3 * n, a3, lo - 3 * n, hi - 3 * n)


@kernel(boundscheck=False)
def weight_grad_4x4(xf, xbs, xcs, cg, gf, gbs, gcs, og, offs, nb, j_end, lanes, g0, g1, ob0, ob1, dw):
    """``dw[o, c, t] += sum_{b, j} gf[b, o, j] * xf[b, c, j + offs[t]]`` (stride 1) for blocks of 4 output
    channels x 4 taps, each pair accumulated in a vector over positions and summed at the end.  ``gf`` is the
    output gradient in the padded plane's flat coordinates (zeros at positions that are not outputs), ``dw`` is
    ``(O, Cg, K)`` flattened.  Output channels past a group's last read the next rows (or the caller's zero
    rows) and are not stored; taps past the last repeat it and are not stored."""
    n = lanes
    k = offs.shape[0]
    for g in range(g0, g1):
        for ob in range(ob0, ob1):
            o0 = g * og + ob * 4
            rows = min(4, og - ob * 4)
            for c in range(cg):
                for t0 in range(0, k, 4):
                    taps = min(4, k - t0)
                    f0 = at(offs, t0)
                    f1 = at(offs, t0 + min(1, taps - 1))
                    f2 = at(offs, t0 + min(2, taps - 1))
                    f3 = at(offs, t0 + min(3, taps - 1))
                    a00 = vzero(dw); a01 = vzero(dw); a02 = vzero(dw); a03 = vzero(dw)
                    a10 = vzero(dw); a11 = vzero(dw); a12 = vzero(dw); a13 = vzero(dw)
                    a20 = vzero(dw); a21 = vzero(dw); a22 = vzero(dw); a23 = vzero(dw)
                    a30 = vzero(dw); a31 = vzero(dw); a32 = vzero(dw); a33 = vzero(dw)
                    for b in range(nb):
                        xb = b * xbs + (g * cg + c) * xcs
                        gb = b * gbs + o0 * gcs
                        for j in range(0, j_end, n):
                            x0 = vload(xf, xb + j + f0); x1 = vload(xf, xb + j + f1)
                            x2 = vload(xf, xb + j + f2); x3 = vload(xf, xb + j + f3)
                            y0 = vload(gf, gb + j)
                            a00 = vfma(a00, y0, x0); a01 = vfma(a01, y0, x1)
                            a02 = vfma(a02, y0, x2); a03 = vfma(a03, y0, x3)
                            y1 = vload(gf, gb + gcs + j)
                            a10 = vfma(a10, y1, x0); a11 = vfma(a11, y1, x1)
                            a12 = vfma(a12, y1, x2); a13 = vfma(a13, y1, x3)
                            y2 = vload(gf, gb + 2 * gcs + j)
                            a20 = vfma(a20, y2, x0); a21 = vfma(a21, y2, x1)
                            a22 = vfma(a22, y2, x2); a23 = vfma(a23, y2, x3)
                            y3 = vload(gf, gb + 3 * gcs + j)
                            a30 = vfma(a30, y3, x0); a31 = vfma(a31, y3, x1)
                            a32 = vfma(a32, y3, x2); a33 = vfma(a33, y3, x3)
                    base = (o0 * cg + c) * k + t0
                    rs = cg * k
                    _add_row(dw, base, taps, a00, a01, a02, a03)
                    if rows > 1:
                        _add_row(dw, base + rs, taps, a10, a11, a12, a13)
                    if rows > 2:
                        _add_row(dw, base + 2 * rs, taps, a20, a21, a22, a23)
                    if rows > 3:
                        _add_row(dw, base + 3 * rs, taps, a30, a31, a32, a33)


@kernel(boundscheck=False)
def _add_row(dw, base, taps, a0, a1, a2, a3):
    dw[base] += vsum(a0)
    if taps > 1:
        dw[base + 1] += vsum(a1)
    if taps > 2:
        dw[base + 2] += vsum(a2)
    if taps > 3:
        dw[base + 3] += vsum(a3)

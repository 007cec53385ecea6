"""Numba kernels for the engine, on 3-D-shaped data: 1-D and 2-D problems are passed with leading size-1
spatial dims, so one compiled function serves every rank.

Conventions: ``xp (N, C, D, H, W)`` is the zero-padded input, ``(sd, sh, sw)`` strides, ``(dd, dh, dw)``
dilations, ``(kd, kh, kw)`` the kernel.  Kernels are serial and release the GIL (``nogil``): parallelism comes from
``convforge._algos.threads``, which runs independent parts of a call on a few threads.  Kernels allocate
nothing large: outputs are passed in (so tracemalloc sees all memory), and they are compiled by
:func:`convforge._kernels.jit.kernel` (cached: the first call in a fresh environment compiles, later processes
load the machine code; concurrent first use is serialised across processes).

Import this module only through :func:`convforge._algos.kernel_module`; it raises ImportError without Numba.
"""
from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel
def direct_grouped(xp, w, groups, sd, sh, sw, dd, dh, dw, y):
    """Direct convolution ``y (N, O, Do, Ho, Wo) = sum_c,t w[o, c, t] * xp[...]`` (y is overwritten).

    One job per (sample, output channel); each output row is accumulated in a small buffer over the group's
    channels and the taps.  Meant for depthwise layers, where a matrix product has too little work per call.
    (Unsigned indices on a contiguous row slice let LLVM vectorise the inner loop: 3.5x on MobileNet rows.)"""
    n = xp.shape[0]
    o_ch, cg, kd, kh, kw = w.shape
    og = o_ch // groups
    do_, ho, wo = y.shape[2], y.shape[3], y.shape[4]
    acc = np.empty(wo, dtype=y.dtype)
    for job in range(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        c0 = (o // og) * cg
        for od in range(do_):
            for oh in range(ho):
                acc[:] = 0
                for ci in range(cg):
                    for td in range(kd):
                        for th in range(kh):
                            line = xp[b, c0 + ci, od * sd + td * dd, oh * sh + th * dh]
                            for tw in range(kw):
                                wv = w[o, ci, td, th, tw]
                                base = tw * dw
                                if sw == 1:
                                    seg = line[base:base + wo]
                                    for ow in range(wo):
                                        acc[ow] += wv * seg[np.uint64(ow)]
                                else:
                                    for ow in range(wo):
                                        acc[ow] += wv * line[base + ow * sw]
                y[b, o, od, oh, :] = acc


@kernel
def direct_grouped_flat(x, pd, ph, pw, dp, hp, wp, w, groups, dd, dh, dw, y):
    """``direct_grouped`` for stride 1, on whole planes, padding included: each input plane ``x[b, c]`` (unpadded)
    is copied into a flat zero-bordered buffer of the padded size ``(dp, hp, wp)`` (leading pads ``pd, ph, pw``),
    where every tap is one constant offset (``td*dd*hp*wp + th*dh*wp + tw*dw``); each (sample, output channel)
    is then ``kd*kh*kw`` long contiguous multiply-adds into a flat buffer ``acc[od*hp*wp + oh*wp + ow]`` (the
    columns past ``Wo`` are scratch), and one copy of the valid part.  On small planes (MobileNet's 7x7) the row
    kernel's loops are only 7 long and its per-row overhead dominates; here they are ``~Do*hp*wp`` long and
    vectorise.  (No slicing or reshaping inside the job loop: creating array views costs more than a 7x7
    plane's arithmetic.)"""
    n = x.shape[0]
    di, hi, wi = x.shape[2], x.shape[3], x.shape[4]
    o_ch, cg, kd, kh, kw = w.shape
    og = o_ch // groups
    do_, ho, wo = y.shape[2], y.shape[3], y.shape[4]
    plane = hp * wp
    length = (do_ - 1) * plane + (ho - 1) * wp + wo
    acc = np.empty(length, dtype=y.dtype)
    buf = np.zeros(dp * plane, dtype=y.dtype)      # borders stay zero: only the interior is ever written
    for job in range(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        c0 = (o // og) * cg
        for i in range(length):
            acc[i] = 0
        for ci in range(cg):
            for id_ in range(di):
                for ih in range(hi):
                    row = (id_ + pd) * plane + (ih + ph) * wp + pw
                    for iw in range(wi):
                        buf[row + iw] = x[b, c0 + ci, id_, ih, iw]
            for td in range(kd):
                for th in range(kh):
                    for tw in range(kw):
                        wv = w[o, ci, td, th, tw]
                        base = td * dd * plane + th * dh * wp + tw * dw
                        for i in range(length):
                            acc[np.uint64(i)] += wv * buf[np.uint64(base + i)]
        for od in range(do_):
            for oh in range(ho):
                start = od * plane + oh * wp
                for ow in range(wo):
                    y[b, o, od, oh, ow] = acc[start + ow]


@kernel
def col2im(cols, sd, sh, sw, dd, dh, dw, buf):
    """Scatter-add ``cols (N, O, kd, kh, kw, Di, Hi, Wi)`` into ``buf (N, O, D, H, W)`` (zeroed):
    ``buf[..., i*s + t*d] += cols[..., t, i]`` per spatial dim."""
    n, o_ch, kd, kh, kw, di, hi, wi = cols.shape
    for job in range(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        dst = buf[b, o]
        src = cols[b, o]
        for td in range(kd):
            for th in range(kh):
                for tw in range(kw):
                    for i0 in range(di):
                        for i1 in range(hi):
                            line = src[td, th, tw, i0, i1]
                            out = dst[i0 * sd + td * dd, i1 * sh + th * dh]
                            base = tw * dw
                            for i2 in range(wi):
                                out[base + i2 * sw] += line[i2]


@kernel(inline="always")
def _bt6(d0, d1, d2, d3, d4, d5):
    """B^T of Winograd F(4, 3) applied to 6 values."""
    return (4 * d0 - 5 * d2 + d4, -4 * (d1 + d2) + d3 + d4, 4 * (d1 - d2) - d3 + d4,
            2 * (d3 - d1) - d2 + d4, 2 * (d1 - d3) - d2 + d4, 4 * d1 - 5 * d3 + d5)


@kernel(inline="always")
def _at6(m0, m1, m2, m3, m4, m5):
    """A^T of Winograd F(4, 3) applied to 6 values."""
    return (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 * (m3 - m4), m1 + m2 + 4 * (m3 + m4), m1 - m2 + 8 * (m3 - m4) + m5)


@kernel
def winograd_input(xp, ti, tj, v):
    """Winograd F(4x4, 3x3) input transform: ``v[6u + w, c, tile] = (B^T d B)[u, w]`` for every 6x6 input tile
    ``d`` of ``xp (N, C, 4*ti + 2, 4*tj + 2)``; tiles are numbered ``(n*ti + i)*tj + j``.  Rows first (vectors
    along the width), then columns (vectors along the tiles).  Narrow planes (under 8 tiles wide) are built in a
    local buffer first and written as 36 contiguous runs: writing runs of 4 or fewer values to 36 places a
    power of two apart thrashes the cache (4.9 -> 1.5 ms on ResNet's 14x14 at batch 8).  Wide planes are
    written directly: the extra copy would cost more than it saves there."""
    n, c, _, width = xp.shape
    rows = np.empty((6, width), dtype=xp.dtype)
    wide = tj >= 8
    loc = np.empty((36, 0 if wide else ti * tj), dtype=v.dtype)
    for job in range(n * c):
        b = job // c
        ci = job % c
        base = b * ti * tj
        src = xp[b, ci]
        for i in range(ti):
            r = i * 4
            for q in range(width):
                t0, t1, t2, t3, t4, t5 = _bt6(src[r, q], src[r + 1, q], src[r + 2, q], src[r + 3, q],
                                              src[r + 4, q], src[r + 5, q])
                rows[0, q] = t0
                rows[1, q] = t1
                rows[2, q] = t2
                rows[3, q] = t3
                rows[4, q] = t4
                rows[5, q] = t5
            for u in range(6):
                for j in range(tj):
                    q = j * 4
                    t0, t1, t2, t3, t4, t5 = _bt6(rows[u, q], rows[u, q + 1], rows[u, q + 2], rows[u, q + 3],
                                                  rows[u, q + 4], rows[u, q + 5])
                    if wide:
                        k = base + i * tj + j
                        v[6 * u, ci, k] = t0
                        v[6 * u + 1, ci, k] = t1
                        v[6 * u + 2, ci, k] = t2
                        v[6 * u + 3, ci, k] = t3
                        v[6 * u + 4, ci, k] = t4
                        v[6 * u + 5, ci, k] = t5
                    else:
                        k = i * tj + j
                        loc[6 * u, k] = t0
                        loc[6 * u + 1, k] = t1
                        loc[6 * u + 2, k] = t2
                        loc[6 * u + 3, k] = t3
                        loc[6 * u + 4, k] = t4
                        loc[6 * u + 5, k] = t5
        if not wide:
            for k in range(36):
                for t in range(ti * tj):
                    v[k, ci, base + t] = loc[k, t]


@kernel
def winograd_output(mm, ti, tj, y):
    """Winograd F(4x4, 3x3) output transform: ``y[n, o, 4i:4i+4, 4j:4j+4] = A^T M A`` for the tile
    ``M[u, w] = mm[6u + w, o, tile]``, cropped to ``y (N, O, Ho, Wo)``."""
    n, o_ch, ho, wo = y.shape
    for job in range(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        dst = y[b, o]
        cols = np.empty((4, 6, tj), dtype=mm.dtype)
        for i in range(ti):
            base = (b * ti + i) * tj
            for w in range(6):
                for j in range(tj):
                    t = base + j
                    a0, a1, a2, a3 = _at6(mm[w, o, t], mm[6 + w, o, t], mm[12 + w, o, t], mm[18 + w, o, t],
                                          mm[24 + w, o, t], mm[30 + w, o, t])
                    cols[0, w, j] = a0
                    cols[1, w, j] = a1
                    cols[2, w, j] = a2
                    cols[3, w, j] = a3
            for u in range(4):
                r = i * 4 + u
                if r >= ho:
                    break
                line = dst[r]
                cu = cols[u]
                for j in range(tj):
                    a0, a1, a2, a3 = _at6(cu[0, j], cu[1, j], cu[2, j], cu[3, j], cu[4, j], cu[5, j])
                    q = j * 4
                    if q + 3 < wo:
                        line[q] = a0
                        line[q + 1] = a1
                        line[q + 2] = a2
                        line[q + 3] = a3
                    else:
                        line[q] = a0
                        if q + 1 < wo:
                            line[q + 1] = a1
                        if q + 2 < wo:
                            line[q + 2] = a2


# multiplications by these float64 reciprocals instead of divisions (a division costs ~10x more; the results
# differ from exact division by at most an ulp of float64, far below float32's)
_SIXTH, _TWELFTH, _TWENTYFOURTH = 1 / 6, 1 / 12, 1 / 24


@kernel(inline="always")
def _g3(a0, a1, a2):
    """G of Winograd F(4, 3) applied to 3 values (a kernel row or column)."""
    s = (a0 + a2) * _SIXTH
    q = a0 * _TWENTYFOURTH + a2 * _SIXTH
    return (a0 * 0.25, -s - a1 * _SIXTH, a1 * _SIXTH - s, q + a1 * _TWELFTH, q - a1 * _TWELFTH, a2)


@kernel(inline="always")
def _gt6(m0, m1, m2, m3, m4, m5):
    """G^T of Winograd F(4, 3) applied to 6 values (the adjoint of :func:`_g3`)."""
    return (m0 * 0.25 - (m1 + m2) * _SIXTH + (m3 + m4) * _TWENTYFOURTH, (m2 - m1) * _SIXTH + (m3 - m4) * _TWELFTH,
            (m3 + m4 - m1 - m2) * _SIXTH + m5)


@kernel(inline="always")
def _a4(d0, d1, d2, d3):
    """A of Winograd F(4, 3) (the adjoint of A^T) applied to 4 values."""
    return (d0, d0 + d1 + d2 + d3, d0 - d1 + d2 - d3, d0 + 2 * d1 + 4 * d2 + 8 * d3,
            d0 - 2 * d1 + 4 * d2 - 8 * d3, d3)


@kernel
def winograd_weight(w, u):
    """Weight transform ``u[6a + b, o, c] = (G w[o, c] G^T)[a, b]`` for ``w (O, Cg, 3, 3)``, in float64 (the
    fractions 1/6 and 1/24 are not exact in float32), stored in ``u``'s dtype.  Filters are transformed in
    blocks of 32 along ``c`` into a small buffer that is then written as 36 contiguous runs (writing each
    filter's 36 values straight into ``u`` touches 36 places a power of two apart, which thrash the cache)."""
    o_ch, cg = w.shape[:2]
    t = np.empty((6, 3), dtype=np.float64)
    blk = np.empty((36, 32), dtype=np.float64)
    for o in range(o_ch):
        for c0 in range(0, cg, 32):
            c1 = min(c0 + 32, cg)
            for c in range(c0, c1):
                for b in range(3):
                    t0, t1, t2, t3, t4, t5 = _g3(np.float64(w[o, c, 0, b]), np.float64(w[o, c, 1, b]),
                                                 np.float64(w[o, c, 2, b]))
                    t[0, b] = t0
                    t[1, b] = t1
                    t[2, b] = t2
                    t[3, b] = t3
                    t[4, b] = t4
                    t[5, b] = t5
                for a in range(6):
                    r0, r1, r2, r3, r4, r5 = _g3(t[a, 0], t[a, 1], t[a, 2])
                    blk[6 * a, c - c0] = r0
                    blk[6 * a + 1, c - c0] = r1
                    blk[6 * a + 2, c - c0] = r2
                    blk[6 * a + 3, c - c0] = r3
                    blk[6 * a + 4, c - c0] = r4
                    blk[6 * a + 5, c - c0] = r5
            for k in range(36):
                for c in range(c0, c1):
                    u[k, o, c] = blk[k, c - c0]


@kernel
def winograd_weight_adjoint(du, gw):
    """``gw[o, c] = G^T M G`` for ``M[a, b] = du[6a + b, o, c]`` (float64 ``du (36, O, Cg)``): the gradient of the
    weight transform, turning the gradient w.r.t. the transformed weight into ``gw (O, Cg, 3, 3)``."""
    o_ch, cg = gw.shape[:2]
    t = np.empty((3, 6), dtype=np.float64)
    for o in range(o_ch):
        for c in range(cg):
            for b in range(6):
                t0, t1, t2 = _gt6(du[b, o, c], du[6 + b, o, c], du[12 + b, o, c], du[18 + b, o, c],
                                  du[24 + b, o, c], du[30 + b, o, c])
                t[0, b] = t0
                t[1, b] = t1
                t[2, b] = t2
            for a in range(3):
                r0, r1, r2 = _gt6(t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5])
                gw[o, c, a, 0] = r0
                gw[o, c, a, 1] = r1
                gw[o, c, a, 2] = r2


@kernel
def winograd_grad_output(gy, ti, tj, z):
    """Adjoint of the output transform: ``z[6u + v, o, tile] = (A D A^T)[u, v]`` for every 4x4 tile ``D`` of
    ``gy (N, O, Ho, Wo)`` (cells past ``Ho``/``Wo`` read as zero); tiles numbered as in :func:`winograd_input`."""
    n, o_ch, ho, wo = gy.shape
    for job in range(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        src = gy[b, o]
        rows = np.zeros((4, 6, tj), dtype=z.dtype)
        for i in range(ti):
            base = (b * ti + i) * tj
            for r in range(4):
                h = i * 4 + r
                if h >= ho:
                    for v in range(6):
                        for j in range(tj):
                            rows[r, v, j] = 0
                    continue
                line = src[h]
                for j in range(tj):
                    q = j * 4
                    if q + 3 < wo:
                        d0, d1, d2, d3 = line[q], line[q + 1], line[q + 2], line[q + 3]
                    else:
                        d0 = line[q]
                        d1 = line[q + 1] if q + 1 < wo else 0
                        d2 = line[q + 2] if q + 2 < wo else 0
                        d3 = 0
                    a0, a1, a2, a3, a4, a5 = _a4(d0, d1, d2, d3)
                    rows[r, 0, j] = a0
                    rows[r, 1, j] = a1
                    rows[r, 2, j] = a2
                    rows[r, 3, j] = a3
                    rows[r, 4, j] = a4
                    rows[r, 5, j] = a5
            for v in range(6):
                for j in range(tj):
                    a0, a1, a2, a3, a4, a5 = _a4(rows[0, v, j], rows[1, v, j], rows[2, v, j], rows[3, v, j])
                    z[v, o, base + j] = a0
                    z[6 + v, o, base + j] = a1
                    z[12 + v, o, base + j] = a2
                    z[18 + v, o, base + j] = a3
                    z[24 + v, o, base + j] = a4
                    z[30 + v, o, base + j] = a5

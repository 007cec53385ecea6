"""Numba kernels for the engine, on 3-D-shaped data: 1-D and 2-D problems are passed with leading size-1
spatial dims, so one compiled function serves every rank.

Conventions: ``xp (N, C, D, H, W)`` is the zero-padded input, ``(sd, sh, sw)`` strides, ``(dd, dh, dw)``
dilations, ``(kd, kh, kw)`` the kernel.  Kernels never allocate: outputs are passed in (so tracemalloc sees all
memory), and they are compiled with ``cache=True`` (the first call in a fresh environment compiles, later
processes load from ``__pycache__``).

Import this module only through :func:`convforge._algos.numba_available`; it raises ImportError without Numba.
"""
from __future__ import annotations

import numba
from numba import njit, prange

_OPTS = dict(cache=True, nogil=True, fastmath=False)


@njit(parallel=True, **_OPTS)
def im2col(xp, kd, kh, kw, sd, sh, sw, dd, dh, dw, cols):
    """``cols (N, C*K, Do*Ho*Wo)`` from ``xp (N, C, D, H, W)``; row ``c*K + tap``, column = output pixel."""
    n, c = xp.shape[0], xp.shape[1]
    do_, ho, wo = _out_dims(cols.shape[2], xp, kd, kh, kw, sd, sh, sw, dd, dh, dw)
    k = kd * kh * kw
    for job in prange(n * c * k):
        b = job // (c * k)
        ci = (job // k) % c
        t = job % k
        td = t // (kh * kw)
        th = (t // kw) % kh
        tw = t % kw
        row = cols[b, ci * k + t]
        src = xp[b, ci]
        pos = 0
        for od in range(do_):
            for oh in range(ho):
                line = src[od * sd + td * dd, oh * sh + th * dh]
                base = tw * dw
                if sw == 1:
                    row[pos:pos + wo] = line[base:base + wo]
                else:
                    for ow in range(wo):
                        row[pos + ow] = line[base + ow * sw]
                pos += wo


@njit(**_OPTS)
def _out_dims(p, xp, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    do_ = (xp.shape[2] - dd * (kd - 1) - 1) // sd + 1
    ho = (xp.shape[3] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[4] - dw * (kw - 1) - 1) // sw + 1
    return do_, ho, wo


@njit(parallel=True, **_OPTS)
def direct_grouped(xp, w, groups, sd, sh, sw, dd, dh, dw, y):
    """Direct convolution ``y (N, O, Do, Ho, Wo) += sum_c,t w[o, c, t] * xp[...]`` (y must start zeroed).

    One parallel job per (sample, output channel); meant for depthwise and thin groups, where a matrix product
    has too little work per call."""
    n = xp.shape[0]
    o_ch, cg, kd, kh, kw = w.shape
    og = o_ch // groups
    do_, ho, wo = y.shape[2], y.shape[3], y.shape[4]
    for job in prange(n * o_ch):
        b = job // o_ch
        o = job % o_ch
        c0 = (o // og) * cg
        out = y[b, o]
        for ci in range(cg):
            src = xp[b, c0 + ci]
            for td in range(kd):
                for th in range(kh):
                    for tw in range(kw):
                        wv = w[o, ci, td, th, tw]
                        for od in range(do_):
                            for oh in range(ho):
                                line = src[od * sd + td * dd, oh * sh + th * dh]
                                dst = out[od, oh]
                                base = tw * dw
                                if sw == 1:
                                    for ow in range(wo):
                                        dst[ow] += wv * line[base + ow]
                                else:
                                    for ow in range(wo):
                                        dst[ow] += wv * line[base + ow * sw]


@njit(parallel=True, **_OPTS)
def col2im(cols, sd, sh, sw, dd, dh, dw, buf):
    """Scatter-add ``cols (N, O, kd, kh, kw, Di, Hi, Wi)`` into ``buf (N, O, D, H, W)`` (zeroed):
    ``buf[..., i*s + t*d] += cols[..., t, i]`` per spatial dim."""
    n, o_ch, kd, kh, kw, di, hi, wi = cols.shape
    for job in prange(n * o_ch):
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

"""Numba kernels for the companion layers (activations, pooling, normalisation).

Each kernel is a plain loop over contiguous data, serial and GIL-free like the engine's kernels, with the
engine's compile options.  Outputs are passed in.  Pooling kernels see inputs as ``(planes, D, H, W)`` (1-D and
2-D problems with leading size-1 dims); normalisation kernels see ``(N, C, M)``.  Every kernel has a NumPy
counterpart in ``convforge.nn._ops`` that gives the same values; import this module only through
``convforge._algos.kernel_module`` (as ``convforge.nn._ops.accel.layer_kernels`` does).
"""
from __future__ import annotations

import math

import numpy as np

from .jit import kernel


# -- activations (flat arrays; ``y`` may be ``x``) ---------------------------------------------------------------------
@kernel
def relu(x, y):
    for i in range(x.size):
        v = x[i]
        y[i] = v if (v > 0 or v != v) else 0          # NaN stays NaN, as in PyTorch


@kernel
def relu6(x, y):
    for i in range(x.size):
        v = x[i]
        y[i] = 6 if v > 6 else (v if (v > 0 or v != v) else 0)


@kernel
def hardswish(x, y):
    """``y = x * min(max(x + 3, 0), 6) / 6``."""
    for i in range(x.size):
        v = x[i]
        y[i] = v * min(max(v + 3, 0), 6) / 6


@kernel
def hardsigmoid(x, y):
    """``y = min(max(x + 3, 0), 6) / 6``."""
    for i in range(x.size):
        y[i] = min(max(x[i] + 3, 0), 6) / 6


@kernel
def gelu(x, y, tanh_approximation):
    """``y = x * Phi(x)`` (or torch's tanh approximation) with libm's ``erf``/``tanh``, in the input's precision."""
    for i in range(x.size):
        v = x[i]
        if tanh_approximation:
            y[i] = 0.5 * v * (1 + math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
        else:
            y[i] = v * 0.5 * (1 + math.erf(v * 0.7071067811865476))


_ERF_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                   -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02], dtype=np.float32)
_ERF_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                   -1.42647390514189e-02], dtype=np.float32)


@kernel(error_model="numpy")      # no ZeroDivisionError branch: the loop vectorises
def gelu_float32(x, y):
    """Exact GELU for float32 with a branch-free rational ``erf`` (Eigen's float ``erf``: odd degree-13 over even
    degree-8 polynomials on ``[-4, 4]``, where float32 ``erf`` saturates; max error 7e-8), which LLVM vectorises;
    libm's ``erf`` is scalar and several times slower."""
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P[0], _ERF_P[1], _ERF_P[2], _ERF_P[3], _ERF_P[4], _ERF_P[5], _ERF_P[6]
    q0, q1, q2, q3, q4 = _ERF_Q[0], _ERF_Q[1], _ERF_Q[2], _ERF_Q[3], _ERF_Q[4]
    scale, lim, half, one = np.float32(0.70710677), np.float32(4.0), np.float32(0.5), np.float32(1.0)
    for i in range(x.size):
        v = x[i]
        t = v * scale
        t = t if t < lim else lim
        t = t if t > -lim else -lim
        t2 = t * t
        p = ((((((p0 * t2 + p1) * t2 + p2) * t2 + p3) * t2 + p4) * t2 + p5) * t2 + p6) * t
        q = (((q0 * t2 + q1) * t2 + q2) * t2 + q3) * t2 + q4
        y[i] = v * half * (one + p / q)


# -- pooling -------------------------------------------------------------------------------------------------------
@kernel
def max_pool(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, y, idx, want_index):
    """``y[p, o] = max`` over the window's taps inside the input (padding is skipped, not read); with
    ``want_index`` also the flat plane index of the first maximum in window order (a NaN wins, PyTorch's rule);
    a window with no tap inside the input gives ``-inf`` and index -1.

    One output row at a time: for each tap, a loop over the output columns whose tap lies inside the row (a
    simple strided loop LLVM vectorises), so the taps are visited in window order for every column."""
    planes, d_in, h_in, w_in = x.shape
    d_out, h_out, w_out = y.shape[1], y.shape[2], y.shape[3]
    acc = np.empty(w_out, dtype=np.float64)
    arg = np.empty(w_out, dtype=np.int64)
    col_lo = np.empty(kw, dtype=np.int64)
    col_hi = np.empty(kw, dtype=np.int64)
    for tw in range(kw):                      # output columns whose tap tw is inside [0, w_in)
        off = tw * dw - pw
        lo = 0 if off >= 0 else (-off + sw - 1) // sw
        hi = 0 if off > w_in - 1 else (w_in - 1 - off) // sw + 1
        col_lo[tw] = min(lo, w_out)
        col_hi[tw] = max(col_lo[tw], min(hi, w_out))
    for p in range(planes):
        for od in range(d_out):
            for oh in range(h_out):
                acc[:] = -np.inf
                arg[:] = -1
                for td in range(kd):
                    i_d = od * sd - pd + td * dd
                    if i_d < 0 or i_d >= d_in:
                        continue
                    for th in range(kh):
                        i_h = oh * sh - ph + th * dh
                        if i_h < 0 or i_h >= h_in:
                            continue
                        row = x[p, i_d, i_h]
                        base = (i_d * h_in + i_h) * w_in
                        for tw in range(kw):
                            off = tw * dw - pw
                            if want_index:
                                for ow in range(col_lo[tw], col_hi[tw]):
                                    v = row[ow * sw + off]
                                    if v > acc[ow] or v != v or arg[ow] < 0:
                                        acc[ow] = v
                                        arg[ow] = base + ow * sw + off
                            else:
                                for ow in range(col_lo[tw], col_hi[tw]):
                                    v = row[ow * sw + off]
                                    a = acc[ow]
                                    acc[ow] = v if (v > a or v != v) else a
                y[p, od, oh, :] = acc
                if want_index:
                    idx[p, od, oh, :] = arg


@kernel
def scatter_add_planes(g, idx, gx):
    """``gx[p, idx[p, j]] += g[p, j]`` for every ``j`` with ``idx >= 0`` (``g``, ``idx`` ``(P, M)``; ``gx`` zeroed
    ``(P, plane)``)."""
    for p in range(g.shape[0]):
        for j in range(g.shape[1]):
            i = idx[p, j]
            if i >= 0:
                gx[p, i] += g[p, j]


# -- normalisation -------------------------------------------------------------------------------------------------
# Sums use four float64 accumulators (a fixed order, so results are reproducible): independent chains instead of
# one add after another, 3-4x faster than a single accumulator on these long reductions.
@kernel
def _sum(a):
    s0 = s1 = s2 = s3 = 0.0
    n4 = a.size - a.size % 4
    for j in range(0, n4, 4):
        s0 += a[j]
        s1 += a[j + 1]
        s2 += a[j + 2]
        s3 += a[j + 3]
    for j in range(n4, a.size):
        s0 += a[j]
    return (s0 + s1) + (s2 + s3)


@kernel
def _centred_squares(a, mu):
    s0 = s1 = s2 = s3 = 0.0
    n4 = a.size - a.size % 4
    for j in range(0, n4, 4):
        d0, d1, d2, d3 = a[j] - mu, a[j + 1] - mu, a[j + 2] - mu, a[j + 3] - mu
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
    for j in range(n4, a.size):
        d = a[j] - mu
        s0 += d * d
    return (s0 + s1) + (s2 + s3)


@kernel
def _dot_centred(g, a, mu):
    """``sum(g * (a - mu))``."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = a.size - a.size % 4
    for j in range(0, n4, 4):
        s0 += g[j] * (a[j] - mu)
        s1 += g[j + 1] * (a[j + 1] - mu)
        s2 += g[j + 2] * (a[j + 2] - mu)
        s3 += g[j + 3] * (a[j + 3] - mu)
    for j in range(n4, a.size):
        s0 += g[j] * (a[j] - mu)
    return (s0 + s1) + (s2 + s3)


@kernel
def channel_moments(x, mean, var):
    """Per channel of ``x (N, C, M)``: mean and biased variance (two passes, float64 accumulators)."""
    n, c, m = x.shape
    for ch in range(c):
        s = 0.0
        for b in range(n):
            s += _sum(x[b, ch])
        mu = s / (n * m)
        q = 0.0
        for b in range(n):
            q += _centred_squares(x[b, ch], mu)
        mean[ch] = mu
        var[ch] = q / (n * m)


@kernel
def channel_map(a, k1, b, k2, k3, out):
    """``out = a * k1[c] + b * k2[c] + k3[c]`` over ``(N, C, M)`` arrays, in their dtype (the float64
    coefficients rounded to it once, as PyTorch's float32 kernels hold them)."""
    n, c, m = a.shape
    t = a.dtype.type
    for bi in range(n):
        for ch in range(c):
            u, v, w = t(k1[ch]), t(k2[ch]), t(k3[ch])
            if v == 0.0:
                for j in range(m):
                    out[bi, ch, j] = a[bi, ch, j] * u + w
            else:
                for j in range(m):
                    out[bi, ch, j] = a[bi, ch, j] * u + b[bi, ch, j] * v + w


@kernel
def channel_grad_sums(g, x, mean, sum_g, sum_gc):
    """Per channel: ``sum(g)`` and ``sum(g * (x - mean))`` over ``(N, C, M)`` arrays."""
    n, c, m = g.shape
    for ch in range(c):
        s = 0.0
        sc = 0.0
        for b in range(n):
            s += _sum(g[b, ch])
            sc += _dot_centred(g[b, ch], x[b, ch], mean[ch])
        sum_g[ch] = s
        sum_gc[ch] = sc


@kernel
def layer_norm_rows(x, w, b, eps, y, mean, invstd):
    """Each row of ``x (R, D)``: ``y = (x - mean) * invstd * w + b`` with the row's mean and biased variance."""
    r, d = x.shape
    for i in range(r):
        row = x[i]
        mu = _sum(row) / d
        rs = 1.0 / math.sqrt(_centred_squares(row, mu) / d + eps)
        mean[i] = mu
        invstd[i] = rs
        for j in range(d):
            y[i, j] = (row[j] - mu) * rs * w[j] + b[j]


@kernel
def layer_norm_backward_rows(x, g, mean, invstd, w, gx, gw, gb):
    """Rows of ``x, g (R, D)``: ``gx = invstd * (gh - mean(gh) - xhat * mean(gh * xhat))`` with ``gh = g * w``
    and ``xhat = (x - mean) * invstd``; adds ``sum(g * xhat)`` and ``sum(g)`` over the rows into ``gw``, ``gb``
    (float64 ``(D,)``)."""
    r, d = x.shape
    for i in range(r):
        mu, rs = mean[i], invstd[i]
        s1 = 0.0
        s2 = 0.0
        for j in range(d):
            xhat = (x[i, j] - mu) * rs
            gv = np.float64(g[i, j])
            gh = gv * w[j]
            s1 += gh
            s2 += gh * xhat
            gw[j] += gv * xhat
            gb[j] += gv
        m1, m2 = s1 / d, s2 / d
        for j in range(d):
            xhat = (x[i, j] - mu) * rs
            gx[i, j] = rs * (g[i, j] * w[j] - m1 - xhat * m2)


# -- GELU's derivative: Phi(x) + x * phi(x) (exact) or torch's tanh-approximation formula -------------------------
@kernel
def gelu_grad(x, g, out, tanh_approximation):
    for i in range(x.size):
        v = np.float64(x[i])
        if tanh_approximation:
            inner = 0.7978845608028654 * (v + 0.044715 * v * v * v)
            t = math.tanh(inner)
            slope = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v)
        else:
            slope = 0.5 * (1 + math.erf(v * 0.7071067811865476)) + v * math.exp(-0.5 * v * v) * 0.3989422804014327
        out[i] = g[i] * slope

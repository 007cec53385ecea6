"""Numba kernels for the companion layers (activations, pooling, normalisation).

Each kernel is a plain loop over contiguous data, serial and GIL-free like the engine's kernels, with the
engine's compile options.  Outputs are passed in.  Pooling kernels see inputs as ``(planes, D, H, W)`` (1-D and
2-D problems with leading size-1 dims); normalisation kernels see ``(N, C, M)``.  Every kernel has a NumPy
counterpart in ``convforge.nn._ops`` that gives the same values; import this module only through
``convforge.nn._ops.accel.layer_kernels``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .numba_kernels import _OPTS


# -- activations ---------------------------------------------------------------------------------------------------
@njit(**_OPTS)
def silu(x, y):
    """``y = x * sigmoid(x)`` over flat arrays (``y`` may be ``x``)."""
    for i in range(x.size):
        v = x[i]
        if v >= 0:
            y[i] = v / (1 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = v * e / (1 + e)


@njit(**_OPTS)
def gelu(x, y, tanh_approximation):
    """``y = x * Phi(x)`` (or torch's tanh approximation) over flat arrays, computed in float64."""
    beta = math.sqrt(2 / math.pi)
    for i in range(x.size):
        v = np.float64(x[i])
        if tanh_approximation:
            y[i] = 0.5 * v * (1 + math.tanh(beta * (v + 0.044715 * v * v * v)))
        else:
            y[i] = v * 0.5 * (1 + math.erf(v * 0.7071067811865476))


# -- pooling -------------------------------------------------------------------------------------------------------
@njit(**_OPTS)
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


@njit(**_OPTS)
def scatter_add_planes(g, idx, gx):
    """``gx[p, idx[p, j]] += g[p, j]`` for every ``j`` with ``idx >= 0`` (``g``, ``idx`` ``(P, M)``; ``gx`` zeroed
    ``(P, plane)``)."""
    for p in range(g.shape[0]):
        for j in range(g.shape[1]):
            i = idx[p, j]
            if i >= 0:
                gx[p, i] += g[p, j]


# -- normalisation -------------------------------------------------------------------------------------------------
@njit(**_OPTS)
def channel_moments(x, mean, var):
    """Per channel of ``x (N, C, M)``: mean and biased variance (two passes, float64 accumulators)."""
    n, c, m = x.shape
    for ch in range(c):
        s = 0.0
        for b in range(n):
            for j in range(m):
                s += x[b, ch, j]
        mu = s / (n * m)
        q = 0.0
        for b in range(n):
            for j in range(m):
                d = x[b, ch, j] - mu
                q += d * d
        mean[ch] = mu
        var[ch] = q / (n * m)


@njit(**_OPTS)
def channel_map(a, k1, b, k2, k3, out):
    """``out = a * k1[c] + b * k2[c] + k3[c]`` over ``(N, C, M)`` arrays (float64 coefficients)."""
    n, c, m = a.shape
    for bi in range(n):
        for ch in range(c):
            u, v, w = k1[ch], k2[ch], k3[ch]
            if v == 0.0:
                for j in range(m):
                    out[bi, ch, j] = a[bi, ch, j] * u + w
            else:
                for j in range(m):
                    out[bi, ch, j] = a[bi, ch, j] * u + b[bi, ch, j] * v + w


@njit(**_OPTS)
def channel_grad_sums(g, x, mean, sum_g, sum_gc):
    """Per channel: ``sum(g)`` and ``sum(g * (x - mean))`` over ``(N, C, M)`` arrays."""
    n, c, m = g.shape
    for ch in range(c):
        s = 0.0
        sc = 0.0
        mu = mean[ch]
        for b in range(n):
            for j in range(m):
                gv = g[b, ch, j]
                s += gv
                sc += gv * (x[b, ch, j] - mu)
        sum_g[ch] = s
        sum_gc[ch] = sc


@njit(**_OPTS)
def layer_norm_rows(x, w, b, eps, y, mean, invstd):
    """Each row of ``x (R, D)``: ``y = (x - mean) * invstd * w + b`` with the row's mean and biased variance."""
    r, d = x.shape
    for i in range(r):
        s = 0.0
        for j in range(d):
            s += x[i, j]
        mu = s / d
        q = 0.0
        for j in range(d):
            t = x[i, j] - mu
            q += t * t
        rs = 1.0 / math.sqrt(q / d + eps)
        mean[i] = mu
        invstd[i] = rs
        for j in range(d):
            y[i, j] = (x[i, j] - mu) * rs * w[j] + b[j]

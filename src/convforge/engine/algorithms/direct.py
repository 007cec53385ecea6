"""Direct convolution for depthwise and thin grouped layers, where a matrix product per group has too little
work: every output channel accumulates ``w[o, c, t] * shifted input`` over its group's channels and the taps.

With Numba: one compiled loop over (sample, output channel), no workspace.  Without: one vectorised step per
kernel tap (a broadcast multiply for depthwise, a small batched product otherwise), batch-tiled so the shifted
copy stays under the workspace bound.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _config
from ..._algos import as_3d, numba_kernels, triple
from ..arrays import all_finite, batch_tiles, pad_zeros, stride1_dual, tap_window
from . import Algorithm, Role, Threading, depthwise


def direct(x, w, stride, padding, dilation, groups, out_sizes):
    n, c = x.shape[:2]
    o_ch = w.shape[0]
    kernel = w.shape[2:]
    nd = len(kernel)
    kernels = numba_kernels(x.dtype) if len(w.shape) <= 5 else None    # kernels cover 1 to 3 spatial dims
    if kernels is not None and o_ch == groups == c and all(s == 1 for s in stride) and \
            tuple(out_sizes) == tuple(x.shape[2:]) and all_finite(w):
        return _same_size_depthwise(x, w, padding, dilation, groups, out_sizes)
    y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    if kernels is None:
        return _direct_numpy(x, w, stride, padding, dilation, groups, out_sizes, y)
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding))
    w3 = as_3d(np.ascontiguousarray(w), 2, nd)
    if all(s == 1 for s in stride) and all(lo >= 0 and hi >= 0 for lo, hi in padding):
        # whole planes, padded inside the kernel one plane at a time: taps are constant offsets, no workspace
        kernels.direct_grouped_flat(as_3d(x, 2, nd), *triple([lo for lo, _ in padding], 0), *triple(padded, 1),
                                    w3, groups, *triple(dilation, 1), as_3d(y, 2, nd))
        return y
    for a, z in batch_tiles(n, c * math.prod(padded) * x.itemsize, _config.workspace_limit(y.nbytes)):
        xp = np.ascontiguousarray(pad_zeros(x[a:z], padding))
        kernels.direct_grouped(as_3d(xp, 2, nd), w3, groups, *triple(stride, 1), *triple(dilation, 1),
                               as_3d(y[a:z], 2, nd))
        del xp                                                          # before the next tile is allocated
    return y


def _same_size_depthwise(x, w, padding, dilation, groups, out_sizes):
    """Stride-1 depthwise convolution whose output has the input's size (MobileNet's 3x3 layers): at stride 1
    a convolution equals the transposed convolution with the flipped weight and padding ``d*(k-1) - pad``, and
    the depthwise transposed kernels handle this case on flat planes with per-tap masks, several small planes
    at a time (measured 2.9x faster than the plane-at-a-time kernel on 960@7, 1.7x on 144@56)."""
    flipped, pads = stride1_dual(w, padding, dilation, groups)
    return depthwise.transpose_direct(x, flipped, (1,) * len(pads), pads, dilation, groups, out_sizes)


def _direct_numpy(x, w, stride, padding, dilation, groups, out_sizes, y):
    """The taps read only input cells; a non-finite weight must also meet the zero padding (``inf * 0 = NaN``,
    as every padded algorithm and torch's float64 kernels give), so then the input is padded first."""
    if any(lo or hi for lo, hi in padding) and not all_finite(w):
        x, padding = pad_zeros(x, padding), ((0, 0),) * len(padding)
    conv_taps(x, w, stride, padding, dilation, groups, out_sizes, y)
    return y


def _taps(kernel):
    return itertools.product(*(range(k) for k in kernel))


def conv_taps(x, w, stride, padding, dilation, groups, out_sizes, y=None):
    """Convolution one kernel tap at a time, each reading only the input cells it meets (no padded copy):
    ``y[:, :, at] += W[:, :, tap] @ x[:, :, cells]`` (see ``arrays.tap_window``).  Memory and time follow the
    work however large the padding, stride or dilation; the NumPy path of ``direct``."""
    n, c = x.shape[:2]
    o_ch, cg = w.shape[:2]
    if y is None:
        y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    wg = w.reshape((groups, o_ch // groups, cg) + tuple(w.shape[2:]))  # (G, Og, Cg, *K)
    per_sample = (c + 2 * o_ch) * math.prod(out_sizes) * x.itemsize    # gathered cells, product, its reshape
    _add_taps(x, wg, y, stride, padding, dilation, True, per_sample)
    return y


def conv_transpose_taps(x, w, stride, padding, dilation, groups, out_sizes):
    """Transposed convolution one kernel tap at a time, each adding into only the output cells it meets (no
    uncropped buffer): ``y[:, :, cells] += W[:, :, tap]^T @ x[:, :, at]``."""
    n, c = x.shape[:2]
    og = w.shape[1]
    y = np.zeros((n, groups * og) + tuple(out_sizes), dtype=x.dtype)
    wg = w.reshape((groups, c // groups, og) + tuple(w.shape[2:])).swapaxes(1, 2)   # (G, Og, Cg, *K)
    per_sample = (c + 2 * groups * og) * math.prod(x.shape[2:]) * x.itemsize
    _add_taps(x, wg, y, stride, padding, dilation, False, per_sample)
    return y


def _add_taps(x, wg, y, stride, padding, dilation, x_is_read, per_sample):
    """``y[:, :, y_cells] += wg[:, :, :, tap] @ x[:, :, x_cells]`` for every tap, over the cells where the tap
    meets both: a convolution when ``x`` is the side read (``y`` the moving outputs), a transposed one when
    ``x`` moves (``y`` the side written)."""
    n, c = x.shape[:2]
    g, og, cg = wg.shape[:3]
    kernel = wg.shape[3:]
    yv = y.reshape((n, g, og) + y.shape[2:])
    other, moving = (x.shape[2:], y.shape[2:]) if x_is_read else (y.shape[2:], x.shape[2:])
    lo = [p for p, _ in padding]
    for a, z in batch_tiles(n, per_sample, _config.workspace_limit(y.nbytes)):
        for tap in _taps(kernel):
            window = tap_window(tap, other, moving, stride, dilation, lo)
            if window is None:
                continue
            x_at, y_at = window[::-1] if x_is_read else window
            xs = x[(slice(a, z), slice(None)) + x_at]
            sizes = xs.shape[2:]
            xs = xs.reshape(z - a, g, cg, math.prod(sizes))              # copy: (n, G, Cg, P)
            wt = wg[(slice(None),) * 3 + tap]                             # (G, Og, Cg)
            part = wt * xs if cg == 1 else np.matmul(wt, xs)              # (n, G, Og, P)
            target = yv[(slice(a, z), slice(None), slice(None)) + y_at]
            np.add(target, part.reshape(target.shape), out=target)      # (no setitem: it copies the slice)
            del xs, part


def weight_grad_taps(x, gy, kernel, stride, padding, dilation, groups):
    """Gradient of a convolution w.r.t. its weight one tap at a time: ``gW[:, :, tap] = sum_n gy[:, :, at] @
    x[:, :, cells]^T`` over only the cells the tap meets.  ``(O, C/g, *kernel)``."""
    n, c = x.shape[:2]
    o_ch = gy.shape[1]
    g, cg, og = groups, c // groups, o_ch // groups
    gw = np.zeros((g, og, cg) + tuple(kernel), dtype=x.dtype)
    lo = [p for p, _ in padding]
    per_sample = (c + o_ch) * math.prod(gy.shape[2:]) * x.itemsize
    for tap in _taps(kernel):
        window = tap_window(tap, x.shape[2:], gy.shape[2:], stride, dilation, lo)
        if window is None:
            continue
        at, cells = window
        for a, z in batch_tiles(n, per_sample, _config.workspace_limit(gw.nbytes)):
            xs = x[(slice(a, z), slice(None)) + cells]
            p = math.prod(xs.shape[2:])
            xs = xs.reshape(z - a, g, cg, p)                              # copy: (n, G, Cg, P)
            gys = gy[(slice(a, z), slice(None)) + at].reshape(z - a, g, og, p)
            gw[(slice(None),) * 3 + tap] += np.matmul(gys, xs.swapaxes(2, 3)).sum(axis=0)   # (G, Og, Cg)
            del xs, gys
    return gw.reshape((o_ch, cg) + tuple(kernel))


def _forward(x, w, p):
    return direct(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


def _forward_pays(p):
    """Depthwise layers with the Numba kernels: no matrix product has enough work there, a direct loop over taps
    is faster and needs no workspace (the NumPy path runs only when forced)."""
    return p.is_depthwise and p.n_spatial <= 3 and numba_kernels(p.dtype) is not None


def _kernels_unfit(p):
    if not depthwise.available(p.dtype):
        return (f"the direct transposed kernels need Numba (installed and not switched off) and float32 or "
                f"float64, got {p.dtype}")
    if p.n_spatial > 3:
        return f"the direct transposed kernels cover 1 to 3 spatial dims, got {p.n_spatial}"
    return None


def _transpose(x, w, p):
    return depthwise.transpose_direct(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


def _transpose_pays(p):
    """One output channel per group (a depthwise layer's input gradient): col2im's products are 1xK matrices."""
    return p.groups > 1 and p.out_per_group == 1


def _weight_grad(x, gy, p):
    return depthwise.weight_grad_direct(x, gy, p.kernel, p.stride, p.padding, p.dilation, p.groups)


ALGORITHM = Algorithm("direct", {
    "forward": Role(_forward, rank=10, pays=_forward_pays),
    "transpose": Role(_transpose, rank=10, unfit=_kernels_unfit, pays=_transpose_pays),
    "weight_grad": Role(_weight_grad, rank=20, unfit=_kernels_unfit, pays=lambda p: p.is_depthwise),
}, Threading(speed_ratio=2))

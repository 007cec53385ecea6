"""Pooling ops, as ``torch.nn.functional``: ``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d``,
``adaptive_avg_pool1d/2d/3d`` and ``adaptive_max_pool2d``, each an autograd Function.

Window arithmetic is convolution's: output sizes from :func:`convforge.shapes.pool_output_size` (plus PyTorch's
``ceil_mode`` rule); window ``o`` reads input positions ``o*s + t*d - p`` for taps ``t``.

Max pooling keeps, per output, the flat index of its maximum in the input plane (PyTorch's ``return_indices``;
ties go to the first maximum in window order, a NaN wins); backward adds each output gradient at that index.
A dilated window that lies entirely in the padding outputs ``-inf``, index -1, and passes no gradient.
Average pooling sums the taps (each a strided slice of the zero-padded input) and divides by PyTorch's divisor;
backward spreads ``grad / divisor`` back over the same slices.  Adaptive average pooling is one matrix product
per spatial dimension with the 0/1 window matrix, divided by the window sizes; adaptive max pooling gathers every window (padded to the
longest by repeating its last cell, which never changes the first maximum) and takes the argmax.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _canon, shapes
from .accel import layer_kernels, over_planes
from .common import apply_along_spatial, array_arg, batched, check_output_size, float_input
from ...autograd import Function

__all__ = ["window_args", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d",
           "adaptive_output_size"]


def window_args(kernel_size, stride, padding, dilation, n: int, op: str):
    """Canonical ``(kernel, stride, padding, dilation)`` int tuples; ``stride`` None (or ``[]``) means the kernel."""
    kernel = _canon.ntuple(kernel_size, n, "kernel_size", minimum=1)
    strides = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _canon.ntuple(stride, n, "stride", minimum=1)
    pads = _canon.ntuple(padding, n, "padding", minimum=0)
    dils = _canon.ntuple(dilation, n, "dilation", minimum=1)
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"{op}: padding should be at most half of kernel size, but got padding={padding} and "
                         f"kernel_size={kernel_size}")
    return kernel, strides, pads, dils


def _out_sizes(sizes, kernel, stride, padding, dilation, ceil_mode, op):
    try:
        return tuple(shapes.pool_output_size(i, k, s, p, d, ceil_mode)
                     for i, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    except ValueError:
        raise ValueError(f"{op}: given input size {tuple(sizes)}, kernel_size {kernel}, stride {stride}, padding "
                         f"{padding}, dilation {dilation}: the calculated output size is too small (the window is "
                         f"larger than the padded input)") from None


def _pads(sizes, kernel, stride, padding, dilation, out):
    """Per-side padding; the right side includes the overhang a ``ceil_mode`` window may read."""
    return tuple((p, p + max(0, (o - 1) * s + d * (k - 1) + 1 - (i + 2 * p)))
                 for i, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, out))


def _tap_slices(tap, dilation, stride, out_sizes):
    """Slices of the padded input read by one kernel tap at every output position."""
    return (slice(None), slice(None)) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, s, o in zip(tap, dilation, stride, out_sizes))


def _crop(xp, pads, sizes):
    return xp[(slice(None), slice(None)) + tuple(slice(lo, lo + i) for (lo, _), i in zip(pads, sizes))]


def _as_planes(x, n):
    """``(N, C, *S)`` -> contiguous ``(N*C, D, H, W)`` with leading size-1 spatial dims."""
    return np.ascontiguousarray(x).reshape((-1,) + (1,) * (3 - n) + x.shape[2:])


def _triple(values, fill):
    return (fill,) * (3 - len(values)) + tuple(values)


# -- max pooling ---------------------------------------------------------------------------------------------------
def _max_pool_numpy(x, kernel, stride, padding, dilation, out, want_index):
    """Running maximum over the taps; the winning tap per output when ``want_index`` (else None)."""
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    pads = _pads(x.shape[2:], kernel, stride, padding, dilation, out)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=fill)
    taps = list(itertools.product(*(range(k) for k in kernel)))
    best = xp[_tap_slices(taps[0], dilation, stride, out)].copy()
    arg = np.zeros(best.shape, dtype=np.int64) if want_index else None
    for flat_tap, tap in enumerate(taps[1:], start=1):
        v = xp[_tap_slices(tap, dilation, stride, out)]
        if want_index:
            better = v > best
            if x.dtype.kind == "f":
                better |= np.isnan(v)                   # PyTorch: a NaN always wins
            best = np.where(better, v, best)
            arg[better] = flat_tap
        else:
            np.maximum(best, v, out=best)
    return best, arg


def _tap_to_flat_index(arg, sizes, kernel, stride, padding, dilation, out):
    """The winning tap -> flat index into the input plane (-1 when that position is padding)."""
    taps = np.unravel_index(arg, kernel)
    flat = np.zeros(arg.shape, dtype=np.int64)
    inside = np.ones(arg.shape, dtype=bool)
    for dim in range(len(kernel)):
        o = np.arange(out[dim]).reshape((-1,) + (1,) * (len(kernel) - 1 - dim))
        pos = o * stride[dim] + taps[dim] * dilation[dim] - padding[dim]
        inside &= (pos >= 0) & (pos < sizes[dim])
        flat = flat * sizes[dim] + pos
    return np.where(inside, flat, -1)


def _max_pool_forward(x, kernel, stride, padding, dilation, out, want_index):
    n = len(kernel)
    kernels = layer_kernels(x.dtype)
    if kernels is None:
        y, arg = _max_pool_numpy(x, kernel, stride, padding, dilation, out, want_index)
        index = _tap_to_flat_index(arg, x.shape[2:], kernel, stride, padding, dilation, out) if want_index \
            else None
        return y, index
    x3 = _as_planes(x, n)
    y3 = np.empty(x3.shape[:1] + _triple(out, 1), dtype=x.dtype)
    idx3 = np.empty(y3.shape if want_index else (1, 1, 1, 1), dtype=np.int64)
    geometry = _triple(kernel, 1) + _triple(stride, 1) + _triple(padding, 0) + _triple(dilation, 1)
    over_planes(x3.shape[0], x3.size + y3.size * math.prod(kernel),
                lambda a, b: kernels.max_pool(x3[a:b], *geometry, y3[a:b], idx3[a:b] if want_index else idx3,
                                              want_index))
    y = y3.reshape(x.shape[:2] + out)
    return y, (idx3.reshape(y.shape) if want_index else None)


def _scatter_to_index(grad, index, in_shape):
    """Input gradient of a max pooling: ``gx.flat[plane, index] += grad`` (index -1: dropped)."""
    planes = math.prod(in_shape[:2])
    plane = math.prod(in_shape[2:])
    kernels = layer_kernels(grad.dtype)
    g2 = np.ascontiguousarray(grad).reshape(planes, -1)
    i2 = index.reshape(planes, -1)
    if kernels is not None:
        gx = np.zeros((planes, plane), dtype=grad.dtype)
        over_planes(planes, g2.size, lambda a, b: kernels.scatter_add_planes(g2[a:b], i2[a:b], gx[a:b]))
        return gx.reshape(in_shape)
    keep = i2 >= 0
    flat = (i2 + (np.arange(planes) * plane)[:, None])[keep]
    gx = np.bincount(flat, weights=g2[keep], minlength=planes * plane)
    return gx.astype(grad.dtype, copy=False).reshape(in_shape)


class MaxPoolFn(Function):
    """``forward(ctx, input, n, kernel, stride, padding, dilation, ceil_mode, return_indices)``: canonical tuples;
    returns ``y`` or ``(y, indices)``."""

    @staticmethod
    def forward(ctx, x, n, kernel, stride, padding, dilation, ceil_mode, return_indices):
        op = f"max_pool{n}d"
        xb, unbatched = batched(x, n, op)
        out = _out_sizes(xb.shape[2:], kernel, stride, padding, dilation, ceil_mode, op)
        y, index = _max_pool_forward(xb, kernel, stride, padding, dilation, out, ctx.needs_input_grad[0] or
                                     return_indices)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(index)
            ctx.in_shape, ctx.unbatched = xb.shape, unbatched
        if unbatched:
            y, index = y[0], (None if index is None else index[0])
        return (y, index) if return_indices else y

    @staticmethod
    def backward(ctx, grad, grad_indices=None):
        (index,) = ctx.saved_tensors
        g = grad[None] if ctx.unbatched else grad
        gx = _scatter_to_index(g, index, ctx.in_shape)
        return (gx[0] if ctx.unbatched else gx,) + (None,) * 8


def _max_pool(n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    op = f"max_pool{n}d"
    x = array_arg(input)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{op}: unsupported input dtype {x.dtype}")
    batched(x, n, op)
    kernel, stride, padding, dilation = window_args(kernel_size, stride, padding, dilation, n, op)
    return MaxPoolFn.apply(x, n, kernel, stride, padding, dilation, bool(ceil_mode), bool(return_indices))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling, as ``torch.nn.functional.max_pool1d``.

    Shape:
        ``(N, C, L)`` or ``(C, L)`` -> ``L_out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
        ``ceil_mode``; the last window must start inside the input or the left padding).

    Example:
        >>> import numpy as np
        >>> max_pool1d(np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]]), 2).tolist()
        [[[3.0, 2.0]]]
    """
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d`` (per dimension as max_pool1d).

    Example:
        >>> import numpy as np
        >>> max_pool2d(np.zeros((8, 64, 112, 112), np.float32), 3, 2, 1).shape
        (8, 64, 56, 56)
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling, as ``torch.nn.functional.max_pool3d`` (per dimension as max_pool1d).

    Example:
        >>> import numpy as np
        >>> max_pool3d(np.zeros((1, 2, 4, 4, 4)), 2, stride=1).shape
        (1, 2, 3, 3, 3)
    """
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# -- average pooling -----------------------------------------------------------------------------------------------
def _avg_divisor(sizes, kernel, stride, padding, out, count_include_pad, divisor_override, dtype):
    """Per-window divisor, PyTorch's rule: the window clipped to ``[-p, i + p)`` (count_include_pad) or to the
    input ``[0, i)``; a product of per-dimension counts."""
    if divisor_override is not None:
        return np.asarray(divisor_override, dtype=dtype)
    div = np.ones((1,) * len(out), dtype=dtype)
    for dim, (i, k, s, p, o) in enumerate(zip(sizes, kernel, stride, padding, out)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, i + p)
        count = end - start if count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
        div = div * count.reshape((1,) * dim + (-1,) + (1,) * (len(out) - dim - 1))
    return div.astype(dtype, copy=False)


class AvgPoolFn(Function):
    """``forward(ctx, input, n, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)``."""

    @staticmethod
    def forward(ctx, x, n, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        op = f"avg_pool{n}d"
        xb, unbatched = batched(x, n, op)
        ones = (1,) * n
        out = _out_sizes(xb.shape[2:], kernel, stride, padding, ones, ceil_mode, op)
        pads = _pads(xb.shape[2:], kernel, stride, padding, ones, out)
        xp = np.pad(xb, ((0, 0), (0, 0)) + pads)
        taps = list(itertools.product(*(range(k) for k in kernel)))
        total = xp[_tap_slices(taps[0], ones, stride, out)].copy()
        for tap in taps[1:]:
            total += xp[_tap_slices(tap, ones, stride, out)]
        div = _avg_divisor(xb.shape[2:], kernel, stride, padding, out, count_include_pad, divisor_override, x.dtype)
        y = (total / div).astype(x.dtype, copy=False)
        if ctx.needs_input_grad[0]:
            ctx.geometry = (div, xp.shape, xb.shape, pads, kernel, stride, out, unbatched)
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, grad):
        div, padded_shape, in_shape, pads, kernel, stride, out, unbatched = ctx.geometry
        g = (grad[None] if unbatched else grad) / div
        gxp = np.zeros(padded_shape, dtype=grad.dtype)
        for tap in itertools.product(*(range(k) for k in kernel)):
            gxp[_tap_slices(tap, (1,) * len(kernel), stride, out)] += g
        gx = _crop(gxp, pads, in_shape[2:])
        return (gx[0] if unbatched else gx,) + (None,) * 8


def _avg_pool(n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    op = f"avg_pool{n}d"
    x = float_input(input, op)
    xb, _ = batched(x, n, op)
    kernel, stride, padding, _ = window_args(kernel_size, stride, padding, 1, n, op)
    if divisor_override is not None and (not _canon.is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
    if n == 3 and any(i < k for i, k in zip(xb.shape[2:], kernel)):
        # PyTorch's avg_pool3d (only the 3-d one) rejects inputs smaller than the kernel, padding or not
        raise ValueError(f"{op}: input size {tuple(xb.shape[2:])} is smaller than the kernel size {kernel} "
                         f"(avg_pool3d requires input >= kernel in every dimension, even with padding, as in "
                         f"PyTorch)")
    return AvgPoolFn.apply(x, n, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                           divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d``.

    Shape:
        ``(N, C, L)`` or ``(C, L)`` -> ``L_out = floor((L + 2p - k) / s) + 1`` (``ceil`` with ``ceil_mode``).

    Example:
        >>> import numpy as np
        >>> avg_pool1d(np.array([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
        [[[2.0, 1.0]]]
    """
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d`` (``divisor_override`` replaces every window's
    divisor).

    Example:
        >>> import numpy as np
        >>> avg_pool2d(np.ones((1, 1, 5, 5)), 3, stride=2, padding=1, count_include_pad=False).tolist()
        [[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]]
    """
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling, as ``torch.nn.functional.avg_pool3d``.

    Example:
        >>> import numpy as np
        >>> avg_pool3d(np.ones((2, 1, 4, 4, 4)), 2).shape
        (2, 1, 2, 2, 2)
    """
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


# -- adaptive pooling ----------------------------------------------------------------------------------------------
def adaptive_output_size(output_size, n: int, op: str):
    """``output_size`` (int, or n ints/None) checked; returns the per-dim tuple (None keeps the input size)."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * n
    if len(sizes) != n or not all(v is None or (_canon.is_int(v) and v > 0) for v in sizes):
        raise ValueError(f"{op}: output_size must be a positive int or {n} positive ints/None, got "
                         f"{output_size!r}")
    return sizes


def _window_bounds(i, o):
    """Adaptive window ``j`` covers ``[floor(j*i/o), ceil((j+1)*i/o))``."""
    j = np.arange(o)
    return (j * i) // o, -((-(j + 1) * i) // o)


def _adaptive_windows(sizes, targets, dtype):
    """Per-dimension ``(o, i)`` 0/1 window matrices and the divisor (the window sizes' product, broadcastable
    over the output): averages are window sums divided by window sizes, as PyTorch computes them."""
    mats, div = [], np.ones((1,) * len(sizes), dtype=dtype)
    for dim, (i, o) in enumerate(zip(sizes, targets)):
        start, end = _window_bounds(i, o)
        cols = np.arange(i)
        mats.append(((cols >= start[:, None]) & (cols < end[:, None])).astype(dtype))
        div = div * (end - start).reshape((1,) * dim + (-1,) + (1,) * (len(sizes) - dim - 1))
    return mats, div.astype(dtype, copy=False)


def _resolved_targets(sizes, output_size):
    return tuple(i if o is None else o for i, o in zip(sizes, output_size))


class AdaptiveAvgPoolFn(Function):
    @staticmethod
    def forward(ctx, x, n, output_size):
        xb, unbatched = batched(x, n, f"adaptive_avg_pool{n}d")
        targets = _resolved_targets(xb.shape[2:], output_size)
        if all(o == 1 for o in targets):
            y = xb.mean(axis=tuple(range(2, 2 + n)), keepdims=True, dtype=xb.dtype)
            mats = div = None
        else:
            mats, div = _adaptive_windows(xb.shape[2:], targets, x.dtype)
            y = apply_along_spatial(xb, mats) / div
        if ctx.needs_input_grad[0]:
            ctx.mats, ctx.div, ctx.in_shape, ctx.unbatched = mats, div, xb.shape, unbatched
        return np.ascontiguousarray(y[0] if unbatched else y)

    @staticmethod
    def backward(ctx, grad):
        g = grad[None] if ctx.unbatched else grad
        if ctx.mats is None:
            gx = np.broadcast_to(g / math.prod(ctx.in_shape[2:]), ctx.in_shape).astype(grad.dtype)
        else:
            gx = apply_along_spatial(g / ctx.div, [a.T for a in ctx.mats])
        return (gx[0] if ctx.unbatched else gx), None, None


def _adaptive_avg(n, input, output_size):
    op = f"adaptive_avg_pool{n}d"
    x = float_input(input, op)
    xb, _ = batched(x, n, op)
    if any(i == 0 for i in xb.shape[2:]):
        raise ValueError(f"{op}: spatial sizes must be non-empty, got input of size {list(x.shape)}")
    sizes = adaptive_output_size(output_size, n, op)
    check_output_size(xb.shape[:2] + _resolved_targets(xb.shape[2:], sizes), x.dtype, op)
    return AdaptiveAvgPoolFn.apply(x, n, sizes)


def adaptive_avg_pool1d(input, output_size):
    """1-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool1d``: output cell ``j`` averages
    input cells ``floor(j*L/L_out)`` to ``ceil((j+1)*L/L_out) - 1``.

    Example:
        >>> import numpy as np
        >>> adaptive_avg_pool1d(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2).tolist()
        [[[2.0, 4.0]]]
    """
    return _adaptive_avg(1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d`` (None keeps that size).

    Example:
        >>> import numpy as np
        >>> adaptive_avg_pool2d(np.zeros((2, 3, 5, 7)), (None, 1)).shape
        (2, 3, 5, 1)
    """
    return _adaptive_avg(2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """3-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool3d``.

    Example:
        >>> import numpy as np
        >>> adaptive_avg_pool3d(np.ones((1, 2, 3, 4, 5)), 1).shape
        (1, 2, 1, 1, 1)
    """
    return _adaptive_avg(3, input, output_size)


class AdaptiveMaxPoolFn(Function):
    @staticmethod
    def forward(ctx, x, n, output_size, return_indices):
        xb, unbatched = batched(x, n, f"adaptive_max_pool{n}d")
        sizes = xb.shape[2:]
        targets = _resolved_targets(sizes, output_size)
        # per dim: (o, longest window) input positions, short windows repeat their last cell
        positions = []
        for i, o in zip(sizes, targets):
            start, end = _window_bounds(i, o)
            longest = int((end - start).max())
            positions.append(np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1))
        grids = np.ix_(*[p.reshape(-1) for p in positions])
        gathered = xb[(slice(None), slice(None)) + grids]                      # (N, C, o1*k1, o2*k2, ...)
        split = gathered.reshape(xb.shape[:2] + sum((p.shape for p in positions), ()))
        order = (0, 1) + tuple(2 + 2 * d for d in range(n)) + tuple(3 + 2 * d for d in range(n))
        window_cells = math.prod(p.shape[1] for p in positions)
        windows = split.transpose(order).reshape(xb.shape[:2] + targets + (window_cells,))   # (N, C, *O, K)
        arg = windows.argmax(axis=-1)
        if x.dtype.kind == "f":                                                 # a NaN wins, as in PyTorch
            nan = np.isnan(windows)
            arg = np.where(nan.any(axis=-1), nan.argmax(axis=-1), arg)
        y = np.take_along_axis(windows, arg[..., None], axis=-1)[..., 0]
        index = np.zeros(arg.shape, dtype=np.int64)
        taps = np.unravel_index(arg, tuple(p.shape[1] for p in positions))
        for dim, p in enumerate(positions):
            o = np.arange(p.shape[0]).reshape((-1,) + (1,) * (n - 1 - dim))
            index = index * sizes[dim] + p[o, taps[dim]]
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(index)
            ctx.in_shape, ctx.unbatched = xb.shape, unbatched
        if unbatched:
            y, index = y[0], index[0]
        return (y, index) if return_indices else y

    @staticmethod
    def backward(ctx, grad, grad_indices=None):
        (index,) = ctx.saved_tensors
        g = grad[None] if ctx.unbatched else grad
        gx = _scatter_to_index(g, index, ctx.in_shape)
        return (gx[0] if ctx.unbatched else gx), None, None, None


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d`` (windows as in
    adaptive_avg_pool2d; ``return_indices`` gives the flat index of each maximum in its input plane).

    Example:
        >>> import numpy as np
        >>> adaptive_max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    op = "adaptive_max_pool2d"
    x = array_arg(input)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{op}: unsupported input dtype {x.dtype}")
    xb, _ = batched(x, 2, op)
    if any(i == 0 for i in xb.shape[2:]):
        raise ValueError(f"{op}: spatial sizes must be non-empty, got input of size {list(x.shape)}")
    sizes = adaptive_output_size(output_size, 2, op)
    check_output_size(xb.shape[:2] + _resolved_targets(xb.shape[2:], sizes), x.dtype, op)
    return AdaptiveMaxPoolFn.apply(x, 2, sizes, bool(return_indices))

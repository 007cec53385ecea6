"""Pooling layers, as in ``torch.nn``: ``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``AdaptiveAvgPool1d/2d/3d``.

Pooling uses the window arithmetic of convolution: output sizes come from
:func:`convforge.shapes.pool_output_size` (the convolution formula, plus PyTorch's ``ceil_mode`` rule) and the
windows are the same strided view the convolution engine uses (``_engine.window_view``)::

    xp   (N, C, *S_padded)          input padded by (p, p + overhang)  (-inf for max, 0 for average)
    win  (N, C, *K, *O)             win[n, c, t, o] = xp[n, c, o*s + t*d]   (a view, no copy)
    max  (N, C, *O)  = win.max over K;   avg (N, C, *O) = win.sum over K / divisor

``overhang`` is the extra right padding a ``ceil_mode`` window may need; it never counts in an average.

Backward scatters each output gradient back to its window, one kernel tap at a time (a loop over the K taps,
each a strided slice of the whole batch, like the engine's col2im): max pooling sends it to the window's
first maximum (PyTorch's tie rule), average pooling spreads ``grad / divisor`` over the window.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _api, _canon, shapes
from .._engine import window_view
from .._grad_mode import is_grad_enabled
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"]


def _batched(x, n, op):
    """``(C, *S)`` or ``(N, C, *S)`` -> ``(N, C, *S)`` and whether a batch axis was added (the conv rule)."""
    return _api._batch(np.asarray(x), n, op)


def _tap_slices(tap, dilation, stride, out_sizes):
    """Slices of the padded input read by one kernel tap at every output position."""
    return (slice(None), slice(None)) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, s, o in zip(tap, dilation, stride, out_sizes))


class _PoolNd(Module):
    _n: int = 0

    def _window_args(self, kernel_size, stride, padding, dilation):
        n, name = self._n, type(self).__name__
        kernel = _canon.ntuple(kernel_size, n, "kernel_size", minimum=1)
        strides = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
            else _canon.ntuple(stride, n, "stride", minimum=1)
        pads = _canon.ntuple(padding, n, "padding", minimum=0)
        dils = _canon.ntuple(dilation, n, "dilation", minimum=1)
        if any(p > k // 2 for p, k in zip(pads, kernel)):
            raise ValueError(f"{name}: padding should be at most half of kernel size, but got padding={padding} and "
                             f"kernel_size={kernel_size}")
        return kernel, strides, pads, dils

    def _geometry(self, x, kernel, stride, padding, dilation, ceil_mode):
        """Output sizes and the per-side padding (right side includes the ceil_mode overhang)."""
        sizes = x.shape[2:]
        try:
            out = tuple(shapes.pool_output_size(i, k, s, p, d, ceil_mode)
                        for i, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
        except ValueError:
            raise ValueError(f"{type(self).__name__}: given input size {tuple(x.shape[1:])}, kernel_size {kernel}, "
                             f"stride {stride}, padding {padding}, dilation {dilation}: the calculated output size "
                             f"is too small (the window is larger than the padded input)") from None
        pads = tuple((p, p + max(0, (o - 1) * s + d * (k - 1) + 1 - (i + 2 * p)))
                     for i, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, out))
        return out, pads

    def _take_cache(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called without a forward pass with gradients "
                               f"enabled")
        return self._cache


class _MaxPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self._window_args(kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)
        self._cache = None

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        name = type(self).__name__
        x, unbatched = _batched(input, self._n, name)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"{name}: unsupported input dtype {x.dtype}")
        kernel, stride, padding, dilation = self._window_args(self.kernel_size, self.stride, self.padding,
                                                              self.dilation)
        out, pads = self._geometry(x, kernel, stride, padding, dilation, self.ceil_mode)
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=fill)
        win = window_view(xp, kernel, stride, dilation, out)                       # (N, C, *K, *O) view
        need_args = is_grad_enabled() or self.return_indices
        if need_args:
            cols = win.reshape(x.shape[:2] + (math.prod(kernel),) + out)           # (N, C, K, *O) copy
            arg = cols.argmax(axis=2)                                               # first maximum, (N, C, *O)
            y = np.take_along_axis(cols, arg[:, :, None], axis=2)[:, :, 0]
        else:
            y = win.max(axis=tuple(range(2, 2 + self._n)))
        self._cache = (arg, xp.shape, x.shape, pads, kernel, stride, dilation, out, unbatched) \
            if is_grad_enabled() else None
        y = y[0] if unbatched else y
        if self.return_indices:
            idx = self._flat_indices(arg, x.shape[2:], kernel, stride, padding, dilation, out)
            return y, (idx[0] if unbatched else idx)
        return y

    @staticmethod
    def _flat_indices(arg, sizes, kernel, stride, padding, dilation, out):
        """PyTorch's ``return_indices``: the argmax as a flat index into each channel's input plane."""
        taps = np.unravel_index(arg, kernel)
        flat = np.zeros(arg.shape, dtype=np.int64)
        for dim in range(len(kernel)):
            o = np.arange(out[dim]).reshape((-1,) + (1,) * (len(kernel) - 1 - dim))
            pos = o * stride[dim] + taps[dim] * dilation[dim] - padding[dim]
            flat = flat * sizes[dim] + pos
        return flat

    def backward(self, grad_output):
        arg, padded_shape, in_shape, pads, kernel, stride, dilation, out, unbatched = self._take_cache()
        g = np.asarray(grad_output)
        g = g[None] if unbatched else g
        gxp = np.zeros(padded_shape, dtype=g.dtype)
        for flat_tap, tap in enumerate(itertools.product(*(range(k) for k in kernel))):
            gxp[_tap_slices(tap, dilation, stride, out)] += np.where(arg == flat_tap, g, 0)
        gx = gxp[(slice(None), slice(None)) + tuple(slice(lo, lo + i) for (lo, _), i in zip(pads, in_shape[2:]))]
        return gx[0] if unbatched else gx


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        self._window_args(kernel_size, stride, padding, 1)
        if divisor_override is not None and (not _canon.is_int(divisor_override) or divisor_override == 0):
            raise ValueError(f"{type(self).__name__}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override
        self._cache = None

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _divisor(self, sizes, kernel, stride, padding, out, dtype):
        """Per-window divisor, PyTorch's rule: the window clipped to [-p, i + p) (count_include_pad) or to the
        input [0, i); a product of per-dimension counts."""
        if self.divisor_override is not None:
            return np.asarray(self.divisor_override, dtype=dtype)
        div = np.ones((1,) * len(out), dtype=dtype)
        for dim, (i, k, s, p, o) in enumerate(zip(sizes, kernel, stride, padding, out)):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, i + p)
            count = end - start if self.count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
            div = div * count.reshape((1,) * dim + (-1,) + (1,) * (len(out) - dim - 1))
        return div.astype(dtype, copy=False)

    def forward(self, input):
        name = type(self).__name__
        x, unbatched = _batched(input, self._n, name)
        if x.dtype.kind not in "fc":
            raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
        kernel, stride, padding, _ = self._window_args(self.kernel_size, self.stride, self.padding, 1)
        if self._n == 3 and any(i < k for i, k in zip(x.shape[2:], kernel)):
            # PyTorch's avg_pool3d (only the 3-d one) rejects inputs smaller than the kernel, padding or not
            raise ValueError(f"{name}: input size {tuple(x.shape[2:])} is smaller than the kernel size {kernel} "
                             f"(AvgPool3d requires input >= kernel in every dimension, even with padding, as in "
                             f"PyTorch)")
        ones = (1,) * self._n
        out, pads = self._geometry(x, kernel, stride, padding, ones, self.ceil_mode)
        xp = np.pad(x, ((0, 0), (0, 0)) + pads)
        win = window_view(xp, kernel, stride, ones, out)                            # (N, C, *K, *O) view
        div = self._divisor(x.shape[2:], kernel, stride, padding, out, x.dtype)
        y = (win.sum(axis=tuple(range(2, 2 + self._n))) / div).astype(x.dtype, copy=False)
        self._cache = (div, xp.shape, x.shape, pads, kernel, stride, out, unbatched) if is_grad_enabled() else None
        return y[0] if unbatched else y

    def backward(self, grad_output):
        div, padded_shape, in_shape, pads, kernel, stride, out, unbatched = self._take_cache()
        g = np.asarray(grad_output)
        g = (g[None] if unbatched else g) / div
        gxp = np.zeros(padded_shape, dtype=g.dtype)
        for tap in itertools.product(*(range(k) for k in kernel)):
            gxp[_tap_slices(tap, (1,) * self._n, stride, out)] += g
        gx = gxp[(slice(None), slice(None)) + tuple(slice(lo, lo + i) for (lo, _), i in zip(pads, in_shape[2:]))]
        return gx[0] if unbatched else gx


def _adaptive_windows(i, o, dtype):
    """``(o, i)`` 0/1 matrix of adaptive pooling windows (row ``j`` covers ``[floor(j*i/o), ceil((j+1)*i/o))``)
    and the window lengths ``(o,)``."""
    j = np.arange(o)
    start = (j * i) // o
    end = -((-(j + 1) * i) // o)
    cols = np.arange(i)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return inside.astype(dtype), end - start


class _AdaptiveAvgPoolNd(_PoolNd):
    def __init__(self, output_size):
        super().__init__()
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * self._n
        if len(sizes) != self._n or not all(v is None or (_canon.is_int(v) and v > 0) for v in sizes):
            raise ValueError(f"{type(self).__name__}: output_size must be a positive int or {self._n} positive "
                             f"ints/None, got {output_size!r}")
        self.output_size = output_size
        self._cache = None

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def _windows(self, sizes, dtype):
        """Per-dimension window matrices and the divisor (window sizes, a product over dimensions)."""
        targets = self.output_size if isinstance(self.output_size, (tuple, list)) else (self.output_size,) * self._n
        mats, div = [], np.ones((1,) * self._n, dtype=dtype)
        for dim, (i, o) in enumerate(zip(sizes, targets)):
            inside, lengths = _adaptive_windows(i, i if o is None else o, dtype)
            mats.append(inside)
            div = div * lengths.reshape((1,) * dim + (-1,) + (1,) * (self._n - dim - 1))
        return mats, div.astype(dtype, copy=False)

    @staticmethod
    def _apply(x, mats):
        # one matrix product per spatial dimension: (..., i) @ (i, o) on that axis moved last
        for dim, a in enumerate(mats):
            axis = 2 + dim
            x = np.moveaxis(np.moveaxis(x, axis, -1) @ a.T, -1, axis)
        return x

    def forward(self, input):
        name = type(self).__name__
        x, unbatched = _batched(input, self._n, name)
        if x.dtype.kind not in "fc":
            raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
        if any(i == 0 for i in x.shape[2:]):
            raise ValueError(f"{name}: spatial sizes must be non-empty, got input of size {list(np.shape(input))}")
        mats, div = self._windows(x.shape[2:], x.dtype)
        y = self._apply(x, mats) / div                                   # window sums / window sizes
        self._cache = (mats, div, unbatched) if is_grad_enabled() else None
        return y[0] if unbatched else y

    def backward(self, grad_output):
        mats, div, unbatched = self._take_cache()
        g = np.asarray(grad_output)
        g = (g[None] if unbatched else g) / div
        gx = self._apply(g, [a.T for a in mats])
        return gx[0] if unbatched else gx


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, as ``torch.nn.MaxPool1d``.

    Args:
        kernel_size: window size.
        stride: window step (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides (at most ``kernel_size // 2``).
        dilation: spacing between window elements.
        return_indices: also return the argmax positions (flat index into each channel's input).
        ceil_mode: round the output size up; the last window must still start inside the input or the left
            padding.

    A dilated window can fall entirely in the padding; it outputs ``-inf`` and passes no gradient back (PyTorch
    sends that gradient to an unrelated input element).

    Shape:
        ``(N, C, L)`` or ``(C, L)`` -> ``L_out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
        ``ceil_mode``), see :func:`convforge.shapes.pool_output_size`.

    Example:
        >>> import numpy as np
        >>> MaxPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]])).tolist()
        [[[3.0, 2.0]]]
    """
    _n = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, as ``torch.nn.MaxPool2d`` (arguments as MaxPool1d, per dimension).

    Shape:
        ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, H_out, W_out)``, each as in MaxPool1d.

    Example:
        >>> import numpy as np
        >>> m = MaxPool2d(2)
        >>> m
        MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
        >>> m(np.zeros((1, 3, 7, 7))).shape, MaxPool2d(2, ceil_mode=True)(np.zeros((1, 3, 7, 7))).shape
        ((1, 3, 3, 3), (1, 3, 4, 4))
    """
    _n = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, as ``torch.nn.MaxPool3d`` (arguments as MaxPool1d, per dimension).

    Example:
        >>> import numpy as np
        >>> MaxPool3d(2, stride=1)(np.zeros((1, 2, 4, 4, 4))).shape
        (1, 2, 3, 3, 3)
    """
    _n = 3


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``.

    Args:
        kernel_size: window size.
        stride: window step (default: ``kernel_size``).
        padding: implicit zero padding on both sides (at most ``kernel_size // 2``).
        ceil_mode: round the output size up (see MaxPool1d).
        count_include_pad: divide by the window size including padding (default True); a ``ceil_mode``
            overhang beyond the padding is never counted.

    Shape:
        ``(N, C, L)`` or ``(C, L)`` -> ``L_out = floor((L + 2p - k) / s) + 1``.

    Example:
        >>> import numpy as np
        >>> AvgPool1d(2)
        AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
        >>> AvgPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
        [[[2.0, 1.0]]]
    """
    _n = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        # PyTorch stores AvgPool1d's arguments as 1-tuples (and it has no divisor_override)
        kernel_size = _canon.ntuple(kernel_size, 1, "kernel_size", minimum=1)
        stride = kernel_size if stride is None else _canon.ntuple(stride, 1, "stride", minimum=1)
        super().__init__(kernel_size, stride, _canon.ntuple(padding, 1, "padding", minimum=0), ceil_mode,
                         count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, as ``torch.nn.AvgPool2d`` (arguments as AvgPool1d, per dimension).

    Args:
        divisor_override: if given, every window sum is divided by this instead of its size.

    Example:
        >>> import numpy as np
        >>> AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(np.ones((1, 1, 5, 5))).tolist()
        [[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]]
    """
    _n = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, as ``torch.nn.AvgPool3d`` (arguments as AvgPool2d).

    Example:
        >>> import numpy as np
        >>> AvgPool3d(2)(np.ones((2, 1, 4, 4, 4))).shape
        (2, 1, 2, 2, 2)
    """
    _n = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling to a fixed output length, as ``torch.nn.AdaptiveAvgPool1d``.

    Output cell ``j`` averages input cells ``floor(j*L/L_out)`` to ``ceil((j+1)*L/L_out) - 1`` (PyTorch's rule;
    windows may overlap or differ in size).

    Args:
        output_size: the output length.

    Example:
        >>> import numpy as np
        >>> AdaptiveAvgPool1d(2)(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])).tolist()
        [[[2.0, 4.0]]]
    """
    _n = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool2d``.

    Args:
        output_size: an int, or ``(H_out, W_out)`` where None keeps that input size.

    Example:
        >>> import numpy as np
        >>> AdaptiveAvgPool2d((None, 1))(np.zeros((2, 3, 5, 7))).shape
        (2, 3, 5, 1)
    """
    _n = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool3d`` (arguments as AdaptiveAvgPool2d).

    Example:
        >>> import numpy as np
        >>> AdaptiveAvgPool3d(1)(np.ones((1, 2, 3, 4, 5))).shape
        (1, 2, 1, 1, 1)
    """
    _n = 3

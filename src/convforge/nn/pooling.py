"""Pooling layers, as in ``torch.nn``: ``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``AdaptiveAvgPool1d/2d/3d``,
``AdaptiveMaxPool2d``.

Each module validates its arguments at construction and calls its ``convforge.nn.functional`` op (window
arithmetic, kernels and exact backward are in ``convforge.nn._ops.pooling``).
"""
from __future__ import annotations

from .. import _canon
from .module import Module
from ._ops import pooling as ops

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d"]


class _MaxPoolNd(Module):
    _n: int = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        ops.window_args(kernel_size, stride, padding, dilation, self._n, type(self).__name__)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        pool = (ops.max_pool1d, ops.max_pool2d, ops.max_pool3d)[self._n - 1]
        return pool(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                    self.return_indices)


class _AvgPoolNd(Module):
    _n: int = 0

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        ops.window_args(kernel_size, stride, padding, 1, self._n, type(self).__name__)
        if divisor_override is not None and (not _canon.is_int(divisor_override) or divisor_override == 0):
            raise ValueError(f"{type(self).__name__}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        if self._n == 1:
            return ops.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                  self.count_include_pad)
        pool = ops.avg_pool2d if self._n == 2 else ops.avg_pool3d
        return pool(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                    self.divisor_override)


class _AdaptiveAvgPoolNd(Module):
    _n: int = 0

    def __init__(self, output_size):
        super().__init__()
        ops.adaptive_output_size(output_size, self._n, type(self).__name__)
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        pool = (ops.adaptive_avg_pool1d, ops.adaptive_avg_pool2d, ops.adaptive_avg_pool3d)[self._n - 1]
        return pool(input, self.output_size)


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


class AdaptiveMaxPool2d(Module):
    """2-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool2d`` (windows as AdaptiveAvgPool2d's).

    Args:
        output_size: an int, or ``(H_out, W_out)`` where None keeps that input size.
        return_indices: also return the flat index of each maximum in its input plane.

    Example:
        >>> import numpy as np
        >>> AdaptiveMaxPool2d(2)
        AdaptiveMaxPool2d(output_size=2)
        >>> AdaptiveMaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        ops.adaptive_output_size(output_size, 2, "AdaptiveMaxPool2d")
        self.output_size, self.return_indices = output_size, bool(return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        return ops.adaptive_max_pool2d(input, self.output_size, self.return_indices)

"""Stateless convolution functions with PyTorch's names, signatures and defaults.

All of them are thin: they fix the number of spatial dimensions and call the one N-d implementation in
``convforge._api`` (validation + canonicalisation) and ``convforge._engine`` (computation).

Shape (every function, per spatial dimension; ``p_lo, p_hi`` the padding on each side):
    conv:            ``out = floor((in + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1``
    conv_transpose:  ``out = (in-1)*stride - p_lo - p_hi + dilation*(k-1) + output_padding + 1``

Padding forms: an int, one int per dim, one ``(lo, hi)`` pair per dim (beyond PyTorch), ``'valid'``, or
``'same'`` (stride 1: PyTorch's split with the extra on the right; stride > 1: TF/ONNX SAME_UPPER,
``out = ceil(in / stride)``).
"""
from __future__ import annotations

from .. import _api
from .._padding import pad

__all__ = ["conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "pad"]


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution (cross-correlation) for any number of spatial dims >= 1, taken from ``weight.ndim - 2``.

    Args:
        input: ``(N, C_in, *S)`` or unbatched ``(C_in, *S)``.
        weight: ``(C_out, C_in/groups, *K)``.
        bias: ``(C_out,)`` or None.

    Shape:
        ``out = floor((in + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1`` per dim.

    Example:
        >>> import numpy as np
        >>> conv(np.ones((1, 2, 5, 5, 5, 5)), np.ones((3, 2, 2, 2, 2, 2))).shape
        (1, 3, 4, 4, 4, 4)
    """
    return _api.convolution(input, weight, bias, stride, padding, dilation, groups, op="conv")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution. input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, k)``.

    Shape:
        ``L_out = floor((L + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1``

    Example:
        >>> import numpy as np
        >>> conv1d(np.arange(16.0).reshape(1, 1, 16), np.array([[[0.1, 0.2, 0.3]]]))[0, 0, :3].round(6).tolist()
        [0.8, 1.4, 2.0]
    """
    return _api.convolution(input, weight, bias, stride, padding, dilation, groups, n_spatial=1, op="conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution. input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_out, C_in/groups, kH, kW)``.

    Shape:
        ``H_out = floor((H + p_top + p_bottom - dilation[0]*(kH-1) - 1) / stride[0]) + 1``, likewise W.

    Example:
        >>> import numpy as np
        >>> conv2d(np.ones((5, 8, 10, 5)), np.ones((14, 8, 3, 2)), stride=(2, 1)).shape
        (5, 14, 4, 4)
    """
    return _api.convolution(input, weight, bias, stride, padding, dilation, groups, n_spatial=2, op="conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution. input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight ``(C_out, C_in/groups, kD, kH, kW)``.

    Shape:
        ``D_out = floor((D + p_lo + p_hi - dilation*(kD-1) - 1) / stride) + 1``, likewise H and W.

    Example:
        >>> import numpy as np
        >>> conv3d(np.ones((1, 2, 4, 4, 4)), np.ones((3, 2, 3, 3, 3)), padding=1).shape
        (1, 3, 4, 4, 4)
    """
    return _api.convolution(input, weight, bias, stride, padding, dilation, groups, n_spatial=3, op="conv3d")


def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                   output_size=None):
    """N-d transposed convolution (the adjoint of ``conv``); spatial dims from ``weight.ndim - 2``.

    Args:
        weight: ``(C_in, C_out/groups, *K)``.
        output_size: optional target spatial size; any size from the minimum to minimum + max(stride, dilation) - 1.

    Shape:
        ``out = (in-1)*stride - p_lo - p_hi + dilation*(k-1) + output_padding + 1`` per dim.

    Example:
        >>> import numpy as np
        >>> conv_transpose(np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3)), stride=2, padding=1, output_padding=1).shape
        (1, 3, 8, 8)
    """
    return _api.convolution_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      output_size=output_size, op="conv_transpose")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution. weight ``(C_in, C_out/groups, k)``.

    Shape:
        ``L_out = (L-1)*stride - p_lo - p_hi + dilation*(k-1) + output_padding + 1``

    Example:
        >>> import numpy as np
        >>> conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)), stride=2).tolist()
        [[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]]
    """
    return _api.convolution_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      n_spatial=1, op="conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution. weight ``(C_in, C_out/groups, kH, kW)``.

    Shape:
        ``H_out = (H-1)*stride[0] - p_top - p_bottom + dilation[0]*(kH-1) + output_padding[0] + 1``, likewise W.

    Example:
        >>> import numpy as np
        >>> conv_transpose2d(np.ones((1, 4, 8, 8)), np.ones((4, 1, 3, 3)), stride=2, padding=1, output_padding=1,
        ...                  groups=4).shape
        (1, 4, 16, 16)
    """
    return _api.convolution_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      n_spatial=2, op="conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-D transposed convolution. weight ``(C_in, C_out/groups, kD, kH, kW)``.

    Shape:
        ``D_out = (D-1)*stride - p_lo - p_hi + dilation*(kD-1) + output_padding + 1``, likewise H and W.

    Example:
        >>> import numpy as np
        >>> conv_transpose3d(np.ones((1, 2, 2, 2, 2)), np.ones((2, 2, 2, 2, 2)), stride=2).shape
        (1, 2, 4, 4, 4)
    """
    return _api.convolution_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      n_spatial=3, op="conv_transpose3d")

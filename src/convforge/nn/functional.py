"""Stateless convolution functions with PyTorch's names, signatures and defaults.

All of them are thin: they fix the number of spatial dimensions and call one recorded autograd ``Function``
(:class:`Convolution`, :class:`ConvolutionTranspose`, :class:`Pad`) over the N-d implementation in
``convforge._api`` (validation + canonicalisation into one ``ConvProblem``) and ``convforge.engine``
(computation).  On tensors that
require grad the call is recorded; its backward is ``convforge.nn.grad``'s (gradients are convolutions).

Shape (every function, per spatial dimension; ``p_lo, p_hi`` the padding on each side):
    conv:            ``out = floor((in + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1``
    conv_transpose:  ``out = (in-1)*stride - p_lo - p_hi + dilation*(k-1) + output_padding + 1``

Padding forms: an int, one int per dim, one ``(lo, hi)`` pair per dim (beyond PyTorch), ``'valid'``, or
``'same'`` (stride 1: PyTorch's split with the extra on the right; stride > 1: TF/ONNX SAME_UPPER,
``out = ceil(in / stride)``).
"""
from __future__ import annotations

import numpy as np

from .. import _api, _padding, engine
from ..autograd import Function
from . import grad as _grad

__all__ = ["conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "pad"]


def _native(a):
    """Byte-swapped arrays (``'>f4'``) in the machine's order; the kernels and gradients need native arrays."""
    return a if not isinstance(a, np.ndarray) or a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _needs(ctx, bias):
    """Which of (grad_input, grad_weight, grad_bias) backward computes."""
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    return need_x, need_w, bias is not None and need_b


def _save(ctx, input, weight, bias, problem, unbatched, op):
    """Keep what backward needs: the arrays it multiplies with and the problem (validated once, in forward)."""
    needs = _needs(ctx, bias)
    ctx.save_for_backward(input if needs[1] else None, weight if needs[0] else None)
    ctx.problem = (problem, unbatched, op, needs)


def _backward(ctx, grad_output):
    x, w = ctx.saved_tensors
    problem, unbatched, op, needs = ctx.problem
    return _grad.backward_of(op + " backward", problem, unbatched, grad_output, x, w, needs)


class Convolution(Function):
    """Recorded N-d convolution: forward is ``_api.conv_problem`` then the engine, backward the engine's backward
    of the same :class:`~convforge.engine.ConvProblem`."""

    @staticmethod
    def forward(ctx, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, n_spatial=None,
                op="conv"):
        input, weight, bias = _native(input), _native(weight), _native(bias)
        x, w, b, problem, unbatched = _api.conv_problem(input, weight, bias, stride, padding, dilation, groups,
                                                        n_spatial=n_spatial, op=op)
        out = engine.forward(x, w, b, problem)
        _save(ctx, input, weight, bias, problem, unbatched, op)
        return out[0] if unbatched else out

    @staticmethod
    def backward(ctx, grad_output):
        gx, gw, gb = _backward(ctx, grad_output)
        return gx, gw, gb, None, None, None, None


class ConvolutionTranspose(Function):
    """Recorded N-d transposed convolution (output_padding, also one chosen by ``output_size``, is part of its
    problem)."""

    @staticmethod
    def forward(ctx, input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                output_size=None, n_spatial=None, op="conv_transpose"):
        input, weight, bias = _native(input), _native(weight), _native(bias)
        x, w, b, problem, unbatched = _api.conv_transpose_problem(
            input, weight, bias, stride, padding, output_padding, groups, dilation, output_size=output_size,
            n_spatial=n_spatial, op=op)
        out = engine.forward(x, w, b, problem)
        _save(ctx, input, weight, bias, problem, unbatched, op)
        return out[0] if unbatched else out

    @staticmethod
    def backward(ctx, grad_output):
        gx, gw, gb = _backward(ctx, grad_output)
        return gx, gw, gb, None, None, None, None, None


class Pad(Function):
    """Recorded ``pad``; backward is ``_padding.pad_backward`` (folds padded cells back onto their sources)."""

    @staticmethod
    def forward(ctx, input, pad, mode="constant", value=0.0):
        ctx.pad, ctx.mode = tuple(pad), mode
        return _padding.pad(input, pad, mode=mode, value=value)

    @staticmethod
    def backward(ctx, grad_output):
        return _padding.pad_backward(grad_output, ctx.pad, mode=ctx.mode), None, None, None


def pad(input, pad, mode: str = "constant", value: float = 0.0):
    """Pad the last ``len(pad) // 2`` dimensions of ``input`` (torch's ``F.pad``; ``pad`` lists (lo, hi) from the
    last dimension backwards; modes ``constant``, ``reflect``, ``replicate``, ``circular``); recorded.

    Example:
        >>> import numpy as np
        >>> pad(np.arange(3.0)[None], (1, 2), mode="replicate").tolist()
        [[0.0, 0.0, 1.0, 2.0, 2.0, 2.0]]
    """
    return Pad.apply(input, pad, mode, value)


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
    return Convolution.apply(input, weight, bias, stride, padding, dilation, groups, op="conv")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution. input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, k)``.

    Shape:
        ``L_out = floor((L + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1``

    Example:
        >>> import numpy as np
        >>> conv1d(np.arange(16.0).reshape(1, 1, 16), np.array([[[0.1, 0.2, 0.3]]]))[0, 0, :3].round(6).tolist()
        [0.8, 1.4, 2.0]
    """
    return Convolution.apply(input, weight, bias, stride, padding, dilation, groups, n_spatial=1, op="conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution. input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_out, C_in/groups, kH, kW)``.

    Shape:
        ``H_out = floor((H + p_top + p_bottom - dilation[0]*(kH-1) - 1) / stride[0]) + 1``, likewise W.

    Example:
        >>> import numpy as np
        >>> conv2d(np.ones((5, 8, 10, 5)), np.ones((14, 8, 3, 2)), stride=(2, 1)).shape
        (5, 14, 4, 4)
    """
    return Convolution.apply(input, weight, bias, stride, padding, dilation, groups, n_spatial=2, op="conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution. input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight ``(C_out, C_in/groups, kD, kH, kW)``.

    Shape:
        ``D_out = floor((D + p_lo + p_hi - dilation*(kD-1) - 1) / stride) + 1``, likewise H and W.

    Example:
        >>> import numpy as np
        >>> conv3d(np.ones((1, 2, 4, 4, 4)), np.ones((3, 2, 3, 3, 3)), padding=1).shape
        (1, 3, 4, 4, 4)
    """
    return Convolution.apply(input, weight, bias, stride, padding, dilation, groups, n_spatial=3, op="conv3d")


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
    return ConvolutionTranspose.apply(input, weight, bias, stride, padding, output_padding, groups, dilation,
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
    return ConvolutionTranspose.apply(input, weight, bias, stride, padding, output_padding, groups, dilation,
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
    return ConvolutionTranspose.apply(input, weight, bias, stride, padding, output_padding, groups, dilation,
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
    return ConvolutionTranspose.apply(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      n_spatial=3, op="conv_transpose3d")


# -- the companion layers' ops (convforge.nn._ops), with torch.nn.functional's names ----------------------------------
from ._ops.activation import (gelu, hardsigmoid, hardswish, leaky_relu, log_softmax, relu, relu6,  # noqa: E402
                              sigmoid, silu, softmax)
from ._ops.dropout import dropout  # noqa: E402
from ._ops.interpolate import interpolate  # noqa: E402
from ._ops.linear import linear  # noqa: E402
from ._ops.loss import cross_entropy, mse_loss  # noqa: E402
from ._ops.normalization import batch_norm, layer_norm  # noqa: E402
from ._ops.pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,  # noqa: E402
                           adaptive_max_pool2d, avg_pool1d, avg_pool2d, avg_pool3d, max_pool1d, max_pool2d,
                           max_pool3d)

__all__ += ["relu", "relu6", "leaky_relu", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "softmax",
            "log_softmax", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d", "batch_norm",
            "layer_norm", "linear", "dropout", "interpolate", "cross_entropy", "mse_loss"]

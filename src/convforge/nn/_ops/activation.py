"""Element-wise activations and softmax, as ``torch.nn.functional``: each an autograd Function.

Derivatives follow PyTorch's conventions at the kinks: ``relu'(0) = 0``, ``relu6'`` is 1 only strictly inside
``(0, 6)``, ``hardsigmoid'`` is ``1/6`` strictly inside ``(-3, 3)``, ``hardswish'(-3) = 0`` and
``hardswish'(3) = 1``.  In-place variants write into the input array; what backward needs is kept as a mask or a
copy, so a later in-place op cannot change the gradient.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .accel import chunked, elementwise, layer_kernels, over_planes
from .common import array_arg, checked_inplace, float_input, inplace_target
from ...autograd import Function
from .special import normal_cdf, normal_pdf

__all__ = ["relu", "relu6", "leaky_relu", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "softmax",
           "log_softmax"]


def _compute(kernel_name, numpy_fn, x, inplace=False, *args):
    """``f(x)`` by the Numba kernel ``kernel_name`` (if any; contiguous input) or by ``numpy_fn``, in ``x``'s
    dtype; written into ``x`` itself for ``inplace``."""
    out = inplace_target(x, inplace)
    kernels = layer_kernels(x.dtype) if kernel_name else None
    if kernels is not None and x.flags.c_contiguous and (out is None or out is x):
        out = np.empty_like(x) if out is None else out
        elementwise(getattr(kernels, kernel_name), x, out, *args)
        return out
    y = numpy_fn(x, *args).astype(x.dtype, copy=False)
    if out is None:
        return y
    out[...] = y
    return out


def _by_chunks(fn, x, inplace=False):
    """``f(x)`` as a chain of NumPy passes ``fn(x_chunk, out_chunk)`` over cache-sized chunks (see
    ``accel.chunked``); ``fn`` must allow ``out_chunk`` to be ``x_chunk`` (in-place)."""
    src = np.ascontiguousarray(x)
    out = inplace_target(x, inplace)
    dst = out if out is not None and out is src else np.empty_like(src)
    with np.errstate(over="ignore"):                      # exp(-x) overflows to inf: 1 / (1 + inf) = 0, exact
        chunked(fn, dst, src)
    if out is not None and out is not dst:
        out[...] = dst
        return out
    return dst


def _sigmoid_chunk(x, y):
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1
    np.reciprocal(t, out=y)


def _silu_chunk(x, y):
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1
    np.divide(x, t, out=y)


def _silu_grad_chunk(x, g, out):
    # d/dx x*s(x) = s * (1 + x * (1 - s)),  s = 1 / (1 + exp(-x))
    s = np.negative(x)
    np.exp(s, out=s)
    s += 1
    np.reciprocal(s, out=s)
    t = 1 - s
    t *= x
    t += 1
    t *= s
    np.multiply(g, t, out=out)


def _masked(grad, mask):
    return np.where(mask, grad, 0).astype(grad.dtype, copy=False)


def _kept_input(ctx, x, inplace):
    """Save ``x`` for backward (a copy when the op is about to overwrite it)."""
    if ctx.needs_input_grad[0]:
        ctx.save_for_backward(np.array(x, copy=True) if inplace else x)


class ReLUFn(Function):
    @staticmethod
    def forward(ctx, x, inplace=False):
        y = _compute("relu", lambda v: np.maximum(v, 0), x, inplace)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(y > 0)
        return y

    @staticmethod
    def backward(ctx, grad):
        return _masked(grad, ctx.saved_tensors[0]), None


class ReLU6Fn(Function):
    @staticmethod
    def forward(ctx, x, inplace=False):
        y = _compute("relu6", lambda v: np.clip(v, 0, 6), x, inplace)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((y > 0) & (y < 6))
        return y

    @staticmethod
    def backward(ctx, grad):
        return _masked(grad, ctx.saved_tensors[0]), None


class LeakyReLUFn(Function):
    @staticmethod
    def forward(ctx, x, negative_slope=0.01, inplace=False):
        positive = x > 0
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return _compute(None, lambda v: np.where(positive, v, v * negative_slope), x, inplace)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * ctx.negative_slope).astype(grad.dtype, copy=False), None, None


class SiLUFn(Function):
    @staticmethod
    def forward(ctx, x, inplace=False):
        _kept_input(ctx, x, inplace)
        return _by_chunks(_silu_chunk, x, inplace)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x, grad = np.ascontiguousarray(x), np.ascontiguousarray(grad, dtype=x.dtype)
        gx = np.empty_like(x)
        with np.errstate(over="ignore"):
            chunked(_silu_grad_chunk, gx, x, grad)
        return gx, None


_TANH_BETA = math.sqrt(2 / math.pi)
_TANH_KAPPA = 0.044715


def _gelu_numpy(x, tanh_approximation):
    if tanh_approximation:
        return 0.5 * x * (1 + np.tanh(_TANH_BETA * (x + _TANH_KAPPA * x * x * x)))
    return x * normal_cdf(x)


class GELUFn(Function):
    @staticmethod
    def forward(ctx, x, approximate="none"):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "none" and x.dtype == np.float32:
            return _compute("gelu_float32", lambda v: _gelu_numpy(v, False), x)
        return _compute("gelu", _gelu_numpy, x, False, approximate == "tanh")

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        kernels = layer_kernels(x.dtype)
        if kernels is not None:
            x, grad = np.ascontiguousarray(x), np.ascontiguousarray(grad, dtype=x.dtype)
            gx = np.empty_like(x)
            over_planes(x.size, x.size, lambda a, b: kernels.gelu_grad(
                x.reshape(-1)[a:b], grad.reshape(-1)[a:b], gx.reshape(-1)[a:b], ctx.approximate == "tanh"))
            return gx, None
        if ctx.approximate == "tanh":
            x_sq = x * x
            t = np.tanh(_TANH_BETA * (x + _TANH_KAPPA * x_sq * x))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _TANH_BETA * (1 + 3 * _TANH_KAPPA * x_sq)
        else:
            slope = normal_cdf(x) + x * normal_pdf(x)
        return (grad * slope).astype(grad.dtype, copy=False), None


class HardswishFn(Function):
    @staticmethod
    def forward(ctx, x, inplace=False):
        _kept_input(ctx, x, inplace)
        return _compute("hardswish", lambda v: v * np.clip(v + 3, 0, 6) / 6, x, inplace)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return grad * slope, None


_ONE_SIXTH_F32 = float(np.float32(1.0) / np.float32(6.0))


class HardsigmoidFn(Function):
    @staticmethod
    def forward(ctx, x, inplace=False):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward((x > -3) & (x < 3))
        return _compute("hardsigmoid", lambda v: np.clip(v + 3, 0, 6) / 6, x, inplace)

    @staticmethod
    def backward(ctx, grad):
        # PyTorch multiplies by the float32 constant 1.0f/6.0f, in every dtype
        return (_masked(grad, ctx.saved_tensors[0]) * _ONE_SIXTH_F32).astype(grad.dtype, copy=False), None


class SigmoidFn(Function):
    @staticmethod
    def forward(ctx, x):
        y = _by_chunks(_sigmoid_chunk, x)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y) * y


def _softmax_axis(x, dim, op):
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X "
                      f"as an argument.", UserWarning, stacklevel=3)
        return 0 if x.ndim in (0, 1, 3) else 1
    nd = max(x.ndim, 1)
    if not -nd <= dim < nd:
        raise ValueError(f"{op}: dim {dim} is out of range for an input with {x.ndim} dimensions (expected "
                         f"[{-nd}, {nd - 1}])")
    return dim % nd


class SoftmaxFn(Function):
    @staticmethod
    def forward(ctx, x, axis, dtype):
        xc = x.astype(dtype, copy=False) if dtype is not None else x
        shifted = np.exp(xc - xc.max(axis=axis, keepdims=True, initial=-np.inf))
        y = shifted / shifted.sum(axis=axis, keepdims=True)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(y)
        ctx.axis, ctx.in_dtype = axis, x.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        gx = y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))
        return gx.astype(ctx.in_dtype, copy=False), None, None


class LogSoftmaxFn(Function):
    @staticmethod
    def forward(ctx, x, axis, dtype):
        xc = x.astype(dtype, copy=False) if dtype is not None else x
        shifted = xc - xc.max(axis=axis, keepdims=True, initial=-np.inf)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(y)
        ctx.axis, ctx.in_dtype = axis, x.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        gx = grad - np.exp(y) * grad.sum(axis=ctx.axis, keepdims=True)
        return gx.astype(ctx.in_dtype, copy=False), None, None


def relu(input, inplace: bool = False):
    """``max(x, 0)``, as ``torch.nn.functional.relu``.

    Example:
        >>> import numpy as np
        >>> relu(np.array([-1.0, 0.0, 2.0])).tolist()
        [0.0, 0.0, 2.0]
    """
    return ReLUFn.apply(float_input(input, "relu"), checked_inplace(input, inplace, "relu"))


def relu6(input, inplace: bool = False):
    """``min(max(x, 0), 6)``, as ``torch.nn.functional.relu6``.

    Example:
        >>> import numpy as np
        >>> relu6(np.array([-1.0, 3.0, 7.0])).tolist()
        [0.0, 3.0, 6.0]
    """
    return ReLU6Fn.apply(float_input(input, "relu6"), checked_inplace(input, inplace, "relu6"))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` for ``x > 0`` else ``negative_slope * x``, as ``torch.nn.functional.leaky_relu``.

    Example:
        >>> import numpy as np
        >>> leaky_relu(np.array([-2.0, 3.0]), 0.1).tolist()
        [-0.2, 3.0]
    """
    return LeakyReLUFn.apply(float_input(input, "leaky_relu"), negative_slope,
                             checked_inplace(input, inplace, "leaky_relu"))


def silu(input, inplace: bool = False):
    """``x * sigmoid(x)`` (swish), as ``torch.nn.functional.silu``.

    Example:
        >>> import numpy as np
        >>> silu(np.array([1.0])).round(6).tolist()
        [0.731059]
    """
    return SiLUFn.apply(float_input(input, "silu"), checked_inplace(input, inplace, "silu"))


def gelu(input, approximate: str = "none"):
    """``x * Phi(x)`` (``Phi`` the standard normal CDF), as ``torch.nn.functional.gelu``; ``approximate='tanh'``
    uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Example:
        >>> import numpy as np
        >>> gelu(np.array([1.0])).round(6).tolist(), gelu(np.array([1.0]), approximate="tanh").round(6).tolist()
        ([0.841345], [0.841192])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFn.apply(float_input(input, "gelu"), approximate)


def hardswish(input, inplace: bool = False):
    """``x * relu6(x + 3) / 6``, as ``torch.nn.functional.hardswish``.

    Example:
        >>> import numpy as np
        >>> hardswish(np.array([-4.0, 1.0, 4.0])).tolist()
        [-0.0, 0.6666666666666666, 4.0]
    """
    return HardswishFn.apply(float_input(input, "hardswish"), checked_inplace(input, inplace, "hardswish"))


def hardsigmoid(input, inplace: bool = False):
    """``relu6(x + 3) / 6``, as ``torch.nn.functional.hardsigmoid``.

    Example:
        >>> import numpy as np
        >>> hardsigmoid(np.array([-4.0, 0.0, 1.5])).tolist()
        [0.0, 0.5, 0.75]
    """
    return HardsigmoidFn.apply(float_input(input, "hardsigmoid"), checked_inplace(input, inplace, "hardsigmoid"))


def sigmoid(input):
    """``1 / (1 + exp(-x))``, as ``torch.nn.functional.sigmoid``.

    Example:
        >>> import numpy as np
        >>> sigmoid(np.array([0.0])).tolist()
        [0.5]
    """
    return SigmoidFn.apply(float_input(input, "sigmoid"))


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.functional.softmax`` (``dtype`` casts the input
    first; ``dim=None`` is PyTorch's deprecated implicit choice, 0 for 0-, 1- and 3-d inputs, else 1).

    Example:
        >>> import numpy as np
        >>> softmax(np.log(np.array([[1.0, 3.0]])), dim=1).tolist()
        [[0.25, 0.75]]
    """
    x = float_input(input, "softmax") if dtype is None else array_arg(input)
    return SoftmaxFn.apply(x, _softmax_axis(x, dim, "softmax"), None if dtype is None else np.dtype(dtype))


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``x - log(sum(exp(x)))`` along ``dim``, as ``torch.nn.functional.log_softmax`` (arguments as softmax).

    Example:
        >>> import numpy as np
        >>> np.exp(log_softmax(np.log(np.array([1.0, 3.0])), dim=0)).tolist()
        [0.25, 0.75]
    """
    x = float_input(input, "log_softmax") if dtype is None else array_arg(input)
    return LogSoftmaxFn.apply(x, _softmax_axis(x, dim, "log_softmax"), None if dtype is None else np.dtype(dtype))

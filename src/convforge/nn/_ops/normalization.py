"""Normalisation ops, as ``torch.nn.functional.batch_norm`` and ``layer_norm``: each an autograd Function.

Batch norm normalises per channel (axis 1) over every other axis, with the batch statistics in training mode
(biased variance; the running statistics, when given, are updated in place with the *unbiased* variance:
``running = (1 - momentum) * running + momentum * statistic``) and with the running statistics otherwise.  Like
PyTorch it applies one per-channel affine map ``y = x * alpha + beta`` with ``alpha = weight * invstd`` and
``beta = bias - mean * alpha``.  Backward (``xhat = (x - mean) * invstd``, sums over the ``M`` values of a
channel)::

    training:  grad_input = weight * invstd * (grad - sum(grad) / M - xhat * sum(grad * xhat) / M)
    eval:      grad_input = grad * weight * invstd                 (the statistics are constants)
    grad_weight = sum(grad * xhat),   grad_bias = sum(grad)

which is again one per-channel map ``grad * k1 + x * k2 + k3``.  Layer norm is the same algebra per row over
the trailing ``normalized_shape`` dims, with element-wise ``weight``/``bias``.
"""
from __future__ import annotations

import math

import numpy as np

from ..._algos import threads
from .accel import layer_kernels, over_planes, plane_ranges
from .common import float_input
from ...autograd import Function

__all__ = ["batch_norm", "layer_norm"]


# -- per-channel passes over (N, C, M) data (Numba kernels, or NumPy) -----------------------------------------------
def _channel_moments(x3):
    """Per-channel mean and biased variance of ``x3 (N, C, M)``, accumulated in float64."""
    kernels = layer_kernels(x3.dtype)
    c = x3.shape[1]
    if kernels is not None:
        mean, var = np.empty(c), np.empty(c)
        over_planes(c, x3.size, lambda a, b: kernels.channel_moments(x3[:, a:b], mean[a:b], var[a:b]))
        return mean, var
    mean = x3.mean(axis=(0, 2), dtype=np.float64)
    centred = x3 - mean[:, None].astype(x3.dtype)
    return mean, np.mean(centred * centred, axis=(0, 2), dtype=np.float64)


def _channel_map(a3, k1, b3=None, k2=None, k3=None):
    """``a3 * k1[c] (+ b3 * k2[c]) + k3[c]`` over ``(N, C, M)`` data, in ``a3``'s dtype, in one pass."""
    kernels = layer_kernels(a3.dtype)
    c = a3.shape[1]
    k3 = np.zeros(c) if k3 is None else k3
    if kernels is not None:
        out = np.empty(a3.shape, dtype=a3.dtype)
        second = a3 if b3 is None else b3
        k2 = np.zeros(c) if k2 is None else k2
        over_planes(c, a3.size, lambda a, b: kernels.channel_map(a3[:, a:b], k1[a:b], second[:, a:b], k2[a:b],
                                                                  k3[a:b], out[:, a:b]))
        return out
    dt = a3.dtype
    out = a3 * k1.astype(dt)[:, None]
    if b3 is not None:
        out += b3 * k2.astype(dt)[:, None]
    out += k3.astype(dt)[:, None]
    return out


def _channel_grad_sums(g3, x3, mean):
    """Per channel ``sum(grad)`` and ``sum(grad * (x - mean))`` in float64."""
    kernels = layer_kernels(g3.dtype)
    c = g3.shape[1]
    if kernels is not None:
        sum_g, sum_gc = np.empty(c), np.empty(c)
        over_planes(c, g3.size, lambda a, b: kernels.channel_grad_sums(g3[:, a:b], x3[:, a:b], mean[a:b],
                                                                        sum_g[a:b], sum_gc[a:b]))
        return sum_g, sum_gc
    sum_g = g3.sum(axis=(0, 2), dtype=np.float64)
    sum_gc = (g3 * (x3 - mean[:, None].astype(x3.dtype))).sum(axis=(0, 2), dtype=np.float64)
    return sum_g, sum_gc


def _values(a, c, fill):
    return np.full(c, fill, dtype=np.float64) if a is None else np.asarray(a, dtype=np.float64)


class BatchNormFn(Function):
    """``forward(ctx, input, weight, bias, running_mean, running_var, training, momentum, eps)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        n, c = x.shape[:2]
        x3 = np.ascontiguousarray(x).reshape(n, c, math.prod(x.shape[2:]))
        m = x3.shape[0] * x3.shape[2]
        if training:
            mean, var = _channel_moments(x3)
            if running_mean is not None:
                running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            if running_var is not None:
                running_var[...] = (1 - momentum) * running_var + momentum * var * (m / max(m - 1, 1))
        else:
            mean, var = np.asarray(running_mean, np.float64), np.asarray(running_var, np.float64)
        invstd = 1 / np.sqrt(var + eps)
        w = _values(weight, c, 1.0)
        alpha = w * invstd
        beta = _values(bias, c, 0.0) - mean * alpha
        y = _channel_map(x3, alpha, k3=beta).reshape(x.shape)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(x3, mean, invstd, w)
            ctx.training, ctx.m = training, m
        return y

    @staticmethod
    def backward(ctx, grad):
        x3, mean, invstd, w = ctx.saved_tensors
        g3 = np.ascontiguousarray(grad).reshape(x3.shape)
        sum_g, sum_gc = _channel_grad_sums(g3, x3, mean)
        sum_gxhat = sum_gc * invstd
        gx = None
        if ctx.needs_input_grad[0]:
            k1 = w * invstd
            if ctx.training:
                k2 = -k1 * invstd * sum_gxhat / ctx.m
                k3 = -k1 * sum_g / ctx.m - k2 * mean
                gx = _channel_map(g3, k1, x3, k2, k3).reshape(grad.shape)
            else:
                gx = _channel_map(g3, k1).reshape(grad.shape)
        gw = sum_gxhat.astype(grad.dtype) if ctx.needs_input_grad[1] else None
        gb = sum_g.astype(grad.dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None, None, None, None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-05):
    """Batch normalisation over axis 1, as ``torch.nn.functional.batch_norm`` (see the module docstring; in
    training mode the running statistics, when given, are updated in place).

    Shape:
        ``(N, C, *)`` -> the same shape; ``running_mean``, ``running_var``, ``weight``, ``bias`` ``(C,)``.

    Example:
        >>> import numpy as np
        >>> x = np.arange(8.0).reshape(4, 2)
        >>> batch_norm(x, None, None, training=True).round(4).tolist()[0]
        [-1.3416, -1.3416]
    """
    x = float_input(input, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input with a channel axis (N, C, *), got input of shape "
                         f"{x.shape}")
    c = x.shape[1]
    for name, a in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if a is not None and np.shape(a) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) (one value per channel of the input of "
                             f"shape {x.shape}), got {np.shape(a)}")
    if training and x.size // max(c, 1) <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of shape "
                         f"{x.shape}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must be given when training=False (or use "
                         "training=True for batch statistics)")
    return BatchNormFn.apply(x, weight, bias, running_mean, running_var, bool(training), float(momentum),
                             float(eps))


# -- layer norm ----------------------------------------------------------------------------------------------------
class LayerNormFn(Function):
    """``forward(ctx, input, weight, bias, n_dims, eps)``: normalise over the trailing ``n_dims`` dims."""

    @staticmethod
    def forward(ctx, x, weight, bias, n_dims, eps):
        d = math.prod(x.shape[x.ndim - n_dims:])
        x2 = x.reshape(-1, d)
        kernels = layer_kernels(x.dtype)
        if kernels is not None:
            x2 = np.ascontiguousarray(x2)
            y2 = np.empty_like(x2)
            mean, invstd = np.empty(x2.shape[0]), np.empty(x2.shape[0])
            w = np.ones(d) if weight is None else np.asarray(weight, np.float64).reshape(-1)
            b = np.zeros(d) if bias is None else np.asarray(bias, np.float64).reshape(-1)
            over_planes(x2.shape[0], x2.size, lambda a, e: kernels.layer_norm_rows(
                x2[a:e], w, b, eps, y2[a:e], mean[a:e], invstd[a:e]))
        else:
            mean = x2.mean(axis=1, dtype=np.float64)
            centred = x2 - mean[:, None]
            invstd = 1 / np.sqrt(np.mean(centred * centred, axis=1) + eps)
            y2 = centred * invstd[:, None]
            if weight is not None:
                y2 *= np.asarray(weight).reshape(-1)
            if bias is not None:
                y2 += np.asarray(bias).reshape(-1)
            y2 = y2.astype(x.dtype, copy=False)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(x2, mean, invstd, weight)
            ctx.bias_shape = np.shape(bias)
        return y2.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, mean, invstd, weight = ctx.saved_tensors
        kernels = layer_kernels(x2.dtype)
        if kernels is not None:
            gx, gw, gb = _layer_norm_backward_kernel(kernels, x2, grad, mean, invstd, weight)
        else:
            gx, gw, gb = _layer_norm_backward_numpy(x2, grad, mean, invstd, weight)
        gx = gx.reshape(grad.shape) if ctx.needs_input_grad[0] else None
        gw = gw.reshape(weight.shape).astype(grad.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        gb = gb.reshape(ctx.bias_shape).astype(grad.dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def _layer_norm_backward_numpy(x2, grad, mean, invstd, weight):
    g2 = grad.reshape(x2.shape).astype(np.float64)
    xhat = (x2 - mean[:, None]) * invstd[:, None]
    gh = g2 if weight is None else g2 * np.asarray(weight, np.float64).reshape(-1)
    gx = invstd[:, None] * (gh - gh.mean(axis=1, keepdims=True) - xhat * (gh * xhat).mean(axis=1, keepdims=True))
    return gx.astype(grad.dtype), (g2 * xhat).sum(axis=0), g2.sum(axis=0)


def _layer_norm_backward_kernel(kernels, x2, grad, mean, invstd, weight):
    """Rows split over threads; each part sums its own ``grad_weight``/``grad_bias`` rows (added in order)."""
    rows, d = x2.shape
    g2 = np.ascontiguousarray(grad.reshape(x2.shape), dtype=x2.dtype)
    w = np.ones(d) if weight is None else np.asarray(weight, np.float64).reshape(-1)
    gx = np.empty_like(x2)
    ranges = plane_ranges(rows, x2.size)
    gw, gb = np.zeros((len(ranges), d)), np.zeros((len(ranges), d))
    threads.run_parts([lambda k=k, a=a, b=b: kernels.layer_norm_backward_rows(
        x2[a:b], g2[a:b], mean[a:b], invstd[a:b], w, gx[a:b], gw[k], gb[k]) for k, (a, b) in enumerate(ranges)])
    return gx, gw.sum(axis=0), gb.sum(axis=0)


def normalized_dims(normalized_shape) -> tuple:
    return (int(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(int(v) for v in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Layer normalisation over the trailing ``normalized_shape`` dims, as ``torch.nn.functional.layer_norm``.

    Shape:
        ``(*, *normalized_shape)`` -> the same shape; ``weight``, ``bias`` ``normalized_shape``.

    Example:
        >>> import numpy as np
        >>> layer_norm(np.array([[1.0, 3.0]]), (2,)).round(4).tolist()
        [[-1.0, 1.0]]
    """
    x = float_input(input, "layer_norm")
    dims = normalized_dims(normalized_shape)
    if len(dims) == 0 or x.shape[x.ndim - len(dims):] != dims or x.ndim < len(dims):
        raise ValueError(f"layer_norm: given normalized_shape={list(dims)}, expected input with shape "
                         f"[*, {', '.join(map(str, dims))}], but got input of size {list(x.shape)}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and np.shape(a) != dims:
            raise ValueError(f"layer_norm: {name} must have shape {dims} (normalized_shape), got {np.shape(a)}")
    return LayerNormFn.apply(x, weight, bias, len(dims), float(eps))

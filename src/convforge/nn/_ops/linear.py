"""``linear``, as ``torch.nn.functional.linear``: ``y = x W^T + b`` as an autograd Function.

Backward (``x2``/``g2`` the input and gradient with the leading dims merged)::

    grad_input = grad @ W,   grad_weight = g2^T @ x2,   grad_bias = sum of g2 over rows
"""
from __future__ import annotations

import numpy as np

from .common import array_arg
from ...autograd import Function

__all__ = ["linear"]


class LinearFn(Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        w = np.asarray(weight)
        # One 2-D product over the merged leading dims: a stacked (N-d) matmul runs one small product per leading
        # index (2-3x slower on ConvNeXt's channels-last MLP), and reshape copies a permuted view only once.
        y = (x.reshape(-1, w.shape[1]) @ w.T).reshape(*x.shape[:-1], w.shape[0])
        if bias is not None:
            y += np.asarray(bias)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g2 = grad.reshape(-1, w.shape[0])                             # (M, out)
        gx = (g2 @ w).reshape(x.shape) if ctx.needs_input_grad[0] else None   # (*, in)
        gw = g2.T @ x.reshape(-1, w.shape[1]) if ctx.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Shape:
        input ``(*, in_features)``, weight ``(out_features, in_features)``, bias ``(out_features,)`` ->
        ``(*, out_features)``.

    Example:
        >>> import numpy as np
        >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.arange(4.0)).tolist()[0]
        [3.0, 4.0, 5.0, 6.0]
    """
    x, w = array_arg(input), np.asarray(weight)
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: expected input with last dimension {w.shape[1]} (in_features), got input of "
                         f"shape {x.shape}")
    if bias is not None and np.shape(bias) != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},) (out_features), got {np.shape(bias)}")
    if x.dtype != w.dtype:
        raise TypeError(f"linear: input dtype ({x.dtype}) and weight dtype ({w.dtype}) should be the same; use "
                        f"x.astype(np.{w.dtype}) or module.to(np.{x.dtype})")
    return LinearFn.apply(array_arg(input), weight, bias)

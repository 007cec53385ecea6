"""Batch normalisation, as ``torch.nn.BatchNorm1d/2d/3d``.

Training mode normalises with the batch statistics (mean and *biased* variance over every axis but the channel
axis) and updates the running statistics with the *unbiased* variance::

    running_mean = (1 - m) * running_mean + m * mean
    running_var  = (1 - m) * running_var  + m * var * M / (M - 1)        (M = values per channel)

where ``m`` is ``momentum``, or ``1 / num_batches_tracked`` (a cumulative average) when ``momentum=None``.
Evaluation mode normalises with the running statistics (unless ``track_running_stats=False``).

Backward in training mode (``xhat = (x - mean) * invstd``, ``gh = grad * weight``, sums over the M values of a
channel)::

    grad_input  = invstd * (gh - mean(gh) - xhat * mean(gh * xhat))
    grad_weight = sum(grad * xhat),   grad_bias = sum(grad)

In evaluation mode the statistics are constants, so ``grad_input = grad * weight * invstd``.
"""
from __future__ import annotations

import numpy as np

from .._grad_mode import is_grad_enabled
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    _allowed_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None, *, bias: bool = True):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self._cache = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight[...] = 1
            if self.bias is not None:
                self.bias[...] = 0

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in self._allowed_ndims:
            want = " or ".join(f"{d}D" for d in self._allowed_ndims)
            raise ValueError(f"{name}: expected {want} input (got {x.ndim}D input of shape {x.shape})")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input with {self.num_features} channels (num_features) in "
                             f"dimension 1, got input of shape {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")

    def forward(self, input):
        x = np.asarray(input)
        self._check_input(x)
        c = self.num_features
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, c) + (1,) * (x.ndim - 2)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            m = x.size // c
            if self.training and m <= 1:
                raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, got "
                                 f"input of shape {x.shape}")
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(bshape)
            var = np.mean(centred * centred, axis=axes)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, m)
        else:
            mean = self.running_mean
            centred = x - mean.reshape(bshape)
            var = self.running_var
        invstd = (1 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        xhat = centred * invstd.reshape(bshape)
        y = xhat
        if self.affine:
            y = xhat * self.weight.data.reshape(bshape)
            if self.bias is not None:
                y = y + self.bias.data.reshape(bshape)
        self._cache = (xhat, invstd, use_batch_stats, axes, bshape) if is_grad_enabled() else None
        return y.astype(x.dtype, copy=False)

    def _update_running_stats(self, mean, var, m):
        self.num_batches_tracked += 1
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * (m / (m - 1))
        dt = self.running_mean.dtype
        self.running_mean[...] = ((1 - factor) * self.running_mean + factor * mean).astype(dt)
        self.running_var[...] = ((1 - factor) * self.running_var + factor * unbiased).astype(dt)

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called without a forward pass with gradients "
                               f"enabled")
        xhat, invstd, batch_stats, axes, bshape = self._cache
        g = np.asarray(grad_output)
        if self.affine:
            if self.weight.requires_grad:
                self.weight.accumulate_grad(np.sum(g * xhat, axis=axes))
            if self.bias is not None and self.bias.requires_grad:
                self.bias.accumulate_grad(np.sum(g, axis=axes))
            gh = g * self.weight.data.reshape(bshape)
        else:
            gh = g
        if not batch_stats:
            return (gh * invstd.reshape(bshape)).astype(g.dtype, copy=False)
        mean_gh = gh.mean(axis=axes).reshape(bshape)
        mean_ghx = np.mean(gh * xhat, axis=axes).reshape(bshape)
        return (invstd.reshape(bshape) * (gh - mean_gh - xhat * mean_ghx)).astype(g.dtype, copy=False)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` input, as ``torch.nn.BatchNorm1d``.

    Args:
        num_features: C.
        eps: added to the variance for stability (default 1e-5).
        momentum: running-statistics update factor (default 0.1); None for a cumulative moving average.
        affine: learn ``weight`` (init 1) and ``bias`` (init 0) per channel (default True).
        track_running_stats: keep ``running_mean``/``running_var``/``num_batches_tracked`` buffers and use them
            in eval mode (default True); if False, batch statistics are used in both modes.
        dtype: dtype of parameters and buffers (default float32).
        bias: (keyword-only, default True) with ``affine``, also learn ``bias``; False keeps only ``weight``.

    Shape:
        ``(N, C)`` or ``(N, C, L)`` -> same shape.

    Example:
        >>> import numpy as np
        >>> bn = BatchNorm1d(3)
        >>> bn
        BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        >>> bn(np.arange(12, dtype=np.float32).reshape(4, 3)).mean(axis=0).round(6).tolist()
        [0.0, 0.0, 0.0]
    """
    _allowed_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` input, as ``torch.nn.BatchNorm2d`` (arguments as BatchNorm1d).

    Example:
        >>> import numpy as np
        >>> list(BatchNorm2d(4).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """
    _allowed_ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over ``(N, C, D, H, W)`` input, as ``torch.nn.BatchNorm3d`` (arguments as
    BatchNorm1d).

    Example:
        >>> import numpy as np
        >>> BatchNorm3d(2)(np.ones((2, 2, 3, 3, 3), np.float32)).shape
        (2, 2, 3, 3, 3)
    """
    _allowed_ndims = (5,)

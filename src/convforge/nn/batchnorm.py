"""Batch normalisation, as ``torch.nn.BatchNorm1d/2d/3d``.

Training mode normalises with the batch statistics (mean and *biased* variance over every axis but the channel
axis) and updates the running statistics with the *unbiased* variance, with factor ``momentum``, or
``1 / num_batches_tracked`` (a cumulative average) when ``momentum=None``.  Evaluation mode normalises with the
running statistics (unless ``track_running_stats=False``).  The computation and its exact backward are
``convforge.nn.functional.batch_norm``.
"""
from __future__ import annotations

import numpy as np

from .module import Module
from ._ops.common import array_arg
from ._ops.normalization import batch_norm
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
        x = array_arg(input)
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        update = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if update else None, self.running_var if update else None,
                          self.weight, self.bias, use_batch_stats, factor, self.eps)


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
        >>> (bn(np.arange(12, dtype=np.float32).reshape(4, 3)).mean(axis=0).round(6) + 0.0).tolist()
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

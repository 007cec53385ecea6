"""Losses, as in ``torch.nn``: ``MSELoss`` and ``CrossEntropyLoss``.

``loss = criterion(input, target)`` returns a 0-d array (``reduction='mean'`` or ``'sum'``) or the per-element
losses (``'none'``); ``criterion.backward()`` then returns ``d loss / d input`` (for ``'none'``, pass the gradient
of the per-element losses, or nothing for the gradient of their sum).
"""
from __future__ import annotations

import numpy as np

from .._grad_mode import is_grad_enabled
from .module import Module

__all__ = ["MSELoss", "CrossEntropyLoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self._cache = None

    def _upstream(self, grad_output, loss_shape, dtype):
        if grad_output is None:
            return np.ones(loss_shape, dtype=dtype)
        g = np.asarray(grad_output, dtype=dtype)
        if g.shape != loss_shape:
            raise ValueError(f"{type(self).__name__}.backward: grad_output must have the loss's shape {loss_shape}, "
                             f"got {g.shape}")
        return g

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called without a forward pass with gradients "
                               f"enabled")
        return self._cache

    def __call__(self, input, target):
        return self.forward(input, target)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``, as ``torch.nn.MSELoss``.

    Args:
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Shape:
        input and target of the same shape; the loss is a 0-d array (or that shape for ``'none'``).

    Example:
        >>> import numpy as np
        >>> crit = MSELoss()
        >>> float(crit(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
        2.5
        >>> crit.backward().tolist()
        [1.0, 2.0]
    """

    def forward(self, input, target):
        x, t = np.asarray(input), np.asarray(target)
        if x.shape != t.shape:
            raise ValueError(f"MSELoss: input and target must have the same shape, got input {x.shape} and target "
                             f"{t.shape}")
        diff = x - t.astype(x.dtype, copy=False)
        sq = diff * diff
        loss = sq if self.reduction == "none" else np.asarray(sq.sum() if self.reduction == "sum" else sq.mean(),
                                                               dtype=x.dtype)
        self._cache = (diff, loss.shape) if is_grad_enabled() else None
        return loss

    def backward(self, grad_output=None):
        diff, loss_shape = self._take_cache()
        g = self._upstream(grad_output, loss_shape, diff.dtype)
        scale = 2 / diff.size if self.reduction == "mean" else 2
        return (g * scale * diff).astype(diff.dtype, copy=False)


class CrossEntropyLoss(_Loss):
    """Cross entropy of logits against class indices (or class probabilities), as ``torch.nn.CrossEntropyLoss``.

    With class indices ``t``, ``loss_i = -w[t_i] * log_softmax(x_i)[t_i]``; ``'mean'`` divides the sum by the
    total weight ``sum_i w[t_i]`` of the non-ignored targets.  With ``label_smoothing = e`` the loss becomes
    ``(1 - e) * loss_i + e / C * sum_c -w[c] * log_softmax(x_i)[c]`` (same normaliser), exactly as PyTorch.

    Args:
        weight: optional per-class weights ``(C,)`` (stored as a buffer, as PyTorch does).
        ignore_index: target value that contributes neither loss nor gradient (default -100).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        label_smoothing: in ``[0, 1]`` (default 0).

    Shape:
        input ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; target ``(N,)``, ``(N, d1, ...)`` or ``()`` of integer
        class indices, or a float array of the input's shape holding class probabilities.

    Example:
        >>> import numpy as np
        >>> crit = CrossEntropyLoss()
        >>> round(float(crit(np.zeros((2, 4)), np.array([1, 3]))), 6)
        1.386294
        >>> crit.backward().round(3).tolist()
        [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]]
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
        self.register_buffer("weight", None if weight is None else np.asarray(weight))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        x, t = np.asarray(input), np.asarray(target)
        if x.dtype.kind != "f":
            raise TypeError(f"CrossEntropyLoss expects floating-point logits, got dtype {x.dtype}")
        unbatched = x.ndim == 1
        if unbatched:
            x, t = x[None], t[None]
        if x.ndim < 2:
            raise ValueError(f"CrossEntropyLoss: expected input of shape (C,), (N, C) or (N, C, d1, ...), got "
                             f"{np.shape(input)}")
        c = x.shape[1]
        w = np.ones(c, dtype=x.dtype) if self.weight is None else self.weight.astype(x.dtype, copy=False)
        if w.shape != (c,):
            raise ValueError(f"CrossEntropyLoss: weight must have shape ({c},) (one per class), got {w.shape}")
        wshape = (1, c) + (1,) * (x.ndim - 2)
        shifted = x - x.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))      # log_softmax over classes
        eps = self.label_smoothing
        if t.dtype.kind == "f":
            loss, coef_grad, norm = self._probabilities(x, t, logp, w, wshape, eps, c)
        else:
            loss, coef_grad, norm = self._indices(x, t, logp, w, wshape, eps, c)
        if self.reduction == "none":
            out = loss[0] if unbatched else loss
        else:
            total = loss.sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.asarray(total / norm if self.reduction == "mean" else total, dtype=x.dtype)
        self._cache = (logp, coef_grad, norm, out.shape, unbatched) if is_grad_enabled() else None
        return out

    def _indices(self, x, t, logp, w, wshape, eps, c):
        expected = (x.shape[0],) + x.shape[2:]
        if t.shape != expected:
            raise ValueError(f"CrossEntropyLoss: class-index target must have shape {expected} for input of shape "
                             f"{x.shape}, got {t.shape}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss: target must hold integer class indices (or float probabilities), "
                            f"got dtype {t.dtype}")
        valid = t != self.ignore_index
        bad = valid & ((t < 0) | (t >= c))
        if bad.any():
            raise ValueError(f"CrossEntropyLoss: target {t[bad].flat[0]} is out of bounds for {c} classes (valid "
                             f"class indices are 0 to {c - 1}, or ignore_index={self.ignore_index})")
        safe = np.where(valid, t, 0)
        wt = w[safe] * valid                                                       # weight of each target
        picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        loss = -(1 - eps) * wt * picked if eps else -wt * picked
        # d loss_i / d logp_ic (before reduction): -(1-e) w[t_i] [c == t_i] - e/C w[c] [i not ignored]
        onehot = np.zeros_like(logp)
        np.put_along_axis(onehot, safe[:, None], 1, axis=1)
        coef = -(1 - eps) * wt[:, None] * onehot
        if eps:
            smooth = -(logp * w.reshape(wshape)).sum(axis=1) * valid
            loss = loss + (eps / c) * smooth
            coef = coef - (eps / c) * w.reshape(wshape) * valid[:, None]
        return loss, coef, wt.sum()

    def _probabilities(self, x, t, logp, w, wshape, eps, c):
        if t.shape != x.shape:
            raise ValueError(f"CrossEntropyLoss: probability target must have the input's shape {x.shape}, got "
                             f"{t.shape}")
        t = t.astype(x.dtype, copy=False)
        if eps:
            t = t * (1 - eps) + eps / c
        coef = -t * w.reshape(wshape)
        loss = (logp * coef).sum(axis=1)
        return loss, coef, x.size // c

    def backward(self, grad_output=None):
        logp, coef, norm, loss_shape, unbatched = self._take_cache()
        g = self._upstream(grad_output, loss_shape, logp.dtype)
        if self.reduction == "none":
            g = (g[None] if unbatched else g)[:, None]
        elif self.reduction == "mean":
            g = g / norm
        glogp = coef * g                                                        # d loss / d log_softmax
        # through log_softmax: gx = glogp - softmax * sum_c glogp
        gx = glogp - np.exp(logp) * glogp.sum(axis=1, keepdims=True)
        gx = gx.astype(logp.dtype, copy=False)
        return gx[0] if unbatched else gx

    def extra_repr(self) -> str:
        return ""

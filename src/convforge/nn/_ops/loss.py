"""Losses, as ``torch.nn.functional.mse_loss`` and ``cross_entropy``: each an autograd Function returning a 0-d
array (``reduction='mean'``/``'sum'``) or the per-element losses (``'none'``).

Cross entropy with class indices ``t``: ``loss_i = -w[t_i] * log_softmax(x_i)[t_i]``; ``'mean'`` divides the sum
by the total weight ``sum_i w[t_i]`` of the non-ignored targets.  With ``label_smoothing = e`` the loss becomes
``(1 - e) * loss_i + e / C * sum_c -w[c] * log_softmax(x_i)[c]`` (same normaliser).  With class probabilities
``p``: ``loss_i = -sum_c w[c] p_ic log_softmax(x_i)[c]`` and ``'mean'`` divides by the number of samples.
Backward goes through log_softmax: ``grad_x = glogp - softmax(x) * sum_c glogp``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .common import array_arg, reduction_name
from ...autograd import Function

__all__ = ["mse_loss", "cross_entropy"]


def _reduce(loss, reduction, norm, dtype):
    if reduction == "none":
        return loss
    total = loss.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / norm if reduction == "mean" else total, dtype=dtype)


def _upstream(grad, reduction, norm):
    """The gradient reaching each per-element loss."""
    return grad if reduction == "none" else grad / norm if reduction == "mean" else grad


class MSELossFn(Function):
    """``forward(ctx, input, target, weight, reduction)``."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction):
        diff = x - np.asarray(target).astype(x.dtype, copy=False)
        sq = diff * diff
        if weight is not None:
            sq = sq * np.asarray(weight, dtype=x.dtype)
        norm = np.asarray(weight).sum() if weight is not None else sq.size
        if any(ctx.needs_input_grad[:2]):
            ctx.save_for_backward(diff)
            ctx.weight, ctx.reduction, ctx.norm = weight, reduction, norm
        return _reduce(sq, reduction, norm, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = 2 * _upstream(grad, ctx.reduction, ctx.norm) * diff
        if ctx.weight is not None:
            g = g * np.asarray(ctx.weight)
        g = g.astype(diff.dtype, copy=False)
        return (g if ctx.needs_input_grad[0] else None), (-g if ctx.needs_input_grad[1] else None), None, None


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target)^2``, as ``torch.nn.functional.mse_loss`` (``weight`` multiplies
    each squared error; ``'mean'`` then divides by ``sum(weight)``).

    Example:
        >>> import numpy as np
        >>> float(mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
        2.5
    """
    reduction = reduction_name(size_average, reduce, reduction, "mse_loss")
    x, t = np.asarray(input), np.asarray(target)
    if x.dtype.kind != "f":
        raise TypeError(f"mse_loss expects a floating-point input, got dtype {x.dtype}")
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: input and target must have the same shape, got input {x.shape} and target "
                         f"{t.shape}")
    if weight is not None and np.shape(weight) != x.shape:
        raise ValueError(f"mse_loss: weights and input must have the same size, got weight {np.shape(weight)} and "
                         f"input {x.shape}")
    return MSELossFn.apply(array_arg(input), array_arg(target), weight, reduction)


def _index_loss(logp, t, w, ignore_index, eps):
    """Per-sample loss, ``d loss_i / d logp`` and the normaliser for class-index targets."""
    c = logp.shape[1]
    wshape = (1, c) + (1,) * (logp.ndim - 2)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wt = w[safe] * valid                                                       # weight of each target
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    loss = -(1 - eps) * wt * picked if eps else -wt * picked
    # d loss_i / d logp_ic (before reduction): -(1-e) w[t_i] [c == t_i] - e/C w[c] [i not ignored]
    coef = np.zeros_like(logp)
    np.put_along_axis(coef, safe[:, None], 1, axis=1)
    coef *= -(1 - eps) * wt[:, None]
    if eps:
        loss = loss + (eps / c) * (-(logp * w.reshape(wshape)).sum(axis=1) * valid)
        coef -= (eps / c) * w.reshape(wshape) * valid[:, None]
    return loss, coef, wt.sum()


def _probability_loss(logp, t, w, eps):
    c = logp.shape[1]
    t = t.astype(logp.dtype, copy=False)
    if eps:
        t = t * (1 - eps) + eps / c
    coef = -t * w.reshape((1, c) + (1,) * (logp.ndim - 2))
    return (logp * coef).sum(axis=1), coef, logp.size // c


class CrossEntropyFn(Function):
    """``forward(ctx, input, target, weight, ignore_index, reduction, label_smoothing)``."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, label_smoothing):
        t = np.asarray(target)
        unbatched = x.ndim == 1
        xb, tb = (x[None], t[None]) if unbatched else (x, t)
        c = xb.shape[1]
        w = np.ones(c, dtype=x.dtype) if weight is None else np.asarray(weight).astype(x.dtype, copy=False)
        shifted = xb - xb.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))      # log_softmax over classes
        if tb.dtype.kind == "f":
            loss, coef, norm = _probability_loss(logp, tb, w, label_smoothing)
        else:
            loss, coef, norm = _index_loss(logp, tb, w, ignore_index, label_smoothing)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(logp, coef)
            ctx.norm, ctx.reduction, ctx.unbatched = norm, reduction, unbatched
        out = _reduce(loss, reduction, norm, x.dtype)
        return np.asarray(out[0]) if unbatched and reduction == "none" else out

    @staticmethod
    def backward(ctx, grad):
        logp, coef = ctx.saved_tensors
        g = _upstream(grad, ctx.reduction, ctx.norm)
        if ctx.reduction == "none":
            g = (g[None] if ctx.unbatched else g)[:, None]
        glogp = coef * g                                                       # d loss / d log_softmax
        gx = (glogp - np.exp(logp) * glogp.sum(axis=1, keepdims=True)).astype(logp.dtype, copy=False)
        return (gx[0] if ctx.unbatched else gx), None, None, None, None, None


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy of logits against class indices or class probabilities, as
    ``torch.nn.functional.cross_entropy`` (the rules are in the module docstring).

    Shape:
        input ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; target ``(N,)``, ``(N, d1, ...)`` or ``()`` of integer
        class indices, or a float array of the input's shape holding class probabilities.

    Example:
        >>> import numpy as np
        >>> round(float(cross_entropy(np.zeros((2, 4)), np.array([1, 3]))), 6)
        1.386294
    """
    reduction = reduction_name(size_average, reduce, reduction, "cross_entropy")
    x, t = np.asarray(input), np.asarray(target)
    if x.dtype.kind != "f":
        raise TypeError(f"cross_entropy expects floating-point logits, got dtype {x.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if x.ndim == 0:
        raise ValueError(f"cross_entropy: expected input of shape (C,), (N, C) or (N, C, d1, ...), got {x.shape}")
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    if weight is not None and np.shape(weight) != (c,):
        raise ValueError(f"cross_entropy: weight must have shape ({c},) (one per class), got {np.shape(weight)}")
    if t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ValueError(f"cross_entropy: probability target must have the input's shape {x.shape}, got "
                             f"{t.shape}")
    else:
        expected = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
        if t.shape != expected:
            raise ValueError(f"cross_entropy: class-index target must have shape {expected} for input of shape "
                             f"{x.shape}, got {t.shape}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy: target must hold integer class indices (or float probabilities), got "
                            f"dtype {t.dtype}")
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if bad.any():
            raise ValueError(f"cross_entropy: target {t[bad].flat[0]} is out of bounds for {c} classes (valid class "
                             f"indices are 0 to {c - 1}, or ignore_index={ignore_index})")
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use reduction instead.",
                      UserWarning, stacklevel=2)
    return CrossEntropyFn.apply(array_arg(input), t, weight, int(ignore_index), reduction, float(label_smoothing))

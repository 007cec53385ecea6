"""Random zeroing: ``dropout`` (``torch.nn.functional.dropout``) and ``stochastic_depth`` (torchvision's
``ops.stochastic_depth``), both ``x * mask`` with a mask drawn from convforge's generator
(:func:`convforge.manual_seed`) and scaled by ``1 / keep_probability``; backward is ``grad * mask``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ... import _random
from .common import array_arg, checked_inplace, inplace_target
from ...autograd import Function

__all__ = ["check_probability", "dropout", "stochastic_depth"]


class MaskFn(Function):
    """``forward(ctx, input, mask, inplace)``: ``input * mask`` (the mask broadcasts)."""

    @staticmethod
    def forward(ctx, x, mask, inplace):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(mask)
        return np.multiply(x, mask, out=inplace_target(x, inplace) if mask.shape == x.shape else None)

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.saved_tensors[0]).astype(grad.dtype, copy=False), None, None


def check_probability(p, what):
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"{what} probability has to be between 0 and 1, but got {p}")
    return float(p)


def _keep_mask(shape, keep, dtype):
    """Bernoulli(keep) mask scaled by ``1 / keep`` (all zeros when ``keep`` is 0)."""
    if keep == 0:
        return np.zeros(shape, dtype=dtype)
    kept = _random.generator().random(shape) < keep
    return kept.astype(dtype) * np.asarray(1 / keep, dtype=dtype)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """During training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, as
    ``torch.nn.functional.dropout`` (the identity when not training).  The random stream is convforge's, not
    PyTorch's.

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> sorted(set(dropout(np.ones(1000)).tolist())), dropout(np.ones(2), training=False).tolist()
        ([0.0, 2.0], [1.0, 1.0])
    """
    p = check_probability(p, "dropout")
    x = array_arg(input)
    if not training or p == 0:
        return input
    inplace = checked_inplace(input, inplace, "dropout")
    return MaskFn.apply(array_arg(input), _keep_mask(x.shape, 1 - p, x.dtype), inplace)


def stochastic_depth(input, p: float, mode: str, training: bool = True):
    """Drop whole residual branches, as ``torchvision.ops.stochastic_depth``: with ``mode='row'`` each sample
    (first axis) is zeroed with probability ``p``, with ``'batch'`` the whole input; survivors are scaled by
    ``1 / (1 - p)``.  The identity when not training or ``p == 0``.

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> y = stochastic_depth(np.ones((1000, 2)), 0.5, "row")
        >>> sorted(set(y.tolist()[0] + y.tolist()[1])), bool((y[:, 0] == y[:, 1]).all())
        ([0.0, 2.0], True)
    """
    p = check_probability(p, "drop")
    if mode not in ("batch", "row"):
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    x = array_arg(input)
    if not training or p == 0:
        return input
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    return MaskFn.apply(array_arg(input), _keep_mask(shape, 1 - p, x.dtype), False)

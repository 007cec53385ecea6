"""Losses, as in ``torch.nn``: ``MSELoss`` and ``CrossEntropyLoss`` (modules over ``nn.functional.mse_loss`` and
``cross_entropy``; the formulas are in ``convforge.nn._ops.loss``).

``loss = criterion(input, target)`` returns a 0-d array (``reduction='mean'`` or ``'sum'``) or the per-element
losses (``'none'``); on tracked inputs ``loss.backward()`` fills the gradients.
"""
from __future__ import annotations

import numpy as np

from .module import Module
from ._ops.common import reduction_name
from ._ops.loss import cross_entropy, mse_loss

__all__ = ["MSELoss", "CrossEntropyLoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction_name(size_average, reduce, reduction, type(self).__name__)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``, as ``torch.nn.MSELoss``.

    Args:
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``size_average``/``reduce``: PyTorch's legacy
            flags).

    Shape:
        input and target of the same shape; the loss is a 0-d array (or that shape for ``'none'``).

    Example:
        >>> import numpy as np
        >>> crit = MSELoss()
        >>> float(crit(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
        2.5
    """

    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross entropy of logits against class indices (or class probabilities), as ``torch.nn.CrossEntropyLoss``.

    Args:
        weight: optional per-class weights ``(C,)`` (stored as a buffer, as PyTorch does).
        ignore_index: target value that contributes neither loss nor gradient (default -100).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        label_smoothing: in ``[0, 1]`` (default 0).

    Shape:
        input ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; target ``(N,)``, ``(N, d1, ...)`` or ``()`` of integer
        class indices, or a float array of the input's shape holding class probabilities.

    Example:
        >>> import numpy as np, convforge
        >>> crit = CrossEntropyLoss()
        >>> x = convforge.tensor(np.zeros((2, 4)), requires_grad=True)
        >>> loss = crit(x, np.array([1, 3]))
        >>> round(float(loss), 6)
        1.386294
        >>> loss.backward()
        >>> x.grad.round(3).tolist()
        [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]]
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
        self.register_buffer("weight", None if weight is None else np.asarray(weight))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                             label_smoothing=self.label_smoothing)

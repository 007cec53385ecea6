"""Random zeroing in training, seeded by ``convforge.manual_seed``: ``Dropout`` (as ``torch.nn.Dropout``) and
``StochasticDepth`` (as ``torchvision.ops.StochasticDepth``)."""
from __future__ import annotations

import numpy as np

from .module import Module
from ._ops.dropout import check_probability, dropout, stochastic_depth

__all__ = ["Dropout", "StochasticDepth"]


class Dropout(Module):
    """During training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (inverted dropout, so evaluation is the identity).

    The mask is drawn from convforge's generator (:func:`convforge.manual_seed` makes it reproducible); it is not
    the same random stream as PyTorch's.

    Args:
        p: probability of an element being zeroed (default 0.5).
        inplace: write the result into the input array.

    Shape:
        any shape -> the same shape.

    Example:
        >>> import numpy as np, convforge
        >>> convforge.manual_seed(0)
        >>> d = Dropout(0.5)
        >>> y = d(np.ones(1000))
        >>> sorted(set(y.tolist())), d.eval()(np.ones(3)).tolist()
        ([0.0, 2.0], [1.0, 1.0, 1.0])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p, self.inplace = check_probability(p, "dropout"), bool(inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input):
        return dropout(input, self.p, self.training, self.inplace)


class StochasticDepth(Module):
    """Randomly drop a residual branch during training, as ``torchvision.ops.StochasticDepth`` (EfficientNet,
    ConvNeXt): ``mode='row'`` zeroes each sample's branch with probability ``p``, ``'batch'`` the whole batch's;
    survivors are scaled by ``1 / (1 - p)``.  In eval mode it is the identity.

    Args:
        p: drop probability.
        mode: ``'row'`` or ``'batch'``.

    Example:
        >>> import numpy as np
        >>> m = StochasticDepth(0.2, "row")
        >>> m
        StochasticDepth(p=0.2, mode=row)
        >>> m.eval()(np.ones(3)).tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float, mode: str):
        super().__init__()
        stochastic_depth(np.zeros(1), p, mode, training=False)             # validates p and mode
        self.p, self.mode = p, mode

    def forward(self, input):
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, mode={self.mode})"

"""``Linear``: ``y = x W^T + b``, as ``torch.nn.Linear`` (the op and its backward: ``nn.functional.linear``)."""
from __future__ import annotations

import math

import numpy as np

from .. import _random
from .module import Module
from ._ops.linear import linear
from .parameter import Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Fully connected layer, as ``torch.nn.Linear``.

    Args:
        in_features: size of the last input dimension.
        out_features: size of the last output dimension.
        bias: learn an additive bias (default True).
        dtype: parameter dtype (default float32).

    Parameters: ``weight (out_features, in_features)`` and ``bias (out_features,)``, both initialised
    U(-1/sqrt(in_features), 1/sqrt(in_features)) (PyTorch's kaiming_uniform(a=sqrt(5)) default).

    Shape:
        input ``(*, in_features)`` -> ``(*, out_features)``.

    Example:
        >>> import numpy as np
        >>> m = Linear(20, 30)
        >>> m.weight.shape, m(np.zeros((128, 20), np.float32)).shape
        ((30, 20), (128, 30))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        rng = _random.generator()
        self.weight[...] = rng.uniform(-bound, bound, self.weight.shape)
        if self.bias is not None:
            self.bias[...] = rng.uniform(-bound, bound, self.bias.shape)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, input):
        return linear(input, self.weight, self.bias)

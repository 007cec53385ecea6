"""``LayerNorm``, as ``torch.nn.LayerNorm`` (a module over ``convforge.nn.functional.layer_norm``)."""
from __future__ import annotations

import numpy as np

from .module import Module
from ._ops.normalization import layer_norm, normalized_dims
from .parameter import Parameter

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims (mean and biased variance per position), then
    scale by ``weight`` and shift by ``bias`` element-wise.

    Args:
        normalized_shape: an int or a tuple: the trailing dims to normalise over.
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn ``weight`` (init 1) and ``bias`` (init 0) of shape ``normalized_shape``.
        bias: with ``elementwise_affine``, also learn ``bias`` (default True).
        dtype: parameter dtype (default float32).

    Shape:
        ``(*, *normalized_shape)`` -> the same shape.

    Example:
        >>> import numpy as np
        >>> m = LayerNorm(4)
        >>> m
        LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
        >>> m(np.array([[1.0, 2.0, 3.0, 4.0]])).round(3).tolist()
        [[-1.342, -0.447, 0.447, 1.342]]
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = normalized_dims(normalized_shape)
        if any(v < 0 for v in self.normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must hold non-negative sizes, got {normalized_shape!r}")
        self.eps = eps
        self.elementwise_affine = bool(elementwise_affine)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            self.weight[...] = 1
            if self.bias is not None:
                self.bias[...] = 0

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

"""``Flatten``: merge a range of dimensions into one, as ``torch.nn.Flatten``."""
from __future__ import annotations

import math

from ._ops.common import array_arg
from .module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flatten dimensions ``start_dim`` to ``end_dim`` (inclusive, negative counts from the end).

    Args:
        start_dim: first dimension to flatten (default 1: keep the batch dimension).
        end_dim: last dimension to flatten (default -1).

    Shape:
        ``(N, C, H, W)`` -> ``(N, C*H*W)`` with the defaults.

    Example:
        >>> import numpy as np
        >>> Flatten()(np.zeros((32, 1, 5, 5))).shape
        (32, 25)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, input):
        x = array_arg(input)
        nd = max(x.ndim, 1)
        start, end = self.start_dim, self.end_dim
        if not (-nd <= start < nd and -nd <= end < nd):
            raise ValueError(f"Flatten: dimensions start_dim={start}, end_dim={end} are out of range for an input "
                             f"of shape {x.shape} (expected values in [{-nd}, {nd - 1}])")
        start, end = start % nd, end % nd
        if start > end:
            raise ValueError(f"Flatten: start_dim ({self.start_dim}) cannot come after end_dim ({self.end_dim}) "
                             f"for an input of shape {x.shape}")
        if x.ndim == 0:
            return x.reshape(1)
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])

"""``Upsample`` with ``mode='nearest'`` and integer scale factors, as ``torch.nn.Upsample``."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _canon
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """Nearest-neighbour upsampling by integer factors: each input cell becomes a ``s1 x s2 x ...`` block.

    Args:
        size: output spatial size (int or per-dimension tuple); each must be an integer multiple of the input
            size (give either ``size`` or ``scale_factor``).
        scale_factor: integer factor (int, or a per-dimension tuple); stored as float like PyTorch.
        mode: only ``'nearest'`` is supported.
        align_corners, recompute_scale_factor: accepted for signature compatibility; must be None/False for
            ``'nearest'``.

    Shape:
        ``(N, C, *S)`` (1 to 3 spatial dims) -> ``(N, C, *(S * scale))``.

    Example:
        >>> import numpy as np
        >>> m = Upsample(scale_factor=2)
        >>> m
        Upsample(scale_factor=2.0, mode='nearest')
        >>> m(np.arange(2.0).reshape(1, 1, 2)).tolist()
        [[[0.0, 0.0, 1.0, 1.0]]]
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is supported, got mode={mode!r}")
        if align_corners:
            raise ValueError("Upsample: align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear (and convforge supports only 'nearest')")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: either size or scale_factor should be defined (exactly one of them)")
        factors = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
        if scale_factor is not None and not all(isinstance(f, numbers.Real) and float(f) == int(f) and f >= 1
                                                for f in factors):
            raise ValueError(f"Upsample: convforge supports positive integer scale factors only, got "
                             f"scale_factor={scale_factor!r}")
        self.name = "Upsample"
        self.size = tuple(size) if isinstance(size, list) else size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self._factors = None

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"

    def _integer_factors(self, sizes):
        n = len(sizes)
        if self.scale_factor is not None:
            sf = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * n
            if len(sf) != n:
                raise ValueError(f"Upsample: scale_factor {self.scale_factor} must have {n} entries for an input "
                                 f"with {n} spatial dimensions")
            return tuple(int(f) for f in sf)
        target = _canon.ntuple(self.size, n, "size", minimum=1)
        if any(i == 0 or t % i for i, t in zip(sizes, target)):
            raise ValueError(f"Upsample: size {target} must be an integer multiple of the input spatial size "
                             f"{tuple(sizes)} (convforge supports integer factors only); use scale_factor")
        return tuple(t // i for i, t in zip(sizes, target))

    def forward(self, input):
        x = np.asarray(input)
        if x.ndim not in (3, 4, 5):
            raise ValueError(f"Upsample: expected a 3D, 4D or 5D input (N, C, *spatial), got input of shape "
                             f"{x.shape}")
        factors = self._integer_factors(x.shape[2:])
        self._factors = factors
        # (N, C, i1, 1, i2, 1, ...) broadcast to (N, C, i1, s1, i2, s2, ...) then merged: a block per cell
        expanded = x.reshape(x.shape[:2] + sum(((i, 1) for i in x.shape[2:]), ()))
        blocks = np.broadcast_to(expanded, x.shape[:2] + sum(((i, f) for i, f in zip(x.shape[2:], factors)), ()))
        return blocks.reshape(x.shape[:2] + tuple(i * f for i, f in zip(x.shape[2:], factors)))

    def backward(self, grad_output):
        if self._factors is None:
            raise RuntimeError("Upsample.backward() called before forward()")
        g = np.asarray(grad_output)
        factors = self._factors
        sizes = tuple(o // f for o, f in zip(g.shape[2:], factors))
        split = g.reshape(g.shape[:2] + sum(((i, f) for i, f in zip(sizes, factors)), ()))
        return split.sum(axis=tuple(3 + 2 * k for k in range(len(factors))))

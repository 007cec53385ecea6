"""``Upsample``, as ``torch.nn.Upsample``: a module over ``convforge.nn.functional.interpolate``."""
from __future__ import annotations

from .module import Module
from ._ops.interpolate import interpolate

__all__ = ["Upsample"]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear")


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` with nearest or (bi/tri)linear interpolation.

    Args:
        size: output spatial size (int or per-dimension tuple); give either ``size`` or ``scale_factor``.
        scale_factor: multiplier (float or per-dimension tuple), stored as float like PyTorch; output size
            ``floor(in * scale_factor)``.
        mode: ``'nearest'`` (default), ``'nearest-exact'``, ``'linear'``, ``'bilinear'``, ``'trilinear'``.
        align_corners: linear modes only (default False).
        recompute_scale_factor: derive the source scale from the sizes instead of ``scale_factor``.

    Shape:
        ``(N, C, *S)`` (1 to 3 spatial dims) -> ``(N, C, *S_out)``; the exact rules are in
        :func:`convforge.nn.functional.interpolate`.

    Example:
        >>> import numpy as np
        >>> m = Upsample(scale_factor=2)
        >>> m
        Upsample(scale_factor=2.0, mode='nearest')
        >>> m(np.arange(2.0).reshape(1, 1, 2)).tolist()
        [[[0.0, 0.0, 1.0, 1.0]]]
        >>> Upsample(size=3, mode="linear", align_corners=True)(np.arange(2.0).reshape(1, 1, 2)).tolist()
        [[[0.0, 0.5, 1.0]]]
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Upsample: mode {mode!r} is not supported; use one of {', '.join(map(repr, _MODES))}")
        if align_corners is not None and mode in ("nearest", "nearest-exact"):
            raise ValueError("Upsample: align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: either size or scale_factor should be defined (exactly one of them)")
        self.name = "Upsample"
        self.size = tuple(size) if isinstance(size, list) else size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

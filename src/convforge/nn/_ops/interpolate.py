"""``interpolate``, as ``torch.nn.functional.interpolate``: modes ``nearest``, ``nearest-exact``, ``linear``,
``bilinear``, ``trilinear`` (``align_corners`` both ways), as an autograd Function.

Every mode is separable: along each spatial dim, output cell ``o`` reads one input cell (nearest) or blends two,
``x[i0] * (1 - lam) + x[i1] * lam``.  The per-dim plans follow PyTorch's CPU kernels exactly:

- output size: ``size``, or ``floor(in * scale_factor)``;
- the source scale: ``1 / scale_factor`` when a scale factor is given (and ``recompute_scale_factor`` is not
  True), else ``in / out``; with ``align_corners=True``, ``(in - 1) / (out - 1)`` (0 for one output cell);
- nearest: ``i = min(floor(float32(o * scale)), in - 1)`` (PyTorch's ``floorf`` rounds the product to float32
  first; ``scale_factor=1.1`` on 2 cells gives cells 0, 0); nearest-exact uses ``o + 0.5``;
- linear: ``src = scale * o`` (align_corners) or ``max(scale * (o + 0.5) - 0.5, 0)``, ``i0 = min(floor(src),
  in - 1)``, ``lam = clip(src - i0, 0, 1)``, ``i1 = min(i0 + 1, in - 1)``;
- index arithmetic in the input's precision (float32 for float32 input, as PyTorch's ``opmath`` type), which
  decides the cell where ``o * scale`` lands next to an integer.

Forward gathers along one dim at a time; backward applies the adjoint of each dim's ``(out, in)``
interpolation matrix.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .common import apply_along_spatial, check_output_size, float_input
from ...autograd import Function

__all__ = ["interpolate"]

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_NEAREST_MODES = ("nearest", "nearest-exact")


def _source_scale(i, o, scale, ft):
    """PyTorch's ``compute_scales_value``: ``1 / scale_factor`` if one was given, else ``in / out``."""
    return ft(1.0 / scale) if scale is not None and scale > 0 else ft(i) / ft(o)


def _nearest_plan(i, o, scale, exact, dtype):
    ft = np.float32 if dtype == np.float32 else np.float64
    dst = np.arange(o, dtype=ft) + ft(0.5 if exact else 0)
    # PyTorch: floorf(dst * scale) -- the product in the input's precision, rounded to float32 by floorf
    source = (dst * _source_scale(i, o, scale, ft)).astype(np.float32)
    return (np.minimum(np.floor(source).astype(np.int64), i - 1),)


def _linear_plan(i, o, scale, align_corners, dtype):
    ft = np.float32 if dtype == np.float32 else np.float64
    if align_corners:
        s = ft(i - 1) / ft(o - 1) if o > 1 else ft(0)
        src = s * np.arange(o, dtype=ft)
    else:
        s = _source_scale(i, o, scale, ft)
        src = np.maximum(s * (np.arange(o, dtype=ft) + ft(0.5)) - ft(0.5), ft(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), i - 1)
    lam = np.clip(src - i0, 0, 1).astype(dtype)
    i1 = np.minimum(i0 + 1, i - 1)
    return i0, i1, lam


def _matrix(plan, i, dtype):
    """The ``(out, in)`` interpolation matrix of a plan (for the adjoint)."""
    o = plan[0].shape[0]
    a = np.zeros((o, i), dtype=dtype)
    rows = np.arange(o)
    if len(plan) == 1:
        a[rows, plan[0]] = 1
    else:
        i0, i1, lam = plan
        np.add.at(a, (rows, i0), 1 - lam)
        np.add.at(a, (rows, i1), lam)
    return a


class InterpolateFn(Function):
    """``forward(ctx, input, plans)``: one plan per spatial dim, ``(index,)`` or ``(i0, i1, lam)``."""

    @staticmethod
    def forward(ctx, x, plans):
        y = x
        for dim, plan in enumerate(plans):
            axis = 2 + dim
            if len(plan) == 1:
                y = np.take(y, plan[0], axis=axis)
            else:
                i0, i1, lam = plan
                lam = lam.reshape((-1,) + (1,) * (x.ndim - 1 - axis))
                y = np.take(y, i0, axis=axis) * (1 - lam) + np.take(y, i1, axis=axis) * lam
        if ctx.needs_input_grad[0]:
            ctx.mats = [_matrix(p, i, x.dtype) for p, i in zip(plans, x.shape[2:])]
        return np.ascontiguousarray(y)

    @staticmethod
    def backward(ctx, grad):
        return apply_along_spatial(grad, [a.T for a in ctx.mats]).astype(grad.dtype, copy=False), None


def _sizes_and_scales(in_sizes, size, scale_factor, recompute_scale_factor):
    n = len(in_sizes)
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size.")
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
        if len(out) != n:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(in_sizes)} and output size of {list(out)}. Please "
                             f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             f"(o1, o2, ...,oK) format.")
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out):
            raise TypeError(f"interpolate: size must be ints, got {size!r}")
        return tuple(int(v) for v in out), (None,) * n
    scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * n
    if len(scales) != n:
        raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(in_sizes)} and scale_factor of shape {list(scales)}. "
                         f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in "
                         f"(s1, s2, ...,sK) format.")
    if not all(isinstance(s, numbers.Real) and not isinstance(s, bool) and math.isfinite(s) for s in scales):
        raise ValueError(f"interpolate: scale_factor must be finite numbers, got {scale_factor!r}")
    out = tuple(math.floor(float(i) * float(s)) for i, s in zip(in_sizes, scales))
    return out, ((None,) * n if recompute_scale_factor else tuple(float(s) for s in scales))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize ``(N, C, *S)`` by ``size`` or ``scale_factor``, as ``torch.nn.functional.interpolate`` (the rules
    are in the module docstring).

    Args:
        size: output spatial size (int or one per dim).
        scale_factor: multiplier (float or one per dim); output ``floor(in * scale)``.
        mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'`` (3-D input), ``'bilinear'`` (4-D),
            ``'trilinear'`` (5-D).
        align_corners: linear modes only: map the corner cells' centres onto each other (default False).
        recompute_scale_factor: if True, derive the source scale from the sizes instead of ``scale_factor``.
        antialias: not supported (must be False).

    Example:
        >>> import numpy as np
        >>> interpolate(np.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear").tolist()
        [[[0.0, 0.25, 0.75, 1.0]]]
        >>> interpolate(np.array([[[0.0, 1.0]]]), size=3, mode="linear", align_corners=True).tolist()
        [[[0.0, 0.5, 1.0]]]
    """
    x = float_input(input, "interpolate")
    n = x.ndim - 2
    if not 1 <= n <= 3:
        raise ValueError(f"interpolate: expected a 3D, 4D or 5D input (N, C, *spatial), got input of shape "
                         f"{x.shape}")
    if mode in _NEAREST_MODES:
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear "
                             "| bicubic | trilinear")
    elif mode in _LINEAR_MODES:
        if _LINEAR_MODES[mode] != n:
            raise ValueError(f"Got {x.ndim}D input, but {mode} mode needs {_LINEAR_MODES[mode] + 2}D input")
        align_corners = bool(align_corners)
    else:
        raise ValueError(f"interpolate: mode {mode!r} is not supported; use one of 'nearest', 'nearest-exact', "
                         f"'linear', 'bilinear', 'trilinear'")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported by convforge")
    out, scales = _sizes_and_scales(x.shape[2:], size, scale_factor, recompute_scale_factor)
    if any(i <= 0 for i in x.shape[2:]) or any(o <= 0 for o in out):
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, but got input "
                         f"{tuple(x.shape[2:])} and output {out}")
    check_output_size(x.shape[:2] + out, x.dtype, "interpolate")
    if mode in _NEAREST_MODES:
        plans = tuple(_nearest_plan(i, o, s, mode == "nearest-exact", x.dtype) for i, o, s in zip(x.shape[2:], out, scales))
    else:
        plans = tuple(_linear_plan(i, o, s, align_corners, x.dtype) for i, o, s in zip(x.shape[2:], out, scales))
    return InterpolateFn.apply(x, plans)

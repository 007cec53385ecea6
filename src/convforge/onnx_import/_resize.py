"""ONNX ``Resize`` (opset 11-22) as one interpolation matrix per resized axis, applied with ``tensordot``.

For an output coordinate ``x`` the source coordinate follows ``coordinate_transformation_mode``
(``half_pixel``: ``(x + 0.5) / scale - 0.5``; ``pytorch_half_pixel``: the same, 0 for a length-1 output;
``align_corners``: ``x * (in - 1) / (out - 1)``; ``asymmetric``: ``x / scale``; ``half_pixel_symmetric``).
``nearest`` rounds it by ``nearest_mode``; ``linear`` blends the two neighbours (coordinates clamped to the
input); ``cubic`` the four neighbours with Keys' kernel (``cubic_coeff_a``), edge-replicated, or renormalised
over the inside ones with ``exclude_outside``.

Example:
    >>> resize([np.arange(4.0).reshape(1, 1, 1, 4), None, np.array([1, 1, 1, 2], np.float32)],
    ...        {"mode": "nearest"}).tolist()
    [[[[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]]]]
"""
from __future__ import annotations

import numpy as np

from ._limits import check_size


def _source(x, size_in, size_out, length, scale, mode):
    # align_corners divides by the real-valued resized length (input * scale when scales are given), as the ONNX
    # reference does; the other modes use the integer output size
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if size_out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (size_in - 1) / (length - 1) if size_out > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel_symmetric":
        adjustment = size_out / (scale * size_in)
        return size_in / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
    raise ValueError(f"Resize coordinate_transformation_mode {mode!r} is not supported (supported: half_pixel, "
                     "pytorch_half_pixel, align_corners, asymmetric, half_pixel_symmetric)")


_ROUND = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
          "floor": np.floor, "ceil": np.ceil}


def _cubic_weights(t, a):
    """Keys' cubic kernel at the distances of the four neighbours ``floor - 1 .. floor + 2``."""
    d = np.stack([1 + t, t, 1 - t, 2 - t], axis=-1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def matrix(size_in, size_out, scale, attrs, length=None):
    """The ``(size_out, size_in)`` matrix mapping one axis of the input to the resized axis (``length``: the
    real-valued resized length, default ``size_out``)."""
    x = _source(np.arange(size_out, dtype=np.float64), size_in, size_out, size_out if length is None else length,
                scale, attrs.get("coordinate_transformation_mode", "half_pixel"))
    mode = attrs.get("mode", "nearest")
    out = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    if mode == "nearest":
        index = _ROUND[attrs.get("nearest_mode", "round_prefer_floor")](x)
        out[rows, np.clip(index, 0, size_in - 1).astype(np.int64)] = 1
        return out
    if mode == "linear":
        x = np.clip(x, 0, size_in - 1)
        low = np.floor(x).astype(np.int64)
        high = np.minimum(low + 1, size_in - 1)
        np.add.at(out, (rows, low), 1 - (x - low))
        np.add.at(out, (rows, high), x - low)
        return out
    if mode == "cubic":
        low = np.floor(x).astype(np.int64)
        weights = _cubic_weights(x - low, attrs.get("cubic_coeff_a", -0.75))
        taps = low[:, None] + np.arange(-1, 3)
        if attrs.get("exclude_outside", 0):
            weights = np.where((taps >= 0) & (taps < size_in), weights, 0)
            weights = weights / weights.sum(axis=1, keepdims=True)
        np.add.at(out, (np.repeat(rows, 4), np.clip(taps, 0, size_in - 1).reshape(-1)), weights.reshape(-1))
        return out
    raise ValueError(f"Resize mode {mode!r} is not one of nearest, linear, cubic")


def resize(inputs, attrs):
    """ONNX Resize on ``inputs = [X, roi, scales, sizes]`` (the last three optional)."""
    x = inputs[0]
    scales = inputs[2] if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]) else None
    sizes = inputs[3] if len(inputs) > 3 and inputs[3] is not None and np.size(inputs[3]) else None
    if attrs.get("antialias", 0):
        raise ValueError("Resize with antialias=1 is not supported")
    axes = [a % x.ndim for a in attrs.get("axes", range(x.ndim))]
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    if sizes is not None:
        out_sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
        factors = [o / x.shape[a] for o, a in zip(out_sizes, axes)]
        if policy in ("not_larger", "not_smaller"):
            common = (min if policy == "not_larger" else max)(factors)
            factors = [common] * len(axes)
            out_sizes = [int(np.floor(x.shape[a] * common + 0.5)) for a in axes]
        lengths = out_sizes
    elif scales is not None:
        factors = [float(v) for v in np.asarray(scales).reshape(-1)]
        out_sizes = [int(np.floor(x.shape[a] * f)) for a, f in zip(axes, factors)]
        lengths = [x.shape[a] * f for a, f in zip(axes, factors)]
    else:
        raise ValueError("Resize needs scales or sizes")
    shape = list(x.shape)
    for axis, size in zip(axes, out_sizes):
        shape[axis] = size
    check_size(shape, "Resize")
    y = x
    for axis, size_out, factor, length in zip(axes, out_sizes, factors, lengths):
        if size_out == x.shape[axis] and factor == 1:
            continue
        m = matrix(x.shape[axis], size_out, factor, attrs, length)
        m = m.astype(x.dtype if x.dtype.kind == "f" else np.float64)
        y = np.swapaxes(np.swapaxes(y, axis, -1) @ m.T, axis, -1)
    return y.astype(x.dtype, copy=False) if x.dtype.kind == "f" else np.rint(y).astype(x.dtype)

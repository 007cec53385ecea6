"""``pad``: PyTorch's ``F.pad`` on NumPy arrays (torch's pad order: last dimension first)."""
from __future__ import annotations

import numpy as np

from ._canon import check_output_fits, is_int

_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode: str = "constant", value: float = 0.0):
    """Pad the last ``len(pad) // 2`` dimensions of ``input``.

    Args:
        input: array of any rank.
        pad: ``(left_last, right_last, left_second_last, right_second_last, ...)`` as in ``torch.nn.functional.pad``.
            Negative values crop (all modes); with ``'replicate'`` every output cell ``p`` copies input cell
            ``clamp(p - lo, 0, size - 1)`` as in torch, so a crop past the input still copies its edge.
        mode: ``'constant'`` (fill with ``value``), ``'reflect'`` (mirror without repeating the edge; pad < size),
            ``'replicate'`` (repeat the edge), ``'circular'`` (wrap around; pad <= size).

    Shape:
        each padded dim grows by ``lo + hi``.

    Example:
        >>> import numpy as np
        >>> pad(np.arange(4.0), (2, 1), mode="reflect").tolist()
        [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0]
    """
    x = np.asarray(input)
    if mode not in MODES:
        raise ValueError(f"Unsupported padding mode {mode!r}; choose one of {MODES} "
                         f"(torch names: numpy 'edge' is 'replicate', 'wrap' is 'circular')")
    if not isinstance(pad, (tuple, list)) or not all(is_int(p) for p in pad):
        raise TypeError(f"pad must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"Padding length must be divisible by 2, got {len(pad)} values: {tuple(pad)}")
    n = len(pad) // 2
    if n > x.ndim:
        raise ValueError(f"Padding length {len(pad)} is too large: it pads {n} dimensions but the input of shape "
                         f"{x.shape} has only {x.ndim}")
    pairs = [(0, 0)] * (x.ndim - n) + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(n))]
    if mode == "constant" and value != 0 and x.dtype.kind in "iub" and float(value) != int(value):
        raise TypeError(f"value {value} cannot be represented in the input dtype {x.dtype}")
    sizes = [size + lo + hi for size, (lo, hi) in zip(x.shape, pairs)]
    if any(size < 0 for size in sizes):
        raise ValueError(f"pad {tuple(pad)} would give the input of shape {x.shape} the negative size "
                         f"{tuple(sizes)}; crop at most each dimension's size")
    if mode == "replicate" and any(lo < 0 or hi < 0 for lo, hi in pairs):
        check_output_fits(sizes, x.itemsize, "pad", f"pad={tuple(pad)}")
        for axis, (lo, hi) in enumerate(pairs):
            if lo or hi:
                x = np.take(x, _replicate_sources(x.shape[axis], lo, hi, axis, x.shape), axis=axis)
        return x
    # negative padding crops first
    crop = tuple(slice(max(-lo, 0), x.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs))
    x = x[crop]
    pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if mode != "constant":
        for axis, (lo, hi) in enumerate(pairs):
            size = x.shape[axis]
            if lo == 0 and hi == 0:
                continue
            if mode == "reflect" and (lo >= size or hi >= size):
                raise ValueError(f"reflect padding ({lo}, {hi}) must be smaller than the input size {size} of "
                                 f"dimension {axis} (input shape {x.shape})")
            if mode == "circular" and (lo > size or hi > size):
                raise ValueError(f"circular padding ({lo}, {hi}) must be no larger than the input size {size} "
                                 f"of dimension {axis} (input shape {x.shape})")
            if mode == "replicate" and size == 0:
                raise ValueError(f"replicate padding needs a non-empty dimension {axis} (input shape {x.shape})")
    check_output_fits(sizes, x.itemsize, "pad", f"pad={tuple(pad)}")
    if mode != "constant":
        return np.pad(x, pairs, mode=_NUMPY_MODE[mode])
    return np.pad(x, pairs, mode="constant", constant_values=value)


def pad_backward(grad_output, pad, mode: str = "constant"):
    """The adjoint of :func:`pad`: the gradient with respect to ``pad``'s input, given the gradient with respect to
    its output.

    Each padded cell's gradient flows back to the cell it copied (reflect: the mirrored cell, replicate: the edge,
    circular: the wrapped cell); constant padding passes nothing back; cropped cells (negative padding) get zero.
    ``pad`` pads axis by axis, so its adjoint is the per-axis adjoint applied to every axis.

    Args:
        grad_output: gradient shaped like ``pad(input, pad, mode)``.
        pad: the same ``pad`` tuple as the forward call (torch order, last dimension first).
        mode: the same mode as the forward call.

    Shape:
        each padded dim shrinks by ``lo + hi``.

    Example:
        >>> import numpy as np
        >>> pad_backward(np.ones(7), (2, 1), mode="reflect").tolist()
        [1.0, 2.0, 3.0, 1.0]
    """
    g = np.asarray(grad_output)
    if mode not in MODES:
        raise ValueError(f"Unsupported padding mode {mode!r}; choose one of {MODES}")
    if not isinstance(pad, (tuple, list)) or not all(is_int(p) for p in pad) or len(pad) % 2:
        raise ValueError(f"pad must be a tuple of an even number of ints, got {pad!r}")
    n = len(pad) // 2
    if n > g.ndim:
        raise ValueError(f"Padding length {len(pad)} pads {n} dimensions but grad_output of shape {g.shape} has "
                         f"only {g.ndim}")
    pairs = [(0, 0)] * (g.ndim - n) + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(n))]
    in_shape = tuple(size - lo - hi for size, (lo, hi) in zip(g.shape, pairs))
    if any(size < 0 for size in in_shape):
        raise ValueError(f"grad_output of shape {g.shape} is smaller than the padding {tuple(pad)} allows")
    if mode == "replicate":       # every cell reads its clamped index: crops and pads in one rule
        for axis, (lo, hi) in enumerate(pairs):
            if lo or hi:
                g = _replicate_adjoint(g, axis, lo, hi)
        return g
    for axis, (lo, hi) in enumerate(pairs):
        if lo > 0 or hi > 0:
            g = _unpad_axis(g, axis, max(lo, 0), max(hi, 0), mode)
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        full = np.zeros(in_shape, dtype=g.dtype)
        full[tuple(slice(max(-lo, 0), size - max(-hi, 0)) for size, (lo, hi) in zip(in_shape, pairs))] = g
        g = full
    return g


def _unpad_axis(g, axis, lo, hi, mode):
    """Adjoint of padding one axis by ``(lo, hi) >= 0``: fold the padded cells back onto their sources."""
    g = np.moveaxis(g, axis, 0)
    size = g.shape[0] - lo - hi
    if mode == "reflect" and (lo >= size or hi >= size):
        raise ValueError(f"reflect padding ({lo}, {hi}) must be smaller than the input size {size} of dimension {axis}")
    if mode == "circular" and (lo > size or hi > size):
        raise ValueError(f"circular padding ({lo}, {hi}) must be no larger than the input size {size} of "
                         f"dimension {axis}")
    core = g[lo:lo + size].copy()
    low, high = g[:lo], g[lo + size:]
    # within one side the source cells are distinct (reflect, circular), so fancy-index += is exact
    if mode == "reflect":
        core[lo - np.arange(lo)] += low                    # out[p] = in[lo - p]
        core[size - 2 - np.arange(hi)] += high             # out[lo + size + q] = in[size - 2 - q]
    elif mode == "circular":
        core[size - lo + np.arange(lo)] += low             # out[p] = in[size - lo + p]
        core[np.arange(hi)] += high                        # out[lo + size + q] = in[q]
    return np.moveaxis(core, 0, axis)


def _replicate_sources(size, lo, hi, axis, shape):
    """Replicate padding of one axis by ``(lo, hi)`` of any signs, as torch: output cell ``p`` copies input cell
    ``clamp(p - lo, 0, size - 1)``, so a crop larger than the input still copies its edge."""
    length = size + lo + hi
    if size == 0 and length > 0:
        raise ValueError(f"replicate padding needs a non-empty dimension {axis} (input shape {shape})")
    return np.clip(np.arange(length) - lo, 0, max(size - 1, 0))


def _replicate_adjoint(g, axis, lo, hi):
    """Adjoint of :func:`_replicate_sources` along ``axis``: every input cell sums the gradient of the output
    cells that copied it (the sources are sorted, so each cell's copies are one run)."""
    g = np.moveaxis(g, axis, 0)
    size = g.shape[0] - lo - hi
    sources = _replicate_sources(size, lo, hi, axis, g.shape)
    out = np.zeros((size,) + g.shape[1:], dtype=g.dtype)
    if len(sources):
        starts = np.flatnonzero(np.r_[True, sources[1:] != sources[:-1]])
        out[sources[starts]] = np.add.reduceat(g, starts, axis=0)
    return np.moveaxis(out, 0, axis)

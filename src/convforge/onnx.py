"""The ONNX ``Conv`` and ``ConvTranspose`` operators (opset 22) on convforge.

Attribute names, defaults and the pads order ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` are the spec's.
Layouts are ONNX's (= PyTorch's): ``X (N, C, *S)``, Conv ``W (M, C/group, *K)``, ConvTranspose
``W (C, M/group, *K)``, ``B (M,)``.  This module does not import the ``onnx`` package.

Shape (per spatial dim, ``k_eff = (k-1)*d + 1``):
    Conv: NOTSET ``floor((i + b + e - k_eff) / s) + 1``; VALID the same with zero pads; SAME_UPPER / SAME_LOWER
    ``ceil(i / s)`` with total padding ``max((ceil(i/s)-1)*s + k_eff - i, 0)``, the odd one at the end (UPPER) or
    the beginning (LOWER).
    ConvTranspose: ``s*(i-1) + output_padding + k_eff - b - e``; with ``output_shape`` (or SAME_*, whose
    output_shape is ``i*s``) the pads come from ``total = s*(i-1) + output_padding + k_eff - output_shape``:
    SAME_UPPER ``b = total // 2``, otherwise ``b = total - total // 2`` (see
    :func:`convforge.convert.onnx_transpose_pads`).

Example:
    >>> import numpy as np
    >>> conv(np.ones((1, 2, 7, 8)), np.ones((3, 2, 3, 3)), auto_pad="SAME_LOWER", strides=[2, 2]).shape
    (1, 3, 4, 4)
    >>> conv_transpose(np.ones((1, 2, 3, 3)), np.ones((2, 4, 3, 3)), strides=[2, 2], output_shape=[7, 8]).shape
    (1, 4, 7, 8)
"""
from __future__ import annotations

import importlib

import numpy as np

from convforge import _api, _canon
from convforge.convert.padding import check_auto_pad, from_onnx_padding, onnx_pads_to_pairs, onnx_transpose_pads

__all__ = ["conv", "conv_transpose", "load_model"]


def __getattr__(name):
    # load_model (convforge.onnx_import) builds on this module's conv / conv_transpose, so it is imported lazily
    if name == "load_model":
        return importlib.import_module("convforge.onnx_import").load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _common(X, W, B, dilations, group, kernel_shape, strides, op):
    x = _api.as_array(X, "X")
    w = _api.as_array(W, "W")
    b = _api.as_array(B, "B")
    if w.ndim < 3:
        raise ValueError(f"{op}: W must have at least 3 dims, got shape {w.shape}")
    n = w.ndim - 2
    if x.ndim != n + 2:
        raise ValueError(f"{op}: X must be {n + 2}-D (N, C, {n} spatial dims) for a {w.ndim}-D W, got shape "
                         f"{x.shape}")
    if kernel_shape is not None and tuple(int(v) for v in kernel_shape) != w.shape[2:]:
        raise ValueError(f"{op}: kernel_shape {list(kernel_shape)} does not match W's kernel dims "
                         f"{list(w.shape[2:])}")
    s = _canon.ntuple(list(strides) if strides is not None else 1, n, "strides", minimum=1)
    d = _canon.ntuple(list(dilations) if dilations is not None else 1, n, "dilations", minimum=1)
    if not _canon.is_int(group) or group < 1:
        raise ValueError(f"{op}: group must be a positive int, got {group!r}")
    return x, w, b, n, s, d, int(group)


def conv(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    """ONNX ``Conv``.

    Args:
        X: ``(N, C, *S)``.
        W: ``(M, C/group, *K)``.
        B: ``(M,)`` or None.
        auto_pad: NOTSET (use ``pads``), VALID, SAME_UPPER or SAME_LOWER; ``pads`` may not be combined with the
            others (all-zero pads are tolerated).
        dilations, strides: one per spatial dim (default 1).
        group: number of groups.
        kernel_shape: optional, must equal ``W.shape[2:]``.
        pads: ``[x1_begin, ..., x1_end, ...]``, non-negative (default 0).

    Shape:
        ``(N, M, *O)``; see the module docstring for ``O``.

    Example:
        >>> conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), pads=[1, 1, 1, 1]).shape
        (1, 1, 5, 5)
    """
    x, w, b, n, s, d, g = _common(X, W, B, dilations, group, kernel_shape, strides, "Conv")
    pairs = from_onnx_padding(auto_pad, pads, kernel_shape=w.shape[2:], strides=s, dilations=d,
                              input_size=x.shape[2:])
    return _api.convolution(x, w, b, s, pairs, d, g, n_spatial=n, op="Conv")


def conv_transpose(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                   output_padding=None, output_shape=None, pads=None, strides=None):
    """ONNX ``ConvTranspose``.

    Args:
        X: ``(N, C, *S)``.
        W: ``(C, M/group, *K)``.
        B: ``(M,)`` or None.
        auto_pad: NOTSET, VALID, SAME_UPPER, SAME_LOWER (SAME_*: output ``i * s`` unless ``output_shape``).
        output_padding: extra cells at the end of each spatial dim (default 0); each must be less than its stride
            or its dilation.
        output_shape: spatial output sizes (``N + 2`` entries are accepted, the first two ignored); the pads are
            then derived from it as the spec says and ``pads`` is ignored.
        pads: ``[x1_begin, ..., x1_end, ...]`` (NOTSET).

    Pads computed from ``output_shape`` may be negative; the cells outside the full transposed output are then
    zeros (plus the bias), as in the onnx reference implementation.

    Example:
        >>> conv_transpose(np.ones((1, 1, 3, 3)), np.ones((1, 2, 3, 3)), strides=[3, 2],
        ...                output_padding=[1, 1]).shape
        (1, 2, 10, 8)
    """
    x, w, b, n, s, d, g = _common(X, W, B, dilations, group, kernel_shape, strides, "ConvTranspose")
    ap = check_auto_pad(auto_pad)
    op = _canon.ntuple(list(output_padding) if output_padding is not None else 0, n, "output_padding", minimum=0)
    big = [dim for dim, (o_p, ss, dd) in enumerate(zip(op, s, d)) if o_p >= max(ss, dd)]
    if big:
        raise ValueError(f"ConvTranspose: each output_padding must be less than its stride or dilation (spec), got "
                         f"output_padding {list(op)}, strides {list(s)}, dilations {list(d)} (dims {big})")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"ConvTranspose: X has {x.shape[1]} channels but W of shape {list(w.shape)} expects "
                         f"{w.shape[0]} (W is (C, M/group, *kernel))")
    if output_shape is None and ap == "NOTSET":
        onnx_pads_to_pairs(pads, n)                                    # validate before use
    pairs = onnx_transpose_pads(x.shape[2:], w.shape[2:], strides=s, dilations=d, auto_pad=ap, pads=pads,
                                output_padding=op, output_shape=output_shape)
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs):
        return _api.convolution_transpose(x, w, b, s, pairs, op, g, d, n_spatial=n, op="ConvTranspose")
    return _window_transpose(x, w, b, s, pairs, op, g, d, n)


def _window_transpose(x, w, b, s, pairs, op, g, d, n):
    """Negative pads (output_shape wider than the full transposed output): compute the full transposed output
    once, then read the window ``[begin, begin + out)`` of it, zeros outside, and add the bias everywhere."""
    full = _api.convolution_transpose(x, w, None, s, 0, 0, g, d, n_spatial=n, op="ConvTranspose")
    widths, slices = [(0, 0), (0, 0)], [slice(None), slice(None)]
    for dim, ((lo, hi), o_p) in enumerate(zip(pairs, op)):
        size = full.shape[2 + dim]
        out = size + o_p - lo - hi
        if out < 1:
            raise ValueError(f"ConvTranspose: output size would be {out} in spatial dim {dim} (full size {size}, "
                             f"output_padding {o_p}, pads {lo}+{hi}); reduce the pads")
        before, after = max(-lo, 0), max(lo + out - size, 0)
        widths.append((before, after))
        start = lo + before
        slices.append(slice(start, start + out))
    y = np.pad(full, widths)[tuple(slices)]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * n)
    return np.ascontiguousarray(y)

"""Weight layouts and data formats: convforge / PyTorch / ONNX ``(O, I/g, *K)`` against TF / Keras ``(*K, I/g, O)``.

=====================  ==========================  ===========================
what                   convforge / PyTorch / ONNX  TensorFlow / Keras
=====================  ==========================  ===========================
convolution            ``(O, I/g, *K)`` (OIHW)     ``(*K, I/g, O)`` (HWIO)
transposed convolution ``(I, O/g, *K)``            ``(*K, O/g, I)``
depthwise (C in, m)    ``(C*m, 1, *K)``, groups=C  ``(*K, C, m)``
=====================  ==========================  ===========================

Example:
    >>> weight_to_tf(np.zeros((8, 3, 5, 7))).shape        # OIHW -> HWIO
    (5, 7, 3, 8)
"""
from __future__ import annotations

import numpy as np

from .. import _canon

__all__ = ["weight_to_tf", "weight_from_tf", "transposed_weight_to_tf", "transposed_weight_from_tf",
           "depthwise_weight_to_tf", "depthwise_weight_from_tf", "channels_first"]


def _weight(w, name, min_ndim=3):
    w = np.asarray(w)
    if w.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dims (two channel axes and >= 1 kernel dim), "
                         f"got shape {w.shape}")
    return w


def weight_to_tf(w):
    """Convolution weight ``(O, I/g, *K)`` (OIHW) -> TF ``(*K, I/g, O)`` (HWIO).

    Args:
        w: convforge / PyTorch / ONNX convolution weight, any number of kernel dims.

    >>> weight_to_tf(np.zeros((8, 3, 5))).shape
    (5, 3, 8)
    """
    w = _weight(w, "weight")
    return np.ascontiguousarray(w.transpose(tuple(range(2, w.ndim)) + (1, 0)))


def weight_from_tf(w):
    """TF convolution filters ``(*K, I/g, O)`` (HWIO) -> ``(O, I/g, *K)`` (OIHW).

    >>> weight_from_tf(np.zeros((5, 7, 3, 8))).shape
    (8, 3, 5, 7)
    """
    w = _weight(w, "filters")
    n = w.ndim - 2
    return np.ascontiguousarray(w.transpose((n + 1, n) + tuple(range(n))))


def transposed_weight_to_tf(w):
    """Transposed-convolution weight ``(I, O/g, *K)`` -> TF ``conv*_transpose`` filters ``(*K, O/g, I)``.

    The same axis permutation as :func:`weight_to_tf` (a transposed convolution is the gradient of the
    convolution whose weight has these two channel axes).

    >>> transposed_weight_to_tf(np.zeros((4, 6, 3, 2))).shape
    (3, 2, 6, 4)
    """
    return weight_to_tf(w)


def transposed_weight_from_tf(w):
    """TF ``conv*_transpose`` filters ``(*K, O/g, I)`` -> ``(I, O/g, *K)``.

    >>> transposed_weight_from_tf(np.zeros((3, 2, 6, 4))).shape
    (4, 6, 3, 2)
    """
    return weight_from_tf(w)


def depthwise_weight_to_tf(w, in_channels: int):
    """Depthwise weight ``(C*m, 1, *K)`` (groups = C) -> TF depthwise filter ``(*K, C, m)``.

    Output channel ``c*m + j`` (PyTorch's grouped order) is TF's ``(c, j)``, so this is a reshape plus a move of
    the channel axis.

    Args:
        w: weight of a convolution with ``groups == in_channels``.
        in_channels: ``C``; ``w.shape[0]`` must be a multiple of it.

    >>> depthwise_weight_to_tf(np.zeros((6, 1, 3, 3)), in_channels=3).shape
    (3, 3, 3, 2)
    """
    w = _weight(w, "depthwise weight")
    if w.shape[1] != 1:
        raise ValueError(f"a depthwise weight has shape (C*m, 1, *kernel), got {w.shape} (second axis must be 1)")
    if not _canon.is_int(in_channels) or in_channels <= 0 or w.shape[0] % in_channels:
        raise ValueError(f"in_channels ({in_channels}) must be a positive divisor of the weight's first axis "
                         f"({w.shape[0]} = C*m) for a depthwise weight of shape {w.shape}")
    n = w.ndim - 2
    k = w.shape[2:]
    out = w.reshape((in_channels, w.shape[0] // in_channels) + k)           # (C, m, *K)
    return np.ascontiguousarray(out.transpose(tuple(range(2, n + 2)) + (0, 1)))


def depthwise_weight_from_tf(w):
    """TF depthwise filter ``(*K, C, m)`` -> ``(C*m, 1, *K)`` for a convolution with ``groups=C``.

    >>> depthwise_weight_from_tf(np.zeros((3, 3, 4, 2))).shape
    (8, 1, 3, 3)
    """
    w = _weight(w, "depthwise filter")
    n = w.ndim - 2
    c, m = w.shape[-2:]
    out = w.transpose((n, n + 1) + tuple(range(n)))                         # (C, m, *K)
    return np.ascontiguousarray(out.reshape((c * m, 1) + w.shape[:n]))


def channels_first(data_format, n: int) -> bool:
    """True for a channels-first ``data_format`` (NCW / NCHW / NCDHW / ``'channels_first'``), False for N...C /
    ``'channels_last'`` / None; a ValueError names the formats valid for ``n`` spatial dims.

    >>> channels_first("NCHW", 2), channels_first("NWC", 1), channels_first(None, 3)
    (True, False, False)
    """
    if data_format is None:
        return False
    fmt = str(data_format)
    if fmt in ("channels_first", "channels_last"):
        return fmt == "channels_first"
    spatial = {1: ("W",), 2: ("HW",), 3: ("DHW",)}.get(n, ())
    names = [f"N{s}C" for s in spatial] + [f"NC{s}" for s in spatial]
    if fmt not in names:
        want = " or ".join(repr(x) for x in names) if names else f"'N...C' / 'NC...' with {n} spatial letters"
        raise ValueError(f"data_format must be {want} (or 'channels_last' / 'channels_first') for {n} spatial "
                         f"dims, got {data_format!r}")
    return fmt.startswith("NC")

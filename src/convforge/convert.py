"""Conversion between convforge (PyTorch conventions), TensorFlow/Keras and ONNX: weights, padding and layers.

Weight layouts (``K`` the spatial kernel dims, 1-, 2- or 3-D or more; ``g`` groups):

=====================  ==========================  ===========================
what                   convforge / PyTorch / ONNX  TensorFlow / Keras
=====================  ==========================  ===========================
convolution            ``(O, I/g, *K)`` (OIHW)     ``(*K, I/g, O)`` (HWIO)
transposed convolution ``(I, O/g, *K)``            ``(*K, O/g, I)``
depthwise (C in, m)    ``(C*m, 1, *K)``, groups=C  ``(*K, C, m)``
=====================  ==========================  ===========================

Padding: convforge takes per-side ``((lo, hi), ...)`` pairs, or ``'same'`` which is TF's SAME / ONNX SAME_UPPER
for every stride.  ``from_tf_padding`` / ``from_onnx_padding`` turn TF and ONNX padding into a convforge padding
argument; ``to_tf_padding`` / ``to_onnx_padding`` go back.  Where a form depends on the input size (ONNX SAME_LOWER
with stride > 1, a Keras ``same`` transposed layer with output_padding, ...) the functions take ``input_size`` and
raise a ValueError naming the missing size otherwise.

Layers: :func:`from_keras` (a Keras layer config + weights), :func:`from_onnx` (an ONNX Conv / ConvTranspose
node + initialisers) build an equivalent ``convforge.nn`` module; :func:`to_onnx` and :func:`to_tf` give the ONNX
attributes and the ``tf.nn`` arguments of a module.

Example:
    >>> import numpy as np
    >>> weight_to_tf(np.zeros((8, 3, 5, 7))).shape        # OIHW -> HWIO
    (5, 7, 3, 8)
    >>> from_tf_padding("SAME", kernel_size=3, strides=2, input_size=(8, 9))
    ((0, 1), (1, 1))
    >>> from_onnx_padding("SAME_LOWER", kernel_shape=(4,), strides=(1,))
    ((2, 1),)
"""
from __future__ import annotations

import importlib
from typing import Tuple

import numpy as np

from . import _canon, shapes

Pairs = Tuple[Tuple[int, int], ...]

__all__ = [
    "weight_to_tf", "weight_from_tf", "transposed_weight_to_tf", "transposed_weight_from_tf",
    "depthwise_weight_to_tf", "depthwise_weight_from_tf",
    "from_tf_padding", "to_tf_padding", "from_onnx_padding", "to_onnx_padding",
    "tf_transpose_padding", "onnx_transpose_pads",
    "SeparableConv", "from_keras", "from_onnx", "to_onnx", "to_tf",
]


# ---------------------------------------------------------------------------------------------------------------
# weight layouts
# ---------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------------------------------
def _spatial(value, n, name, minimum=1):
    return _canon.ntuple(1 if value is None else value, n, name, minimum=minimum)


def _n_from(*candidates):
    for c in candidates:
        if c is not None and not _canon.is_int(c):
            return len(c)
    raise ValueError("cannot tell the number of spatial dimensions: give kernel_size (or input_size) as a sequence")


def _pairs_from_explicit(padding, n, data_format=None) -> Pairs:
    """TF explicit padding: ``n`` pairs, or ``n + 2`` pairs in data_format order with zero batch/channel pairs."""
    items = [tuple(p) if isinstance(p, (list, tuple)) else p for p in padding]
    if not all(isinstance(p, tuple) and len(p) == 2 and all(_canon.is_int(v) for v in p) for p in items):
        raise ValueError(f"explicit padding must be a list of [before, after] int pairs, got {padding!r}")
    if len(items) == n + 2:
        channels_first = _channels_first(data_format, n)
        extra = (0, 1) if channels_first else (0, n + 1)
        if any(items[i] != (0, 0) for i in extra):
            raise ValueError(f"explicit padding of the batch and channel dimensions must be [0, 0], got {padding!r} "
                             f"(data_format {data_format or 'channels last'})")
        items = items[2:] if channels_first else items[1:n + 1]
    elif len(items) != n:
        raise ValueError(f"explicit padding must have {n + 2} pairs (one per dimension, in data_format order) or "
                         f"{n} (one per spatial dimension), got {len(items)}: {padding!r}")
    if any(v < 0 for p in items for v in p):
        raise ValueError(f"explicit padding must be non-negative, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in items)


def _channels_first(data_format, n) -> bool:
    """True for NCW / NCHW / NCDHW / channels_first; False for N..C / channels_last / None."""
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


def from_tf_padding(padding, *, kernel_size, strides=1, dilations=1, input_size=None, data_format=None):
    """TF / Keras padding -> a convforge padding argument for a convolution.

    Args:
        padding: ``'SAME'``, ``'VALID'`` (any case; Keras ``'causal'`` too, 1-D) or explicit pairs (``n`` pairs,
            or ``n + 2`` in ``data_format`` order).
        kernel_size, strides, dilations: int or one per spatial dim.
        input_size: spatial input sizes; with them SAME becomes per-side pairs for exactly that size.
        data_format: only used to read ``n + 2`` explicit pairs.

    Returns:
        ``((lo, hi), ...)``, or ``'same'`` for SAME with stride > 1 and no ``input_size`` (convforge's ``'same'``
        is TF's SAME for every input size).  With scalar ``kernel_size``, ``strides`` and ``dilations`` and no
        ``input_size`` the number of dimensions is unknown: ``'same'`` / ``'valid'``, right for any number.

    >>> from_tf_padding("SAME", kernel_size=(7,), strides=2, input_size=(224,))
    ((2, 3),)
    >>> from_tf_padding("SAME", kernel_size=(7, 7), strides=2)
    'same'
    >>> from_tf_padding("VALID", kernel_size=7)     # all scalars: a string that holds for any number of dims
    'valid'
    """
    if isinstance(padding, str) and padding.upper() == "CAUSAL":
        n = 1
    elif isinstance(padding, str) and all(_canon.is_int(v) for v in (kernel_size, strides, dilations)) \
            and input_size is None:
        return _scalar_tf_padding(padding)
    else:
        n = _n_from(kernel_size, input_size, None if isinstance(padding, str) else padding)
    k = _spatial(kernel_size, n, "kernel_size")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    if not isinstance(padding, str):
        return _pairs_from_explicit(padding, n, data_format)
    mode = padding.upper()
    if mode == "VALID":
        return ((0, 0),) * n
    if mode == "CAUSAL":
        if n != 1:
            raise ValueError(f"'causal' padding is 1-D only (Keras Conv1D), got {n} spatial dims")
        return ((d[0] * (k[0] - 1), 0),)
    if mode != "SAME":
        raise ValueError(f"TF padding must be 'SAME', 'VALID' or a list of explicit pairs, got {padding!r}")
    if input_size is not None:
        size = _spatial(input_size, n, "input_size", minimum=0)
        return shapes.same_paddings(size, k, s, d, "SAME_UPPER")
    if all(v == 1 for v in s):
        return shapes.same_paddings((1,) * n, k, s, d, "SAME_UPPER")   # stride 1: total d*(k-1) for any size
    return "same"


def _scalar_tf_padding(padding: str) -> str:
    mode = padding.upper()
    if mode not in ("SAME", "VALID"):
        raise ValueError(f"TF padding must be 'SAME', 'VALID' or a list of explicit pairs, got {padding!r}")
    return mode.lower()


def to_tf_padding(padding, *, kernel_size, strides=1, dilations=1, input_size=None, data_format=None,
                  strings_only=False):
    """A convforge padding argument -> TF padding: ``'SAME'``, ``'VALID'`` or explicit pairs.

    Args:
        padding: ``'same'``, ``'valid'``, an int, per-dim ints or per-dim ``(lo, hi)`` pairs.
        kernel_size, strides, dilations: int or per spatial dim.
        input_size: spatial sizes; with them per-side pairs equal to TF's SAME split come back as ``'SAME'``.
        data_format: explicit pairs come back as ``n + 2`` pairs in this layout (None: ``n`` spatial pairs).
        strings_only: raise ValueError when only explicit pairs express the padding (Keras layers,
            ``tf.nn.conv1d_transpose`` / ``conv3d_transpose`` accept only 'SAME' / 'VALID').

    >>> to_tf_padding(((0, 1), (1, 1)), kernel_size=3, strides=2, input_size=(8, 9))
    'SAME'
    >>> to_tf_padding(((0, 1),), kernel_size=3, data_format="NWC")
    [[0, 0], [0, 1], [0, 0]]
    """
    n = _n_from(kernel_size, input_size, None if isinstance(padding, str) or _canon.is_int(padding) else padding)
    k = _spatial(kernel_size, n, "kernel_size")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    spec = _canon.canonical_padding(padding, n)
    if spec == "same":
        return "SAME"
    if all(p == (0, 0) for p in spec):
        return "VALID"
    if input_size is not None:
        size = _spatial(input_size, n, "input_size", minimum=0)
        if spec == shapes.same_paddings(size, k, s, d, "SAME_UPPER"):
            return "SAME"
    elif all(v == 1 for v in s) and spec == shapes.same_paddings((1,) * n, k, s, d, "SAME_UPPER"):
        return "SAME"
    if strings_only:
        hint = "" if input_size is not None else " (pass input_size= if it is TF's SAME split for one input size)"
        raise ValueError(f"padding {spec} is neither TF's 'SAME' nor 'VALID' for kernel {k}, strides {s}, "
                         f"dilations {d}{hint}; this TF/Keras operation accepts only 'SAME' or 'VALID'")
    pairs = [[lo, hi] for lo, hi in spec]
    if data_format is None:
        return pairs
    return [[0, 0], [0, 0]] + pairs if _channels_first(data_format, n) else [[0, 0]] + pairs + [[0, 0]]


_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _check_auto_pad(auto_pad):
    ap = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if ap not in _AUTO_PADS:
        raise ValueError(f"auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    return ap


def _onnx_pads_to_pairs(pads, n, name="pads", allow_negative=False) -> Pairs:
    if pads is None:
        return ((0, 0),) * n
    pads = list(pads)
    if len(pads) != 2 * n or not all(_canon.is_int(v) for v in pads):
        raise ValueError(f"{name} must have 2*{n} = {2 * n} ints [x1_begin, x2_begin, ..., x1_end, x2_end, ...] "
                         f"for {n} spatial dims, got {pads!r}")
    if not allow_negative and any(v < 0 for v in pads):
        raise ValueError(f"{name} must be non-negative, got {pads!r}")
    return tuple((int(pads[i]), int(pads[i + n])) for i in range(n))


def from_onnx_padding(auto_pad="NOTSET", pads=None, *, kernel_shape, strides=None, dilations=None,
                      input_size=None):
    """ONNX Conv ``auto_pad`` / ``pads`` -> a convforge padding argument.

    Args:
        auto_pad: NOTSET (use ``pads``), VALID, SAME_UPPER or SAME_LOWER.
        pads: ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` (NOTSET only).
        kernel_shape, strides, dilations: per spatial dim (None: ones).
        input_size: spatial sizes; needed for SAME_LOWER with a stride > 1, whose split depends on the size.

    Returns:
        ``((lo, hi), ...)``, or ``'same'`` for SAME_UPPER with stride > 1 and no ``input_size``.

    >>> from_onnx_padding(pads=[0, 1, 2, 3], kernel_shape=(3, 3))
    ((0, 2), (1, 3))
    >>> from_onnx_padding("SAME_LOWER", kernel_shape=(3,), strides=(2,), input_size=(8,))
    ((1, 0),)
    """
    ap = _check_auto_pad(auto_pad)
    n = _n_from(kernel_shape, input_size)
    k = _spatial(kernel_shape, n, "kernel_shape")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    if ap != "NOTSET" and pads is not None and any(v != 0 for v in pads):
        raise ValueError(f"pads ({list(pads)}) cannot be used together with auto_pad={ap!r} (ONNX spec); "
                         f"use auto_pad='NOTSET' with pads, or drop pads")
    if ap == "NOTSET":
        return _onnx_pads_to_pairs(pads, n)
    if ap == "VALID":
        return ((0, 0),) * n
    if input_size is not None:
        return shapes.same_paddings(_spatial(input_size, n, "input_size", minimum=0), k, s, d, ap)
    if all(v == 1 for v in s):
        return shapes.same_paddings((1,) * n, k, s, d, ap)
    if ap == "SAME_UPPER":
        return "same"
    raise ValueError(f"auto_pad='SAME_LOWER' with strides {s} depends on the input size (convforge's 'same' is "
                     f"SAME_UPPER); pass input_size= to get the per-side padding for one input size")


def to_onnx_padding(padding, *, kernel_shape, strides=None, dilations=None, input_size=None):
    """A convforge padding argument -> ONNX Conv attributes ``{'auto_pad': ..., 'pads': [...]}``.

    ``'same'`` with a stride > 1 becomes ``auto_pad='SAME_UPPER'`` (exact for every size); everything else,
    ``'same'`` with stride 1 included, explicit ``pads`` in ONNX order ``[x1_begin, x2_begin, ..., x1_end, ...]``.

    >>> to_onnx_padding(((0, 2), (1, 3)), kernel_shape=(3, 3))
    {'auto_pad': 'NOTSET', 'pads': [0, 1, 2, 3]}
    >>> to_onnx_padding("same", kernel_shape=(3, 3), strides=(2, 2))
    {'auto_pad': 'SAME_UPPER'}
    >>> to_onnx_padding("same", kernel_shape=(4,), strides=(1,))
    {'auto_pad': 'NOTSET', 'pads': [1, 2]}
    """
    n = _n_from(kernel_shape, input_size)
    spec = _canon.canonical_padding(padding, n)
    if spec == "same" and all(v == 1 for v in _spatial(strides, n, "strides")):
        # stride 1: a fixed split; explicit pads also run where SAME_* is refused (onnxruntime with dilations)
        spec = shapes.same_paddings((1,) * n, _spatial(kernel_shape, n, "kernel_shape"), 1,
                                    _spatial(dilations, n, "dilations"))
    if spec == "same":
        return {"auto_pad": "SAME_UPPER"}
    return {"auto_pad": "NOTSET", "pads": [lo for lo, _ in spec] + [hi for _, hi in spec]}


def tf_transpose_padding(padding, *, input_size, output_size, kernel_size, strides=1, dilations=1,
                         data_format=None) -> Tuple[Pairs, Tuple[int, ...]]:
    """TF ``conv*_transpose`` padding + ``output_shape`` -> convforge ``(padding pairs, output_padding)``.

    TF's transposed convolution is the gradient of the convolution of an ``output_size`` input with the same
    padding, so the pairs are that forward padding and ``output_padding`` makes up the rest; TF requires the
    forward convolution of ``output_size`` to give back ``input_size``, and so does this function.

    >>> tf_transpose_padding("SAME", input_size=(4,), output_size=(8,), kernel_size=3, strides=2)
    (((0, 1),), (0,))
    """
    n = len(input_size)
    k = _spatial(kernel_size, n, "kernel_size")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    size_out = _spatial(output_size, n, "output_shape", minimum=0)
    pairs = from_tf_padding(padding, kernel_size=k, strides=s, dilations=d, input_size=size_out,
                            data_format=data_format)
    out_pad = []
    for dim, (i, o, kk, ss, dd, (lo, hi)) in enumerate(zip(input_size, size_out, k, s, d, pairs)):
        span = dd * (kk - 1) + 1
        forward = (o + lo + hi - span) // ss + 1 if o + lo + hi >= span else 0
        if forward != i:
            smallest = (i - 1) * ss - lo - hi + span if not isinstance(padding, str) else None
            hint = "" if smallest is None else f"; valid sizes are {smallest} to {smallest + ss - 1}"
            raise ValueError(
                f"output_shape {tuple(size_out)} is inconsistent with the input {tuple(input_size)} in dimension "
                f"{dim}: a {padding if isinstance(padding, str) else 'explicitly padded'} convolution of size "
                f"{o} (kernel {kk}, stride {ss}, dilation {dd}) gives {forward}, not {i}{hint}")
        out_pad.append(o - ((i - 1) * ss - lo - hi + span))
    return pairs, tuple(out_pad)


def onnx_transpose_pads(input_size, kernel_shape, *, strides=None, dilations=None, auto_pad="NOTSET", pads=None,
                        output_padding=None, output_shape=None) -> Pairs:
    """ONNX ConvTranspose attributes -> per-side ``(begin, end)`` pads, exactly as the opset-22 spec.

    - ``output_shape`` given: ``total = s*(i-1) + output_padding + (k-1)*d + 1 - output_shape``; SAME_UPPER puts
      ``total // 2`` at the beginning, every other auto_pad ``total - total // 2`` (``pads`` are ignored).
    - SAME_UPPER / SAME_LOWER without output_shape: the same with ``output_shape = i * s``; the odd extra goes to
      the end (UPPER) or the beginning (LOWER).
    - NOTSET: ``pads``; VALID: zeros.

    Pads may come out negative (the output is then wider than the full transposed output and the extra cells are
    zeros plus bias); ``//`` is Python's floor division, as in the onnx reference implementation.

    >>> onnx_transpose_pads((3,), (3,), strides=(2,), output_shape=(7,), auto_pad="SAME_UPPER")
    ((0, 0),)
    >>> onnx_transpose_pads((3,), (3,), strides=(2,), auto_pad="SAME_LOWER")
    ((1, 0),)
    """
    ap = _check_auto_pad(auto_pad)
    n = len(input_size)
    k = _spatial(kernel_shape, n, "kernel_shape")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    op = _spatial(output_padding, n, "output_padding", minimum=0) if output_padding is not None else (0,) * n
    if output_shape is not None:
        target = list(output_shape)
        if len(target) == n + 2:
            target = target[2:]
        target = _spatial(target, n, "output_shape", minimum=1)
    elif ap in ("SAME_UPPER", "SAME_LOWER"):
        target = tuple(i * ss for i, ss in zip(input_size, s))
    elif ap == "VALID":
        return ((0, 0),) * n
    else:
        return _onnx_pads_to_pairs(pads, n)
    out = []
    for i, kk, ss, dd, o_p, t in zip(input_size, k, s, d, op, target):
        total = ss * (i - 1) + o_p + (kk - 1) * dd + 1 - t
        half = total // 2
        out.append((half, total - half) if ap == "SAME_UPPER" else (total - half, half))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------------------------
def _nn():
    return importlib.import_module("convforge.nn")


def _module_base():
    return importlib.import_module("convforge.nn.module").Module


class SeparableConv(_module_base()):
    """Depthwise convolution followed by a 1x1 pointwise convolution (Keras ``SeparableConv*D``).

    Args:
        depthwise: a ``Conv*d`` with ``groups == in_channels`` and no bias (Keras puts the bias on the pointwise).
        pointwise: a ``Conv*d`` with kernel size 1.

    Shape:
        as the depthwise convolution, with ``pointwise.out_channels`` channels.

    Example:
        >>> import convforge.nn as nn
        >>> m = SeparableConv(nn.Conv2d(3, 6, 3, groups=3, bias=False), nn.Conv2d(6, 4, 1))
        >>> m(np.zeros((1, 3, 8, 8), np.float32)).shape
        (1, 4, 6, 6)
    """

    def __init__(self, depthwise, pointwise):
        super().__init__()
        if depthwise.out_channels != pointwise.in_channels:
            raise ValueError(f"the pointwise convolution takes {pointwise.in_channels} channels but the depthwise "
                             f"one gives {depthwise.out_channels}")
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, input):
        return self.pointwise(self.depthwise(input))


_KERAS_CONV = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}
_KERAS_TRANSPOSE = {"Conv1DTranspose": 1, "Conv2DTranspose": 2, "Conv3DTranspose": 3}
_KERAS_DEPTHWISE = {"DepthwiseConv1D": 1, "DepthwiseConv2D": 2}
_KERAS_SEPARABLE = {"SeparableConv1D": 1, "SeparableConv2D": 2}


def _keras_parts(config, class_name):
    if "class_name" in config and "config" in config:
        return config["class_name"], config["config"]
    if class_name is None:
        raise ValueError("give class_name= (e.g. 'Conv2D') or a serialized layer {'class_name': ..., 'config': ...}")
    return class_name, config


def _module_dtype(weights):
    dt = np.asarray(weights[0]).dtype
    return dt if dt.kind in "fc" else np.dtype(np.float32)


def _load(module, weight, bias):
    module.weight[...] = weight
    if module.bias is not None:
        module.bias[...] = bias
    return module


def _keras_padding(cfg, n, transposed=False):
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal") or (padding == "causal" and (n != 1 or transposed)):
        raise ValueError(f"Keras padding must be 'valid' or 'same' ('causal' for Conv1D), got {cfg.get('padding')!r}")
    return padding


def from_keras(config, weights, *, class_name=None):
    """A Keras convolution layer (config + weights) -> an equivalent channels-first ``convforge.nn`` module.

    Supported: Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D, SeparableConv1D/2D (the latter becomes a
    :class:`SeparableConv`).  The module takes ``(N, C, *spatial)`` input whatever the layer's ``data_format``:
    transpose channels-last data with ``x.transpose(0, n+1, 1, ..., n)``.  Keras ``'same'`` with stride > 1 maps
    to convforge's ``'same'`` (TF's SAME split for every input size); transposed layers map to fixed padding plus
    output_padding following Keras's output-size rule (:func:`convforge.shapes.keras_conv_transpose_output_size`).

    Args:
        config: ``layer.get_config()`` (then give ``class_name``) or ``keras.layers.serialize(layer)``.
        weights: ``layer.get_weights()``: kernel(s) then bias when ``use_bias``.
        class_name: the layer class, e.g. ``'Conv2D'``.

    Example:
        >>> cfg = {"filters": 4, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same", "use_bias": False}
        >>> m = from_keras(cfg, [np.ones((3, 3, 2, 4), np.float32)], class_name="Conv2D")
        >>> m, m(np.ones((1, 2, 7, 8), np.float32)).shape
        (Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=same, bias=False), (1, 4, 4, 4))
    """
    nn = _nn()
    name, cfg = _keras_parts(config, class_name)
    weights = [np.asarray(w) for w in weights]
    use_bias = bool(cfg.get("use_bias", True))
    expected = {**{k: 1 for k in _KERAS_CONV}, **{k: 1 for k in _KERAS_TRANSPOSE},
                **{k: 1 for k in _KERAS_DEPTHWISE}, **{k: 2 for k in _KERAS_SEPARABLE}}
    if name not in expected:
        raise ValueError(f"unsupported Keras layer {name!r}; supported: {sorted(expected)}")
    if len(weights) != expected[name] + use_bias:
        raise ValueError(f"{name} with use_bias={use_bias} has {expected[name] + use_bias} weight arrays, got "
                         f"{len(weights)} (shapes {[w.shape for w in weights]})")
    n = {**_KERAS_CONV, **_KERAS_TRANSPOSE, **_KERAS_DEPTHWISE, **_KERAS_SEPARABLE}[name]
    kernel = weights[0]
    if kernel.ndim != n + 2:
        raise ValueError(f"{name}: kernel must be {n + 2}-D, got shape {kernel.shape}")
    k = tuple(kernel.shape[:n])
    s = _spatial(cfg.get("strides", 1), n, "strides")
    d = _spatial(cfg.get("dilation_rate", 1), n, "dilation_rate")
    bias = weights[-1] if use_bias else None
    dtype = _module_dtype(weights)
    conv_cls = getattr(nn, f"Conv{n}d")
    padding = _keras_padding(cfg, n, transposed=name in _KERAS_TRANSPOSE)
    pad_arg = from_tf_padding(padding, kernel_size=k, strides=s, dilations=d)   # stride > 1 'same': size-free

    if name in _KERAS_CONV:
        groups = int(cfg.get("groups", 1))
        in_ch = kernel.shape[n] * groups
        m = conv_cls(in_ch, kernel.shape[n + 1], k, s, pad_arg, d, groups, use_bias, dtype=dtype)
        return _load(m, weight_from_tf(kernel), bias)
    if name in _KERAS_DEPTHWISE or name in _KERAS_SEPARABLE:
        c, mult = kernel.shape[n:]
        dw = conv_cls(c, c * mult, k, s, pad_arg, d, c, name in _KERAS_DEPTHWISE and use_bias, dtype=dtype)
        _load(dw, depthwise_weight_from_tf(kernel), bias)
        if name in _KERAS_DEPTHWISE:
            return dw
        pw_kernel = weights[1]
        if pw_kernel.shape[:n] != (1,) * n or pw_kernel.shape[n] != c * mult:
            raise ValueError(f"{name}: pointwise kernel must have shape {(1,) * n + (c * mult, 'filters')}, got "
                             f"{pw_kernel.shape}")
        pw = conv_cls(c * mult, pw_kernel.shape[-1], 1, bias=use_bias, dtype=dtype)
        return SeparableConv(dw, _load(pw, weight_from_tf(pw_kernel), bias))
    # transposed: Keras calls tf.nn.conv_transpose with output_shape from its own rule; that gives fixed
    # padding and output_padding for every input size (the algebra is in docs/PORTING.md)
    op_cfg = cfg.get("output_padding")
    op = None if op_cfg is None else _spatial(op_cfg, n, "output_padding", minimum=0)
    pairs, out_pad = [], []
    for dim in range(n):
        i = 2 * max(s[dim], 1) + 3   # any size > 1 gives the same answer; this one is checked by the fixtures
        o = shapes.keras_conv_transpose_output_size(i, k[dim], s[dim], padding, None if op is None else op[dim],
                                                    d[dim])
        (p,), (q,) = tf_transpose_padding(padding.upper(), input_size=(i,), output_size=(o,), kernel_size=k[dim],
                                          strides=s[dim], dilations=d[dim])
        pairs.append(p)
        out_pad.append(q)
    cls = getattr(nn, f"ConvTranspose{n}d")
    in_ch, out_ch = kernel.shape[n + 1], kernel.shape[n]
    m = cls(in_ch, out_ch, k, s, tuple(pairs), tuple(out_pad), 1, use_bias, d, dtype=dtype)
    return _load(m, transposed_weight_from_tf(kernel), bias)


def _onnx_attributes(node):
    """NodeProto or dict -> (op_type, attribute dict, input names)."""
    if isinstance(node, dict):
        attrs = dict(node.get("attributes", node))
        op_type = attrs.pop("op_type", node.get("op_type"))
        attrs.pop("attributes", None)
        return op_type, attrs, None
    helper = importlib.import_module("onnx.helper")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    return node.op_type, attrs, list(node.input)


def _as_array(value):
    if isinstance(value, np.ndarray) or value is None:
        return value
    if type(value).__name__ == "TensorProto":
        return importlib.import_module("onnx.numpy_helper").to_array(value)
    return np.asarray(value)


def from_onnx(node, initializers, *, op_type=None, input_shape=None):
    """An ONNX Conv / ConvTranspose node + its initialisers -> an equivalent ``convforge.nn`` module.

    Args:
        node: an ``onnx.NodeProto``, or a dict of attributes (with ``'op_type'`` or ``op_type=``).
        initializers: for a NodeProto a mapping from input names to arrays / TensorProtos (e.g.
            ``{t.name: t for t in graph.initializer}``); for a dict, ``{'W': ..., 'B': ...}`` or ``[W, B]``.
        op_type: 'Conv' or 'ConvTranspose' when ``node`` is a dict without it.
        input_shape: the input's spatial (or full) shape; needed only where the padding depends on it
            (Conv SAME_LOWER with stride > 1, ConvTranspose output_shape).

    Example:
        >>> m = from_onnx({"op_type": "Conv", "pads": [0, 1, 1, 2], "strides": [2, 1]}, [np.ones((4, 3, 3, 3))])
        >>> m
        Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 1), padding=((0, 1), (1, 2)), bias=False)
    """
    nn = _nn()
    kind, attrs, names = _onnx_attributes(node)
    kind = kind or op_type
    if kind not in ("Conv", "ConvTranspose"):
        raise ValueError(f"op_type must be 'Conv' or 'ConvTranspose', got {kind!r}")
    if names is not None:
        w = _as_array(initializers[names[1]])
        b = _as_array(initializers[names[2]]) if len(names) > 2 and names[2] else None
    elif isinstance(initializers, dict):
        w, b = _as_array(initializers["W"]), _as_array(initializers.get("B"))
    else:
        items = list(initializers)
        w, b = _as_array(items[0]), _as_array(items[1]) if len(items) > 1 else None
    unknown = set(attrs) - {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "output_padding",
                            "output_shape"}
    if unknown or (kind == "Conv" and {"output_padding", "output_shape"} & set(attrs)):
        raise ValueError(f"unknown {kind} attributes {sorted(unknown or {'output_padding', 'output_shape'})}")
    n = w.ndim - 2
    k = tuple(w.shape[2:])
    if attrs.get("kernel_shape") is not None and tuple(attrs["kernel_shape"]) != k:
        raise ValueError(f"kernel_shape {tuple(attrs['kernel_shape'])} does not match the weight's kernel {k}")
    s = _spatial(attrs.get("strides"), n, "strides")
    d = _spatial(attrs.get("dilations"), n, "dilations")
    g = int(attrs.get("group", 1))
    ap = _check_auto_pad(attrs.get("auto_pad", "NOTSET"))
    spatial_in = None if input_shape is None else tuple(input_shape)[-n:]
    dtype = w.dtype if w.dtype.kind in "fc" else np.dtype(np.float32)
    if kind == "Conv":
        pad = from_onnx_padding(ap, attrs.get("pads"), kernel_shape=k, strides=s, dilations=d, input_size=spatial_in)
        m = getattr(nn, f"Conv{n}d")(w.shape[1] * g, w.shape[0], k, s, pad, d, g, b is not None, dtype=dtype)
        return _load(m, w, b)
    op = _spatial(attrs.get("output_padding"), n, "output_padding", minimum=0) \
        if attrs.get("output_padding") is not None else (0,) * n
    needs_size = attrs.get("output_shape") is not None
    if needs_size and spatial_in is None:
        raise ValueError("ConvTranspose with output_shape: the padding depends on the input size "
                         "(total = s*(i-1) + output_padding + (k-1)*d + 1 - output_shape); pass input_shape=")
    size_for = spatial_in if spatial_in is not None else (1,) * n   # SAME_*/pads: independent of the size
    pairs = onnx_transpose_pads(size_for, k, strides=s, dilations=d, auto_pad=ap, pads=attrs.get("pads"),
                                output_padding=op, output_shape=attrs.get("output_shape"))
    # fold negative end padding into output_padding (both add cells at the end)
    pairs2, op2 = [], []
    for (lo, hi), o_p in zip(pairs, op):
        if hi < 0:
            lo, hi, o_p = lo, 0, o_p - hi
        pairs2.append((lo, hi))
        op2.append(o_p)
    bad = [dim for dim, ((lo, hi), o_p, ss, dd) in enumerate(zip(pairs2, op2, s, d)) if lo < 0 or o_p >= max(ss, dd)]
    if bad:
        raise ValueError(f"ConvTranspose pads {pairs} with output_padding {op} (strides {s}, dilations {d}) are not "
                         f"expressible as a convforge module (negative begin padding or output_padding >= "
                         f"max(stride, dilation) in dims {bad}); use convforge.onnx.conv_transpose instead")
    m = getattr(nn, f"ConvTranspose{n}d")(w.shape[0], w.shape[1] * g, k, s, tuple(pairs2), tuple(op2), g,
                                          b is not None, d, dtype=dtype)
    return _load(m, w, b)


def _module_kind(module):
    nn = _nn()
    conv_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    tr_types = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    if isinstance(module, conv_types):
        kind = "Conv"
    elif isinstance(module, tr_types):
        kind = "ConvTranspose"
    else:
        raise TypeError(f"expected a convforge.nn Conv*d or ConvTranspose*d module, got {type(module).__name__}")
    if module.padding_mode != "zeros":
        raise ValueError(f"padding_mode={module.padding_mode!r} has no ONNX Conv / tf.nn equivalent; pad first "
                         f"(ONNX Pad mode='reflect'/'edge'/'wrap', tf.pad) and use a module with padding=0")
    return kind


def _padding_arg(module):
    return module._padding_spec


def to_onnx(module):
    """A convforge Conv / ConvTranspose module -> ``{'op_type', 'attributes', 'W', 'B'}`` for an ONNX node.

    ``convforge.onnx.conv(x, r['W'], r['B'], **r['attributes'])`` (or ``conv_transpose``) reproduces the module;
    ``onnx.helper.make_node(r['op_type'], ['X', 'W', 'B'], ['Y'], **r['attributes'])`` builds the node.

    Example:
        >>> import convforge.nn as nn
        >>> to_onnx(nn.Conv2d(3, 4, 3, stride=2, padding="same"))["attributes"]["auto_pad"]
        'SAME_UPPER'
    """
    kind = _module_kind(module)
    n = module._n
    attrs = {"kernel_shape": list(module.kernel_size), "strides": list(module.stride),
             "dilations": list(module.dilation), "group": module.groups}
    attrs.update(to_onnx_padding(_padding_arg(module), kernel_shape=module.kernel_size, strides=module.stride,
                                 dilations=module.dilation))
    if kind == "ConvTranspose":
        attrs["output_padding"] = list(module.output_padding)
    if attrs.get("auto_pad") == "NOTSET" and n:
        attrs.pop("auto_pad")
    return {"op_type": kind, "attributes": attrs, "W": np.asarray(module.weight),
            "B": None if module.bias is None else np.asarray(module.bias)}


def to_tf(module, *, input_shape=None, data_format="channels_last"):
    """A convforge Conv / ConvTranspose module -> arguments of ``tf.nn.convolution`` / ``tf.nn.conv_transpose``.

    Returns a dict with ``filters`` (TF layout), ``strides``, ``padding``, ``dilations``, ``data_format`` (and
    ``output_shape`` for transposed modules) plus ``bias`` (None without one; add it after the TF call).

    Args:
        module: a ``convforge.nn`` ``Conv*d`` / ``ConvTranspose*d`` (zeros padding mode).
        input_shape: the input's spatial (or full channels-first) shape; required for transposed modules
            (TF needs ``output_shape``), optional otherwise (lets per-side pairs become 'SAME').
        data_format: 'channels_last' (``N...C``) or 'channels_first' (``NC...``).

    Example:
        >>> import convforge.nn as nn
        >>> a = to_tf(nn.Conv2d(3, 4, 3, stride=2, padding="same"))
        >>> a["filters"].shape, a["padding"], a["data_format"]
        ((3, 3, 3, 4), 'SAME', 'NHWC')
    """
    kind = _module_kind(module)
    n = module._n
    cf = data_format == "channels_first"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    fmt = {1: "W", 2: "HW", 3: "DHW"}.get(n)
    if fmt is None:
        raise ValueError(f"tf.nn has no {n}-D convolution")
    fmt = "NC" + fmt if cf else "N" + fmt + "C"
    spatial = None if input_shape is None else tuple(input_shape)[-n:]
    out = {"strides": list(module.stride), "dilations": list(module.dilation), "data_format": fmt,
           "bias": None if module.bias is None else np.asarray(module.bias)}
    if kind == "Conv":
        out["filters"] = weight_to_tf(module.weight)
        out["padding"] = to_tf_padding(_padding_arg(module), kernel_size=module.kernel_size, strides=module.stride,
                                       dilations=module.dilation, input_size=spatial, data_format=fmt)
        return out
    big = [dim for dim, (o_p, ss) in enumerate(zip(module.output_padding, module.stride)) if o_p >= ss]
    if big:
        raise ValueError(f"output_padding {module.output_padding} >= stride {module.stride} in dims {big} is not "
                         f"expressible in TF (its output_shape must convolve back to the input size)")
    if module.groups != 1:
        raise ValueError(f"tf.nn.conv_transpose has no groups; this module has groups={module.groups}")
    if spatial is None:
        raise ValueError("tf.nn.conv_transpose needs output_shape, which depends on the input size: pass "
                         "input_shape= (spatial sizes or the full channels-first shape)")
    size_out = shapes.conv_transpose_output_shape(spatial, module.kernel_size, module.stride,
                                                  list(module._padding_spec), module.dilation,
                                                  module.output_padding)
    # TF's padding is the forward padding for an input of size_out; output_padding is then implied
    out["filters"] = transposed_weight_to_tf(module.weight)
    out["padding"] = to_tf_padding(module._padding_spec, kernel_size=module.kernel_size, strides=module.stride,
                                   dilations=module.dilation, input_size=size_out, data_format=fmt)
    batch = tuple(input_shape)[0] if input_shape is not None and len(tuple(input_shape)) == n + 2 else None
    full = (module.out_channels,) + size_out if cf else size_out + (module.out_channels,)
    out["output_shape"] = list(((batch,) if batch is not None else ()) + full) if batch is not None \
        else list(size_out)
    return out

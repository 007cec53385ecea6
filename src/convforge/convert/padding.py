"""Padding between convforge, TF / Keras and ONNX.

convforge takes per-side ``((lo, hi), ...)`` pairs, or ``'same'`` which is TF's SAME / ONNX SAME_UPPER for every
stride.  ``from_tf_padding`` / ``from_onnx_padding`` turn TF and ONNX padding into a convforge padding argument;
``to_tf_padding`` / ``to_onnx_padding`` go back; ``tf_transpose_padding`` / ``onnx_transpose_pads`` read the
transposed forms.  Where a form depends on the input size (ONNX SAME_LOWER with stride > 1, a Keras ``same``
transposed layer with output_padding, ...) the functions take ``input_size`` and raise a ValueError naming the
missing size otherwise.  Every size comes from :mod:`convforge.shapes`.

Example:
    >>> from_tf_padding("SAME", kernel_size=3, strides=2, input_size=(8, 9))
    ((0, 1), (1, 1))
    >>> from_onnx_padding("SAME_LOWER", kernel_shape=(4,), strides=(1,))
    ((2, 1),)
"""
from __future__ import annotations

from typing import Tuple

from .. import _canon, shapes
from .layouts import channels_first

Pairs = Tuple[Tuple[int, int], ...]

__all__ = ["from_tf_padding", "to_tf_padding", "from_onnx_padding", "to_onnx_padding", "tf_transpose_padding",
           "onnx_transpose_pads", "check_auto_pad", "onnx_pads_to_pairs"]


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
        first = channels_first(data_format, n)
        extra = (0, 1) if first else (0, n + 1)
        if any(items[i] != (0, 0) for i in extra):
            raise ValueError(f"explicit padding of the batch and channel dimensions must be [0, 0], got {padding!r} "
                             f"(data_format {data_format or 'channels last'})")
        items = items[2:] if first else items[1:n + 1]
    elif len(items) != n:
        raise ValueError(f"explicit padding must have {n + 2} pairs (one per dimension, in data_format order) or "
                         f"{n} (one per spatial dimension), got {len(items)}: {padding!r}")
    if any(v < 0 for p in items for v in p):
        raise ValueError(f"explicit padding must be non-negative, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in items)


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
    return [[0, 0], [0, 0]] + pairs if channels_first(data_format, n) else [[0, 0]] + pairs + [[0, 0]]


_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def check_auto_pad(auto_pad):
    """An ONNX ``auto_pad`` (str or bytes) -> its str, or a ValueError listing the valid ones."""
    ap = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if ap not in _AUTO_PADS:
        raise ValueError(f"auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    return ap


def onnx_pads_to_pairs(pads, n, name="pads", allow_negative=False) -> Pairs:
    """ONNX ``pads`` ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` -> per-dim ``(begin, end)`` pairs (None:
    zeros), with a ValueError naming the expected length."""
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
    ap = check_auto_pad(auto_pad)
    n = _n_from(kernel_shape, input_size)
    k = _spatial(kernel_shape, n, "kernel_shape")
    s = _spatial(strides, n, "strides")
    d = _spatial(dilations, n, "dilations")
    if ap != "NOTSET" and pads is not None and any(v != 0 for v in pads):
        raise ValueError(f"pads ({list(pads)}) cannot be used together with auto_pad={ap!r} (ONNX spec); "
                         f"use auto_pad='NOTSET' with pads, or drop pads")
    if ap == "NOTSET":
        return onnx_pads_to_pairs(pads, n)
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
    for dim, (i, o, kk, ss, dd, pair) in enumerate(zip(input_size, size_out, k, s, d, pairs)):
        forward = _forward_size(o, kk, ss, pair, dd)
        if forward != i:
            hint = ""
            if not isinstance(padding, str):
                smallest = _transposed_size(i, kk, ss, pair, dd)
                hint = "" if smallest is None else f"; valid sizes are {smallest} to {smallest + ss - 1}"
            raise ValueError(
                f"output_shape {tuple(size_out)} is inconsistent with the input {tuple(input_size)} in dimension "
                f"{dim}: a {padding if isinstance(padding, str) else 'explicitly padded'} convolution of size "
                f"{o} (kernel {kk}, stride {ss}, dilation {dd}) gives {forward}, not {i}{hint}")
        smallest = _transposed_size(i, kk, ss, pair, dd)
        if smallest is None:
            raise ValueError(f"output_shape {tuple(size_out)}: a transposed convolution of the input "
                             f"{tuple(input_size)} (kernel {kk}, stride {ss}, dilation {dd}, padding {pair}) has no "
                             f"output in dimension {dim}")
        out_pad.append(o - smallest)
    return pairs, tuple(out_pad)


def _forward_size(i, k, s, pair, d) -> int:
    """Output size of the forward convolution, 0 where the kernel does not fit (TF's view of an empty output)."""
    try:
        return shapes.conv_output_size(i, k, s, pair, d)
    except ValueError:
        return 0


def _transposed_size(i, k, s, pair, d):
    """Smallest transposed-convolution output (output_padding 0), None where there is none."""
    try:
        return shapes.conv_transpose_output_size(i, k, s, pair, d)
    except ValueError:
        return None


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
    ap = check_auto_pad(auto_pad)
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
        return onnx_pads_to_pairs(pads, n)
    out = []
    for i, kk, ss, dd, o_p, t in zip(input_size, k, s, d, op, target):
        total = ss * (i - 1) + o_p + (kk - 1) * dd + 1 - t
        half = total // 2
        out.append((half, total - half) if ap == "SAME_UPPER" else (total - half, half))
    return tuple(out)

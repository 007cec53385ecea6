"""Canonicalisation of user arguments, done once at the API boundary.

Kernels only ever see: tuples of ints for stride / dilation / output_padding / kernel, and a tuple of
``(lo, hi)`` pairs for padding (``'same'`` is resolved against the input size by :func:`resolve_padding`).
"""
from __future__ import annotations

import math
import numbers
import sys
from typing import Tuple, Union

from . import shapes

Pairs = Tuple[Tuple[int, int], ...]
PaddingSpec = Union[str, Pairs]   # 'same' / 'valid', or canonical per-side pairs


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def ntuple(value, n: int, name: str, minimum: int = None) -> Tuple[int, ...]:
    """An int or a length-``n`` sequence of ints -> a length-``n`` tuple, with a clear error otherwise."""
    if _is_int(value):
        out = (int(value),) * n
    elif isinstance(value, (tuple, list)):
        if len(value) == 1 and n != 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints (one per spatial dimension), "
                             f"got {tuple(value)!r} with {len(value)} entries")
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{name} must contain only ints, got {tuple(value)!r}")
        out = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    if minimum is not None and any(v < minimum for v in out):
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {out if len(out) > 1 else out[0]}")
    return out


def canonical_padding(padding, n: int, allow_strings: bool = True, name: str = "padding") -> PaddingSpec:
    """int | per-dim ints | per-dim (lo, hi) pairs | 'same' | 'valid' -> 'same' or ``((lo, hi), ...)``.

    >>> canonical_padding(1, 2)
    ((1, 1), (1, 1))
    >>> canonical_padding(((0, 1), (2, 3)), 2)
    ((0, 1), (2, 3))
    """
    if isinstance(padding, str):
        if not allow_strings:
            raise ValueError(f"{name}={padding!r} is not supported for transposed convolution; give integer "
                             f"padding (use convforge.shapes.output_padding_for or output_size= to control the size)")
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return "same"
        raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    if _is_int(padding):
        pairs = ((int(padding), int(padding)),) * n
    elif isinstance(padding, (tuple, list)):
        items = list(padding)
        if len(items) == 1 and n != 1:
            items = items * n
        if len(items) != n:
            raise ValueError(f"{name} must be an int, {n} ints, or {n} (lo, hi) pairs (one per spatial dimension), "
                             f"got {tuple(padding)!r}")
        pairs = []
        for v in items:
            if _is_int(v):
                pairs.append((int(v), int(v)))
            elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(u) for u in v):
                pairs.append((int(v[0]), int(v[1])))
            else:
                raise TypeError(f"{name} entries must be ints or (lo, hi) pairs of ints, got {v!r} in {padding!r}")
        pairs = tuple(pairs)
    else:
        raise TypeError(f"{name} must be an int, a sequence, 'same' or 'valid', got {padding!r}")
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"negative {name} is not supported, got {padding!r}")
    return pairs


def resolve_padding(spec: PaddingSpec, sizes, kernel, stride, dilation) -> Pairs:
    """Turn 'same' into per-side pairs for the given input sizes (stride 1: PyTorch's split; stride > 1:
    TF/ONNX SAME_UPPER, output ``ceil(i/s)``)."""
    if spec == "same":
        return shapes.same_paddings(tuple(sizes), kernel, stride, dilation, "SAME_UPPER")
    return spec


def torch_pad_order(pairs: Pairs) -> Tuple[int, ...]:
    """``((lo0, hi0), (lo1, hi1))`` -> torch F.pad order ``(lo1, hi1, lo0, hi0)`` (last dimension first)."""
    out = []
    for lo, hi in reversed(pairs):
        out += [lo, hi]
    return tuple(out)


def check_output_fits(shape, itemsize, op, args):
    """A clear ValueError (naming the arguments) when no array can hold ``shape`` -- huge padding, stride,
    dilation or output_padding -- instead of NumPy's overflow errors."""
    nbytes = math.prod(shape) * itemsize
    if nbytes > sys.maxsize:
        raise ValueError(f"{op}: the output would have shape {tuple(shape)} ({nbytes:.3g} bytes), more than any "
                         f"array can hold; check the arguments ({args})")


def is_int(v) -> bool:
    return _is_int(v)

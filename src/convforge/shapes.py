"""Shape arithmetic of convolution: pure integers, no arrays.

Notation: ``i`` input size, ``k`` kernel size, ``s`` stride, ``p`` padding (``(lo, hi)``), ``d`` dilation,
``op`` output padding.  Every function here is the single source of these formulas in convforge: the engine,
the modules, ``summary``, ``explain`` and ``draw`` all call them.

Formulas
--------
- convolution:            ``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1``
- transposed convolution: ``o = (i-1)*s - p_lo - p_hi + d*(k-1) + op + 1``
- SAME (TF / ONNX SAME_UPPER): ``o = ceil(i/s)``, total padding ``max((o-1)*s + d*(k-1) + 1 - i, 0)``,
  ``lo = total // 2`` (SAME_UPPER) or ``total - total // 2`` (SAME_LOWER).

Example
-------
>>> conv_output_size(10, 3, stride=2)
4
>>> same_padding(224, 7, stride=2)
(2, 3)
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

Pair = Tuple[int, int]
PadArg = Union[int, Sequence[int]]

__all__ = [
    "effective_kernel_size",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_transpose_output_range",
    "same_padding",
    "output_padding_for",
    "conv_output_shape",
    "conv_transpose_output_shape",
    "same_paddings",
    "pool_output_size",
]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _pair(name: str, padding: PadArg) -> Pair:
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"{name} must be an int or a (lo, hi) pair, got {padding!r}")
        return _check_int(name, padding[0], 0), _check_int(name, padding[1], 0)
    p = _check_int(name, padding, 0)
    return p, p


def effective_kernel_size(k: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d*(k-1) + 1``."""
    k = _check_int("kernel size", k, 1)
    d = _check_int("dilation", dilation, 1)
    return d * (k - 1) + 1


def conv_output_size(i: int, k: int, stride: int = 1, padding: PadArg = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one dimension.

    ``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1``.  ``padding`` is an int or a ``(lo, hi)`` pair.
    Raises ValueError when the dilated kernel is larger than the padded input (``o`` would be < 1).

    >>> conv_output_size(5, 3, padding=1)
    5
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", stride, 1)
    lo, hi = _pair("padding", padding)
    span = effective_kernel_size(k, dilation)
    padded = i + lo + hi
    if padded < span:
        raise ValueError(
            f"padded input size {padded} (input {i} + padding {lo}+{hi}) is smaller than the dilated kernel size "
            f"{span} (kernel {k}, dilation {dilation}); use a smaller kernel or dilation, or more padding")
    return (padded - span) // s + 1


def conv_transpose_output_size(i: int, k: int, stride: int = 1, padding: PadArg = 0, dilation: int = 1,
                               output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one dimension.

    ``o = (i-1)*s - p_lo - p_hi + d*(k-1) + op + 1``.  ``output_padding`` must be smaller than
    ``max(stride, dilation)`` (PyTorch's rule).

    >>> conv_transpose_output_size(4, 3, stride=2, padding=1, output_padding=1)
    8
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", stride, 1)
    lo, hi = _pair("padding", padding)
    d = _check_int("dilation", dilation, 1)
    op = _check_int("output_padding", output_padding, 0)
    if op >= max(s, d):
        raise ValueError(f"output_padding ({op}) must be smaller than either stride ({s}) or dilation ({d})")
    o = (i - 1) * s - lo - hi + effective_kernel_size(k, d) + op
    if i > 0 and o < 1:
        raise ValueError(
            f"transposed convolution output size would be {o} (input {i}, kernel {k}, stride {s}, padding "
            f"{lo}+{hi}, dilation {d}, output_padding {op}); reduce the padding")
    return max(o, 0)


def conv_transpose_output_range(i: int, k: int, stride: int = 1, padding: PadArg = 0, dilation: int = 1) -> Pair:
    """Smallest and largest output sizes reachable by ``output_padding`` in ``[0, max(s, d))``."""
    s = _check_int("stride", stride, 1)
    d = _check_int("dilation", dilation, 1)
    lo = conv_transpose_output_size(i, k, s, padding, d, 0)
    return lo, lo + max(s, d) - 1


def pool_output_size(i: int, k: int, stride: int = None, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length of a pooling window (max / average) along one dimension, PyTorch's rule.

    floor mode: ``o = floor((i + 2p - d*(k-1) - 1) / s) + 1`` (the convolution formula);
    ceil mode: ``o = ceil((i + 2p - d*(k-1) - 1) / s) + 1``, minus one when that last window would start beyond
    the input and its left padding (``(o-1)*s >= i + p``): every window must start inside the input or the left
    padding.  ``stride`` None means ``k``.

    >>> pool_output_size(5, 2), pool_output_size(5, 2, ceil_mode=True), pool_output_size(4, 2, 2, 1, ceil_mode=True)
    (2, 3, 3)
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", k if stride is None else stride, 1)
    p = _check_int("padding", padding, 0)
    span = effective_kernel_size(k, dilation)
    o = (i + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= i + p:
        o -= 1
    if o < 1:
        raise ValueError(f"pooling output size would be {o} (input {i}, kernel {k}, stride {s}, padding {p}, "
                         f"dilation {dilation}, ceil_mode={bool(ceil_mode)}): the window is larger than the padded "
                         f"input; use a smaller kernel or a larger input")
    return o


def same_padding(i: int, k: int, stride: int = 1, dilation: int = 1, mode: str = "SAME_UPPER") -> Pair:
    """``(lo, hi)`` padding that gives output ``ceil(i / stride)`` (TF 'SAME', ONNX SAME_UPPER / SAME_LOWER).

    total = ``max((ceil(i/s) - 1)*s + d*(k-1) + 1 - i, 0)``; SAME_UPPER puts the odd extra at the end
    (``lo = total // 2``), SAME_LOWER at the beginning.  With stride 1 this is PyTorch's ``padding='same'``.

    >>> same_padding(224, 7, stride=2), same_padding(225, 7, stride=2), same_padding(8, 3, stride=2)
    ((2, 3), (3, 3), (0, 1))
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", stride, 1)
    span = effective_kernel_size(k, dilation)
    mode_u = str(mode).upper()
    if mode_u not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"mode must be 'SAME_UPPER' or 'SAME_LOWER', got {mode!r}")
    o = -(-i // s)
    total = max((o - 1) * s + span - i, 0)
    small = total // 2
    return (small, total - small) if mode_u == "SAME_UPPER" else (total - small, small)


def output_padding_for(i: int, target: int, k: int, stride: int = 1, padding: PadArg = 0,
                       dilation: int = 1) -> int:
    """The ``output_padding`` that makes a transposed convolution produce ``target``.

    Valid targets are ``[minimum, minimum + max(stride, dilation) - 1]``; anything else raises ValueError naming
    that range.

    >>> output_padding_for(4, 8, 3, stride=2, padding=1)
    1
    """
    target = _check_int("target size", target, 0)
    lo, hi = conv_transpose_output_range(i, k, stride, padding, dilation)
    if not lo <= target <= hi:
        raise ValueError(f"requested output size {target} is not reachable: valid sizes for input {i}, kernel {k}, "
                         f"stride {stride}, padding {padding}, dilation {dilation} are {lo} to {hi}")
    return target - lo


def _broadcast(name, value, n):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must have {n} entries (one per spatial dimension), got {value!r}")
        return tuple(value)
    return (value,) * n


def conv_output_shape(sizes: Sequence[int], kernel: Sequence[int], stride=1, padding=0, dilation=1) -> Tuple[int, ...]:
    """Per-dimension :func:`conv_output_size`; ``padding`` per dim is an int or a ``(lo, hi)`` pair.

    >>> conv_output_shape((10, 5), (3, 2), stride=(2, 1))
    (4, 4)
    """
    n = len(sizes)
    ks, ss, ps, ds = (_broadcast(a, v, n) for a, v in
                      (("kernel", kernel), ("stride", stride), ("padding", _pad_list(padding, n)), ("dilation", dilation)))
    return tuple(conv_output_size(i, k, s, p, d) for i, k, s, p, d in zip(sizes, ks, ss, ps, ds))


def conv_transpose_output_shape(sizes, kernel, stride=1, padding=0, dilation=1, output_padding=0) -> Tuple[int, ...]:
    """Per-dimension :func:`conv_transpose_output_size`.

    >>> conv_transpose_output_shape((4, 4), 3, stride=2, padding=1, output_padding=1)
    (8, 8)
    """
    n = len(sizes)
    ks, ss, ps, ds, ops = (_broadcast(a, v, n) for a, v in
                           (("kernel", kernel), ("stride", stride), ("padding", _pad_list(padding, n)),
                            ("dilation", dilation), ("output_padding", output_padding)))
    return tuple(conv_transpose_output_size(*a) for a in zip(sizes, ks, ss, ps, ds, ops))


def same_paddings(sizes, kernel, stride=1, dilation=1, mode="SAME_UPPER") -> Tuple[Pair, ...]:
    """Per-dimension :func:`same_padding`.

    >>> same_paddings((224, 225), 7, stride=2)
    ((2, 3), (3, 3))
    """
    n = len(sizes)
    ks, ss, ds = (_broadcast(a, v, n) for a, v in (("kernel", kernel), ("stride", stride), ("dilation", dilation)))
    return tuple(same_padding(i, k, s, d, mode) for i, k, s, d in zip(sizes, ks, ss, ds))


def _pad_list(padding, n):
    # an int, a per-dim sequence of ints or (lo, hi) pairs; for one dimension a bare (lo, hi) pair is accepted
    if n == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(v, int) for v in padding):
        return [tuple(padding)]
    return padding


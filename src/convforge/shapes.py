"""Shape arithmetic of convolution: pure integers, no arrays.

Receptive fields, which read layers rather than integers, live in :mod:`convforge.receptive` (its names stay
reachable here: ``shapes.receptive_field``, ``shapes.ReceptiveField``, ``shapes.RFStep``).

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

import importlib
from typing import Optional, Sequence, Tuple, Union

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
    "output_paddings_for",
    "effective_kernel_shape",
    "ReceptiveField",     # these three live in convforge.receptive; still reachable here
    "RFStep",
    "receptive_field",
    "pool_output_size",
    "keras_conv_output_size",
    "keras_conv_transpose_output_size",
    "real_taps",
]


_MOVED_TO_RECEPTIVE = frozenset({"ReceptiveField", "RFStep", "receptive_field", "rf_step"})


def __getattr__(name):
    # receptive imports this module (kernel spans), so its names are looked up on first use, not imported here
    if name in _MOVED_TO_RECEPTIVE:
        return getattr(importlib.import_module("convforge.receptive"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if o < 1:  # PyTorch rejects this too, even for an empty input (i = 0)
        raise ValueError(
            f"transposed convolution output size would be {o} (input {i}, kernel {k}, stride {s}, padding "
            f"{lo}+{hi}, dilation {d}, output_padding {op}); reduce the padding")
    return o


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


def keras_conv_output_size(i: int, k: int, stride: int = 1, padding: str = "valid", dilation: int = 1) -> int:
    """Output length of a Keras / TF convolution: 'same' ``ceil(i/s)``, 'valid' ``ceil((i - k_eff + 1)/s)``,
    'causal' (Conv1D; ``k_eff - 1`` zeros on the left) ``ceil(i/s)``; ``k_eff = d*(k-1) + 1``.

    >>> keras_conv_output_size(224, 7, 2, "same"), keras_conv_output_size(224, 7, 2, "valid")
    (112, 109)
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", stride, 1)
    span = effective_kernel_size(k, dilation)
    mode = str(padding).lower()
    if mode in ("same", "causal"):
        return -(-i // s)
    if mode != "valid":
        raise ValueError(f"padding must be 'valid', 'same' or 'causal', got {padding!r}")
    if i < span:
        raise ValueError(f"input size {i} is smaller than the dilated kernel size {span} (kernel {k}, dilation "
                         f"{dilation}) with 'valid' padding; use 'same' or a smaller kernel")
    return -(-(i - span + 1) // s)


def keras_conv_transpose_output_size(i: int, k: int, stride: int = 1, padding: str = "valid",
                                     output_padding: Optional[int] = None, dilation: int = 1) -> int:
    """Output length of a Keras ``Conv*Transpose`` layer (``k_eff = d*(k-1) + 1``).

    Without output_padding: 'valid' ``i*s + max(k_eff - s, 0)``, 'same' ``i*s``.  With output_padding ``op``:
    'valid' ``(i-1)*s + k_eff + op``, 'same' ``(i-1)*s + k_eff % 2 + op``.

    >>> keras_conv_transpose_output_size(5, 3, 2, "valid"), keras_conv_transpose_output_size(5, 3, 2, "same")
    (11, 10)
    >>> keras_conv_transpose_output_size(5, 3, 2, "same", output_padding=0)
    9
    """
    i = _check_int("input size", i, 0)
    s = _check_int("stride", stride, 1)
    span = effective_kernel_size(k, dilation)
    mode = str(padding).lower()
    if mode not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    if output_padding is None:
        return i * s + max(span - s, 0) if mode == "valid" else i * s
    op = _check_int("output_padding", output_padding, 0)
    return (i - 1) * s + span - (2 * (span // 2) if mode == "same" else 0) + op


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
    ks, ss, ps, ds = (_broadcast(a, v, n) for a, v in (("kernel", kernel), ("stride", stride),
                                                       ("padding", _pad_list(padding, n)), ("dilation", dilation)))
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


def effective_kernel_shape(kernel: Sequence[int], dilation=1) -> Tuple[int, ...]:
    """Per-dimension :func:`effective_kernel_size` (``d*(k-1) + 1``).

    >>> effective_kernel_shape((3, 5), dilation=(2, 1))
    (5, 5)
    """
    n = len(kernel)
    return tuple(effective_kernel_size(k, d) for k, d in zip(kernel, _broadcast("dilation", dilation, n)))


def output_paddings_for(sizes, targets, kernel, stride=1, padding=0, dilation=1) -> Tuple[int, ...]:
    """Per-dimension :func:`output_padding_for`: the ``output_padding`` tuple giving spatial sizes ``targets``.

    >>> output_paddings_for((4, 5), (8, 9), 3, stride=2, padding=1)
    (1, 0)
    """
    n = len(sizes)
    if len(targets) != n:
        raise ValueError(f"targets must have {n} entries (one per spatial dimension), got {tuple(targets)!r}")
    ks, ss, ps, ds = (_broadcast(a, v, n) for a, v in (("kernel", kernel), ("stride", stride),
                                                       ("padding", _pad_list(padding, n)), ("dilation", dilation)))
    return tuple(output_padding_for(*a) for a in zip(sizes, targets, ks, ss, ps, ds))


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """``sum(floor((a*t + b) / m) for t in range(n))`` for ``a, b >= 0``, ``m >= 1`` in O(log) steps (the
    Euclid-like reduction: swap the roles of ``a`` and ``m`` after taking out the integer parts)."""
    total = 0
    while n > 0:
        if a >= m:
            total += n * (n - 1) // 2 * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        top = a * n + b
        if top < m:
            break
        n, b, m, a = top // m, top % m, a, m
    return total


def _taps_below(x: int, o: int, k: int, s: int, lo: int, d: int) -> int:
    """#(output j in [0, o), tap t in [0, k)) whose input index ``j*s - lo + t*d`` is below ``x``."""
    # per tap t: #j = clamp(ceil((x + lo - t*d) / s), 0, o), non-increasing in t
    c = x + lo
    full = min(k, max(0, -((-(c - (o - 1) * s)) // d)))      # taps with all o outputs below x
    some = min(k, max(full, -((-c) // d)))                   # taps with at least one
    n = some - full
    if n <= 0:
        return full * o
    # sum over t in [full, some) of ceil((c - t*d) / s); reversed (u = some-1-t) so the slope is positive
    b = c - (some - 1) * d + s - 1
    return full * o + _floor_sum(n, s, d, b)


def real_taps(i: int, o: int, k: int, stride: int = 1, padding: PadArg = 0, dilation: int = 1) -> int:
    """How many (output, tap) pairs of a convolution along one dimension read a real input cell (not padding).

    This is the per-dimension factor of the multiply-adds a convolution really needs (``summary``'s
    ``effective_macs``); it is computed in O(log) integer steps, never by enumerating positions.

    Args:
        i: input size; o: output size; k: kernel size; stride, padding (``lo`` or ``(lo, hi)``; only ``lo``
            matters), dilation: as for the convolution.

    >>> real_taps(5, 5, 3, padding=1)      # 5 outputs x 3 taps, minus the 2 taps on the padding
    13
    >>> real_taps(10**12, 10**12 - 2, 3)
    2999999999994
    """
    lo = _pair("padding", padding)[0]
    i, o = _check_int("i", i, 0), _check_int("o", o, 0)
    k, s, d = _check_int("k", k, 1), _check_int("stride", stride, 1), _check_int("dilation", dilation, 1)
    return _taps_below(i, o, k, s, lo, d) - _taps_below(0, o, k, s, lo, d)

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

from fractions import Fraction
from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

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
    "ReceptiveField",
    "RFStep",
    "receptive_field",
    "pool_output_size",
    "keras_conv_output_size",
    "keras_conv_transpose_output_size",
    "real_taps",
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


# ---------------------------------------------------------------------------------------------------------------
# Receptive field
# ---------------------------------------------------------------------------------------------------------------
Number = Union[int, Fraction]


class RFStep(NamedTuple):
    """The geometry of one layer along one dimension, as :func:`receptive_field` uses it.

    ``kind`` is ``"conv"`` (a convolution or a pooling window), ``"transpose"`` (transposed convolution),
    ``"nearest"`` or ``"linear"`` (upsampling by ``stride`` = the scale factor).  ``pad_lo`` is the padding
    before the first input cell (the only side that moves the start).
    """

    kind: str = "conv"
    kernel: int = 1
    stride: Number = 1
    pad_lo: int = 0
    dilation: int = 1


class ReceptiveField(NamedTuple):
    """Receptive field of a stack of layers, measured on the grid of the stack's input.

    ``size``: how many input cells output 0 spans; ``jump``: input cells between two neighbouring outputs (the
    effective stride; a fraction after upsampling); ``start``: input coordinate of the first cell output 0 can see
    (negative: it starts in the padding).  Output ``n`` spans ``[start + n*jump, start + n*jump + size - 1]``.
    Fields are ints (1-D layers given as plain numbers) or per-dimension tuples; fractions are
    :class:`fractions.Fraction`.
    """

    size: Any
    jump: Any
    start: Any

    @property
    def center(self):
        """Input coordinate of the centre of output 0's receptive field: ``start + (size - 1) / 2``."""
        return _map(lambda z, s: _num(s + Fraction(z - 1, 2)), self.size, self.start)

    def span(self, index):
        """``(first, last)`` input coordinates seen by output ``index`` (an int, or a tuple for N-d)."""
        if isinstance(self.size, tuple):
            index = _broadcast("index", index, len(self.size))
            return tuple((_num(s + n * j), _num(s + n * j + z - 1))
                         for z, j, s, n in zip(self.size, self.jump, self.start, index))
        first = self.start + index * self.jump
        return _num(first), _num(first + self.size - 1)


def _map(fn, *fields):
    if isinstance(fields[0], tuple):
        return tuple(fn(*vals) for vals in zip(*fields))
    return fn(*fields)


def _num(v: Number) -> Number:
    v = Fraction(v)
    return int(v) if v.denominator == 1 else v


def rf_step(state: Tuple[Fraction, Fraction, Fraction], step: RFStep) -> Tuple[Fraction, Fraction, Fraction]:
    """Carry ``(size, jump, start)`` of one dimension through one layer (the formulas, written once).

    - conv / pooling: ``jump' = jump*s``, ``size' = size + (k_eff-1)*jump``, ``start' = start - p_lo*jump``.
    - transposed: the layer is a stride-1 convolution over the input with ``s-1`` zeros inserted between cells
      (a grid of step ``jump/s``) padded by ``k_eff-1-p_lo``: ``jump' = jump/s``, ``size' = size + (k_eff-1)*jump'``,
      ``start' = start - (k_eff-1-p_lo)*jump'``.
    - nearest upsampling by f: output ``o`` reads cell ``floor(o/f)``: ``jump' = jump/f``,
      ``size' = size + (f-1)/f*jump``, ``start' = start - (f-1)/f*jump``.
    - linear upsampling (align_corners=False): output ``o`` mixes the two cells around ``(o+0.5)/f - 0.5``:
      ``jump' = jump/f``, ``size' = size + 2*jump``, ``start' = start + (1/(2f) - 3/2)*jump``.
    """
    size, jump, start = state
    if step.kind == "conv":
        span = effective_kernel_size(step.kernel, step.dilation)
        return size + (span - 1) * jump, jump * step.stride, start - step.pad_lo * jump
    if step.kind == "transpose":
        span = effective_kernel_size(step.kernel, step.dilation)
        fine = jump / step.stride
        return size + (span - 1) * fine, fine, start - (span - 1 - step.pad_lo) * fine
    f = Fraction(step.stride)
    if step.kind == "nearest":
        return size + (f - 1) / f * jump, jump / f, start - (f - 1) / f * jump
    if step.kind == "linear":
        return size + 2 * jump, jump / f, start + (1 / (2 * f) - Fraction(3, 2)) * jump
    raise ValueError(f"unknown receptive-field step kind {step.kind!r}; expected conv, transpose, nearest or linear")


_WHOLE_INPUT = ("Flatten", "Linear", "Unflatten", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
                "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")


def _per_dim(value, n: Optional[int]):
    if isinstance(value, (tuple, list)):
        return list(value)
    return value if n is None else [value] * n


def _pad_lows(padding, kernel, stride, dilation, what):
    """Padding before the first cell per dimension (an int or a list); resolves 'valid' and stride-1 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0
        if padding == "same":
            lists = [v for v in (kernel, stride, dilation) if isinstance(v, list)]
            n = len(lists[0]) if lists else 1
            ks, ss, ds = (_per_dim(v, n) for v in (kernel, stride, dilation))
            if any(s != 1 for s in ss):
                raise ValueError(f"{what}: padding='same' with stride > 1 depends on the input size; give explicit "
                                 f"padding (see same_padding) or use convforge.summary with an input size")
            lows = [(effective_kernel_size(k, d) - 1) // 2 for k, d in zip(ks, ds)]
            return lows if lists else lows[0]
        raise ValueError(f"{what}: unknown padding {padding!r}")
    if isinstance(padding, (tuple, list)):
        return [p[0] if isinstance(p, (tuple, list)) else p for p in padding]
    return padding


def _steps_of(layer) -> list:
    """Per-layer list of ``(kind, kernel, stride, pad_lo, dilation)`` entries (each an int or a per-dim list)."""
    name = type(layer).__name__
    if isinstance(layer, RFStep):
        return [tuple(layer)]
    if isinstance(layer, dict):
        unknown = set(layer) - {"kernel", "kernel_size", "stride", "padding", "dilation", "transposed", "kind"}
        if unknown:
            raise ValueError(f"receptive_field: unknown keys {sorted(unknown)} in {layer!r}")
        kernel = _per_dim(layer.get("kernel_size", layer.get("kernel", 1)), None)
        stride = _per_dim(layer.get("stride", 1), None)
        dilation = _per_dim(layer.get("dilation", 1), None)
        kind = layer.get("kind", "transpose" if layer.get("transposed") else "conv")
        pad = _pad_lows(layer.get("padding", 0), kernel, stride, dilation, "receptive_field")
        return [(kind, kernel, stride, pad, dilation)]
    if isinstance(layer, (tuple, list)) and 1 <= len(layer) <= 4 and not any(
            isinstance(v, (dict, RFStep)) or hasattr(v, "forward") for v in layer):
        k, s, p, d = tuple(layer) + (1, 0, 1)[len(layer) - 1:]
        return [("conv", _per_dim(k, None), _per_dim(s, None), _pad_lows(p, k, s, d, "receptive_field"),
                 _per_dim(d, None))]
    if name in _WHOLE_INPUT:
        raise ValueError(f"receptive_field: after {name} every output depends on the whole input; give the layers "
                         f"before it (adaptive pooling: use convforge.summary, which knows the input size)")
    if hasattr(layer, "kernel_size"):
        kernel = _per_dim(layer.kernel_size, None)
        stride = getattr(layer, "stride", None)
        stride = _per_dim(layer.kernel_size if stride is None else stride, None)
        dilation = _per_dim(getattr(layer, "dilation", 1), None)
        pad = _pad_lows(getattr(layer, "padding", 0), kernel, stride, dilation, name)
        kind = "transpose" if getattr(layer, "transposed", False) else "conv"
        return [(kind, kernel, stride, pad, dilation)]
    if hasattr(layer, "scale_factor"):
        mode = getattr(layer, "mode", "nearest")
        f = layer.scale_factor
        if f is None:
            raise ValueError(f"receptive_field: {name} with size= (not scale_factor) depends on the input size")
        f = [Fraction(v) for v in f] if isinstance(f, (tuple, list)) else Fraction(f)
        if mode == "nearest":
            return [("nearest", 1, f, 0, 1)]
        if mode in ("linear", "bilinear", "trilinear") and not getattr(layer, "align_corners", False):
            return [("linear", 1, f, 0, 1)]
        raise ValueError(f"receptive_field: {name}(mode={mode!r}, align_corners=True) is not supported")
    children = list(layer.children()) if hasattr(layer, "children") else []
    if children:
        return [st for child in children for st in _steps_of(child)]
    if isinstance(layer, (tuple, list)):
        return [st for item in layer for st in _steps_of(item)]
    return []   # pointwise layers (activations, normalisation, dropout) do not change the receptive field


def receptive_field(layers) -> ReceptiveField:
    """Receptive field of a stack of layers: size, jump (effective stride) and start offset, with dilation.

    Args:
        layers: a sequence (or a Sequential) of layers, each one of: a convforge / torch-style module
            (``Conv*``, ``ConvTranspose*``, ``MaxPool*``, ``AvgPool*``, ``Upsample``, pointwise layers, containers),
            a tuple ``(k, s[, p[, d]])``, a dict with ``kernel_size``, ``stride``, ``padding``, ``dilation``,
            ``transposed``, or an :class:`RFStep`.  Numbers may be per-dimension tuples; padding entries may be
            ``(lo, hi)`` pairs (only ``lo`` moves the start).

    Returns:
        :class:`ReceptiveField` ``(size, jump, start)``: ints for plain-number layers, per-dimension tuples
        otherwise.  Output ``n`` sees input coordinates ``[start + n*jump, start + n*jump + size - 1]``.

    Formulas (per dimension, starting from ``size=1, jump=1, start=0``; ``k_eff = d*(k-1) + 1``):
        convolution / pooling ``size += (k_eff-1)*jump; start -= p_lo*jump; jump *= s``.
        Transposed convolution is read as a stride-1 convolution over the input with ``s-1`` zeros between cells:
        ``jump /= s; size += (k_eff-1)*jump; start -= (k_eff-1-p_lo)*jump``.  The interval is exact for stacks of
        convolutions and pooling windows.  With a transposed layer (or upsampling) the jump is a fraction and
        the interval is an envelope: every input cell that can affect the output lies inside it, but which cells
        inside it actually do depends on the output's phase modulo the stride (output ``o`` of a transposed
        layer receives the inputs ``j`` with ``j*s - p_lo + t*d = o`` for some tap ``t``).

    >>> receptive_field([(3, 1), (3, 1)])                      # two 3-wide convs see 5 inputs
    ReceptiveField(size=5, jump=1, start=0)
    >>> receptive_field([(7, 2, 3), (3, 2, 1), (3, 1, 1, 2)])   # stem conv, max pool, dilated conv
    ReceptiveField(size=27, jump=4, start=-9)
    >>> receptive_field([{"kernel_size": 4, "stride": 2, "padding": 1, "transposed": True}])
    ReceptiveField(size=Fraction(5, 2), jump=Fraction(1, 2), start=-1)
    """
    if hasattr(layers, "children") or hasattr(layers, "kernel_size") or isinstance(layers, (dict, RFStep)):
        layers = [layers]
    steps = [st for layer in layers for st in _steps_of(layer)]
    dims = {len(v) for st in steps for v in st[1:] if isinstance(v, list)}
    if len(dims) > 1:
        raise ValueError(f"receptive_field: layers mix different numbers of spatial dimensions {sorted(dims)}")
    n = dims.pop() if dims else None
    state = [(Fraction(1), Fraction(1), Fraction(0))] * (n or 1)
    for kind, *params in steps:
        per = [_per_dim(v, n or 1) for v in params]
        for axis in range(n or 1):
            k, s, p, d = (v[axis] for v in per)
            state[axis] = rf_step(state[axis], RFStep(kind, k, Fraction(s), p, d))
    fields = [tuple(_num(st[f]) for st in state) for f in range(3)]
    if n is None:
        return ReceptiveField(*(f[0] for f in fields))
    return ReceptiveField(*fields)

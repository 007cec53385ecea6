"""Receptive fields of stacks of layers: which input cells each output can see.

Per dimension a layer is one :class:`RFStep` (``kind``, kernel, stride, padding before the first cell, dilation);
:func:`rf_step` carries ``(size, jump, start)`` through it and :func:`receptive_field` through a whole stack.  The
kernel span ``d*(k-1) + 1`` comes from :mod:`convforge.shapes`; this module only reads layers' attributes.

Example
-------
>>> receptive_field([(3, 1), (3, 1)])                      # two 3-wide convs see 5 inputs
ReceptiveField(size=5, jump=1, start=0)
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

from .shapes import effective_kernel_size

__all__ = ["RFStep", "ReceptiveField", "rf_step", "receptive_field", "upsample_step", "field_of", "START"]

Number = Union[int, Fraction]
State = Tuple[Fraction, Fraction, Fraction]
START: State = (Fraction(1), Fraction(1), Fraction(0))   # one input cell, before any layer


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
            index = tuple(index) if isinstance(index, (tuple, list)) else (index,) * len(self.size)
            if len(index) != len(self.size):
                raise ValueError(f"index must have {len(self.size)} entries (one per spatial dimension), got "
                                 f"{index!r}")
            return tuple((_num(s + n * j), _num(s + n * j + z - 1))
                         for z, j, s, n in zip(self.size, self.jump, self.start, index))
        first = self.start + index * self.jump
        return _num(first), _num(first + self.size - 1)


def field_of(states: Sequence[State]) -> ReceptiveField:
    """Per-dimension ``(size, jump, start)`` states -> a :class:`ReceptiveField` of per-dimension tuples (ints
    where the value is whole).

    >>> field_of([rf_step(START, RFStep("conv", 3, 2, 1))])
    ReceptiveField(size=(3,), jump=(2,), start=(-1,))
    """
    return ReceptiveField(*(tuple(_num(st[f]) for st in states) for f in range(3)))


def _map(fn, *fields):
    if isinstance(fields[0], tuple):
        return tuple(fn(*vals) for vals in zip(*fields))
    return fn(*fields)


def _num(v: Number) -> Number:
    v = Fraction(v)
    return int(v) if v.denominator == 1 else v


def rf_step(state: State, step: RFStep) -> State:
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


def upsample_step(mode: str, align_corners: bool, factor) -> Optional[RFStep]:
    """The step of an upsampling layer by ``factor`` (None when no single step describes it: ``bicubic`` or
    ``align_corners=True``).

    >>> upsample_step("nearest", False, 2)
    RFStep(kind='nearest', kernel=1, stride=2, pad_lo=0, dilation=1)
    """
    if mode == "nearest":
        return RFStep("nearest", 1, factor, 0, 1)
    if mode in ("linear", "bilinear", "trilinear") and not align_corners:
        return RFStep("linear", 1, factor, 0, 1)
    return None


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
        step = upsample_step(mode, getattr(layer, "align_corners", False), f)
        if step is None:
            raise ValueError(f"receptive_field: {name}(mode={mode!r}, align_corners=True) is not supported")
        return [tuple(step)]
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
    state = [START] * (n or 1)
    for kind, *params in steps:
        per = [_per_dim(v, n or 1) for v in params]
        for axis in range(n or 1):
            k, s, p, d = (v[axis] for v in per)
            state[axis] = rf_step(state[axis], RFStep(kind, k, Fraction(s), p, d))
    field = field_of(state)
    if n is None:
        return ReceptiveField(*(f[0] for f in field))
    return field

"""One description of a convolution layer applied to an input: shapes, the padding split and the counts.

:func:`layer_view` reads a ``Conv*`` / ``ConvTranspose*`` module (convforge's or a torch-style one: only its
public attributes) together with an input shape and returns a frozen :class:`LayerView`.  ``summary``,
``explain``, ``convert`` and ``draw`` all take their sizes, padding pairs and counts from it, and it takes every
size from :mod:`convforge.shapes`, so no tool re-derives a formula.

Counts follow PyTorch's ``FlopCounterMode``: one multiply-add is one MAC, FLOPs = 2 x MACs, the bias is not
counted.

- convolution: ``MACs = N * C_out * prod(out) * (C_in / groups) * prod(kernel)`` (taps on the zero padding
  included, as torch counts them);
- transposed convolution: ``MACs = N * C_in * prod(in) * (C_out / groups) * prod(kernel)`` (every input spreads
  the whole kernel, including the parts the padding crops);
- ``effective_macs``: only the products that touch a real input cell and land on a real output cell (what the
  plain-loop reference performs), from :func:`convforge.shapes.real_taps`.

Example
-------
>>> import convforge.nn as nn
>>> v = layer_view(nn.Conv2d(8, 14, (3, 2), stride=(2, 1), padding="same"), (5, 8, 10, 5))
>>> v.output_shape, v.padding, v.params, v.macs
((5, 14, 5, 5), ((0, 1), (0, 1)), 686, 84000)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

from . import _canon, shapes
from .receptive import RFStep

__all__ = ["LayerView", "layer_view", "padding_spec"]

Index = Tuple[int, ...]
Pairs = Tuple[Tuple[int, int], ...]


def padding_spec(layer) -> Union[str, Pairs]:
    """The canonical padding of a convolution layer: ``'same'`` or per-side ``((lo, hi), ...)`` pairs.

    Read from the layer's public ``padding`` (an int tuple, per-side pairs, ``'same'`` or ``'valid'``), so a
    torch module gives the same answer as a convforge one.

    >>> import convforge.nn as nn
    >>> padding_spec(nn.Conv1d(1, 1, 3, padding="valid")), padding_spec(nn.Conv2d(1, 1, 3, padding=((0, 1), 2)))
    (((0, 0),), ((0, 1), (2, 2)))
    """
    transposed = bool(getattr(layer, "transposed", False))
    return _canon.canonical_padding(layer.padding, len(layer.kernel_size), allow_strings=not transposed)


@dataclass(frozen=True)
class LayerView:
    """A convolution layer applied to one input shape, everything in canonical per-dimension form.

    ``padding`` is per-side ``(lo, hi)`` pairs with ``'same'`` resolved for ``in_sizes``; ``output_padding`` is
    zeros for a forward convolution; ``batch`` is 1 and ``unbatched`` True for a ``(C, *S)`` input.
    """

    name: str
    transposed: bool
    batch: int
    unbatched: bool
    in_channels: int
    out_channels: int
    groups: int
    in_sizes: Index
    out_sizes: Index
    kernel: Index
    stride: Index
    padding: Pairs
    dilation: Index
    output_padding: Index
    padding_mode: str
    bias: bool

    @property
    def n(self) -> int:
        """Number of spatial dimensions."""
        return len(self.kernel)

    @property
    def input_shape(self) -> Index:
        return ((self.batch,) if not self.unbatched else ()) + (self.in_channels,) + self.in_sizes

    @property
    def output_shape(self) -> Index:
        return ((self.batch,) if not self.unbatched else ()) + (self.out_channels,) + self.out_sizes

    @property
    def weight_shape(self) -> Index:
        """``(C_out, C_in/groups, *K)``, transposed ``(C_in, C_out/groups, *K)``."""
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups) + self.kernel
        return (self.out_channels, self.in_channels // self.groups) + self.kernel

    @property
    def params(self) -> int:
        """Weight plus bias elements."""
        return math.prod(self.weight_shape) + (self.out_channels if self.bias else 0)

    @property
    def macs(self) -> int:
        """Multiply-adds as PyTorch's FlopCounterMode counts them (see the module docstring)."""
        k = math.prod(self.kernel)
        if self.transposed:
            return self.batch * self.in_channels * math.prod(self.in_sizes) * (self.out_channels // self.groups) * k
        return self.batch * self.out_channels * math.prod(self.out_sizes) * (self.in_channels // self.groups) * k

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def effective_macs(self) -> int:
        """Products that touch a real input cell and land on a real output cell.

        A transposed convolution's useful products are those of the forward convolution it transposes (input
        and output swapped).
        """
        dims = zip(self.in_sizes, self.out_sizes, self.kernel, self.stride, self.padding, self.dilation)
        if self.transposed:
            taps = math.prod(shapes.real_taps(o, i, k, s, lo, d) for i, o, k, s, (lo, _), d in dims)
            return self.batch * self.in_channels * (self.out_channels // self.groups) * taps
        taps = math.prod(shapes.real_taps(i, o, k, s, lo, d) for i, o, k, s, (lo, _), d in dims)
        return self.batch * self.out_channels * (self.in_channels // self.groups) * taps

    @property
    def rf_steps(self) -> Tuple[RFStep, ...]:
        """The layer's receptive-field step per dimension (:mod:`convforge.receptive`)."""
        kind = "transpose" if self.transposed else "conv"
        return tuple(RFStep(kind, k, s, lo, d)
                     for k, s, (lo, _), d in zip(self.kernel, self.stride, self.padding, self.dilation))


def layer_view(layer, input_shape: Sequence[int]) -> LayerView:
    """Describe ``layer`` (a ``Conv*`` / ``ConvTranspose*`` module) applied to an input of ``input_shape``.

    Args:
        layer: a convolution module: ``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups``,
            ``in_channels``, ``out_channels`` (and ``transposed``, ``output_padding``, ``padding_mode``, ``bias``
            where it has them).
        input_shape: ``(N, C, *S)`` or unbatched ``(C, *S)``, channels first.

    Shape:
        conv ``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1``; transposed
        ``o = (i-1)*s - p_lo - p_hi + d*(k-1) + op + 1`` per spatial dimension (:mod:`convforge.shapes`).

    Raises:
        ValueError: a rank or channel count that does not fit the layer, or a kernel larger than the padded
            input, naming the layer and the input shape.

    >>> import convforge.nn as nn
    >>> v = layer_view(nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (4, 5))
    >>> v.output_shape, v.weight_shape, v.macs, v.effective_macs
    ((6, 10), (4, 3, 3), 180, 168)
    """
    name = type(layer).__name__
    n = len(layer.kernel_size)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) not in (n + 1, n + 2):
        raise ValueError(f"{name} expects a {n + 1}D (unbatched) or {n + 2}D (batched) input, got shape "
                         f"{list(shape)}")
    unbatched = len(shape) == n + 1
    batch = 1 if unbatched else shape[0]
    channels, sizes = shape[-n - 1], shape[-n:]
    if channels != layer.in_channels:
        hint = ""
        if shape[-1] == layer.in_channels:
            hint = "; the input looks channels-last: move the channel axis to position 1 (e.g. NHWC -> NCHW)"
        raise ValueError(f"{name} expects {layer.in_channels} input channels, but the input of shape "
                         f"{list(shape)} has {channels}{hint}")
    kernel, stride, dilation = (_canon.ntuple(getattr(layer, a), n, a) for a in ("kernel_size", "stride", "dilation"))
    transposed = bool(getattr(layer, "transposed", False))
    output_padding = _canon.ntuple(getattr(layer, "output_padding", 0), n, "output_padding") if transposed \
        else (0,) * n
    padding = _canon.resolve_padding(padding_spec(layer), sizes, kernel, stride, dilation)
    try:
        if transposed:
            out = shapes.conv_transpose_output_shape(sizes, kernel, stride, list(padding), dilation, output_padding)
        else:
            out = shapes.conv_output_shape(sizes, kernel, stride, list(padding), dilation)
    except ValueError as e:
        raise ValueError(f"{name} on input {list(shape)}: {e}") from None
    return LayerView(name, transposed, batch, unbatched, int(layer.in_channels), int(layer.out_channels),
                     int(layer.groups), tuple(sizes), tuple(out), kernel, stride, tuple(padding), dilation,
                     output_padding, getattr(layer, "padding_mode", "zeros"),
                     getattr(layer, "bias", None) is not None)

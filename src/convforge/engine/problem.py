"""One convolution call described once: :class:`ConvProblem`, made at the API boundary (``convforge._api``,
``convforge.nn.grad``) and handed to everything below it, forward and backward alike.

Canonical form: input ``(N, C, *S)`` (batched), weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``),
``stride`` / ``dilation`` / ``output_padding`` int tuples, ``padding`` one ``(lo, hi)`` pair per spatial dim.
The engine never sees the user's spellings of these (``'same'``, ints, torch's padding order) and never passes
them positionally: a part of a call (a batch chunk, a band of rows, a group range, a reduced problem) is
``problem.on(x, w, **changes)``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np

from .. import shapes

Pairs = Tuple[Tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class ConvProblem:
    """A (transposed) convolution in canonical form, with the quantities every layer below derives from it.

    Args:
        input_shape: ``(N, C, *S)``.
        weight_shape: ``(O, C/groups, *K)``; transposed ``(C, O/groups, *K)``.
        dtype: the arrays' dtype (inside the engine: the compute dtype).
        stride, dilation: one int per spatial dim.
        padding: one ``(lo, hi)`` pair per spatial dim (a negative side crops).
        groups: channel groups.
        out_sizes: the output's spatial sizes.
        transposed: a transposed convolution.
        output_padding: the transposed convolution's extra output cells per dim (zeros for a convolution).

    Shape:
        ``output_shape`` = ``(N, out_channels, *out_sizes)``.

    Example:
        >>> p = ConvProblem.conv((8, 16, 32, 32), (32, 16, 3, 3), np.float32, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        >>> p.out_sizes, p.output_shape, p.macs, p.is_pointwise, p.is_depthwise
        ((32, 32), (8, 32, 32, 32), 37748736, False, False)
        >>> p.on(np.zeros((2, 16, 32, 32), np.float32), np.zeros((32, 16, 3, 3), np.float32)).batch
        2
    """
    input_shape: Tuple[int, ...]
    weight_shape: Tuple[int, ...]
    dtype: np.dtype
    stride: Tuple[int, ...]
    padding: Pairs
    dilation: Tuple[int, ...]
    groups: int
    out_sizes: Tuple[int, ...]
    transposed: bool = False
    output_padding: Tuple[int, ...] = ()

    @classmethod
    def conv(cls, input_shape, weight_shape, dtype, stride, padding, dilation, groups, out_sizes=None):
        """A convolution; ``out_sizes`` None: computed from the others."""
        kernel = tuple(weight_shape[2:])
        if out_sizes is None:
            out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d) for i, k, s, p, d in
                              zip(input_shape[2:], kernel, stride, padding, dilation))
        return cls(tuple(input_shape), tuple(weight_shape), np.dtype(dtype), tuple(stride), tuple(padding),
                   tuple(dilation), int(groups), tuple(out_sizes), False, (0,) * len(kernel))

    @classmethod
    def conv_transpose(cls, input_shape, weight_shape, dtype, stride, padding, dilation, groups,
                       output_padding=None, out_sizes=None):
        """A transposed convolution; ``output_padding`` None: zeros; ``out_sizes`` None: computed."""
        kernel = tuple(weight_shape[2:])
        out_pad = (0,) * len(kernel) if output_padding is None else tuple(output_padding)
        if out_sizes is None:
            out_sizes = tuple(shapes.conv_transpose_output_size(i, k, s, p, d, o) for i, k, s, p, d, o in
                              zip(input_shape[2:], kernel, stride, padding, dilation, out_pad))
        return cls(tuple(input_shape), tuple(weight_shape), np.dtype(dtype), tuple(stride), tuple(padding),
                   tuple(dilation), int(groups), tuple(out_sizes), True, out_pad)

    def on(self, x, w, **changes) -> "ConvProblem":
        """The same problem for arrays ``x``, ``w`` (a part of this call, or this call in another dtype), with
        ``changes`` to other fields (``padding``, ``out_sizes``, ``groups``, ...)."""
        return self.replace(input_shape=x.shape, weight_shape=w.shape, dtype=x.dtype, **changes)

    def replace(self, **changes) -> "ConvProblem":
        """A copy with ``changes`` (canonical values); derived values are computed afresh.  Built without
        ``__init__``'s per-field ``object.__setattr__`` (``dataclasses.replace`` costs ~10 us a call, and the
        engine makes a few per call)."""
        new = object.__new__(ConvProblem)
        values = new.__dict__
        for name in _FIELDS:
            values[name] = self.__dict__[name]
        values.update(changes)
        return new

    @property
    def n_spatial(self) -> int:
        return len(self.weight_shape) - 2

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def in_channels(self) -> int:
        return self.input_shape[1]

    @property
    def in_sizes(self) -> Tuple[int, ...]:
        return self.input_shape[2:]

    @property
    def kernel(self) -> Tuple[int, ...]:
        return self.weight_shape[2:]

    @property
    def out_channels(self) -> int:
        return self.weight_shape[1] * self.groups if self.transposed else self.weight_shape[0]

    @property
    def in_per_group(self) -> int:
        """Input channels per group (``Cg``)."""
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        """Output channels per group (``Og``)."""
        return self.out_channels // self.groups

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return (self.batch, self.out_channels) + self.out_sizes

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def output_bytes(self) -> int:
        return math.prod(self.output_shape) * self.itemsize

    @property
    def padded_sizes(self) -> Tuple[int, ...]:
        """The input's spatial sizes with the padding added (a convolution's; for a transposed one its
        input's)."""
        return tuple(i + lo + hi for i, (lo, hi) in zip(self.in_sizes, self.padding))

    @property
    def macs(self) -> int:
        """Multiply-adds of the direct sum (each input or output cell times the taps of its group)."""
        taps = math.prod(self.kernel)
        if self.transposed:
            return self.batch * self.in_channels * math.prod(self.in_sizes) * self.out_per_group * taps
        return self.batch * self.out_channels * math.prod(self.out_sizes) * self.in_per_group * taps

    @property
    def is_pointwise(self) -> bool:
        """Every kernel size is 1."""
        return all(k == 1 for k in self.kernel)

    @property
    def is_depthwise(self) -> bool:
        """Grouped with one input channel per group (a depthwise layer, with or without a multiplier)."""
        return self.groups > 1 and self.in_per_group == 1

    @property
    def is_empty(self) -> bool:
        """No output cell, or nothing to read: the result is zeros."""
        return self.batch == 0 or math.prod(self.out_sizes) == 0 or \
            (self.transposed and math.prod(self.in_sizes) == 0)


_FIELDS = tuple(f.name for f in dataclasses.fields(ConvProblem))

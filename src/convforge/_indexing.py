"""Which input cell meets which kernel tap: the index rules of convolution, written once.

The plain-loop reference, ``explain`` and ``draw`` all use these functions, so a trace or a picture cannot
disagree with the computed values.

Convolution (cross-correlation, as in PyTorch):   ``y[o] = sum_t x_padded[o*s + t*d] * w[t]``
i.e. input index ``o*s - p_lo + t*d`` (outside ``[0, i)`` it is padding).

Transposed convolution (the scatter view):        input ``j`` adds ``x[j] * w[t]`` to output ``j*s - p_lo + t*d``
(targets outside ``[0, o)`` are cropped by the padding).
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence, Tuple

Index = Tuple[int, ...]


def conv_input_index(out_pos: Index, tap: Index, stride, padding, dilation) -> Index:
    """Unpadded input coordinates read by kernel tap ``tap`` for output ``out_pos`` (may lie in the padding)."""
    return tuple(o * s - lo + t * d for o, t, s, (lo, _), d in zip(out_pos, tap, stride, padding, dilation))


def conv_window(out_pos: Index, kernel: Sequence[int], stride, padding, dilation,
                sizes: Sequence[int]) -> Iterator[Tuple[Index, Index, bool]]:
    """Yield ``(tap, input_index, inside)`` for every kernel tap of output ``out_pos``.

    ``inside`` is False where the tap falls on padding (the index is then outside ``[0, size)``).
    """
    for tap in itertools.product(*(range(k) for k in kernel)):
        idx = conv_input_index(out_pos, tap, stride, padding, dilation)
        yield tap, idx, all(0 <= v < n for v, n in zip(idx, sizes))


def transpose_output_index(in_pos: Index, tap: Index, stride, padding, dilation) -> Index:
    """Output coordinates that input ``in_pos`` times tap ``tap`` adds into (transposed convolution)."""
    return tuple(j * s - lo + t * d for j, t, s, (lo, _), d in zip(in_pos, tap, stride, padding, dilation))


def transpose_scatter(in_pos: Index, kernel: Sequence[int], stride, padding, dilation,
                      out_sizes: Sequence[int]) -> Iterator[Tuple[Index, Index, bool]]:
    """Yield ``(tap, output_index, inside)`` for every tap of the kernel spread by input ``in_pos``."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        idx = transpose_output_index(in_pos, tap, stride, padding, dilation)
        yield tap, idx, all(0 <= v < n for v, n in zip(idx, out_sizes))


def transpose_contributions(out_pos: Index, kernel, stride, padding, dilation,
                            in_sizes) -> Iterator[Tuple[Index, Index]]:
    """Yield ``(tap, input_index)`` pairs that add into output ``out_pos`` of a transposed convolution."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        ok, src = True, []
        for o, t, s, (lo, _), d, n in zip(out_pos, tap, stride, padding, dilation, in_sizes):
            q, r = divmod(o + lo - t * d, s)
            if r or not 0 <= q < n:
                ok = False
                break
            src.append(q)
        if ok:
            yield tap, tuple(src)


def group_of(channel: int, channels: int, groups: int) -> int:
    """Group that a channel belongs to."""
    return channel // (channels // groups)

"""A sliding-window problem cut down to the cells where input, kernel taps and output meet (pure integer
arithmetic): huge paddings, strides and dilations cost memory and time in proportion to the work, never to the
arguments.  Used by the engine's forward (``run``) and by the weight gradient (``gradients``).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple

from .arrays import ceil_div


# Padding cells a call may materialise beyond what its outputs read before it is cropped to the reads: small
# calls keep their shape (and their forced algorithm), calls with padding far beyond the input are reduced.
WASTED_CELLS = 2 ** 16


class Meeting(NamedTuple):
    """One spatial dim of a sliding window problem reduced to the positions that meet the other side: positions
    ``[j0, j1)`` of the side that moves by ``stride`` (a convolution's outputs, a transposed convolution's
    inputs) and taps ``[t0, t1)`` of the kernel; ``first``/``last`` are the extreme cells they touch on the
    other side (the input of a convolution, the output of a transposed one), which may lie outside it."""
    j0: int
    j1: int
    t0: int
    t1: int
    first: int
    last: int


def meeting(size, count, kernel, stride, dilation, lo):
    """Per dim: the positions and taps of ``count`` windows (``j*stride + t*dilation - lo``) that can meet
    ``[0, size)``; None when no window meets it in some dim (every such cell is padding: the result is zero).
    Pure integer arithmetic, O(number of dims), so huge strides, paddings and dilations cost nothing."""
    out = []
    for n, m, k, s, d, p in zip(size, count, kernel, stride, dilation, lo):
        j0 = max(0, ceil_div(p - (k - 1) * d, s))
        j1 = min(m, (n - 1 + p) // s + 1)
        if j0 >= j1:
            return None
        t0 = max(0, ceil_div(p - (j1 - 1) * s, d))
        t1 = min(k, (n - 1 + p - j0 * s) // d + 1)
        if t0 >= t1:
            return None
        out.append(Meeting(j0, j1, t0, t1, j0 * s + t0 * d - p, (j1 - 1) * s + (t1 - 1) * d - p))
    return tuple(out)


def _plan_kind(full_extent, dims, other_sizes):
    """How to run a problem whose meeting cells are ``dims``: "plain" when there is little padding to save,
    "reduced" when cropping to the meeting cells removes most of it, "taps" when even the cropped hull is mostly
    padding (taps far apart: each tap is then applied on its own, reading only the cells it meets)."""
    hull = math.prod(m.last - m.first + 1 for m in dims)
    dense = math.prod(min(m.last + 1, n) - max(m.first, 0) for m, n in zip(dims, other_sizes)) + \
        math.prod(m.j1 - m.j0 for m in dims)
    if hull > 4 * dense + WASTED_CELLS:
        return "taps"
    full = math.prod(full_extent)
    return "reduced" if full - hull > WASTED_CELLS and full > 2 * hull else "plain"


def plain_steps(sizes, kernel, stride, dilation):
    """Stride 1 along dims with one position (``sizes``: outputs, or a transposed convolution's inputs) and
    dilation 1 along dims with one tap: there they mean nothing, and a huge value must not reach NumPy's
    strided views (where it would overflow)."""
    return (tuple(s if n > 1 else 1 for n, s in zip(sizes, stride)),
            tuple(d if k > 1 else 1 for k, d in zip(kernel, dilation)))


class Reduced(NamedTuple):
    """A problem cut down to the cells that meet (see :func:`reduce_problem`)."""
    moving: Tuple[slice, ...]      # kept positions of the moving side (conv outputs, transposed inputs)
    taps: Tuple[slice, ...]        # kept kernel taps
    other: Tuple[slice, ...]       # kept cells of the other side (conv inputs, transposed outputs)
    padding: Tuple[Tuple[int, int], ...]   # padding of the reduced problem (>= 0)
    stride: Tuple[int, ...]
    dilation: Tuple[int, ...]


ZERO, TAPS = "zero", "taps"


def reduce_problem(other_sizes, moving_sizes, kernel, stride, padding, dilation, full_extent):
    """A convolution (outputs move over the input) or a transposed convolution (inputs move over the output)
    restricted to the cells where the two sides meet, when that saves much padding.

    Returns :data:`ZERO` when they never meet (the result is zero), None when the call should keep its shape
    (nothing large to save), :data:`TAPS` when the taps should be applied one by one (``algorithms.direct``), else a
    :class:`Reduced`: the reduced problem reads ``other[r.other]`` padded by ``r.padding`` with taps ``r.taps``
    and produces positions ``r.moving``."""
    dims = meeting(other_sizes, moving_sizes, kernel, stride, dilation, [lo for lo, _ in padding])
    if dims is None:
        return ZERO if math.prod(full_extent) > WASTED_CELLS else None
    kind = _plan_kind(full_extent, dims, other_sizes)
    if kind != "reduced":
        return TAPS if kind == "taps" else None
    other = tuple(slice(max(m.first, 0), min(m.last + 1, n)) for m, n in zip(dims, other_sizes))
    pads = tuple((sl.start - m.first, m.last + 1 - sl.stop) for m, sl in zip(dims, other))
    steps = plain_steps([m.j1 - m.j0 for m in dims], [m.t1 - m.t0 for m in dims], stride, dilation)
    return Reduced(tuple(slice(m.j0, m.j1) for m in dims), tuple(slice(m.t0, m.t1) for m in dims), other, pads,
                   *steps)

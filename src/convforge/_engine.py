"""The N-d convolution engine: one core for every rank, for convolution and transposed convolution.

Everything here takes canonical, validated arguments (see ``_api``):
``x (N, C, *S)`` batched, weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``), ``stride``/``dilation``/
``output_padding`` int tuples, ``padding`` a tuple of ``(lo, hi)`` pairs.

The computation itself is done by one of several algorithms chosen per call in ``convforge._algorithms``
(implementations in ``convforge._algos``): ``pointwise`` (1x1), ``im2col`` (windows + one batched matrix
product over ``(N, G)``), ``direct`` (depthwise, Numba), ``winograd`` (float32 3x3) and, for transposed
convolution, ``col2im`` (one product, then a scatter-add over kernel taps).  The basic forms::

    cols (N, G, Cg*K, P)  = windows of the zero-padded input          (P = prod(out spatial), K = prod(kernel))
    y    (N, G, Og, P)    = W (G, Og, Cg*K) @ cols (N, G, Cg*K, P)

    cols (N, G, Og*K, Pin) = W^T (G, Og*K, Cg) @ x (N, G, Cg, Pin)    (transposed)
    y[..., t*d + j*s] += cols[..., t, j]   for every tap t, cropped by the padding

Workspace is bounded: every algorithm works in tiles so that its extra memory stays below
:func:`convforge.config` ``workspace_limit`` (default max(64 MiB, output size)); see docs/PERFORMANCE.md.

Memory and time follow the work, not the arguments: before an algorithm runs, each call is cut down to the cells
where input, kernel taps and output meet (:func:`reduce_problem`, pure integer arithmetic), so a padding,
stride or dilation of 10**9 never materialises padding no output reads nor an uncropped transposed buffer;
when even the cut-down hull is mostly padding the taps are applied one by one (``_algos.direct.conv_taps``).
"""
from __future__ import annotations

import contextlib
import math
from typing import NamedTuple, Tuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _config, shapes


def compute_dtype(dtype) -> np.dtype:
    """float16 is accumulated in float32 (as PyTorch does on CPU); everything else in its own dtype."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def all_finite(*arrays) -> bool:
    """Whether every value is finite, in one pass without a temporary (a sum is finite exactly when its terms
    are, unless finite values overflow: then this says False and the caller merely takes its exact path)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(np.sum(a)) for a in arrays)


def crop_negative(x, padding):
    """Apply the negative parts of per-side ``padding`` (crops, as views) to ``x (N, C, *S)``; returns the
    cropped ``x`` and the padding left, all non-negative."""
    if all(lo >= 0 and hi >= 0 for lo, hi in padding):
        return x, padding
    crop = (slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding))
    return x[crop], tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)


def pad_zeros(x, padding):
    """Zero-pad the spatial dims of ``x (N, C, *S)`` by per-side pairs; negative values crop."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    x, padding = crop_negative(x, padding)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(padding))


def window_view(xp, kernel, stride, dilation, out_sizes):
    """Strided view ``(N, C, *K, *O)`` of a padded input: element ``[n, c, t, o] = xp[n, c, o*s + t*d]``."""
    n_sp = len(kernel)
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sizes)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n_sp)) + \
        tuple(st[2 + i] * stride[i] for i in range(n_sp))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def stride1_dual(weight, padding, dilation, groups):
    """At stride 1, a transposed convolution with ``weight (O, C/g, *K)`` and per-side ``padding`` equals the
    plain convolution with the flipped, transposed weight ``W' (C, O/g, *K)`` (``W'[g*Cg + c, o] =
    W[g*Og + o, c]`` reversed along every kernel dim) and padding ``d*(k-1) - pad`` per side -- and the other way
    round.  Returns ``(W', dual padding)``; a negative dual padding means the original padding exceeds the
    kernel span."""
    o_ch, cg = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    og = o_ch // groups
    w = weight.reshape((groups, og, cg) + kernel).swapaxes(1, 2)
    w = w[(slice(None),) * 3 + (slice(None, None, -1),) * len(kernel)]
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, d, (lo, hi) in zip(kernel, dilation, padding))
    return np.ascontiguousarray(w).reshape((groups * cg, og) + kernel), pads


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


def _ceil_div(a, b):
    return -(-a // b)


def meeting(size, count, kernel, stride, dilation, lo):
    """Per dim: the positions and taps of ``count`` windows (``j*stride + t*dilation - lo``) that can meet
    ``[0, size)``; None when no window meets it in some dim (every such cell is padding: the result is zero).
    Pure integer arithmetic, O(number of dims), so huge strides, paddings and dilations cost nothing."""
    out = []
    for n, m, k, s, d, p in zip(size, count, kernel, stride, dilation, lo):
        j0 = max(0, _ceil_div(p - (k - 1) * d, s))
        j1 = min(m, (n - 1 + p) // s + 1)
        if j0 >= j1:
            return None
        t0 = max(0, _ceil_div(p - (j1 - 1) * s, d))
        t1 = min(k, (n - 1 + p - j0 * s) // d + 1)
        if t0 >= t1:
            return None
        out.append(Meeting(j0, j1, t0, t1, j0 * s + t0 * d - p, (j1 - 1) * s + (t1 - 1) * d - p))
    return tuple(out)


def tap_window(tap, other_sizes, moving_sizes, stride, dilation, lo):
    """For one kernel ``tap``: the positions ``j`` (slices of the moving side) whose cell
    ``j*stride + tap*dilation - lo`` lies inside the other side, and those cells (strided slices of the other
    side); None when there are none."""
    moving, other = [], []
    for t, n, m, s, d, p in zip(tap, other_sizes, moving_sizes, stride, dilation, lo):
        offset = t * d - p
        ja, jb = max(0, _ceil_div(-offset, s)), min(m, (n - 1 - offset) // s + 1)
        if ja >= jb:
            return None
        moving.append(slice(ja, jb))
        other.append(slice(ja * s + offset, (jb - 1) * s + offset + 1, s))
    return tuple(moving), tuple(other)


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
    (nothing large to save), :data:`TAPS` when the taps should be applied one by one (``_algos.direct``), else a
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


def _batch_tiles(n, per_sample_bytes, limit):
    """Split ``range(n)`` into chunks whose workspace stays under ``limit``."""
    per = max(1, int(limit // max(per_sample_bytes, 1)))
    return [(i, min(i + per, n)) for i in range(0, n, per)]


def _run(kind, x, w, stride, padding, dilation, groups, out_sizes, reduced):
    """One algorithm call; a reduced call whose shape a forced algorithm cannot take is left to automatic
    selection (the user forced an algorithm for the call they made, not for its reduced form)."""
    from . import _algorithms
    forced_ok = not reduced or _algorithms.forced_accepts(kind, x, w, stride, padding, dilation, groups)
    with contextlib.nullcontext() if forced_ok else _config.config(algorithm="auto"):
        if kind == "conv":
            return _algorithms.conv(x, w, stride, padding, dilation, groups, out_sizes)
        return _algorithms.conv_transpose(x, w, stride, padding, groups, dilation, out_sizes)


def _compute(kind, x, w, stride, padding, dilation, groups, out_sizes, other_sizes, moving_sizes, full_extent):
    """``(N, O, *out_sizes)`` of a convolution (``kind`` "conv") or transposed convolution, computed on the cells
    where input, taps and output meet (:func:`reduce_problem`): huge paddings, strides and dilations cost
    memory and time in proportion to the work, not to the arguments."""
    n, o_ch = x.shape[0], w.shape[0] if kind == "conv" else w.shape[1] * groups
    kernel = w.shape[2:]
    red = reduce_problem(other_sizes, moving_sizes, kernel, stride, padding, dilation, full_extent)
    if red is ZERO:
        return np.zeros((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    if red is TAPS:
        from ._algos import direct
        if kind == "conv":
            return direct.conv_taps(x, w, stride, padding, dilation, groups, out_sizes)
        return direct.conv_transpose_taps(x, w, stride, padding, groups, dilation, out_sizes)
    if red is None:
        stride, dilation = plain_steps(moving_sizes, kernel, stride, dilation)
        return _run(kind, x, w, stride, padding, dilation, groups, out_sizes, False)
    everything = (slice(None), slice(None))
    w_r = w[everything + red.taps]
    if kind == "conv":
        x_r, y_at = x[everything + red.other], red.moving
    else:
        x_r, y_at = x[everything + red.moving], red.other
    sub_out = tuple(sl.stop - sl.start for sl in y_at)
    part = _run(kind, x_r, w_r, red.stride, red.padding, red.dilation, groups, sub_out, True)
    if sub_out == tuple(out_sizes):
        return part
    y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    y[everything + y_at] = part
    return y


def conv_forward(x, w, b, stride, padding, dilation, groups, out_sizes=None):
    """Convolution of canonical arguments. Returns ``(N, O, *out)`` in ``x.dtype``."""
    out_dtype = x.dtype
    cdt = compute_dtype(out_dtype)
    x = x.astype(cdt, copy=False)
    w = w.astype(cdt, copy=False)
    kernel = w.shape[2:]
    if out_sizes is None:
        out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d)
                          for i, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation))
    n, o_ch = x.shape[0], w.shape[0]
    if n == 0 or math.prod(out_sizes) == 0:
        y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=cdt)
    else:
        padded = [i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding)]
        y = _compute("conv", x, w, stride, padding, dilation, groups, out_sizes, x.shape[2:], out_sizes, padded)
    if b is not None:
        y += b.astype(cdt, copy=False).reshape((1, -1) + (1,) * len(kernel))
    return y.astype(out_dtype, copy=False)


def conv_transpose_forward(x, w, b, stride, padding, output_padding, groups, dilation, out_sizes=None):
    """Transposed convolution of canonical arguments. Returns ``(N, O, *out)`` in ``x.dtype``."""
    out_dtype = x.dtype
    cdt = compute_dtype(out_dtype)
    x = x.astype(cdt, copy=False)
    w = w.astype(cdt, copy=False)
    kernel = w.shape[2:]
    if out_sizes is None:
        out_sizes = tuple(shapes.conv_transpose_output_size(i, k, s, p, d, op) for i, k, s, p, d, op in
                          zip(x.shape[2:], kernel, stride, padding, dilation, output_padding))
    n, o_ch = x.shape[0], w.shape[1] * groups
    if n == 0 or math.prod(out_sizes) == 0 or math.prod(x.shape[2:]) == 0:
        y = np.zeros((n, o_ch) + tuple(out_sizes), dtype=cdt)
    else:
        full = [max((i - 1) * s + d * (k - 1) + 1, lo + o) for i, s, d, k, (lo, _), o in
                zip(x.shape[2:], stride, dilation, kernel, padding, out_sizes)]
        y = _compute("conv_transpose", x, w, stride, padding, dilation, groups, out_sizes, out_sizes,
                     x.shape[2:], full)
    if b is not None:
        y += b.astype(cdt, copy=False).reshape((1, -1) + (1,) * len(kernel))
    return y.astype(out_dtype, copy=False)

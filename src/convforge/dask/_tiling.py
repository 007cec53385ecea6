"""Output-driven tiling: one task per output block, fed exactly the input window it needs.

Along every spatial axis an :class:`AxisPlan` lists the output chunks and, per chunk, the input interval
``[a, b)`` its outputs read (global input coordinates; ``a < 0`` or ``b > n`` means the window reaches into the
padding).  :func:`windowed` turns the plans into one Dask graph layer:

- for every output block and every input block its clipped window ``[max(a, 0), min(b, n))`` meets, a small
  ``getitem`` task cuts out just the overlap (so a neighbour ships its halo, not its whole block);
- one task per output block glues the pieces into the slab and calls ``block_fn(slab, windows)``, which runs the
  in-memory op on the slab with the padding that lies outside the array (``windows`` gives ``(a, b)`` per axis).

Batch chunks map one to one (each an independent task); the channel axis is one chunk (merged beforehand).
Constants (weights, biases) go in the graph once, under their own key, not once per task.

Memory per task: the slab ``nb * C * prod(b - a)`` items, plus its output block, plus the engine's workspace.
"""
from __future__ import annotations

import bisect
import itertools
import operator
from typing import NamedTuple, Tuple

import numpy as np
import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

__all__ = ["AxisPlan", "windowed", "chunks_from_boundaries", "constant_key", "conv_boundary", "transpose_boundary",
           "conv_window", "transpose_window"]


class AxisPlan(NamedTuple):
    """One spatial axis: output chunk sizes and, per output chunk, ``(a, b, o0, o1)``: the input interval
    ``[a, b)`` that the outputs ``[o0, o1)`` read."""

    out_chunks: Tuple[int, ...]
    windows: Tuple[Tuple[int, int], ...]


def chunks_from_boundaries(boundaries, total: int) -> Tuple[int, ...]:
    """Output chunk sizes from candidate start positions (clipped to ``[0, total]``; empty chunks dropped)."""
    cuts = sorted({min(max(int(b), 0), total) for b in boundaries} | {0, total})
    sizes = tuple(hi - lo for lo, hi in zip(cuts, cuts[1:]) if hi > lo)
    return sizes or (total,)


def conv_window(o0: int, o1: int, kernel: int, stride: int, pad_lo: int, dilation: int):
    """Input interval ``[a, b)`` read by convolution (or pooling) outputs ``[o0, o1)``: output ``o`` reads
    ``[o*s - p_lo, o*s - p_lo + d*(k-1)]``."""
    return o0 * stride - pad_lo, (o1 - 1) * stride - pad_lo + dilation * (kernel - 1) + 1


def transpose_window(o0: int, o1: int, kernel: int, stride: int, pad_lo: int, dilation: int):
    """Input interval ``[a, b)`` feeding transposed-convolution outputs ``[o0, o1)``: input ``i`` reaches the
    uncropped positions ``i*s + t*d`` (output = uncropped - p_lo), so ``i`` from ``ceil((o0 + p_lo - d*(k-1)) / s)``
    to ``floor((o1 - 1 + p_lo) / s)``."""
    return -(-(o0 + pad_lo - dilation * (kernel - 1)) // stride), (o1 - 1 + pad_lo) // stride + 1


def conv_boundary(b: int, kernel: int, stride: int, pad_lo: int, dilation: int) -> int:
    """The first output of a convolution whose window centre lies at or after input position ``b``: output
    chunks follow the input's (a 'same' convolution keeps them; stride s divides them by s, rounding up)."""
    return -(-(b + pad_lo - dilation * (kernel - 1) // 2) // stride)


def transpose_boundary(b: int, kernel: int, stride: int, pad_lo: int, dilation: int) -> int:
    """The output of a transposed convolution where input position ``b``'s contribution is centred."""
    return b * stride - pad_lo + dilation * (kernel - 1) // 2


def _starts(chunks):
    return list(itertools.accumulate((0,) + tuple(chunks)))


def _pieces_along(starts, lo: int, hi: int):
    """``(block index, slice within block)`` for every block of an axis that ``[lo, hi)`` meets."""
    if hi <= lo:
        return []
    first = bisect.bisect_right(starts, lo) - 1
    out = []
    for j in range(first, len(starts) - 1):
        s, e = starts[j], starts[j + 1]
        if s >= hi:
            break
        if e > lo:
            out.append((j, slice(max(lo, s) - s, min(hi, e) - s)))
    return out


def constant_key(name: str, value) -> tuple:
    """A graph key for a constant array (weights), named by its content."""
    return (f"{name}-const-{tokenize(value)}",)


def _glue(pieces, axis: int):
    """Nested lists of blocks -> one array; the outer list runs along ``axis``, inner ones along later axes."""
    if isinstance(pieces, list):
        return np.concatenate([_glue(p, axis + 1) for p in pieces], axis=axis)
    return pieces


def _run_block(block_fn, pieces, empty_shape, dtype, windows, *constants):
    slab = np.empty(empty_shape, dtype) if pieces is None else _glue(pieces, 2)
    return block_fn(slab, windows, *constants)


def windowed(x, plans, block_fn, out_channels: int, dtype, name: str, constants=(), token_extra=()):
    """A lazy array ``(N, out_channels, *out)`` whose block ``(i, 0, j...)`` is ``block_fn(slab, windows,
    *constants)`` over the input window of output chunk ``j...`` (see the module docstring).

    ``x`` is ``(N, C, *S)`` with one chunk along C; ``plans`` one :class:`AxisPlan` per spatial axis.
    """
    if len(x.chunks[1]) != 1:
        raise ValueError("windowed: the channel axis must be one chunk (rechunk({1: -1}) first)")
    n_spatial = x.ndim - 2
    token = tokenize(x.name, plans, block_fn, out_channels, np.dtype(dtype).str, constants, token_extra)
    out_name = f"{name}-{token}"
    piece_name = f"{name}-halo-{token}"
    dsk = {}
    const_keys = []
    for c in constants:
        key = constant_key(name, c)
        dsk[key] = c
        const_keys.append(key)
    starts = [_starts(c) for c in x.chunks[2:]]
    sizes = x.shape[2:]
    channels = x.shape[1]
    for ib, nb in enumerate(x.chunks[0]):
        for js in itertools.product(*(range(len(p.out_chunks)) for p in plans)):
            windows = tuple(p.windows[j] for p, j in zip(plans, js))
            per_axis = [_pieces_along(st, max(w[0], 0), min(w[1], n)) for st, w, n in zip(starts, windows, sizes)]
            pieces = None
            empty_shape = (nb, channels) + tuple(max(0, min(w[1], n) - max(w[0], 0)) for w, n in zip(windows, sizes))
            if all(per_axis):
                pieces = _nested_pieces(x.name, ib, per_axis, piece_name, (ib,) + js, dsk, x.chunks[2:])
            dsk[(out_name, ib, 0) + js] = (_run_block, block_fn, pieces, empty_shape, np.dtype(dtype), windows,
                                           *const_keys)
    out_chunks = (x.chunks[0], (out_channels,)) + tuple(p.out_chunks for p in plans)
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[x])
    meta = np.empty((0,) * (n_spatial + 2), dtype=dtype)
    return da.Array(graph, out_name, out_chunks, meta=meta)


def _nested_pieces(in_name, ib, per_axis, piece_name, out_index, dsk, in_chunks):
    """Nested list (one level per spatial axis) of keys of the pieces; whole blocks are used as they are."""
    def build(axis, idx, slices):
        if axis == len(per_axis):
            key = (in_name, ib, 0) + tuple(idx)
            whole = all(s.start == 0 and s.stop == in_chunks[ax][j] for ax, (j, s) in enumerate(zip(idx, slices)))
            if whole:
                return key
            pkey = (piece_name,) + out_index + tuple(idx)
            dsk[pkey] = (operator.getitem, key, (slice(None), slice(None)) + tuple(slices))
            return pkey
        return [build(axis + 1, idx + [j], slices + [s]) for j, s in per_axis[axis]]
    return build(0, [], [])

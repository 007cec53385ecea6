"""Dask implementations of convforge's ops, one per autograd ``Function`` (inference only).

Every implementation first runs the op's own NumPy ``forward`` on an *empty-batch* stand-in of the input
(``(0, C, *S)``: no data, no compute), which validates every argument with the in-memory code's own messages and
yields the output's channels, spatial sizes and dtype.  Then:

- windowed ops (convolution, transposed convolution, pooling, interpolate) build one task per output block over
  exactly the input window it reads (:mod:`._tiling`), and call the same NumPy ``forward`` on that slab with the
  padding that lies outside the array, so values equal the in-memory result;
- pointwise ops (activations, BatchNorm in eval mode) run ``forward`` block by block (``map_blocks``);
- ops along whole axes (softmax, layer_norm, linear) first merge the chunks of those axes;
- ``F.pad`` is Dask's own ``pad`` (reflect / edge / wrap are NumPy's modes, which are torch's);
- autograd's NumPy-API ops (arithmetic, reductions, ``convforge.cat`` / ``stack``, indexing) run their ``forward``
  directly: it is NumPy calls, which Dask implements lazily;
- adaptive max pooling and max pooling with ``return_indices`` run one task per batch chunk over whole planes
  (exact; warns).

Output chunk boundaries follow the input's: a convolution output belongs to the input chunk that holds its
window's centre (:func:`._tiling.conv_boundary`; a 'same' convolution keeps the chunks, stride ``s`` divides
them), a transposed-convolution output to the input cell it is centred on, so blocks stay aligned to the stride
and sized like the input's.
"""
from __future__ import annotations

import functools
import inspect
import math
import warnings

import numpy as np
import dask.array as da

from .. import _api, _canon
from .._padding import _replicate_sources
from ..autograd import ops as _autograd_ops
from ..autograd.function import Function, FunctionCtx
from ..nn import functional as F
from ..nn._ops import activation as _act, dropout as _drop, interpolate as _interp, linear as _lin
from ..nn._ops import normalization as _norm, pooling as _pool
from ..nn._ops.common import apply_along_spatial
from ._tiling import (AxisPlan, chunks_from_boundaries, conv_boundary, conv_window, transpose_boundary,
                      transpose_window, windowed)

__all__ = ["IMPLEMENTATIONS", "run_forward"]


def run_forward(fn, *args, **kwargs):
    """The op's in-memory ``forward`` with a context that records nothing."""
    return fn.forward(FunctionCtx((False,) * (len(args) + len(kwargs))), *args, **kwargs)


def _bound(fn, args, kwargs) -> dict:
    """``forward``'s arguments by name (defaults applied), without ``ctx``."""
    sig = inspect.signature(fn.forward)
    bound = sig.bind(None, *args, **kwargs)
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop(next(iter(sig.parameters)))
    return out


def _plain(a):
    """Constants for the graph: plain ndarrays (tensors and parameters lose their autograd state)."""
    if a is None or isinstance(a, (bool, int, float, str, tuple)):
        return a
    if isinstance(a, da.Array):
        a = a.compute()
    return np.array(np.asarray(a).view(np.ndarray))


def _meta_forward(fn, named: dict, x_name: str):
    """Run ``forward`` on an empty-batch stand-in of ``named[x_name]``; errors carry the real sizes."""
    x = named[x_name]
    meta = np.zeros((0,) + tuple(x.shape[1:]), x.dtype)
    try:
        return run_forward(fn, **{**named, x_name: meta})
    except (ValueError, TypeError):
        if math.prod(x.shape) <= 1 << 22:       # small: rerun with a zero-stride stand-in of the true shape
            run_forward(fn, **{**named, x_name: np.broadcast_to(np.zeros((), x.dtype), x.shape)})
        raise


def _batched(x, n_spatial):
    """``(C, *S)`` -> ``(1, C, *S)`` and whether it was unbatched; the channel axis merged into one chunk."""
    x = x if isinstance(x, da.Array) else da.asarray(x)      # a NumPy input with Dask weights
    unbatched = x.ndim == n_spatial + 1
    xb = x[None] if unbatched else x
    return xb.rechunk({1: -1}), unbatched


def _outside(window, n):
    """Per-side amounts of a window ``(a, b, ...)`` that lie outside ``[0, n)``."""
    return max(0, -window[0]), max(0, window[1] - n)


def _plan(chunks, out_size, geometry, boundary, window):
    """One axis: output chunks from the input's (``boundary``), each with the input window it reads."""
    starts = np.cumsum((0,) + tuple(chunks))[1:-1]
    out_chunks = chunks_from_boundaries([boundary(int(b), *geometry) for b in starts], out_size)
    windows, o0 = [], 0
    for size in out_chunks:
        windows.append(window(o0, o0 + size, *geometry) + (o0, o0 + size))
        o0 += size
    return AxisPlan(out_chunks, tuple(windows))


def _window_plan(chunks, out_size, kernel, stride, pad_lo, dilation):
    """Convolution / pooling geometry along one axis."""
    return _plan(chunks, out_size, (kernel, stride, pad_lo, dilation), conv_boundary, conv_window)


def _transpose_plan(chunks, out_size, kernel, stride, pad_lo, dilation):
    """Transposed-convolution geometry along one axis."""
    return _plan(chunks, out_size, (kernel, stride, pad_lo, dilation), transpose_boundary, transpose_window)


def _finish(y, unbatched):
    return y[0] if unbatched else y


# -- convolution ---------------------------------------------------------------------------------------------------
def _conv_block(slab, windows, weight, bias, sizes, stride, dilation, groups, n_spatial, op):
    pads = tuple(_outside(w, n) for w, n in zip(windows, sizes))
    if 0 in slab.shape[2:]:                        # the window lies wholly in the (zero) padding
        slab, pads = np.pad(slab, ((0, 0), (0, 0)) + pads), ((0, 0),) * n_spatial
    return run_forward(F.Convolution, slab, weight, bias, stride, pads, dilation, groups, n_spatial=n_spatial,
                       op=op)


def _conv_prologue(fn, args, kwargs):
    """Shared by conv and conv_transpose: named arguments (plain weights, batched input), the validated
    empty-batch output, and canonical stride / dilation."""
    named = _bound(fn, args, kwargs)
    w = _plain(named["weight"])
    n_spatial = named["n_spatial"] or w.ndim - 2
    xb, unbatched = _batched(named["input"], n_spatial)
    named.update(input=xb, weight=w, bias=_plain(named["bias"]), n_spatial=n_spatial)
    meta = _meta_forward(fn, named, "input")
    stride, dilation = _api._spatial_args(n_spatial, named["stride"], named["dilation"])
    return named, xb, unbatched, meta, stride, dilation


def conv(fn, args, kwargs):
    named, xb, unbatched, meta, stride, dilation = _conv_prologue(fn, args, kwargs)
    w, b, n_spatial = named["weight"], named["bias"], named["n_spatial"]
    sizes, kernel = xb.shape[2:], w.shape[2:]
    pads = _canon.resolve_padding(_canon.canonical_padding(named["padding"], n_spatial), sizes, kernel, stride,
                                  dilation)
    plans = [_window_plan(c, o, k, s, p[0], d)
             for c, o, k, s, p, d in zip(xb.chunks[2:], meta.shape[2:], kernel, stride, pads, dilation)]
    block = functools.partial(_conv_block, sizes=sizes, stride=stride, dilation=dilation, groups=named["groups"],
                              n_spatial=n_spatial, op=named["op"])
    y = windowed(xb, plans, block, meta.shape[1], meta.dtype, named["op"], constants=(w, b))
    return _finish(y, unbatched)


def _conv_transpose_block(slab, windows, weight, bias, stride, dilation, groups, pad_lows, n_spatial, op):
    out = np.zeros(slab.shape[:1] + (weight.shape[1] * groups,) + tuple(w[3] - w[2] for w in windows),
                   np.result_type(slab.dtype, weight.dtype))
    if 0 not in slab.shape[2:]:
        local = run_forward(F.ConvolutionTranspose, slab, weight, None, stride, 0, 0, groups, dilation,
                            n_spatial=n_spatial, op=op)
        dst, src = [], []
        for w, s, p, length in zip(windows, stride, pad_lows, local.shape[2:]):
            first = max(w[0], 0) * s                    # full coordinate of local[0]
            lo, hi = max(w[2] + p, first), min(w[3] + p, first + length)
            dst.append(slice(lo - w[2] - p, max(hi, lo) - w[2] - p))
            src.append(slice(lo - first, max(hi, lo) - first))
        out[(slice(None), slice(None)) + tuple(dst)] = local[(slice(None), slice(None)) + tuple(src)]
    if bias is not None:
        out += bias.reshape((-1,) + (1,) * n_spatial)
    return out


def conv_transpose(fn, args, kwargs):
    named, xb, unbatched, meta, stride, dilation = _conv_prologue(fn, args, kwargs)
    w, b, n_spatial = named["weight"], named["bias"], named["n_spatial"]
    pads = _canon.canonical_padding(named["padding"], n_spatial, allow_strings=False)
    plans = [_transpose_plan(c, o, k, s, p[0], d)
             for c, o, k, s, p, d in zip(xb.chunks[2:], meta.shape[2:], w.shape[2:], stride, pads, dilation)]
    block = functools.partial(_conv_transpose_block, stride=stride, dilation=dilation, groups=named["groups"],
                              pad_lows=tuple(p[0] for p in pads), n_spatial=n_spatial, op=named["op"])
    y = windowed(xb, plans, block, meta.shape[1], meta.dtype, named["op"], constants=(w, b))
    return _finish(y, unbatched)


# -- pooling -------------------------------------------------------------------------------------------------------
def _fill_outside(slab, windows, sizes, value):
    pads = ((0, 0), (0, 0)) + tuple(_outside(w, n) for w, n in zip(windows, sizes))
    return np.pad(slab, pads, constant_values=value) if any(map(any, pads)) else slab


def _lowest(dtype):
    return -np.inf if dtype.kind in "fc" else np.iinfo(dtype).min


def _max_pool_block(slab, windows, sizes, n, kernel, stride, dilation):
    slab = _fill_outside(slab, windows, sizes, _lowest(slab.dtype))
    return run_forward(_pool.MaxPoolFn, slab, n, kernel, stride, (0,) * n, dilation, False, False)


def _avg_pool_block(slab, windows, counts, sizes, n, kernel, stride, divisor_override):
    total = run_forward(_pool.AvgPoolFn, _fill_outside(slab, windows, sizes, 0), n, kernel, stride, (0,) * n, False,
                        True, 1)
    if divisor_override is not None:
        div = np.asarray(divisor_override, dtype=slab.dtype)
    else:
        div = np.ones((1,) * n)
        for dim, (c, w) in enumerate(zip(counts, windows)):
            div = div * c[w[2]:w[3]].reshape((1,) * dim + (-1,) + (1,) * (n - dim - 1))
        div = div.astype(slab.dtype)
    return (total / div).astype(slab.dtype, copy=False)


def pool(fn, args, kwargs):
    named = _bound(fn, args, kwargs)
    if named.get("return_indices"):                # indices are flat positions in the whole plane
        return whole_plane(fn, args, kwargs)
    n, kernel, stride, padding = named["n"], named["kernel"], named["stride"], named["padding"]
    dilation = named.get("dilation", (1,) * n)
    xb, unbatched = _batched(named["x"], n)
    meta = _meta_forward(fn, {**named, "x": xb}, "x")
    sizes = xb.shape[2:]
    plans = [_window_plan(c, o, k, s, p, d)
             for c, o, k, s, p, d in zip(xb.chunks[2:], meta.shape[2:], kernel, stride, padding, dilation)]
    if fn is _pool.MaxPoolFn:
        block = functools.partial(_max_pool_block, sizes=sizes, n=n, kernel=kernel, stride=stride, dilation=dilation)
        constants = ()
    else:
        counts = tuple(_pool._avg_divisor((i,), (k,), (s,), (p,), (o,), named["count_include_pad"], None, np.float64)
                       for i, k, s, p, o in zip(sizes, kernel, stride, padding, meta.shape[2:]))
        block = functools.partial(_avg_pool_block, sizes=sizes, n=n, kernel=kernel, stride=stride,
                                  divisor_override=named["divisor_override"])
        constants = (counts,)
    y = windowed(xb, plans, block, meta.shape[1], meta.dtype, fn.__name__.lower(), constants=constants)
    return _finish(y, unbatched)


# -- adaptive average pooling --------------------------------------------------------------------------------------
def _adaptive_plan(chunks, in_size, out_size):
    """Output ``j`` averages ``[floor(j*i/o), ceil((j+1)*i/o))``; output chunks follow the input's."""
    starts = np.cumsum((0,) + tuple(chunks))[1:-1]
    out_chunks = chunks_from_boundaries([int(b) * out_size // in_size for b in starts], out_size)
    first, last = _pool._window_bounds(in_size, out_size)
    windows, o0 = [], 0
    for size in out_chunks:
        windows.append((int(first[o0]), int(last[o0 + size - 1]), o0, o0 + size))
        o0 += size
    return AxisPlan(out_chunks, tuple(windows))


def _adaptive_avg_block(slab, windows, sizes, targets, n):
    if all(w[:2] == (0, i) and w[2:] == (0, o) for w, i, o in zip(windows, sizes, targets)):
        return run_forward(_pool.AdaptiveAvgPoolFn, slab, n, targets)      # the whole plane: the in-memory op
    mats, div = [], np.ones((1,) * n)
    for dim, (w, i, o) in enumerate(zip(windows, sizes, targets)):
        first, last = (b[w[2]:w[3], None] for b in _pool._window_bounds(i, o))
        cols = np.arange(w[0], w[1])
        mats.append(((cols >= first) & (cols < last)).astype(slab.dtype))
        div = div * (last - first).reshape((1,) * dim + (-1,) + (1,) * (n - dim - 1))
    return np.ascontiguousarray(apply_along_spatial(slab, mats) / div.astype(slab.dtype))


def adaptive_avg_pool(fn, args, kwargs):
    named = _bound(fn, args, kwargs)
    n = named["n"]
    xb, unbatched = _batched(named["x"], n)
    meta = _meta_forward(fn, {**named, "x": xb}, "x")
    targets = meta.shape[2:]
    plans = [_adaptive_plan(c, i, o) for c, i, o in zip(xb.chunks[2:], xb.shape[2:], targets)]
    block = functools.partial(_adaptive_avg_block, sizes=xb.shape[2:], targets=targets, n=n)
    return _finish(windowed(xb, plans, block, meta.shape[1], meta.dtype, "adaptive_avg_pool"), unbatched)


# -- whole planes: exact fallback -----------------------------------------------------------------------------------
def _plane_output(block, fn, named, index):
    out = run_forward(fn, **{**named, "x": block})
    return out[index] if isinstance(out, tuple) else out


def whole_plane(fn, args, kwargs):
    """Ops without a tiled version (adaptive max pooling, max pooling with indices): each batch chunk is one task
    over whole ``(C, *S)`` planes, which is exact (planes are independent); warns, as memory per task grows."""
    named = _bound(fn, args, kwargs)
    xb, unbatched = _batched(named["x"], named["n"])
    meta = _meta_forward(fn, {**named, "x": xb}, "x")
    warnings.warn(f"convforge.dask: {fn.__name__} has no tiled Dask implementation: each batch chunk runs as one "
                  f"task over whole planes of shape {xb.shape[1:]} (exact, but a task holds a whole plane)",
                  stacklevel=4)
    xb = xb.rechunk({axis: -1 for axis in range(1, xb.ndim)})
    named = {k: v for k, v in named.items() if k != "x"}
    outs = []
    for index, o in enumerate(meta if isinstance(meta, tuple) else (meta,)):
        y = da.map_blocks(_plane_output, xb, fn=fn, named=named, index=index, dtype=o.dtype,
                          chunks=(xb.chunks[0],) + tuple((c,) for c in o.shape[1:]),
                          meta=np.empty((0,) * o.ndim, o.dtype))
        outs.append(_finish(y, unbatched))
    return tuple(outs) if isinstance(meta, tuple) else outs[0]


# -- NumPy-API ops (arithmetic, reductions, joins, indexing): their forward is NumPy calls, which Dask implements
def numpy_api(fn, args, kwargs):
    plain = [np.ndarray.view(a, np.ndarray) if isinstance(a, np.ndarray) else a for a in args]   # tensors would
    return run_forward(fn, *plain, **kwargs)                                                  # dispatch back here


# -- interpolate ---------------------------------------------------------------------------------------------------
def _interp_plan(chunks, in_size, plan):
    out_size = len(plan[0])
    starts = np.cumsum((0,) + tuple(chunks))[1:-1]
    out_chunks = chunks_from_boundaries([int(b) * out_size // in_size for b in starts], out_size)
    index = plan[:2]
    windows, o0 = [], 0
    for size in out_chunks:
        o1 = o0 + size
        windows.append((min(int(a[o0:o1].min()) for a in index), max(int(a[o0:o1].max()) for a in index) + 1, o0,
                        o1))
        o0 = o1
    return AxisPlan(out_chunks, tuple(windows))


def _interp_block(slab, windows, plans):
    local = tuple(tuple(a[w[2]:w[3]] - w[0] for a in p[:2]) + tuple(a[w[2]:w[3]] for a in p[2:])
                  for p, w in zip(plans, windows))
    return run_forward(_interp.InterpolateFn, slab, local)


def interpolate(fn, args, kwargs):
    named = _bound(fn, args, kwargs)
    x, plans = named["x"].rechunk({1: -1}), named["plans"]
    axes = [_interp_plan(c, i, p) for c, i, p in zip(x.chunks[2:], x.shape[2:], plans)]
    dtype = run_forward(fn, np.zeros((0,) + x.shape[1:], x.dtype), plans).dtype
    return windowed(x, axes, _interp_block, x.shape[1], dtype, "interpolate", constants=(plans,))


# -- pointwise and whole-axis ops ----------------------------------------------------------------------------------
def _pointwise_block(block, fn, rest, kwargs):
    view = block.view()
    view.flags.writeable = False                   # ``inplace=True`` must never write into Dask's blocks
    return run_forward(fn, view, *rest, **kwargs)


def _map(fn, x, rest, kwargs, merge_axes=(), chunk_change=None):
    """``forward`` block by block, the chunks of ``merge_axes`` merged first (e.g. softmax's axis)."""
    if merge_axes:
        x = x.rechunk({a: -1 for a in merge_axes})
    keep = set(merge_axes) | {1}                   # a one-cell stand-in, whole along the axes the op reads
    meta = run_forward(fn, np.zeros(tuple(s if a in keep else min(s, 1) for a, s in enumerate(x.shape)), x.dtype),
                       *rest, **kwargs)
    chunks = x.chunks if chunk_change is None else chunk_change(x.chunks)
    return da.map_blocks(_pointwise_block, x, fn=fn, rest=tuple(rest), kwargs=kwargs, dtype=meta.dtype,
                         chunks=chunks, meta=np.empty((0,) * x.ndim, meta.dtype))


def pointwise(fn, args, kwargs):
    return _map(fn, args[0], tuple(_plain(a) for a in args[1:]), kwargs)


def batch_norm(fn, args, kwargs):
    named = _bound(fn, args, kwargs)
    if named["training"]:
        raise NotImplementedError("convforge.dask: batch_norm in training mode needs batch statistics over the "
                                  "whole array; Dask arrays are for inference: call model.eval() (running "
                                  "statistics)")
    x = named.pop("x")
    rest = tuple(_plain(v) for v in named.values())
    return _map(fn, x.rechunk({1: -1}) if x.ndim > 1 else x, rest, {})


def softmax(fn, args, kwargs):
    x, axis, dtype = args
    return _map(fn, x, (axis, dtype), kwargs, merge_axes=(axis,))


def layer_norm(fn, args, kwargs):
    x, weight, bias, n_dims, eps = args
    return _map(fn, x, (_plain(weight), _plain(bias), n_dims, eps), kwargs,
                merge_axes=tuple(range(x.ndim - n_dims, x.ndim)))


def linear(fn, args, kwargs):
    x, weight, bias = args
    w = _plain(weight)
    return _map(fn, x, (w, _plain(bias)), kwargs, merge_axes=(x.ndim - 1,),
                chunk_change=lambda chunks: chunks[:-1] + ((w.shape[0],),))


def mask(fn, args, kwargs):
    raise NotImplementedError("convforge.dask: dropout / stochastic depth in training mode draws random masks; Dask "
                              "arrays are for inference: call model.eval()")


# -- pad -----------------------------------------------------------------------------------------------------------
_DASK_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(fn, args, kwargs):
    named = _bound(fn, args, kwargs)
    x, widths, mode, value = named["input"], tuple(named["pad"]), named["mode"], named["value"]
    # validate with the in-memory code on a stand-in just large enough to decide every check the same way
    reach = 2 * max([abs(int(p)) for p in widths if isinstance(p, (int, np.integer))] + [0]) + 2
    try:
        run_forward(fn, np.zeros(tuple(min(s, reach) for s in x.shape), x.dtype), widths, mode, value)
    except (ValueError, TypeError):
        run_forward(fn, np.broadcast_to(np.zeros((), x.dtype), x.shape), widths, mode, value)
        raise
    k = len(widths) // 2
    pairs = [(0, 0)] * (x.ndim - k) + [(int(widths[2 * i]), int(widths[2 * i + 1])) for i in reversed(range(k))]
    if mode == "replicate" and any(lo < 0 or hi < 0 for lo, hi in pairs):
        for axis, (lo, hi) in enumerate(pairs):       # torch's clamped-index rule, one axis at a time
            if lo or hi:
                index = _replicate_sources(x.shape[axis], lo, hi, axis, x.shape)
                x = da.take(x, index, axis=axis)
        return x
    x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, pairs))]
    pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if not any(lo or hi for lo, hi in pairs):
        return x
    if mode == "constant":
        if x.size == 0:                             # all padding (Dask cannot pad an empty axis)
            return da.full(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pairs)), value, dtype=x.dtype)
        return da.pad(x, pairs, mode="constant", constant_values=value)
    return da.pad(x, pairs, mode=_DASK_MODE[mode])


IMPLEMENTATIONS = {
    F.Convolution: conv,
    F.ConvolutionTranspose: conv_transpose,
    F.Pad: pad,
    _pool.MaxPoolFn: pool,
    _pool.AvgPoolFn: pool,
    _pool.AdaptiveAvgPoolFn: adaptive_avg_pool,
    _pool.AdaptiveMaxPoolFn: whole_plane,
    _interp.InterpolateFn: interpolate,
    _norm.BatchNormFn: batch_norm,
    _norm.LayerNormFn: layer_norm,
    _lin.LinearFn: linear,
    _act.SoftmaxFn: softmax,
    _act.LogSoftmaxFn: softmax,
    _drop.MaskFn: mask,
}
IMPLEMENTATIONS.update({fn: numpy_api for fn in vars(_autograd_ops).values()
                        if isinstance(fn, type) and issubclass(fn, Function) and fn.__module__ == _autograd_ops.__name__})
IMPLEMENTATIONS.update({fn: pointwise for fn in (_act.ReLUFn, _act.ReLU6Fn, _act.LeakyReLUFn, _act.SiLUFn,
                                                 _act.GELUFn, _act.HardswishFn, _act.HardsigmoidFn, _act.SigmoidFn)})

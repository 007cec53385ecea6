"""``map_network``: a whole stack of layers per output block, with one halo exchange.

``model(x)`` on a Dask array runs layer by layer: every layer's output is a Dask array and every windowed layer
exchanges its own halo (exact, but one round of neighbour traffic and one set of intermediate blocks per layer).
:func:`map_network` instead walks the intervals backwards through the stack once per output block: output
``[o0, o1)`` of the last layer needs the interval of its input given by that layer's window arithmetic (the
receptive-field formulas of :mod:`convforge.shapes`, applied to intervals), clipped to the layer's input; that
is the previous layer's output interval, and so on down to the stack's input.  One task reads that input window
(the chunk plus the whole stack's halo) and runs every layer in memory on it, padding only where a window
reaches outside the layer's input (the global border), so the result equals ``model(x)``.

The trade-off: one exchange and no intermediate arrays in the graph, against recomputing the overlapping parts
of intermediate layers in neighbouring tasks (the halo grows by each layer's reach); measurements in
docs/SCALE.md.

Supported layers: ``Conv1d/2d/3d`` (padding modes zeros, reflect, replicate), ``ConvTranspose1d/2d/3d``,
``MaxPool*`` / ``AvgPool*`` and pointwise layers (activations, BatchNorm in eval mode, Dropout in eval mode,
Identity), nested in ``Sequential`` containers.  Anything else raises, naming the layer (use ``model(x)``).
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import numpy as np

from .. import _canon, shapes
from .._padding import pad as _pad
from ..nn import activation as _activation, batchnorm as _batchnorm, containers_more as _more
from ..nn import conv as _conv, dropout as _dropout, pooling as _pooling
from ..nn.container import Sequential
from ._ops import _avg_pool_block, _conv_block, _conv_transpose_block, _max_pool_block, _outside, _pool
from ._tiling import (AxisPlan, chunks_from_boundaries, conv_boundary, conv_window, transpose_boundary,
                      transpose_window, windowed)

__all__ = ["map_network", "network_halo"]

_POINTWISE = (_activation._Inplace, _activation.GELU, _activation.Sigmoid, _batchnorm._BatchNorm, _more.Identity,
              _dropout.Dropout)


class _Step(NamedTuple):
    """One layer in canonical form: ``kind`` is conv, transpose, max, avg or pointwise."""

    kind: str
    layer: object
    channels: int
    kernel: Tuple[int, ...] = ()
    stride: Tuple[int, ...] = ()
    pads: Tuple[Tuple[int, int], ...] = ()
    dilation: Tuple[int, ...] = ()
    in_sizes: Tuple[int, ...] = ()
    out_sizes: Tuple[int, ...] = ()


def _flatten(model):
    if isinstance(model, Sequential) or isinstance(model, (list, tuple)):
        return [leaf for child in (model.children() if isinstance(model, Sequential) else model)
                for leaf in _flatten(child)]
    return [model]


def _step_of(layer, meta):
    """The canonical step of ``layer`` on the empty-batch stand-in ``meta`` ``(0, C, *S)``; refuses the unknown.
    Returns the step and the layer's output stand-in."""
    name = type(layer).__name__
    in_sizes = tuple(meta.shape[2:])
    n = len(in_sizes)
    known = isinstance(layer, (_conv._ConvNd, _pooling._MaxPoolNd, _pooling._AvgPoolNd) + _POINTWISE)
    if not known:
        raise ValueError(f"map_network: layer {name} is not supported (supported: convolutions, transposed "
                         f"convolutions, max/avg pooling and pointwise layers in Sequential containers); use "
                         f"model(x), which runs every convforge op on Dask arrays layer by layer")
    out_meta = np.asarray(layer(meta))
    out = tuple(out_meta.shape[2:])
    common = (layer, out_meta.shape[1])
    if isinstance(layer, _conv._ConvNd):
        kernel, stride, dilation = layer.kernel_size, layer.stride, layer.dilation
        if layer.transposed:
            pads = _canon.canonical_padding(layer._padding_spec, n, allow_strings=False)
            return _Step("transpose", *common, kernel, stride, pads, dilation, in_sizes, out), out_meta
        if layer.padding_mode == "circular":
            raise ValueError(f"map_network: {name}(padding_mode='circular') reads the opposite border; use "
                             f"model(x) (layer by layer, exact) for this network")
        pads = tuple(layer.padding_pairs(in_sizes))
        return _Step("conv", *common, kernel, stride, pads, dilation, in_sizes, out), out_meta
    if isinstance(layer, (_pooling._MaxPoolNd, _pooling._AvgPoolNd)):
        if getattr(layer, "return_indices", False):
            raise ValueError(f"map_network: {name}(return_indices=True) is not supported; use model(x)")
        is_max = isinstance(layer, _pooling._MaxPoolNd)
        kernel, stride, padding, dilation = _pool.window_args(layer.kernel_size, layer.stride, layer.padding,
                                                              getattr(layer, "dilation", 1), n, name)
        pads = tuple((p, p) for p in padding)
        return _Step("max" if is_max else "avg", *common, kernel, stride, pads, dilation, in_sizes, out), out_meta
    if getattr(layer, "training", False) and isinstance(layer, (_batchnorm._BatchNorm, _dropout.Dropout)):
        raise ValueError(f"map_network: {name} is in training mode; call model.eval() (inference only)")
    return _Step("pointwise", *common, in_sizes=in_sizes, out_sizes=in_sizes), out_meta


def _steps(model, meta):
    """Canonical steps of every layer of ``model`` for the empty-batch stand-in ``meta``; and the output's."""
    steps = []
    for layer in _flatten(model):
        step, meta = _step_of(layer, meta)
        steps.append(step)
    if not steps:
        raise ValueError("map_network: the model has no layers")
    return steps, meta


def _input_interval(step, axis, u0, u1):
    """The input interval ``[a, b)`` (unclipped) that outputs ``[u0, u1)`` of ``step`` read along ``axis``."""
    if step.kind == "pointwise":
        return u0, u1
    window = transpose_window if step.kind == "transpose" else conv_window
    return window(u0, u1, step.kernel[axis], step.stride[axis], step.pads[axis][0], step.dilation[axis])


def _intervals(steps, axis, o0, o1):
    """Per step (first to last): ``(a, b, u0, u1)``: the unclipped input window and the output interval."""
    out = []
    for step in reversed(steps):
        a, b = _input_interval(step, axis, o0, o1)
        out.append((a, b, o0, o1))
        n = step.in_sizes[axis]
        o0, o1 = min(max(a, 0), n), max(min(b, n), 0)
        if step.kind == "transpose":
            o0, o1 = min(o0, o1), o1
    return out[::-1]


def _forward_boundary(step, axis, b):
    """Where an input chunk boundary ``b`` lands on the output of ``step`` (keeps blocks aligned)."""
    if step.kind == "pointwise":
        return b
    boundary = transpose_boundary if step.kind == "transpose" else conv_boundary
    return boundary(b, step.kernel[axis], step.stride[axis], step.pads[axis][0], step.dilation[axis])


def _axis_plan(steps, axis, chunks):
    bounds = list(np.cumsum((0,) + tuple(chunks))[1:-1])
    for step in steps:
        bounds = [_forward_boundary(step, axis, int(b)) for b in bounds]
    out_size = steps[-1].out_sizes[axis]
    out_chunks = chunks_from_boundaries(bounds, out_size)
    windows, o0 = [], 0
    for size in out_chunks:
        intervals = _intervals(steps, axis, o0, o0 + size)
        for step, window in zip(steps, intervals):
            _check_reflect(step, axis, window)
        windows.append(intervals[0][:2] + (o0, o0 + size))
        o0 += size
    return AxisPlan(out_chunks, tuple(windows))


def _check_reflect(step, axis, window):
    """Reflect padding at a border mirrors cells of the same block: the block must be wider than the padding."""
    if step.kind != "conv" or step.layer.padding_mode != "reflect":
        return
    n = step.in_sizes[axis]
    lo, hi = _outside(window, n)
    width = min(window[1], n) - max(window[0], 0)
    if (lo or hi) and max(lo, hi) >= width:
        raise ValueError(f"map_network: {type(step.layer).__name__}(padding_mode='reflect') needs {max(lo, hi) + 1} "
                         f"cells of its input inside one block along spatial axis {axis}, but a block there holds "
                         f"{width}; use larger chunks, or model(x) (layer by layer, exact)")


def _run_step(step, slab, windows):
    n = len(windows)
    if step.kind == "pointwise":
        return np.asarray(step.layer(slab))
    layer = step.layer
    if step.kind == "conv":
        if layer.padding_mode != "zeros":
            outside = [_outside(w, i) for w, i in zip(windows, step.in_sizes)]   # the global border, padded here
            slab = _pad(slab, _canon.torch_pad_order(outside), mode=layer.padding_mode)
            windows = [(0, w[1] - w[0]) + tuple(w[2:]) for w in windows]
            return _conv_block(slab, windows, _w(layer.weight), _w(layer.bias), [w[1] for w in windows], step.stride,
                               step.dilation, layer.groups, n, type(layer).__name__)
        return _conv_block(slab, windows, _w(layer.weight), _w(layer.bias), step.in_sizes, step.stride,
                           step.dilation, layer.groups, n, type(layer).__name__)
    if step.kind == "transpose":
        clipped = [(max(w[0], 0), w[1]) + tuple(w[2:]) for w in windows]
        return _conv_transpose_block(slab, clipped, _w(layer.weight), _w(layer.bias), step.stride, step.dilation,
                                     layer.groups, tuple(p[0] for p in step.pads), n, type(layer).__name__)
    if step.kind == "max":
        return _max_pool_block(slab, windows, step.in_sizes, n, step.kernel, step.stride, step.dilation)
    counts = tuple(_pool._avg_divisor((i,), (k,), (s,), (p[0],), (o,), layer.count_include_pad, None, np.float64)
                   for i, k, s, p, o in zip(step.in_sizes, step.kernel, step.stride, step.pads, step.out_sizes))
    return _avg_pool_block(slab, windows, counts, step.in_sizes, n, step.kernel, step.stride,
                           getattr(layer, "divisor_override", None))


def _w(a):
    return None if a is None else np.asarray(a).view(np.ndarray)


def _stack_block(slab, windows, steps):
    """Run every step on the slab; each step's windows come from the output block's interval (``windows``)."""
    per_axis = [_intervals(steps, axis, w[2], w[3]) for axis, w in enumerate(windows)]
    for index, step in enumerate(steps):
        step_windows = [iv[index] for iv in per_axis]
        if any(w[3] <= w[2] for w in step_windows):     # an empty interval (a transposed layer's gap)
            slab = np.zeros(slab.shape[:1] + (step.channels,) + tuple(w[3] - w[2] for w in step_windows), slab.dtype)
        else:
            slab = _run_step(step, slab, step_windows)
    return slab


def map_network(model, x, *, name: str = "map_network"):
    """Apply a stack of layers to a Dask array ``(N, C, *S)`` with one halo exchange per output block.

    Args:
        model: a ``Sequential`` (or a list of layers) of supported layers (module docstring), in eval mode.
        x: a ``dask.array.Array`` ``(N, C, *S)``, chunked along any axes (channel chunks are merged).

    Returns:
        a lazy Dask array equal to ``model(x)``; batch chunks are independent tasks, spatial output blocks
        follow the input's chunks pushed through the stack's strides.

    Memory per task: the input window (chunk + the stack's halo, :func:`network_halo`) times ``C``, plus the
    largest intermediate (chunk + remaining halo) times its channels, plus the engine's workspace.

    Example:
        >>> import numpy as np, dask.array as da, convforge.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 1, 3, padding=1)).double()
        >>> x = da.from_array(np.random.default_rng(0).random((1, 1, 20, 20)), chunks=(1, 1, 7, 9))
        >>> y = map_network(net, x)
        >>> y.chunks[2:], bool(np.allclose(y.compute(), net(x.compute()), rtol=0, atol=1e-12))
        (((7, 7, 6), (9, 9, 2)), True)
    """
    import dask.array as da

    if not isinstance(x, da.Array):
        raise TypeError(f"map_network expects a dask.array.Array, got {type(x).__name__}; for a NumPy array call "
                        f"model(x)")
    if x.ndim < 3:
        raise ValueError(f"map_network expects input (N, C, *spatial), got shape {x.shape}")
    steps, meta = _steps(model, np.zeros((0,) + x.shape[1:], x.dtype))
    layers = [s.layer for s in steps]
    xb = x.rechunk({1: -1})
    plans = [_axis_plan(steps, axis, c) for axis, c in enumerate(xb.chunks[2:])]
    return windowed(xb, plans, _stack_block, meta.shape[1], meta.dtype, name, constants=(tuple(steps),),
                    token_extra=(tuple(map(id, layers)),))       # the layers: one graph key, sent once per worker


def _stand_in(model, in_sizes):
    """An empty-batch input for ``model``: channels and dtype of its first layer."""
    first = _flatten(model)[0]
    dtype = getattr(getattr(first, "weight", None), "dtype", np.float32)
    return np.zeros((0, getattr(first, "in_channels", getattr(first, "num_features", 1))) + tuple(in_sizes), dtype)


def network_halo(model, in_sizes):
    """Input cells each output block reads beyond its own chunk, per spatial axis: ``(left, right)``, from
    :func:`convforge.shapes.receptive_field` (``left = -start``, ``right = start + size - jump``; for stacks with
    transposed layers the jump is a fraction and the halo an envelope).

    Example:
        >>> import convforge.nn as nn
        >>> network_halo(nn.Sequential(nn.Conv3d(1, 1, 3, padding=1), nn.Conv3d(1, 1, 3, padding=1)), (8, 8, 8))
        ((2, 2), (2, 2), (2, 2))
    """
    _steps(model, _stand_in(model, in_sizes))         # refuses unsupported layers with the same messages
    rf = shapes.receptive_field(model)
    sizes, jumps, starts = (v if isinstance(v, tuple) else (v,) * len(in_sizes) for v in rf)
    return tuple((-s, s + z - j) for z, j, s in zip(sizes, jumps, starts))

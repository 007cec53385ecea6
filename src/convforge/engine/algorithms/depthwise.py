"""The ``direct`` algorithm's Numba kernels for transposed convolutions and weight gradients (the backward pass of
depthwise convolutions): grad-input as a direct transposed convolution and grad-weight as direct per-channel
products, instead of the generic paths' batched products of 1x9 matrices.

* :func:`transpose_direct` -- a transposed convolution (same signature and result as ``col2im.col2im``);
  the grad-input of a depthwise conv is one with ``Og == 1``.  Correct for any groups.
* :func:`weight_grad_direct` -- the gradient of a convolution w.r.t. its weight (same result as
  ``im2col.weight_grad`` for compute dtypes); fast when each group has one input channel (depthwise,
  with or without a channel multiplier).  Correct for any groups.

Both need Numba (there is no NumPy path here: the generic algorithms are that path) and raise ValueError when
``numba_kernels(dtype)`` is None -- Numba missing or switched off, or a dtype other than float32/float64 -- or
for more than 3 spatial dims.  Check :func:`available` before choosing them.

Two kernel families (see ``_kernels/depthwise_kernels.py``): stride 1 with equal input and output planes
(MobileNet's stride-1 layers) runs on the flat planes with per-tap masks, several small planes per job; every
other case uses a *phase layout* that turns strides into contiguous loops, on batch tiles of about
``TILE_BYTES``.  Workspace: per-job buffers, a mask of ``K x plane`` bytes and at most ``PARTIAL_BYTES`` of
partial sums per thread -- never the padded input of the whole batch.

Measured (float32, batch 8, MobileNetV2 depthwise 3x3, 2 threads; input grad through the engine's batch split):
144@56 stride 1: input grad 1.5-2.0 ms, weight grad 1.4-1.7 ms; 96@112 stride 2: 5.4-5.8 and 4.3-4.5 ms;
960@7 stride 1: 0.26-0.29 and 0.24-0.29 ms (generic paths before: 2.3-4.4 / 4.6-5.6, 35 / 8.7, 0.6 / 3.0 ms).
"""
from __future__ import annotations

import math

import numpy as np

from ..._algos import as_3d, kernel_module, threads, triple
from ..arrays import all_finite
from .col2im import col2im

TILE_BYTES = 256 * 2 ** 10       # phase kernels: batch tile buffers (fit the L2 cache)
BLOCK_POSITIONS = 1024           # same-size kernels: positions per job on planes below BLOCK_BELOW
BLOCK_BELOW = 512                # (measured: 7x7 2.3x faster blocked, 14x14 ~1.1x, 28x28 slower)
STRIP_POSITIONS = 2048           # same-size weight gradient: accumulator strip on large planes (L1/L2 sized)
PARTIAL_BYTES = 2 ** 20          # blocked weight gradient: per-position partial sums per chunk of channels
MIN_PARALLEL_MACS = 1_000_000    # weight gradient: below this a fork/join (~25 us) costs more than it saves


def available(dtype) -> bool:
    """Whether these algorithms can run for ``dtype`` under the current settings."""
    return kernel_module("depthwise_kernels", dtype) is not None


def _load(dtype, nd, name):
    """The depthwise kernel module, or a ValueError saying why these functions cannot run."""
    kernels = kernel_module("depthwise_kernels", dtype)
    if kernels is None:
        raise ValueError(f"{name} needs Numba with a float32 or float64 compute dtype (Numba missing or switched "
                         f"off with convforge.config(numba=False) / CONVFORGE_NUMBA=0, or dtype {np.dtype(dtype)})")
    if not 1 <= nd <= 3:
        raise ValueError(f"{name} handles 1 to 3 spatial dims, got {nd}")
    return kernels


def _blocks(plane, channels, one_to_one):
    """Channels per job of the same-size kernels: planes smaller than ``BLOCK_BELOW`` are run about
    ``BLOCK_POSITIONS`` positions at a time (several consecutive planes: a 7x7 plane alone is mostly loop
    overhead), which needs channels that map one to one (``Cg == Og == 1``)."""
    if not one_to_one or plane >= BLOCK_BELOW:
        return 1
    return max(1, min(channels, BLOCK_POSITIONS // plane))


def _tile(n, per_sample_elems, itemsize):
    """Samples per batch tile: the tile's buffers near ``TILE_BYTES`` (at least one sample)."""
    return max(1, min(n, TILE_BYTES // max(1, per_sample_elems * itemsize)))


def _blocked_weight_grad(kernels, x, gy, off, mask, blocks, o_lo, o_hi, chunk, gw):
    """``gw[o_lo:o_hi, 0]`` of a depthwise layer on small planes: per-position partial sums from the kernel,
    ``chunk`` channels at a time, each plane's run summed by one matrix-vector product (BLAS)."""
    k_prod, plane = len(off), x.shape[2]
    ones = np.ones(plane, dtype=x.dtype)
    buf = np.empty(k_prod * min(chunk, o_hi - o_lo) * plane, dtype=x.dtype)
    with threads.single_threaded_blas():
        for o0 in range(o_lo, o_hi, chunk):
            o1 = min(o0 + chunk, o_hi)
            p = buf[:k_prod * (o1 - o0) * plane].reshape(k_prod, (o1 - o0) * plane)
            kernels.weight_grad_same_blocks(x, gy, off, mask, blocks, o0, o1, p)
            gw[o0:o1, 0, :] = (p.reshape(k_prod * (o1 - o0), plane) @ ones).reshape(k_prod, o1 - o0).T


def transpose_direct(x, w, stride, padding, dilation, groups, out_sizes):
    """Transposed convolution of ``x (N, C, *S)`` with ``w (C, Og, *K)``: ``(N, groups*Og, *out_sizes)``, the full
    output cropped by the low padding (``out_sizes`` may include output_padding), like ``col2im.col2im``.

    Serial: the engine's splitter runs batch chunks on threads."""
    n, c = x.shape[:2]
    og = w.shape[1]
    kernel, in_sizes = tuple(w.shape[2:]), tuple(x.shape[2:])
    nd = len(kernel)
    kernels = _load(x.dtype, nd, "transpose_direct")
    shape = (n, groups * og) + tuple(out_sizes)
    if math.prod(shape) == 0 or math.prod(in_sizes) == 0 or c == 0:
        return np.zeros(shape, dtype=x.dtype)
    y = np.empty(shape, dtype=x.dtype)          # the kernels write every element
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    lo = tuple(p[0] for p in padding)
    if all(s == 1 for s in stride) and in_sizes == tuple(out_sizes):
        plane = math.prod(in_sizes)
        blocks = _blocks(plane, groups * og, c // groups == 1 and og == 1)
        off, mask = kernels.same_masks(*triple(in_sizes, 1), *triple(kernel, 1), *triple(dilation, 1),
                                       *triple(lo, 0), -1, blocks)
        kernels.transpose_same(x.reshape(n, c, plane), w.reshape(c, og, -1), groups, off, mask, blocks,
                               y.reshape(n, groups * og, plane))
        return y
    if not all_finite(w):     # the phase buffers are zero-extended: inf * 0 would give NaN where torch has none
        return col2im(x, w, stride, padding, dilation, groups, out_sizes)
    full = tuple(max((i - 1) * s + d * (k - 1) + 1, l + o)
                 for i, s, d, k, l, o in zip(in_sizes, stride, dilation, kernel, lo, out_sizes))
    phase_plane = math.prod(-(-f // s) for f, s in zip(full, stride))
    nb = _tile(n, phase_plane * (math.prod(stride) + 1), x.itemsize)
    kernels.transpose_phase(as_3d(x, 2, nd), as_3d(w, 2, nd), groups, *triple(stride, 1), *triple(dilation, 1),
                            *triple(lo, 0), *triple(full, 1), nb, as_3d(y, 2, nd))
    return y


def weight_grad_direct(x, grad_output, kernel, stride, padding, dilation, groups):
    """Gradient of ``y = conv(x, w, stride, padding, dilation, groups)`` w.r.t. ``w``: ``(O, C/groups, *kernel)``
    in ``x``'s dtype (accumulated in it: per position over the batch, then pairwise; see the kernels' module).

    Split over output-channel blocks on ``threads.thread_count()`` threads when the call is big enough, each part
    writing its own rows of the result."""
    kernel = tuple(kernel)
    nd = len(kernel)
    kernels = _load(x.dtype, nd, "weight_grad_direct")
    n, c = x.shape[:2]
    o_ch, out_sizes = grad_output.shape[1], tuple(grad_output.shape[2:])
    cg, og = c // groups, o_ch // groups
    gw = np.zeros((o_ch, cg) + kernel, dtype=x.dtype)
    if gw.size == 0 or n == 0 or math.prod(out_sizes) == 0:
        return gw
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(grad_output, dtype=x.dtype)
    lo = tuple(p for p, _ in padding)
    if all(s == 1 for s in stride) and tuple(x.shape[2:]) == out_sizes:
        plane = math.prod(out_sizes)
        blocks = _blocks(plane, o_ch, cg == 1 and og == 1)
        off, mask = kernels.same_masks(*triple(out_sizes, 1), *triple(kernel, 1), *triple(dilation, 1),
                                       *triple(lo, 0), 1, blocks)
        x3, gy3, gw3 = x.reshape(n, c, plane), gy.reshape(n, o_ch, plane), gw.reshape(o_ch, cg, -1)
        if blocks > 1:
            chunk = max(blocks, PARTIAL_BYTES // (len(off) * plane * x.itemsize) // blocks * blocks)

            def part(o0, o1):
                return lambda: _blocked_weight_grad(kernels, x3, gy3, off, mask, blocks, o0, o1, chunk, gw3)
        else:
            def part(o0, o1):
                return lambda: kernels.weight_grad_same(x3, gy3, groups, off, mask, STRIP_POSITIONS, o0, o1, gw3)
    else:
        extent = tuple(i + a + b for i, (a, b) in zip(x.shape[2:], padding))
        phase_plane = math.prod(-(-e // s) for e, s in zip(extent, stride))
        nb = _tile(n, phase_plane * (math.prod(stride) + 1), x.itemsize)
        x3, gy3, gw3 = as_3d(x, 2, nd), as_3d(gy, 2, nd), as_3d(gw, 2, nd)
        args = (groups, *triple(lo, 0), *triple(extent, 1), *triple(stride, 1), *triple(dilation, 1), nb)

        def part(o0, o1):
            return lambda: kernels.weight_grad_phase(x3, gy3, *args, o0 * cg, o1 * cg, gw3)
    macs = n * o_ch * cg * math.prod(out_sizes) * math.prod(kernel)
    t = min(threads.thread_count(), o_ch)
    if t == 1 or macs < MIN_PARALLEL_MACS:
        part(0, o_ch)()
    else:
        step = -(-o_ch // t)
        threads.run_parts([part(o0, min(o0 + step, o_ch)) for o0 in range(0, o_ch, step)])
    return gw

"""The parallel policy: whether a call pays for a fork/join, and how a (transposed) convolution is cut into
independent parts that run on threads (``convforge._algos.threads``: a pool, each part with a single-threaded
BLAS and an equal share of the workspace bound).  An algorithm says how it wants to be split in its
:class:`~convforge.engine.algorithms.Threading` record; this module reads nothing else about it.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _config
from .._algos import threads
from .arrays import band_of_rows

# Below this many multiply-adds one thread beats a fork/join (~0.1 ms of Python overhead).  Algorithms that run
# fewer multiply-adds per second than a product split from a smaller size (``Threading.speed_ratio``; measured
# for the direct kernels: 144@56 depthwise at batch 1, 4.1M multiply-adds, 0.25 ms on one thread and 0.42 ms
# split; MobileNet's 960@7 at batch 8, 3.4M, 0.27 ms either way; 144@56 at batch 8, 33M, 2.4 ms on one thread
# and 1.7 ms split).
MIN_PARALLEL_MACS = 8_000_000
# Algorithms whose time is one big BLAS product (``Threading.blas_threaded``) are not split below this size
# when the batch is smaller than the thread count.
MAX_BLAS_THREADED_MACS = 400_000_000


def worth_splitting(macs, speed_ratio=1):
    """Whether a call of ``macs`` multiply-adds (of an algorithm ``speed_ratio`` times slower per multiply-add
    than a product) pays for a fork/join."""
    return macs * speed_ratio >= MIN_PARALLEL_MACS


def _whole(algorithm, problem, t):
    """Whether the call runs in one piece: one thread, too small, or an algorithm that threads itself."""
    how = algorithm.threading
    return t == 1 or not worth_splitting(problem.macs, how.speed_ratio) or how.own_threads


def split_conv(algorithm, run, x, w, p):
    """``run(x, w, p)`` on independent parts of the convolution on several threads: batch chunks, else bands of
    output rows, else channel groups, else output-channel blocks."""
    t = threads.thread_count()
    how = algorithm.threading
    if _whole(algorithm, p, t):
        return run(x, w, p)
    n, c = x.shape[:2]
    o_ch = w.shape[0]
    if n < t and how.blas_threaded and p.macs < MAX_BLAS_THREADED_MACS:
        # Fewer samples than threads on a small layer: splitting one sample into row bands (each with a
        # one-thread BLAS) costs band copies and a fork/join, and measured ~2x slower on a quiet machine than one
        # product that the BLAS threads itself (ResNet batch-1 layers, docs/PERFORMANCE.md), so the BLAS keeps
        # its own threads.  Big layers still split: Winograd's transforms (serial Numba) dominate at VGG's 224.
        return run(x, w, p)
    y_bytes = p.output_bytes
    limit = _config.workspace_limit(y_bytes)
    if how.shared is not None:      # computed once for all parts (batch chunks and row bands share it)
        shared = how.shared(w, p)
        limit -= shared.nbytes
        full_w, plain = w, run
        run = lambda xx, ww, pp: plain(xx, ww, pp, shared if ww is full_w else None)   # noqa: E731
    padded_bytes = c * math.prod(p.padded_sizes) * n * x.itemsize
    if y_bytes > limit // 2:       # the parts' results are extra memory too: keep the call under the bound
        return run(x, w, p)
    jobs, band_copies = [], 0
    if n >= t:
        for a, z in threads.even_parts(n, t):
            jobs.append(((slice(a, z),), lambda a=a, z=z: run(x[a:z], w, p.on(x[a:z], w))))
    elif p.out_sizes[0] >= 2 * t and padded_bytes + y_bytes <= limit // 2:
        band_copies = padded_bytes
        zero = ((0, 0),) * p.n_spatial

        def band(r0, r1):
            xb = band_of_rows(x, r0, r1, p.kernel, p.stride, p.padding, p.dilation)
            return run(xb, w, p.on(xb, w, padding=zero, out_sizes=(r1 - r0,) + p.out_sizes[1:]))
        for r0, r1 in threads.even_parts(p.out_sizes[0], t, how.band_multiple):
            jobs.append(((slice(None), slice(None), slice(r0, r1)), lambda r0=r0, r1=r1: band(r0, r1)))
    elif p.groups >= t:
        jobs = _group_parts(run, x, w, p, t, p.out_per_group)
    elif p.groups == 1 and o_ch >= t:
        for o0, o1 in threads.even_parts(o_ch, t):
            jobs.append(((slice(None), slice(o0, o1)), lambda o0=o0, o1=o1: run(x, w[o0:o1], p.on(x, w[o0:o1]))))
    else:
        return run(x, w, p)
    y = np.empty(p.output_shape, dtype=x.dtype)
    return _gather(jobs, y, limit - y_bytes - band_copies)


def split_conv_transpose(algorithm, run, x, w, p):
    """Transposed convolution in parts: batch chunks, else output-channel blocks (groups == 1), else groups."""
    t = threads.thread_count()
    if _whole(algorithm, p, t):
        return run(x, w, p)
    n = x.shape[0]
    og = w.shape[1]
    y_bytes = p.output_bytes
    limit = _config.workspace_limit(y_bytes)
    if y_bytes > limit // 2:       # the parts' results are extra memory too: keep the call under the bound
        return run(x, w, p)
    jobs = []
    if n >= t:
        for a, z in threads.even_parts(n, t):
            jobs.append(((slice(a, z),), lambda a=a, z=z: run(x[a:z], w, p.on(x[a:z], w))))
    elif p.groups == 1 and og >= t:
        for o0, o1 in threads.even_parts(og, t):
            jobs.append(((slice(None), slice(o0, o1)),
                         lambda o0=o0, o1=o1: run(x, w[:, o0:o1], p.on(x, w[:, o0:o1]))))
    elif p.groups >= t:
        jobs = _group_parts(run, x, w, p, t, p.in_per_group)
    else:
        return run(x, w, p)
    y = np.empty(p.output_shape, dtype=x.dtype)
    return _gather(jobs, y, limit - y_bytes)


def _group_parts(run, x, w, p, t, weight_rows):
    """Parts over ``t`` ranges of groups: their input channels, weight rows (``weight_rows`` per group: ``Og`` for
    a convolution, ``Cg`` for a transposed one) and output channels."""
    cg, og = p.in_per_group, p.out_per_group

    def part(g0, g1):
        xs, ws = x[:, g0 * cg:g1 * cg], w[g0 * weight_rows:g1 * weight_rows]
        return run(xs, ws, p.on(xs, ws, groups=g1 - g0))
    return [((slice(None), slice(g0 * og, g1 * og)), lambda g0=g0, g1=g1: part(g0, g1))
            for g0, g1 in threads.even_parts(p.groups, t)]


def _gather(jobs, y, budget):
    """Run the parts, each with an equal share of ``budget`` (the workspace left after the parts' results and
    band copies), and write their results into ``y``."""
    share = max(1, budget // len(jobs))

    def job(where, fn):
        def run():
            with _config.config(workspace_bytes=share):
                y[where] = fn()
        return run
    threads.run_parts([job(where, fn) for where, fn in jobs])
    return y

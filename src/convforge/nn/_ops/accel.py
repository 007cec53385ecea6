"""Where the ops find their optional Numba kernels (``convforge._kernels.layer_kernels``).

The gate and the loader are the engine's: :func:`convforge._algos.kernel_module` imports the layer-kernel module
only when Numba is usable and switched on (``convforge.config(numba=...)``, ``CONVFORGE_NUMBA``) for the dtype,
and degrades with one warning when Numba is broken.  None means: use NumPy.
"""
from __future__ import annotations

from ... import _algos
from ..._algos import threads

__all__ = ["layer_kernels", "plane_ranges", "over_planes", "elementwise", "chunked"]

_SPLIT_WORK = 1 << 20      # elements; below this one thread is faster than a fork/join
_CHUNK = 1 << 14           # elements per NumPy pass in chunked(): the passes over one chunk stay in cache


def layer_kernels(dtype):
    """The compiled layer kernels for ``dtype`` (float32/float64), or None when the NumPy path must run."""
    return _algos.kernel_module("layer_kernels", dtype)


def plane_ranges(planes: int, work: int):
    """Contiguous ``(start, stop)`` ranges of ``planes`` leading-axis slices: one per engine thread when the call
    is big enough (``work`` elements touched) to pay for the split, else one."""
    workers = min(threads.thread_count(), planes)
    if workers <= 1 or work < _SPLIT_WORK:
        return [(0, planes)]
    return threads.even_parts(planes, workers)


def over_planes(planes: int, work: int, run) -> None:
    """Call ``run(start, stop)`` on the :func:`plane_ranges` of ``planes``, concurrently."""
    threads.run_parts([lambda a=a, b=b: run(a, b) for a, b in plane_ranges(planes, work)])


def elementwise(kernel, x, out, *args) -> None:
    """``kernel(x_flat, out_flat, *args)`` over contiguous ``x`` and ``out`` (the same shape; may be one array),
    split into contiguous chunks over the engine's threads when large."""
    xf, of = x.reshape(-1), out.reshape(-1)
    over_planes(xf.size, xf.size, lambda a, b: kernel(xf[a:b], of[a:b], *args))


def chunked(fn, out, *arrays) -> None:
    """``fn(*array_chunks, out_chunk)`` over cache-sized pieces of contiguous ``arrays`` and ``out`` (all of one
    shape), split over the engine's threads when large: a chain of NumPy passes (vectorised ``exp``, ...) then
    reads memory once."""
    flats = [a.reshape(-1) for a in arrays] + [out.reshape(-1)]
    size = flats[-1].size

    def run(a, b):
        for start in range(a, b, _CHUNK):
            stop = min(b, start + _CHUNK)
            fn(*[f[start:stop] for f in flats])

    over_planes(size, size, run)

"""Memory bound: a convolution call's extra memory (tracemalloc peak minus the output) stays under
``max(workspace_bytes, output size)``, for every algorithm, including when one sample alone is over the bound.

The smallest unit of work is one output row of one sample for im2col (deeper dims are tiled too), one row of
4x4 tiles for Winograd, and one padded sample for direct, pointwise, implicit and col2im; the cases below are sized so
that these units fit while an untiled algorithm would break the bound.

tracemalloc sees NumPy's allocations; the Numba kernels allocate nothing large (only a few rows of scratch).
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import convforge
import convforge.nn.functional as F
from convforge import engine
from convforge.engine import parallel
from convforge.engine.algorithms import implicit as _implicit
from convforge._algos import numba_kernels

SLACK = 64 * 1024      # weight reshapes, small temporaries, Python objects


def peak_extra(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - out.nbytes, out


CASES = [
    # algorithm, dtype, input shape, weight shape, kwargs
    ("im2col", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(padding=1)),
    ("im2col", np.float64, (2, 8, 40, 40), (4, 8, 5, 5), dict(padding=2, dilation=1)),   # one sample > bound
    ("im2col", np.float64, (4, 6, 10, 12, 12), (3, 6, 3, 3, 3), dict(padding=1)),
    ("direct", np.float64, (16, 8, 24, 24), (8, 1, 3, 3), dict(padding=1, groups=8)),
    ("pointwise", np.float64, (32, 16, 24, 24), (4, 16, 1, 1), dict(stride=2)),
    ("winograd", np.float32, (16, 16, 24, 24), (4, 16, 3, 3), dict(padding=1)),
    ("winograd", np.float32, (1, 4, 192, 192), (1, 4, 3, 3), dict(padding=1)),          # row bands
    ("implicit", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(padding=1)),
    ("implicit", np.float32, (8, 6, 10, 12, 12), (8, 3, 3, 3, 3), dict(padding=1, groups=2)),
    ("implicit", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(stride=2, padding=1)),     # phase split
]


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("algorithm, dtype, xs, ws, kw", CASES)
def test_conv_workspace_is_bounded(algorithm, dtype, xs, ws, kw, numba):
    if algorithm == "implicit" and (not numba or numba_kernels() is None):
        pytest.skip("the implicit-GEMM kernels need Numba")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    budget = 64 * 1024
    with convforge.config(algorithm=algorithm, workspace_bytes=budget, numba=numba):
        F.conv(x, w, **kw)                     # compile first: Numba's compiler allocates through Python
        extra, y = peak_extra(lambda: F.conv(x, w, **kw))
        assert engine.last_choice() == algorithm
    with convforge.config(algorithm="im2col"):
        ref = F.conv(x.astype(np.float64), w.astype(np.float64), **kw)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(y, ref, rtol=0, atol=(1e-4 if dtype == np.float32 else 1e-12) * scale)
    bound = max(budget, y.nbytes)
    naive = x.shape[1] * np.prod(ws[2:]) * y[0, 0].size * x.shape[0] * x.itemsize   # untiled im2col columns
    assert naive > 2 * bound, "the case must be big enough that an untiled algorithm would break the bound"
    assert extra <= bound + SLACK, f"{algorithm}: extra {extra} bytes > bound {bound} (+{SLACK} slack)"


@pytest.mark.parametrize("numba", [True, False])
def test_transposed_workspace_is_bounded(numba):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 12, 12))
    w = rng.standard_normal((8, 4, 4, 4))
    budget = 64 * 1024
    with convforge.config(workspace_bytes=budget, numba=numba):
        F.conv_transpose2d(x, w, None, 2, 1)
        extra, y = peak_extra(lambda: F.conv_transpose2d(x, w, None, 2, 1))
    bound = max(budget, y.nbytes)
    assert 16 * 4 * 16 * 144 * 8 > 2 * bound                   # untiled columns would break it
    assert extra <= bound + SLACK, f"col2im: extra {extra} > bound {bound}"


def test_default_bound_is_64_mib_or_the_output():
    from convforge import _config
    assert _config.workspace_limit(0) == 64 * 2 ** 20
    assert _config.workspace_limit(100 * 2 ** 20) == 100 * 2 ** 20
    with convforge.config(workspace_bytes=2 ** 20):
        assert _config.workspace_limit(10) == 2 ** 20


@pytest.mark.parametrize("shape", [(8, 8, 24, 24), (1, 8, 48, 48)])      # batch parts, row-band parts
def test_threaded_parts_share_the_bound(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((2, 8, 3, 3))
    budget = 256 * 1024
    old = parallel.MIN_PARALLEL_MACS, parallel.MAX_BLAS_THREADED_MACS
    parallel.MIN_PARALLEL_MACS = 0
    parallel.MAX_BLAS_THREADED_MACS = 0   # batch 1 must still split into row bands here
    try:
        with convforge.config(workspace_bytes=budget, threads=2, algorithm="im2col"):
            F.conv2d(x, w, None, 1, 1)
            extra, y = peak_extra(lambda: F.conv2d(x, w, None, 1, 1))
    finally:
        parallel.MIN_PARALLEL_MACS, parallel.MAX_BLAS_THREADED_MACS = old
    bound = max(budget, y.nbytes)
    assert x.shape[1] * 9 * y[0, 0].size * x.shape[0] * 8 > 2 * bound
    assert extra <= bound + SLACK, f"threaded im2col: extra {extra} > bound {bound}"


GRAD_CASES = [
    # algorithm, dtype, input shape, weight shape, kwargs, threads
    ("im2col", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(padding=1), 1),
    ("im2col", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(padding=1, stride=2), 2),
    ("im2col", np.float64, (2, 8, 40, 40), (4, 8, 5, 5), dict(padding=2), 1),           # one sample > bound
    ("im2col", np.float64, (4, 6, 10, 12, 12), (3, 6, 3, 3, 3), dict(padding=1), 1),    # deeper blocks
    ("winograd", np.float32, (16, 16, 24, 24), (4, 16, 3, 3), dict(padding=1), 2),
    ("winograd", np.float32, (1, 4, 192, 192), (1, 4, 3, 3), dict(padding=1), 1),       # tile-row bands
    ("implicit", np.float64, (16, 8, 24, 24), (4, 8, 3, 3), dict(padding=1), 2),
    ("implicit", np.float64, (2, 8, 40, 40), (4, 8, 5, 5), dict(padding=2), 1),         # one sample > bound
    ("implicit", np.float32, (4, 6, 10, 12, 12), (4, 3, 3, 3, 3), dict(padding=1, groups=2), 2),
]


@pytest.mark.parametrize("algorithm, dtype, xs, ws, kw, threads", GRAD_CASES)
def test_weight_and_input_gradients_are_bounded(algorithm, dtype, xs, ws, kw, threads):
    """Backward: grad input and grad weight each stay under the bound (the weight gradient pads and unfolds
    the input tile by tile; threaded parts share the bound)."""
    if algorithm == "implicit" and _implicit.kernels(np.float64) is None:
        pytest.skip("the implicit-GEMM kernels need Numba")
    from convforge.nn.grad import conv_backward
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    gy = rng.standard_normal(F.conv(x, w, **kw).shape).astype(dtype)
    budget = 64 * 1024
    old = parallel.MIN_PARALLEL_MACS
    parallel.MIN_PARALLEL_MACS = 0
    try:
        with convforge.config(algorithm=algorithm, workspace_bytes=budget, threads=threads):
            for needs in ((True, False, False), (False, True, False)):
                conv_backward(gy, x, w, needs=needs, **kw)          # compile first
                extra, _ = peak_extra(lambda: [g for g in conv_backward(gy, x, w, needs=needs, **kw)
                                               if g is not None][0])
                size = x.nbytes if needs[0] else w.nbytes
                bound = max(budget, size)
                assert extra <= bound + SLACK, f"{algorithm} {needs}: extra {extra} > bound {bound}"
    finally:
        parallel.MIN_PARALLEL_MACS = old
    naive = x.shape[1] * np.prod(ws[2:]) * gy[0, 0].size * x.shape[0] * x.itemsize
    assert naive > 2 * budget, "the case must be big enough that untiled columns would break the bound"


TRANSPOSED_SAMPLE_CASES = [     # one sample's columns exceed the bound: channel blocks x input-row bands
    ((1, 8, 10, 10, 10), (8, 4, 4, 4, 4), dict(stride=2)),
    ((2, 16, 24, 24), (16, 8, 8, 8), dict(stride=4, padding=3)),
    ((1, 4, 6, 40), (4, 6, 3, 5), dict(stride=(1, 3), padding=(1, 2), dilation=(2, 1), groups=2)),
]


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("xs, ws, kw", TRANSPOSED_SAMPLE_CASES)
def test_transposed_workspace_is_bounded_within_a_sample(xs, ws, kw, numba):
    """col2im tiles one sample too (issue 12: ConvTranspose3d(32, 16, 4, stride=2) on (1, 32, 48, 48, 48) took
    489 MB against the 64 MiB bound); values equal torch's."""
    import torch
    from conftest import assert_close, to_torch
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    op = f"conv_transpose{len(xs) - 2}d"
    budget = 64 * 1024
    with convforge.config(workspace_bytes=budget, numba=numba, algorithm="col2im"):
        getattr(F, op)(x, w, **kw)
        extra, y = peak_extra(lambda: getattr(F, op)(x, w, **kw))
    assert_close(y, getattr(torch.nn.functional, op)(to_torch(x), to_torch(w), **kw).numpy())
    bound = max(budget, y.nbytes)
    cols = ws[1] * np.prod(ws[2:]) * np.prod(xs[2:]) * 8 * kw.get("groups", 1)     # one sample's columns
    assert cols > 2 * bound, "one sample's columns must break the bound"
    assert extra <= bound + SLACK, f"col2im: extra {extra} > bound {bound}"


@pytest.mark.slow
@pytest.mark.parametrize("layer, shape", [((32, 16, 4, 2), (1, 32, 48, 48, 48)), ((64, 64, 8, 4), (1, 64, 128, 128))])
def test_issue_transposed_layers_stay_under_64_mib(layer, shape):
    c, o, k, s = layer
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c, o) + (k,) * (len(shape) - 2)).astype(np.float32)
    op = f"conv_transpose{len(shape) - 2}d"
    with convforge.config(algorithm="col2im"):
        extra, y = peak_extra(lambda: getattr(F, op)(x, w, stride=s))
    assert extra <= max(64 * 2 ** 20, y.nbytes) + SLACK, extra

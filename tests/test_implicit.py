"""The implicit-GEMM algorithm (``convforge._algos.implicit``) and its SIMD building blocks, against torch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import convforge
import convforge.nn.functional as F
from convforge.engine import ConvProblem, gradients, parallel, run, select
from convforge.engine.algorithms import implicit as _implicit
from conftest import torch
from test_algorithms import HYP, TOL, WORKSPACES, check_rel, run_forced, torch_conv
from _configs import conv_configs

pytestmark = pytest.mark.skipif(_implicit.kernels(np.float64) is None, reason="needs Numba")


@st.composite
def implicit_configs(draw, max_size=9):
    """Convolutions (stride 1 half the time: strided ones are split into phases) with output-channel counts
    that cover both kernels (blocks of 4 and of 8) and blocks that run past a group's last channel."""
    cfg = draw(conv_configs(max_size=max_size))
    if draw(st.booleans()):
        cfg.stride = (1,) * cfg.nd
    cfg.cout_per_group = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 9, 16, 17]))
    return cfg


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=implicit_configs(), workspace=WORKSPACES, seed=st.integers(0, 2 ** 16))
def test_implicit_matches_torch(dtype, cfg, workspace, seed):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype)
    y = run_forced("implicit", True, workspace, F.conv, x, w, b, cfg.stride, cfg.padding, cfg.dilation,
                   cfg.groups)
    assert y.dtype == dtype
    check_rel(y, torch_conv(cfg, x, w, b), TOL[dtype], "implicit")


@pytest.mark.parametrize("threads", [2, 3])
@HYP
@given(cfg=implicit_configs(), seed=st.integers(0, 2 ** 16), workspace=WORKSPACES)
def test_implicit_threads_match_torch(threads, cfg, seed, workspace):
    """Every split: samples (each part pads its own), else groups, output-channel blocks or positions."""
    x, w, b = cfg.arrays(np.random.default_rng(seed), np.float64)
    old = parallel.MIN_PARALLEL_MACS
    parallel.MIN_PARALLEL_MACS = 0
    try:
        with convforge.config(threads=threads, algorithm="implicit", workspace_bytes=workspace):
            y = F.conv(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    finally:
        parallel.MIN_PARALLEL_MACS = old
    check_rel(y, torch_conv(cfg, x, w, b), 1e-10, f"implicit in {threads} parts")


@pytest.mark.parametrize("shape, weight, groups", [
    ((1, 3, 40, 37), (20, 3, 3, 3), 1),           # one sample: parts over output-channel blocks
    ((1, 4, 300), (4, 1, 5), 4),                   # one sample, groups >= threads
    ((1, 2, 70, 70), (3, 2, 3, 3), 1),             # one block: parts over positions
])
def test_implicit_single_sample_parts(shape, weight, groups, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_MACS", 0)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(shape), rng.standard_normal(weight)
    with convforge.config(threads=2, algorithm="implicit"):
        y = F.conv(x, w, None, 1, 2, 1, groups)
    fn = getattr(torch.nn.functional, f"conv{len(shape) - 2}d")
    check_rel(y, fn(torch.from_numpy(x), torch.from_numpy(w), None, 1, 2, 1, groups).numpy(), 1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=implicit_configs(), seed=st.integers(0, 2 ** 16), threads=st.sampled_from([1, 2, 3]),
       workspace=WORKSPACES)
def test_implicit_weight_gradient_matches_torch(dtype, cfg, seed, threads, workspace):
    """The weight gradient under the forced algorithm (implicit kernels at stride 1, im2col when strided),
    threaded over groups or output-channel blocks and batch-tiled, against torch's autograd."""
    x, w, _ = cfg.arrays(np.random.default_rng(seed), dtype)
    xt, wt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)).requires_grad_()
    fn = getattr(torch.nn.functional, f"conv{cfg.nd}d")
    pads = []
    for lo, hi in reversed(cfg.padding):
        pads += [lo, hi]
    y = fn(torch.nn.functional.pad(xt, pads), wt, None, cfg.stride, 0, cfg.dilation, cfg.groups)
    gy = np.random.default_rng(seed + 1).standard_normal(tuple(y.shape))
    y.backward(torch.from_numpy(gy))
    old = parallel.MIN_PARALLEL_MACS
    parallel.MIN_PARALLEL_MACS = 0
    try:
        with convforge.config(algorithm="implicit", threads=threads, workspace_bytes=workspace):
            problem = ConvProblem.conv(x.shape, w.shape, x.dtype, cfg.stride, cfg.padding, cfg.dilation,
                                       cfg.groups, gy.shape[2:])
            got = gradients.conv_weight_grad(x, gy.astype(dtype), problem)
    finally:
        parallel.MIN_PARALLEL_MACS = old
    assert got.dtype == dtype
    check_rel(got, wt.grad.numpy(), TOL[dtype], "implicit weight gradient")


def pick(dtype, kernel, stride, dilation, groups, cg, og, out_sizes):
    """The algorithm the selector chooses for the weight gradient of such a layer."""
    problem = ConvProblem.conv((1, groups * cg) + out_sizes, (groups * og, cg) + kernel, dtype, stride,
                               ((0, 0),) * len(kernel), dilation, groups, out_sizes)
    return select.choose(problem, "weight_grad").name


def one_call(x, w, stride, padding, dilation, groups, out_sizes):
    """One call of the selected (or forced) algorithm, without the engine's cut-down to the cells that meet."""
    return run.algorithm_call(x, w, ConvProblem.conv(x.shape, w.shape, x.dtype, stride, padding, dilation, groups,
                                                     out_sizes))


def test_weight_gradient_selection():
    f32 = np.float32
    fast = _implicit.fast_here()
    assert pick(f32, (5, 5, 5), (1, 1, 1), (1, 1, 1), 1, 32, 32, (16, 32, 32)) == ("implicit" if fast else "im2col")
    assert pick(f32, (3, 3), (1, 1), (1, 1), 32, 16, 16, (14, 14)) == ("implicit" if fast else "im2col")
    assert pick(f32, (3, 3), (1, 1), (1, 1), 1, 256, 256, (14, 14)) == "im2col"          # dense 2-D
    assert pick(f32, (3, 3), (2, 2), (1, 1), 32, 16, 16, (7, 7)) == "im2col"            # strided
    assert pick(f32, (1, 1), (1, 1), (1, 1), 2, 16, 16, (7, 7)) == "im2col"             # 1x1


def test_negative_padding_crops_first():
    """Canonical padding can be negative (the input gradient's dual padding ``d*(k-1) - pad``)."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((5, 3, 2, 3))
    pads = ((-1, 2), (1, -2))
    with convforge.config(algorithm="implicit"):
        got = one_call(x, w, (1, 1), pads, (1, 1), 1, (9, 3))
    with convforge.config(algorithm="im2col"):
        want = one_call(x, w, (1, 1), pads, (1, 1), 1, (9, 3))
    check_rel(got, want, 1e-12)


def test_input_gradient_with_large_padding_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((6, 4, 2, 2))
    gy = rng.standard_normal((2, 6, 11, 12))
    gx = convforge.nn.grad.conv2d_input(x.shape, w, gy, padding=3)
    xt = torch.from_numpy(x).requires_grad_()
    torch.nn.functional.conv2d(xt, torch.from_numpy(w), padding=3).backward(torch.from_numpy(gy))
    check_rel(gx, xt.grad.numpy(), 1e-10)


def test_forced_implicit_on_integers_raises():
    with convforge.config(algorithm="implicit"):
        with pytest.raises(ValueError, match=r"config\(algorithm='implicit'\) cannot run this convolution: the "
                                             r"implicit-GEMM kernels need Numba .* and float32 or float64, got int64"):
            F.conv(np.ones((1, 2, 6, 6), np.int64), np.ones((3, 2, 3, 3), np.int64))


@pytest.mark.parametrize("stride, dilation", [((2, 2), (1, 1)), ((2, 3), (2, 1)), ((3, 2), (3, 4))])
def test_phase_split_is_a_stride1_convolution(stride, dilation):
    """The phase-split input and weight give the strided convolution as a stride-1 one (checked with im2col)."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 4, 15, 14)), rng.standard_normal((6, 2, 3, 4))
    pads = ((1, 2), (0, 3))
    out = tuple((i + lo + hi - d * (k - 1) - 1) // s + 1
                for i, (lo, hi), k, s, d in zip(x.shape[2:], pads, w.shape[2:], stride, dilation))
    xs, ws, d1, p1 = _implicit.phase_split(x, w, stride, pads, dilation, 2, out)
    with convforge.config(algorithm="im2col"):
        got = one_call(xs, ws, (1, 1), p1, d1, 2, out)
        want = one_call(x, w, stride, pads, dilation, 2, out)
    check_rel(got, want, 1e-12)


def test_forced_implicit_without_numba_raises():
    with convforge.config(algorithm="implicit", numba=False):
        with pytest.raises(ValueError, match=r"implicit-GEMM kernels need Numba"):
            F.conv(np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3)))


# ------------------------------------------------------------------------------------------ SIMD blocks

def test_vector_operations():
    from numba import njit
    from convforge._kernels.simd import at, lanes, vfma, vload, vstore_lanes, vzero

    @njit
    def fma_store(x, s, out, lo, hi):
        acc = vfma(vzero(x), vload(x, 1), s)
        acc = vfma(acc, vload(x, 0), at(x, 2))
        vstore_lanes(out, 3 - lo, acc, lo, hi)

    for dtype in (np.float32, np.float64):
        n = lanes(np.dtype(dtype).itemsize)
        x = np.arange(1, n + 3, dtype=dtype)
        want = x[1:n + 1] * 2.5 + x[:n] * x[2]
        for lo, hi in ((0, n), (2, n - 1), (n - 1, n + 5), (-3, 1), (4, 4)):
            out = np.full(n + 8, -1.0, dtype=dtype)
            fma_store(x, 2.5, out, lo, hi)
            expect = np.full(n + 8, -1.0, dtype=dtype)
            a, z = max(lo, 0), min(hi, n)
            expect[3 - lo + a:3 - lo + z] = want[a:z]
            np.testing.assert_array_equal(out, expect)

"""Every convolution algorithm, forced with ``convforge.config(algorithm=...)``, against PyTorch over random
configs it applies to; with and without Numba; with a tiny workspace (so every tiling path runs).

Tolerances (relative to the largest output): float64 1e-10 for the exact algorithms, float32 1e-5, and 1e-4 for
the float32 Winograd transform.  Algorithms forced on calls they cannot handle raise a ValueError naming why.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st

import convforge
import convforge.nn.functional as F
from convforge import engine
from convforge.engine import parallel, registry
from convforge._algos import numba_kernels
from convforge.engine.algorithms import implicit as _implicit
from conftest import to_torch, torch
from _configs import conv_configs

tF = torch.nn.functional
HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.filter_too_much])
HAVE_NUMBA = numba_kernels() is not None
NUMBA = [True, False] if HAVE_NUMBA else [False]
WORKSPACES = st.sampled_from([None, 200, 3000])


def torch_conv(cfg, x, w, b):
    """torch oracle in float64; per-side padding is F.pad then a valid convolution."""
    xt = to_torch(x.astype(np.float64))
    pads = []
    for lo, hi in reversed(cfg.padding):
        pads += [lo, hi]
    xt = tF.pad(xt, pads)
    fn = getattr(tF, f"conv{cfg.nd}d")
    return fn(xt, to_torch(w.astype(np.float64)), to_torch(None if b is None else b.astype(np.float64)),
              cfg.stride, 0, cfg.dilation, cfg.groups).numpy()


def torch_conv_transpose(cfg, x, w, b):
    fn = getattr(tF, f"conv_transpose{cfg.nd}d")
    p = tuple(lo for lo, _ in cfg.padding)
    return fn(to_torch(x.astype(np.float64)), to_torch(w.astype(np.float64)), to_torch(b.astype(np.float64)),
              cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation).numpy()


def check_rel(actual, expected, rtol, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1.0)
    err = float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def run_forced(algorithm, numba, workspace, fn, *args, **kwargs):
    with convforge.config(algorithm=algorithm, numba=numba, workspace_bytes=workspace):
        out = fn(*args, **kwargs)
        assert engine.last_choice() == algorithm
    return out


TOL = {np.float64: 1e-10, np.float32: 1e-5}


@pytest.mark.parametrize("numba", NUMBA)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@HYP
@given(cfg=conv_configs(), workspace=WORKSPACES, seed=st.integers(0, 2 ** 16))
def test_general_algorithms_match_torch(algorithm, dtype, numba, cfg, workspace, seed):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype)
    y = run_forced(algorithm, numba, workspace, F.conv, x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    assert y.dtype == dtype
    check_rel(y, torch_conv(cfg, x, w, b), TOL[dtype], algorithm)


@pytest.mark.parametrize("numba", NUMBA)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=conv_configs(), workspace=WORKSPACES, seed=st.integers(0, 2 ** 16))
def test_pointwise_matches_torch(dtype, numba, cfg, workspace, seed):
    cfg.kernel = (1,) * cfg.nd
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype)
    y = run_forced("pointwise", numba, workspace, F.conv, x, w, b, cfg.stride, cfg.padding, cfg.dilation,
                   cfg.groups)
    check_rel(y, torch_conv(cfg, x, w, b), TOL[dtype], "pointwise")


@st.composite
def winograd_configs(draw):
    cfg = draw(conv_configs(nd=2, max_size=13))
    cfg.kernel, cfg.stride, cfg.dilation = (3, 3), (1, 1), (1, 1)
    for i, (lo, hi) in enumerate(cfg.padding):
        assume(cfg.sizes[i] + lo + hi >= 3)
    return cfg


@pytest.mark.parametrize("numba", NUMBA)
@HYP
@given(cfg=winograd_configs(), workspace=WORKSPACES, seed=st.integers(0, 2 ** 16))
def test_winograd_matches_torch_float32(numba, cfg, workspace, seed):
    x, w, b = cfg.arrays(np.random.default_rng(seed), np.float32)
    y = run_forced("winograd", numba, workspace, F.conv, x, w, b, 1, cfg.padding, 1, cfg.groups)
    check_rel(y, torch_conv(cfg, x, w, b), 1e-4, "winograd")


@pytest.mark.parametrize("numba", NUMBA)
def test_winograd_error_on_a_real_layer(numba):
    """The documented error: a ResNet-like 3x3 layer, float32 Winograd vs the float64 result."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64, 30, 30)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    exact = tF.conv2d(to_torch(x.astype(np.float64)), to_torch(w.astype(np.float64)), padding=1).numpy()
    y = run_forced("winograd", numba, None, F.conv2d, x, w, None, 1, 1)
    check_rel(y, exact, 1e-4, "winograd 64ch")
    direct = run_forced("im2col", numba, None, F.conv2d, x, w, None, 1, 1)
    check_rel(direct, exact, 1e-5, "im2col 64ch")


@pytest.mark.parametrize("numba", NUMBA)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=conv_configs(transposed=True, per_side=False), workspace=WORKSPACES, seed=st.integers(0, 2 ** 16))
def test_col2im_matches_torch(dtype, numba, cfg, workspace, seed):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype, transposed=True)
    p = tuple(lo for lo, _ in cfg.padding)
    y = run_forced("col2im", numba, workspace, F.conv_transpose, x, w, b, cfg.stride, p, cfg.output_padding,
                   cfg.groups, cfg.dilation)
    check_rel(y, torch_conv_transpose(cfg, x, w, b), TOL[dtype], "col2im")


@pytest.mark.skipif(not HAVE_NUMBA, reason="the direct transposed kernels need Numba")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=conv_configs(transposed=True, per_side=False), depthwise=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_direct_transposed_matches_torch(dtype, cfg, depthwise, seed):
    """The direct transposed kernels (forced) over random configs, and depthwise-like ones (one output channel
    per group, the grad-input of a depthwise layer), which automatic selection gives them."""
    if depthwise:
        cfg.cout_per_group = 1
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype, transposed=True)
    p = tuple(lo for lo, _ in cfg.padding)
    if depthwise and cfg.groups > 1:
        with convforge.config(algorithm="auto"):
            y = F.conv_transpose(x, w, b, cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation)
        assert engine.last_choice() == "direct"
    else:
        y = run_forced("direct", True, None, F.conv_transpose, x, w, b, cfg.stride, p, cfg.output_padding,
                       cfg.groups, cfg.dilation)
    check_rel(y, torch_conv_transpose(cfg, x, w, b), TOL[dtype], "direct transposed")


def test_direct_transposed_without_numba_is_refused():
    with convforge.config(algorithm="direct", numba=False):
        with pytest.raises(ValueError, match=r"cannot run this transposed convolution: the direct transposed "
                                             r"kernels need Numba"):
            F.conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 1, 3, 3)), groups=2)


@pytest.mark.parametrize("algorithm", ["im2col", "direct", "pointwise"])
def test_integer_and_complex_dtypes_are_exact(algorithm):
    rng = np.random.default_rng(3)
    k = 1 if algorithm == "pointwise" else 3
    x = rng.integers(-5, 6, (2, 4, 7, 6)).astype(np.int64)
    w = rng.integers(-5, 6, (6, 2, k, k)).astype(np.int64)
    y = run_forced(algorithm, True, 300, F.conv2d, x, w, None, 2, 1, 1, 2)
    ref = tF.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 2, 1, 1, 2).numpy()
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, ref)
    xc = x + 1j * rng.standard_normal(x.shape)
    wc = w - 1j * rng.standard_normal(w.shape)
    yc = run_forced(algorithm, True, None, F.conv2d, xc, wc, None, 2, 1, 1, 2)
    refc = tF.conv2d(torch.from_numpy(xc), torch.from_numpy(wc), None, 2, 1, 1, 2).numpy()
    check_rel(yc, refc, 1e-10, "complex")


# ------------------------------------------------------------------------------------------ selection

def _auto(x, w, **kw):
    with convforge.config(algorithm="auto"):
        F.conv(x, w, **kw)
    return engine.last_choice()


def test_automatic_selection():
    f32 = np.float32
    assert _auto(np.ones((1, 8, 9, 9), f32), np.ones((4, 8, 1, 1), f32), stride=2) == "pointwise"
    depthwise = _auto(np.ones((1, 8, 9, 9), f32), np.ones((8, 1, 3, 3), f32), groups=8, padding=1)
    assert depthwise == ("direct" if HAVE_NUMBA else "im2col")
    implicit = HAVE_NUMBA and _implicit.fast_here()
    for dt in (f32, np.float64):
        assert _auto(np.ones((1, 16, 24, 24), dt), np.ones((16, 16, 3, 3), dt), padding=1) == (
            "implicit" if implicit else "winograd" if dt == f32 and HAVE_NUMBA else "im2col")
        assert _auto(np.ones((2, 8, 7, 7), dt), np.ones((8, 2, 3, 3), dt), padding=1, groups=4) == (
            "implicit" if implicit else "im2col")
    assert _auto(np.ones((1, 16, 24, 24), f32), np.ones((16, 16, 3, 3), f32), stride=2) == (
        "implicit" if implicit else "im2col")
    with convforge.config(workspace_bytes=1000):        # one padded sample over the bound: columns in bands
        assert _auto(np.ones((1, 16, 24, 24), f32), np.ones((1, 16, 3, 3), f32), padding=1) == "im2col"
    F.conv_transpose2d(np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3)), stride=2)
    assert engine.last_choice() == "col2im"


@pytest.mark.skipif(not HAVE_NUMBA, reason="without Numba Winograd is not chosen (tests/test_environments.py)")
def test_automatic_selection_without_wide_vectors(monkeypatch):
    """Without AVX-512 the implicit-GEMM kernels are not chosen: Winograd for float32 3x3 at >= 20x20."""
    monkeypatch.setattr(_implicit, "fast_here", lambda: False)
    f32 = np.float32
    assert _auto(np.ones((1, 16, 24, 24), f32), np.ones((16, 16, 3, 3), f32), padding=1) == "winograd"
    # float64 never uses the lower-accuracy transform; small outputs do not amortise it
    assert _auto(np.ones((1, 16, 24, 24)), np.ones((16, 16, 3, 3)), padding=1) == "im2col"
    assert _auto(np.ones((1, 16, 7, 7), f32), np.ones((16, 16, 3, 3), f32), padding=1) == "im2col"


def test_numba_switch_off_uses_pure_numpy():
    with convforge.config(numba=False):
        assert numba_kernels() is None
    assert numba_kernels() is not None or not HAVE_NUMBA


def test_without_numba_installed():
    """With ``import numba`` failing, convforge imports, picks NumPy paths and matches torch."""
    code = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None          # makes `import numba` raise ImportError
        import numpy as np, torch, convforge
        import convforge.nn.functional as F
        from convforge import engine
        from convforge._algos import numba_kernels
        assert numba_kernels() is None
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 6, 9, 8)); w = rng.standard_normal((6, 1, 3, 3))
        y = F.conv2d(x, w, None, 1, 1, 2, 6)
        assert engine.last_choice() == "im2col", engine.last_choice()
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 1, 1, 2, 6).numpy()
        assert np.abs(y - ref).max() < 1e-12
        xs, ws = x.astype(np.float32), w.astype(np.float32)
        ref1 = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 1, 1, 1, 6).numpy()
        for algo in ("direct", "winograd", "im2col"):
            with convforge.config(algorithm=algo):
                y = F.conv2d(xs, ws, None, 1, 1, 1, 6)
            assert np.abs(y - ref1).max() < 1e-4 * max(1, np.abs(ref1).max()), algo
        gx = F.conv_transpose2d(x, w, None, 2, 0, 0, 6)
        assert engine.last_choice() == "col2im"
        ref2 = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), None, 2, 0, 0, 6).numpy()
        assert np.abs(gx - ref2).max() < 1e-12
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("algorithm, x, w, kw, match", [
    ("pointwise", (1, 2, 5, 5), (3, 2, 3, 3), {}, r"pointwise needs a 1x1 kernel, got kernel \(3, 3\)"),
    ("winograd", (1, 2, 5, 5), (3, 2, 3, 3), dict(dtype=np.float64),
     r"winograd is only used for float32 .* got float64"),
    ("winograd", (1, 2, 9), (3, 2, 3), {}, r"winograd needs a 2-D 3x3 kernel, got kernel \(3,\)"),
    ("winograd", (1, 2, 5, 5), (3, 2, 5, 5), {}, r"winograd needs a 2-D 3x3 kernel, got kernel \(5, 5\)"),
    ("winograd", (1, 2, 9, 9), (3, 2, 3, 3), dict(stride=2), r"winograd needs stride 1 and dilation 1, got stride"),
])
def test_forced_algorithm_that_cannot_run_raises(algorithm, x, w, kw, match):
    dtype = kw.pop("dtype", np.float32)
    with convforge.config(algorithm=algorithm):
        with pytest.raises(ValueError, match=r"config\(algorithm='%s'\) cannot run this convolution: " % algorithm):
            F.conv(np.ones(x, dtype), np.ones(w, dtype), **kw)
        with pytest.raises(ValueError, match=match):
            F.conv(np.ones(x, dtype), np.ones(w, dtype), **kw)


def test_unknown_algorithm_and_bad_workspace():
    with pytest.raises(ValueError, match=r"unknown algorithm 'fast'; choose one of 'im2col', .*'col2im' or 'auto'"):
        with convforge.config(algorithm="fast"):
            pass
    with pytest.raises(ValueError, match=r"workspace_bytes must be positive, got 0"):
        with convforge.config(workspace_bytes=0):
            pass


def test_forced_conv_algorithm_leaves_transposed_automatic():
    with convforge.config(algorithm="winograd"):
        y = F.conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 1, 3, 3)))
    assert y.shape == (1, 1, 5, 5) and engine.last_choice() == "col2im"


# ------------------------------------------------------------------------------------------ threads

@pytest.mark.parametrize("threads", [2, 3])
@HYP
@given(cfg=conv_configs(max_size=9), seed=st.integers(0, 2 ** 16), data=st.data())
def test_split_into_parts_matches_torch(threads, cfg, seed, data):
    """Every way a call is split over threads (batch, output rows, groups, output channels) is exact, and a call
    with at least one sample per thread and room in the workspace really is split into one batch chunk per
    thread (unless the chosen algorithm threads itself)."""
    if data.draw(st.booleans()):                           # half the cases have a batch to split
        cfg = dataclasses.replace(cfg, batch=max(cfg.batch, threads))
    x, w, b = cfg.arrays(np.random.default_rng(seed), np.float64)
    algorithm = data.draw(st.sampled_from(["im2col", "direct", "auto"]))
    workspace = data.draw(WORKSPACES)
    parts = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "MIN_PARALLEL_MACS", 0)
        if data.draw(st.booleans()):                       # small batches split too (rows, groups, channels)
            mp.setattr(parallel, "MAX_BLAS_THREADED_MACS", 0)
        run_parts = parallel.threads.run_parts
        mp.setattr(parallel.threads, "run_parts", lambda jobs: parts.append(len(jobs)) or run_parts(jobs))
        with convforge.config(threads=threads, algorithm=algorithm, workspace_bytes=workspace):
            y = F.conv(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    check_rel(y, torch_conv(cfg, x, w, b), 1e-10, f"{algorithm} in {threads} parts")
    if workspace is None and cfg.batch >= threads and engine.last_choice() not in registry.OWN_THREADS:
        assert parts[:1] == [threads], f"{engine.last_choice()} on batch {cfg.batch} ran in parts {parts}"
        event("split into batch chunks checked")


@pytest.mark.parametrize("threads", [2, 3])
@HYP
@given(cfg=conv_configs(transposed=True, per_side=False, max_size=9), seed=st.integers(0, 2 ** 16))
def test_transposed_split_into_parts_matches_torch(threads, cfg, seed):
    x, w, b = cfg.arrays(np.random.default_rng(seed), np.float64, transposed=True)
    p = tuple(lo for lo, _ in cfg.padding)
    old = parallel.MIN_PARALLEL_MACS
    parallel.MIN_PARALLEL_MACS = 0
    try:
        with convforge.config(threads=threads):
            y = F.conv_transpose(x, w, b, cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation)
    finally:
        parallel.MIN_PARALLEL_MACS = old
    check_rel(y, torch_conv_transpose(cfg, x, w, b), 1e-10, f"col2im in {threads} parts")


def test_winograd_row_parts_and_blas_threads_restored():
    from convforge._algos import threads as th
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 21, 19)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    exact = tF.conv2d(to_torch(x.astype(np.float64)), to_torch(w.astype(np.float64)), padding=1).numpy()
    blas = th._find_openblas()
    before = blas[0]() if blas else None
    calls = []
    real = th.run_parts
    old = parallel.MIN_PARALLEL_MACS, parallel.MAX_BLAS_THREADED_MACS
    parallel.MIN_PARALLEL_MACS = 0
    th.run_parts = lambda parts: calls.append(len(parts)) or real(parts)
    try:
        with convforge.config(threads=2, algorithm="winograd"):
            y1 = F.conv2d(x, w, None, 1, 1)                  # batch 1: one product, the BLAS threads itself
        assert calls == []
        parallel.MAX_BLAS_THREADED_MACS = 0
        with convforge.config(threads=2, algorithm="winograd"):
            y = F.conv2d(x, w, None, 1, 1)
    finally:
        th.run_parts = real
        parallel.MIN_PARALLEL_MACS, parallel.MAX_BLAS_THREADED_MACS = old
    assert calls == [2]
    check_rel(y1, exact, 1e-4, "winograd at batch 1")
    check_rel(y, exact, 1e-4, "winograd in row parts")
    if blas:
        assert blas[0]() == before
    with pytest.raises(ValueError, match=r"threads must be a positive int, got 0"):
        with convforge.config(threads=0):
            pass


# ------------------------------------------------------------------------------------------ gradients

def torch_grads(cfg, x, w, gy):
    """float64 torch autograd gradients (grad input, grad weight) of the per-side padded convolution."""
    xt = to_torch(x.astype(np.float64)).requires_grad_(True)
    wt = to_torch(w.astype(np.float64)).requires_grad_(True)
    pads = []
    for lo, hi in reversed(cfg.padding):
        pads += [lo, hi]
    fn = getattr(tF, f"conv{cfg.nd}d")
    y = fn(tF.pad(xt, pads), wt, None, cfg.stride, 0, cfg.dilation, cfg.groups)
    gx, gw = torch.autograd.grad(y, (xt, wt), to_torch(gy.astype(np.float64)))
    return gx.numpy(), gw.numpy()


def _grad_output(cfg, x, w, rng, dtype):
    y = F.conv(x, w, None, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    return rng.standard_normal(y.shape).astype(dtype)


@pytest.mark.parametrize("numba", NUMBA)
@HYP
@given(cfg=winograd_configs(), workspace=WORKSPACES, threads=st.sampled_from([1, 2, 3]),
       seed=st.integers(0, 2 ** 16))
def test_winograd_weight_grad_matches_torch_float32(numba, cfg, workspace, threads, seed):
    """The adjoint-Winograd weight gradient (forced; also split over threads and workspace-sized chunks)."""
    from convforge.engine.algorithms import winograd
    rng = np.random.default_rng(seed)
    x, w, _ = cfg.arrays(rng, np.float32)
    gy = _grad_output(cfg, x, w, rng, np.float32)
    calls = []
    real, old = winograd.weight_grad, parallel.MIN_PARALLEL_MACS
    winograd.weight_grad = lambda *a: calls.append(1) or real(*a)
    parallel.MIN_PARALLEL_MACS = 0
    try:
        with convforge.config(algorithm="winograd", numba=numba, workspace_bytes=workspace, threads=threads):
            _, gw, _ = convforge.nn.grad.conv_backward(gy, x, w, padding=cfg.padding, groups=cfg.groups,
                                                       needs=(False, True, False))
    finally:
        winograd.weight_grad, parallel.MIN_PARALLEL_MACS = real, old
    assert calls == [1]
    check_rel(gw, torch_grads(cfg, x, w, gy)[1], 1e-4, "winograd weight gradient")


@pytest.mark.parametrize("numba", NUMBA)
def test_winograd_weight_grad_on_a_real_layer(numba):
    """Automatic choice on a ResNet-like layer (float32): error against float64 within the documented 1e-4
    (without Numba, where automatic selection prefers im2col, Winograd is forced)."""
    from convforge.engine.algorithms import winograd
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 28, 26)).astype(np.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 48, 28, 26)).astype(np.float32)
    exact = torch.nn.grad.conv2d_weight(to_torch(x.astype(np.float64)), w.shape,
                                        to_torch(gy.astype(np.float64)), padding=1).numpy()
    calls = []
    real = winograd.weight_grad
    winograd.weight_grad = lambda *a: calls.append(1) or real(*a)
    try:
        with convforge.config(numba=numba, algorithm="auto" if numba else "winograd"):
            gw = convforge.nn.grad.conv2d_weight(x, w.shape, gy, padding=1)
    finally:
        winograd.weight_grad = real
    assert calls == [1] and gw.dtype == np.float32
    check_rel(gw, exact, 1e-4, "winograd weight gradient 32ch")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 16), algorithm=st.sampled_from(["auto", "im2col", "direct",
                                                                                      "winograd", "pointwise"]))
def test_gradients_under_every_forced_algorithm(dtype, cfg, seed, algorithm):
    """Gradients (stride-1 input gradients run as plain convolutions) stay right whatever algorithm is forced:
    where the forced algorithm cannot run a gradient's convolution, another route is taken instead of raising."""
    rng = np.random.default_rng(seed)
    x, w, _ = cfg.arrays(rng, dtype)
    gy = _grad_output(cfg, x, w, rng, dtype)
    with convforge.config(algorithm=algorithm):
        gx, gw, _ = convforge.nn.grad.conv_backward(gy, x, w, stride=cfg.stride, padding=cfg.padding,
                                                    dilation=cfg.dilation, groups=cfg.groups)
    ex, ew = torch_grads(cfg, x, w, gy)
    tol = 1e-10 if dtype == np.float64 else 1e-4 if algorithm == "winograd" else 1e-5
    check_rel(gx, ex, tol, f"grad input under {algorithm}")
    check_rel(gw, ew, tol, f"grad weight under {algorithm}")


@pytest.mark.skipif(not HAVE_NUMBA, reason="the same-size depthwise path needs Numba")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 16), data=st.data())
def test_same_size_depthwise_matches_torch(dtype, cfg, seed, data):
    """Stride-1 depthwise layers whose output keeps the input size (any split of the padding, dilation, 1-3
    dims) run through the masked same-size kernels; automatic choice, against torch."""
    cfg.groups = data.draw(st.integers(1, 40))
    cfg.cin_per_group = cfg.cout_per_group = 1
    cfg.stride = (1,) * cfg.nd
    padding = []
    for k, d in zip(cfg.kernel, cfg.dilation):
        total = d * (k - 1)
        lo = data.draw(st.integers(0, total))
        padding.append((lo, total - lo))
    cfg.padding = tuple(padding)
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype)
    with convforge.config(algorithm="auto"):
        y = F.conv(x, w, b, 1, cfg.padding, cfg.dilation, cfg.groups)
    assert y.shape[2:] == x.shape[2:]
    if cfg.groups > 1 and any(k > 1 for k in cfg.kernel):
        assert engine.last_choice() == "direct"
    check_rel(y, torch_conv(cfg, x, w, b), TOL[dtype], "same-size depthwise")

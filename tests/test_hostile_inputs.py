"""Inputs that must not hurt: huge paddings / strides / dilations cost memory and time in proportion to the work
(not to the arguments), transposed convolution keeps the workspace bound within one sample, non-finite values
behave as torch's, and absurd arguments raise ValueError naming them (never OverflowError / IndexError)."""
from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convforge
import convforge.nn.functional as F
import convforge.nn.grad as G
from conftest import assert_close, requires_torch, to_torch, torch

pytestmark = requires_torch()
BIG = 64 * 2 ** 20


def measured(fn):
    """(result, extra bytes beyond the result, seconds) of ``fn()``."""
    fn()                                             # warm: Numba compilation allocates through Python
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak - out.nbytes, seconds


def torch_grads(op, x, w, gy, **kw):
    """(grad input, grad weight) of torch's ``op`` by autograd, float64."""
    tx, tw = to_torch(x).requires_grad_(), to_torch(w).requires_grad_()
    getattr(torch.nn.functional, op)(tx, tw, **kw).backward(to_torch(gy))
    return tx.grad.numpy(), tw.grad.numpy()


ISSUE_CASES = [   # the cases of issue 12: torch answers each in under 3 ms
    ("conv1d", (1, 1, 1), (1, 1, 2), dict(padding=10 ** 9, stride=3 * 10 ** 9)),
    ("conv2d", (1, 1, 5, 5), (1, 1, 3, 3), dict(padding=2 * 10 ** 4, dilation=2 * 10 ** 4)),
    ("conv_transpose2d", (1, 2, 2, 2), (2, 1, 1, 1), dict(stride=3 * 10 ** 4, padding=14999, groups=2)),
    ("conv3d", (1, 2, 3, 3, 3), (2, 2, 2, 2, 2), dict(padding=(10 ** 5, 1, 7 * 10 ** 4), stride=(1, 1, 10 ** 5),
                                                     dilation=(2 * 10 ** 5, 1, 1))),
    ("conv_transpose1d", (1, 1, 3), (1, 1, 3), dict(stride=10 ** 8, dilation=10 ** 8 - 2, padding=2 * 10 ** 8 - 4)),
]


@pytest.mark.parametrize("op, xs, ws, kw", ISSUE_CASES)
def test_memory_and_time_follow_the_work(op, xs, ws, kw):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y, extra, seconds = measured(lambda: getattr(F, op)(x, w, **kw))
    assert extra <= max(BIG, y.nbytes) and seconds < 1, (extra, seconds)
    assert_close(y, getattr(torch.nn.functional, op)(to_torch(x), to_torch(w), **kw).numpy())
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = torch_grads(op, x, w, gy, **kw)
    gx, extra, seconds = measured(lambda: getattr(G, op + "_input")(x.shape, w, gy, **kw))
    assert extra <= max(BIG, gx.nbytes) and seconds < 1, (extra, seconds)
    assert_close(gx, gx_ref)
    gw, extra, seconds = measured(lambda: getattr(G, op + "_weight")(x, w.shape, gy, **kw))
    assert extra <= max(BIG, gw.nbytes) and seconds < 1, (extra, seconds)
    assert_close(gw, gw_ref)


# torch (the oracle) computes some sizes in int32: keep strides and extents below 2**31 here (larger values are
# tested without torch in test_absurd_arguments_*)
HUGE = st.one_of(st.integers(1, 4), st.integers(10 ** 3, 5 * 10 ** 8))


@st.composite
def conv_dim(draw):
    """(input, kernel, stride, padding, dilation) of one dim with 1 to 3 outputs, any of them huge."""
    i, k, d, p = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(HUGE), draw(st.one_of(HUGE, st.just(0)))
    extent = i + 2 * p - d * (k - 1) - 1
    if extent < 0:
        p = p + (-extent + 1) // 2
        extent = i + 2 * p - d * (k - 1) - 1
    o = draw(st.integers(1, 3))
    s = extent + 1 + draw(st.integers(0, 5)) if o == 1 or extent < o - 1 else max(1, extent // (o - 1))
    return i, k, s, p, d


@st.composite
def transpose_dim(draw):
    """(input, kernel, stride, padding, dilation) of one transposed dim with 1 to 4 outputs."""
    i, k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(HUGE), draw(HUGE)
    full = (i - 1) * s + (k - 1) * d + 1
    o = draw(st.integers(1, 4).filter(lambda v: v <= full and (full - v) % 2 == 0))
    return i, k, s, (full - o) // 2, d


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(transposed=st.booleans(), n=st.integers(1, 2), groups=st.sampled_from([1, 2]), data=st.data())
def test_huge_arguments_match_torch(transposed, n, groups, data):
    """Tiny inputs, huge paddings / strides / dilations: forward and both gradients equal torch's."""
    dims = data.draw(st.lists(transpose_dim() if transposed else conv_dim(), min_size=n, max_size=n))
    op, weight_channels = (f"conv_transpose{n}d", (2, 4 // groups)) if transposed else (f"conv{n}d",
                                                                                          (2, 2 // groups))
    i, k, s, p, d = tuple(zip(*dims))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = rng.standard_normal((2, 2) + i)
    w = rng.standard_normal(weight_channels + k)
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    y = getattr(F, op)(x, w, **kw)
    assert_close(y, getattr(torch.nn.functional, op)(to_torch(x), to_torch(w), **kw).numpy())
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = torch_grads(op, x, w, gy, **kw)
    assert_close(getattr(G, op + "_input")(x.shape, w, gy, **kw), gx_ref)
    assert_close(getattr(G, op + "_weight")(x, w.shape, gy, **kw), gw_ref)


def assert_same_non_finite(actual, expected, what=""):
    """NaN, +inf and -inf at the same positions, the finite values close (float32 within Winograd's error)."""
    for test in (np.isnan, np.isposinf, np.isneginf):
        bad = test(actual) != test(expected)
        assert not bad.any(), f"{what}: {test.__name__} differs at {np.argwhere(bad)[:5].tolist()} " \
                              f"({test(actual).sum()} vs torch {test(expected).sum()})"
    fin = np.isfinite(expected)
    loose = 1e-4 if expected.dtype == np.float32 else None
    assert_close(actual[fin], expected[fin], rtol=loose, atol=loose, what=what)


NON_FINITE = [("input", np.inf), ("input", np.nan), ("input", -np.inf), ("weight", np.inf), ("weight", np.nan)]
LAYERS = [  # algorithm, input shape, weight shape, kwargs
    ("im2col", (1, 16, 24, 24), (16, 16, 3, 3), dict(padding=1)),
    ("winograd", (1, 16, 24, 24), (16, 16, 3, 3), dict(padding=1)),
    ("implicit", (1, 16, 24, 24), (16, 16, 3, 3), dict(padding=1)),
    ("direct", (1, 16, 24, 24), (16, 16, 3, 3), dict(padding=1)),
    ("direct", (2, 8, 12, 12), (8, 1, 3, 3), dict(padding=1, groups=8)),             # depthwise, same size
    ("direct", (2, 8, 12, 12), (8, 1, 3, 3), dict(padding=2, stride=2, groups=8)),
    ("pointwise", (2, 8, 12, 12), (4, 8, 1, 1), dict(stride=2)),
]


def _with_non_finite(shape, where, value, rng, dtype):
    a = rng.standard_normal(shape).astype(dtype)
    if where:
        a.reshape(-1)[[0, a.size // 2 + 3]] = value          # a corner (it meets the padding) and an inner cell
    return a


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("where, value", NON_FINITE)
@pytest.mark.parametrize("algorithm, xs, ws, kw", LAYERS)
def test_non_finite_values_as_torch(algorithm, xs, ws, kw, where, value, numba):
    """One inf / NaN in the input or the weight gives torch's NaN / inf pattern under every algorithm, forward
    and both gradients (Winograd's transforms used to turn one inf into 256 NaN).

    A non-finite weight meets the zero padding as in torch's float64 kernels (``inf * 0 = NaN``); torch's float32
    kernels disagree among themselves there (dense ones give NaN, the depthwise one skips the padding), so
    weights are tested in float64 (Winograd, float32 only, on layers without padding)."""
    if algorithm == "implicit" and not numba:
        pytest.skip("the implicit kernels need Numba")
    dtype = np.float64 if where == "weight" and algorithm != "winograd" else np.float32
    if where == "weight" and algorithm == "winograd":
        kw = dict(kw, padding=0)
    rng = np.random.default_rng(0)
    x = _with_non_finite(xs, where == "input", value, rng, dtype)
    w = _with_non_finite(ws, where == "weight", value, rng, dtype)
    gy = rng.standard_normal(F.conv2d(np.zeros_like(x), w, **kw).shape).astype(dtype)
    tx, tw = to_torch(x).requires_grad_(), to_torch(w).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, **kw)
    ty.backward(to_torch(gy))
    try:
        with convforge.config(algorithm=algorithm, numba=numba):
            y = F.conv2d(x, w, **kw)
            gx = G.conv2d_input(x.shape, w, gy, **kw)
            gw = G.conv2d_weight(x, w.shape, gy, **kw)
    except ValueError as e:
        pytest.skip(f"{algorithm} cannot run here: {e}")
    assert_same_non_finite(y, ty.detach().numpy(), f"{algorithm} forward")
    assert_same_non_finite(gx, tx.grad.numpy(), f"{algorithm} grad input")
    assert_same_non_finite(gw, tw.grad.numpy(), f"{algorithm} grad weight")


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("where, value", NON_FINITE)
@pytest.mark.parametrize("algorithm, groups", [("col2im", 1), ("col2im", 4), ("direct", 4)])
def test_non_finite_values_transposed_as_torch(algorithm, groups, where, value, numba):
    rng = np.random.default_rng(0)
    x = _with_non_finite((2, 4, 6, 6), where == "input", value, rng, np.float64)
    w = _with_non_finite((4, 4 // groups, 3, 3), where == "weight", value, rng, np.float64)
    kw = dict(stride=2, padding=1, groups=groups)       # no padding is multiplied: torch never gives inf * 0
    try:
        with convforge.config(algorithm=algorithm, numba=numba):
            y = F.conv_transpose2d(x, w, **kw)
    except ValueError as e:
        pytest.skip(f"{algorithm} cannot run here: {e}")
    assert_same_non_finite(y, torch.nn.functional.conv_transpose2d(to_torch(x), to_torch(w), **kw).numpy(),
                           algorithm)


def test_winograd_keeps_inf_from_the_issue():
    """The issue's case: one inf in a (1, 16, 24, 24) input, 3x3, padding 1 -- torch gives 144 inf, 0 NaN."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    x[0, 3, 10, 10] = np.inf
    with convforge.config(algorithm="winograd"):
        y = F.conv2d(x, w, padding=1)
        gw = G.conv2d_weight(x, w.shape, np.ones_like(y), padding=1)
    assert np.isinf(y).sum() == 144 and not np.isnan(y).any()
    assert np.isinf(gw).sum() == 144 and not np.isnan(gw).any()


ABSURD = [10 ** 18, 2 ** 63 - 1, 2 ** 63, 10 ** 19, 10 ** 20]
X5, W3 = np.ones((1, 2, 5, 5)), np.ones((2, 2, 3, 3))
ABSURD_CALLS = [   # name, call(v); each returns the right answer or raises ValueError naming the argument
    ("stride", lambda v: F.conv2d(X5, W3, stride=v)),
    ("padding", lambda v: F.conv2d(X5, W3, padding=v)),
    ("dilation", lambda v: F.conv2d(X5, W3, dilation=v)),
    ("padding+stride", lambda v: F.conv2d(X5, W3, padding=v, stride=v)),
    ("padding+dilation", lambda v: F.conv2d(X5, W3, padding=v, dilation=v)),
    ("per-side padding", lambda v: F.conv2d(X5, W3, padding=((v, 0), (0, v)), stride=v)),
    ("transposed stride", lambda v: F.conv_transpose2d(X5, W3, stride=v)),
    ("transposed padding", lambda v: F.conv_transpose2d(X5, W3, padding=v)),
    ("transposed dilation", lambda v: F.conv_transpose2d(X5, W3, dilation=v)),
    ("transposed output_padding", lambda v: F.conv_transpose2d(X5, W3, stride=v, output_padding=v - 1)),
    ("transposed stride+padding", lambda v: F.conv_transpose2d(X5[:, :, :1, :1], W3, stride=v,
                                                                padding=(v // 2 - 1, 0))),
    ("grad weight stride", lambda v: G.conv2d_weight(X5, W3.shape, np.ones((1, 2, 1, 1)), stride=v)),
    ("grad input stride", lambda v: G.conv2d_input(X5.shape, W3, np.ones((1, 2, 1, 1)), stride=v)),
    ("grad input_size", lambda v: G.conv2d_input((1, 2, v, 5), W3, np.ones((1, 2, 1, 3)))),
    ("pad", lambda v: F.pad(X5, (v, 0))),
    ("replicate pad", lambda v: F.pad(X5, (v, -2), mode="replicate")),
    ("module", lambda v: convforge.nn.Conv2d(2, 2, 3, stride=v, padding=v, dilation=v)(X5.astype(np.float32))),
]


@pytest.mark.parametrize("value", ABSURD)
@pytest.mark.parametrize("name, call", ABSURD_CALLS)
def test_absurd_arguments_answer_or_name_the_argument(name, call, value):
    """Strides, paddings and dilations of 1e18 to 1e20: the right answer where there is one (the windows that
    meet the input are few), else a ValueError that names the argument -- never OverflowError / IndexError /
    MemoryError."""
    try:
        out = call(value)
    except ValueError as e:
        assert any(word in str(e) for word in ("stride", "padding", "dilation", "pad=", "input_size", "Kernel")), e
        return
    assert np.asarray(out).size < 10 ** 6


def test_absurd_stride_gives_torch_answer():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    for kw in (dict(stride=10 ** 18), dict(stride=10 ** 18, padding=10 ** 17, dilation=10 ** 17)):
        assert_close(F.conv2d(x, w, **kw), torch.nn.functional.conv2d(to_torch(x), to_torch(w), **kw).numpy())
    assert F.conv2d(x, w, stride=10 ** 20).shape == (1, 2, 1, 1)          # torch cannot unpack it; we can
    assert_close(F.conv2d(x, w, stride=10 ** 20), F.conv2d(x, w, stride=3)[:, :, :1, :1])

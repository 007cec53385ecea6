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


HUGE = st.one_of(st.integers(1, 4), st.integers(10 ** 3, 10 ** 12))
HUGE_INT32 = st.one_of(st.integers(1, 4), st.integers(10 ** 3, 2 ** 30))   # torch's transposed kernels: int32


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
    i, k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(HUGE_INT32), draw(HUGE_INT32)
    full = (i - 1) * s + (k - 1) * d + 1
    o = draw(st.integers(1, 4).filter(lambda v: v <= full and (full - v) % 2 == 0))
    return i, k, s, (full - o) // 2, d


def _dims(draw_dims):
    return tuple(zip(*draw_dims))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(dims=st.integers(1, 2).flatmap(lambda n: st.lists(conv_dim(), min_size=n, max_size=n)),
       groups=st.sampled_from([1, 2]), data=st.data())
def test_huge_arguments_conv_match_torch(dims, groups, data):
    i, k, s, p, d = _dims(dims)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = rng.standard_normal((2, 2) + i)
    w = rng.standard_normal((2, 2 // groups) + k)
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    op = f"conv{len(i)}d"
    y = F.conv(x, w, **kw)
    assert_close(y, getattr(torch.nn.functional, op)(to_torch(x), to_torch(w), **kw).numpy())
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = torch_grads(op, x, w, gy, **kw)
    assert_close(getattr(G, op + "_input")(x.shape, w, gy, **kw), gx_ref)
    assert_close(getattr(G, op + "_weight")(x, w.shape, gy, **kw), gw_ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(dims=st.integers(1, 2).flatmap(lambda n: st.lists(transpose_dim(), min_size=n, max_size=n)),
       groups=st.sampled_from([1, 2]), data=st.data())
def test_huge_arguments_transposed_match_torch(dims, groups, data):
    i, k, s, p, d = _dims(dims)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = rng.standard_normal((2, 2) + i)
    w = rng.standard_normal((2, 4 // groups) + k)
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    op = f"conv_transpose{len(i)}d"
    y = getattr(F, op)(x, w, **kw)
    assert_close(y, getattr(torch.nn.functional, op)(to_torch(x), to_torch(w), **kw).numpy())
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = torch_grads(op, x, w, gy, **kw)
    assert_close(getattr(G, op + "_input")(x.shape, w, gy, **kw), gx_ref)
    assert_close(getattr(G, op + "_weight")(x, w.shape, gy, **kw), gw_ref)

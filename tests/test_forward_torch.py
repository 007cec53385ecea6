"""Forward convolution and transposed convolution against PyTorch (the oracle), over grids and random configs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import convforge
import convforge.nn as nn
import convforge.nn.functional as F
from conftest import assert_close, to_torch, torch
from _configs import conv_configs

tF = torch.nn.functional
HYP = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.filter_too_much])


def torch_conv(cfg, x, w, b):
    """torch: per-side padding is F.pad then a valid convolution."""
    xt = to_torch(x)
    if not cfg.symmetric():
        pads = []
        for lo, hi in reversed(cfg.padding):
            pads += [lo, hi]
        xt, padding = tF.pad(xt, pads), 0
    else:
        padding = tuple(lo for lo, _ in cfg.padding)
    fn = getattr(tF, f"conv{cfg.nd}d")
    return fn(xt, to_torch(w), to_torch(b), cfg.stride, padding, cfg.dilation, cfg.groups).numpy()


def torch_conv_transpose(cfg, x, w, b):
    fn = getattr(tF, f"conv_transpose{cfg.nd}d")
    p = tuple(lo for lo, _ in cfg.padding)
    return fn(to_torch(x), to_torch(w), to_torch(b), cfg.stride, p, cfg.output_padding, cfg.groups,
              cfg.dilation).numpy()


@HYP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 32 - 1), bias=st.booleans())
def test_conv_random_configs_float64(cfg, seed, bias):
    x, w, b = cfg.arrays(np.random.default_rng(seed), bias=bias)
    expected = torch_conv(cfg, x, w, b)
    fn = getattr(F, f"conv{cfg.nd}d")
    pad = cfg.padding if not cfg.symmetric() else tuple(lo for lo, _ in cfg.padding)
    assert_close(fn(x, w, b, cfg.stride, pad, cfg.dilation, cfg.groups), expected)
    assert_close(F.conv(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups), expected)


@HYP
@given(cfg=conv_configs(transposed=True, per_side=False), seed=st.integers(0, 2 ** 32 - 1), bias=st.booleans())
def test_conv_transpose_random_configs_float64(cfg, seed, bias):
    x, w, b = cfg.arrays(np.random.default_rng(seed), transposed=True, bias=bias)
    expected = torch_conv_transpose(cfg, x, w, b)
    fn = getattr(F, f"conv_transpose{cfg.nd}d")
    p = tuple(lo for lo, _ in cfg.padding)
    got = fn(x, w, b, cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation)
    assert_close(got, expected)
    assert_close(F.conv_transpose(x, w, b, cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation), expected)


def _oracle(fn, cfg, x, w, b):
    """torch's result; int32 dilated/transposed kernels are missing in torch, so those use int64 and wrap to int32
    (integer convolution is exact modular arithmetic, so this is the same value)."""
    try:
        return fn(cfg, x, w, b)
    except RuntimeError:
        assert x.dtype == np.int32, "only int32 is expected to lack torch kernels"
        up = [None if a is None else a.astype(np.int64) for a in (x, w, b)]
        return fn(cfg, *up).astype(np.int32)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(cfg=conv_configs(per_side=False), seed=st.integers(0, 2 ** 32 - 1),
       dtype=st.sampled_from(["float32", "float16", "complex128", "complex64", "int64", "int32"]))
def test_conv_dtypes(cfg, seed, dtype):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype=np.dtype(dtype))
    expected = _oracle(torch_conv, cfg, x, w, b)
    got = F.conv(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    assert got.dtype == np.dtype(dtype)
    if dtype == "float16":
        # float16 accumulates in float32 and rounds once, as torch does; allow one float16 ulp of the result
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   rtol=2e-3, atol=2e-3 * max(1.0, float(np.abs(expected).max())))
    else:
        assert_close(got, expected)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(cfg=conv_configs(transposed=True, per_side=False), seed=st.integers(0, 2 ** 32 - 1),
       dtype=st.sampled_from(["float32", "int64", "complex128"]))
def test_conv_transpose_dtypes(cfg, seed, dtype):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype=np.dtype(dtype), transposed=True)
    expected = _oracle(torch_conv_transpose, cfg, x, w, b)
    p = tuple(lo for lo, _ in cfg.padding)
    got = F.conv_transpose(x, w, b, cfg.stride, p, cfg.output_padding, cfg.groups, cfg.dilation)
    assert got.dtype == np.dtype(dtype)
    assert_close(got, expected)


def test_integer_overflow_wraps_like_torch():
    x = np.full((1, 1, 4), 100, np.int8)
    w = np.ones((1, 1, 3), np.int8)
    expected = tF.conv1d(to_torch(x), to_torch(w)).numpy()
    got = F.conv1d(x, w)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)


# --- a deterministic grid over the options that matter, per dimension --------------------------------------------
GRID = list(itertools.product([1, 2, 3], [1, 2], [1, 2], [0, 1, 2], [(1, 1, 1), (2, 2, 1), (4, 1, 4)]))


@pytest.mark.parametrize("nd,stride,dilation,padding,gcc", GRID)
def test_conv_grid(nd, stride, dilation, padding, gcc):
    groups, cin_g, cout_g = gcc
    rng = np.random.default_rng(nd * 1000 + stride * 100 + dilation * 10 + padding)
    sizes = (9, 8, 7)[:nd]
    x = rng.standard_normal((2, groups * cin_g) + sizes)
    w = rng.standard_normal((groups * cout_g, cin_g) + (3, 2, 3)[:nd])
    b = rng.standard_normal(groups * cout_g)
    expected = getattr(tF, f"conv{nd}d")(to_torch(x), to_torch(w), to_torch(b), stride, padding, dilation,
                                          groups).numpy()
    assert_close(getattr(F, f"conv{nd}d")(x, w, b, stride, padding, dilation, groups), expected)
    xt = rng.standard_normal((2, groups * cin_g) + sizes)
    wt = rng.standard_normal((groups * cin_g, cout_g) + (3, 2, 3)[:nd])
    for op in range(max(stride, dilation)):
        expected = getattr(tF, f"conv_transpose{nd}d")(to_torch(xt), to_torch(wt), to_torch(b), stride, padding,
                                                       op, groups, dilation).numpy()
        assert_close(getattr(F, f"conv_transpose{nd}d")(xt, wt, b, stride, padding, op, groups, dilation), expected)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kernel,dilation", [(1, 1), (2, 1), (3, 1), (4, 1), (4, 2), (3, 3), (5, 2)])
def test_same_and_valid_strings_match_torch(nd, kernel, dilation):
    rng = np.random.default_rng(kernel * 10 + dilation)
    x = rng.standard_normal((1, 2) + (11, 10, 9)[:nd])
    w = rng.standard_normal((3, 2) + (kernel,) * nd)
    fn, tfn = getattr(F, f"conv{nd}d"), getattr(tF, f"conv{nd}d")
    for padding in ("same", "valid"):
        expected = tfn(to_torch(x), to_torch(w), None, 1, padding, dilation).numpy()
        assert_close(fn(x, w, None, 1, padding, dilation), expected)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2, "same", "valid", "per-dim"])
def test_module_padding_modes_match_torch(mode, nd, padding, ):
    if padding == "per-dim":
        padding = (1, 2, 0)[:nd]
    convforge.manual_seed(nd)
    m = getattr(nn, f"Conv{nd}d")(4, 6, (3, 4, 2)[:nd], padding=padding, padding_mode=mode, groups=2,
                                   dtype=np.float64)
    tm = getattr(torch.nn, f"Conv{nd}d")(4, 6, (3, 4, 2)[:nd], padding=padding, padding_mode=mode, groups=2,
                                         dtype=torch.float64)
    with torch.no_grad():
        tm.weight.copy_(to_torch(np.asarray(m.weight)))
        tm.bias.copy_(to_torch(np.asarray(m.bias)))
    x = np.random.default_rng(3).standard_normal((2, 4) + (5, 6, 4)[:nd])
    assert_close(m(x), tm(to_torch(x)).detach().numpy())
    assert_close(m(x[0]), tm(to_torch(x[0])).detach().numpy())   # unbatched


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_padding_mode_limits(mode):
    # reflect allows pad up to size - 1, circular up to size (one-sided zero too); beyond that is an error
    n = 4
    limit = n - 1 if mode == "reflect" else n
    x = np.random.default_rng(0).standard_normal((1, 1, n))
    m = nn.Conv1d(1, 1, 1, padding=limit, padding_mode=mode, dtype=np.float64)
    tm = torch.nn.Conv1d(1, 1, 1, padding=limit, padding_mode=mode, dtype=torch.float64)
    with torch.no_grad():
        tm.weight.copy_(to_torch(np.asarray(m.weight)))
        tm.bias.copy_(to_torch(np.asarray(m.bias)))
    assert_close(m(x), tm(to_torch(x)).detach().numpy())
    too_far = nn.Conv1d(1, 1, 1, padding=limit + 1, padding_mode=mode, dtype=np.float64)
    with pytest.raises(ValueError, match=f"{mode} padding"):
        too_far(x)


def test_module_transposed_output_size_matches_torch():
    convforge.manual_seed(0)
    m = nn.ConvTranspose2d(3, 4, 3, stride=3, padding=1, dtype=np.float64)
    tm = torch.nn.ConvTranspose2d(3, 4, 3, stride=3, padding=1, dtype=torch.float64)
    with torch.no_grad():
        tm.weight.copy_(to_torch(np.asarray(m.weight)))
        tm.bias.copy_(to_torch(np.asarray(m.bias)))
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    for size in [(10, 13), (11, 14), (12, 15), (2, 4, 12, 13)]:
        assert_close(m(x, output_size=size), tm(to_torch(x), output_size=size).detach().numpy())


def test_depthwise_with_channel_multiplier():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((12, 1, 3, 3))
    b = rng.standard_normal(12)
    expected = tF.conv2d(to_torch(x), to_torch(w), to_torch(b), 2, 1, 1, 4).numpy()
    assert_close(F.conv2d(x, w, b, 2, 1, 1, 4), expected)


@pytest.mark.parametrize("transposed", [False, True])
def test_empty_batch_returns_empty_output(transposed):
    x = np.zeros((0, 4, 8, 8))
    if transposed:
        w = np.ones((4, 3, 3, 3))
        got = F.conv_transpose2d(x, w, stride=2)
        expected = tF.conv_transpose2d(to_torch(x), to_torch(w), stride=2).numpy()
    else:
        w = np.ones((3, 4, 3, 3))
        got = F.conv2d(x, w, stride=2)
        expected = tF.conv2d(to_torch(x), to_torch(w), stride=2).numpy()
    assert got.shape == expected.shape and got.dtype == np.float64


def test_module_default_float32_matches_torch():
    convforge.manual_seed(0)
    m = nn.Conv2d(8, 14, (3, 2), (2, 1))
    tm = torch.nn.Conv2d(8, 14, (3, 2), (2, 1))
    with torch.no_grad():
        tm.weight.copy_(to_torch(np.asarray(m.weight)))
        tm.bias.copy_(to_torch(np.asarray(m.bias)))
    x = np.random.default_rng(0).standard_normal((5, 8, 10, 5)).astype(np.float32)
    y = m(x)
    assert y.shape == (5, 14, 4, 4) and y.dtype == np.float32
    assert_close(y, tm(to_torch(x)).detach().numpy())


def test_classic_conv1d_example():
    y = F.conv1d(np.arange(16.0).reshape(1, 1, 16), np.array([[[0.1, 0.2, 0.3]]]))
    np.testing.assert_allclose(y[0, 0], np.round(0.8 + 0.6 * np.arange(14), 10), rtol=1e-12)
    assert y[0, 0, 0] == pytest.approx(0.8) and y[0, 0, -1] == pytest.approx(8.6)

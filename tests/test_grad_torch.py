"""Convolution gradients against torch autograd: convforge.nn.grad, conv_backward, and every conv module trained
through autograd (``module(x).backward(gy)``)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import convforge
import convforge.nn as nn
import convforge.nn.grad as G
from conftest import assert_close, to_torch, torch
from _configs import conv_configs

tF = torch.nn.functional
HYP = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.filter_too_much])
SMALL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.filter_too_much])


def _torch_order(pairs):
    out = []
    for lo, hi in reversed(pairs):
        out += [lo, hi]
    return out


def torch_conv_grads(cfg, x, w, b, gy_seed, mode="constant"):
    """(y, gy, gx, gw, gb) from torch autograd; per-side padding is F.pad then a valid convolution."""
    xt, wt = to_torch(x).requires_grad_(), to_torch(w).requires_grad_()
    bt = None if b is None else to_torch(b).requires_grad_()
    xin = tF.pad(xt, _torch_order(cfg.padding), mode=mode) if mode != "constant" or not cfg.symmetric() else xt
    padding = 0 if xin is not xt else tuple(lo for lo, _ in cfg.padding)
    y = getattr(tF, f"conv{cfg.nd}d")(xin, wt, bt, cfg.stride, padding, cfg.dilation, cfg.groups)
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(to_torch(gy))
    return gy, xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


def torch_conv_transpose_grads(cfg, x, w, b, gy_seed):
    """torch has only symmetric transposed padding: a per-side (lo, hi) output is the padding-0 output cropped."""
    xt, wt = to_torch(x).requires_grad_(), to_torch(w).requires_grad_()
    bt = None if b is None else to_torch(b).requires_grad_()
    y = getattr(tF, f"conv_transpose{cfg.nd}d")(xt, wt, bt, cfg.stride, 0, cfg.output_padding, cfg.groups,
                                               cfg.dilation)
    crop = (slice(None), slice(None)) + tuple(slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in
                                              enumerate(cfg.padding))
    y = y[crop]
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(to_torch(gy))
    return gy, xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


def _bias_atol(gy):
    """grad_bias sums every grad_output value of a channel: in float32 its rounding error scales with the sum of
    the magnitudes (sum |gy|), not with the (possibly cancelled) result, so the absolute tolerance does too."""
    if gy.dtype != np.float32:
        return None
    per_channel = np.abs(gy.astype(np.float64)).swapaxes(0, 1).reshape(gy.shape[1], -1).sum(axis=1)
    return 1e-6 * float(per_channel.max(initial=1.0))


def _check_conv(cfg, seed, bias, dtype):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype=dtype, bias=bias)
    gy, gx_t, gw_t, gb_t = torch_conv_grads(cfg, x, w, b, seed + 1)
    gx, gw, gb = G.conv_backward(gy, x, w, stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation,
                                 groups=cfg.groups, needs=(True, True, bias))
    assert gx.dtype == gw.dtype == np.dtype(dtype)
    assert_close(gx, gx_t, what="grad_input")
    assert_close(gw, gw_t, what="grad_weight")
    if bias:
        assert_close(gb, gb_t, what="grad_bias", atol=_bias_atol(gy))
    else:
        assert gb is None
    # the per-rank torch.nn.grad-style entries give the same
    args = (cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    assert_close(getattr(G, f"conv{cfg.nd}d_input")(x.shape, w, gy, *args), gx_t)
    assert_close(getattr(G, f"conv{cfg.nd}d_weight")(x, w.shape, gy, *args), gw_t)


@HYP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 30), bias=st.booleans())
def test_conv_gradients_float64(cfg, seed, bias):
    _check_conv(cfg, seed, bias, np.float64)


@SMALL
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 30))
def test_conv_gradients_float32(cfg, seed):
    _check_conv(cfg, seed, True, np.float32)


def _check_conv_transpose(cfg, seed, bias, dtype):
    x, w, b = cfg.arrays(np.random.default_rng(seed), dtype=dtype, transposed=True, bias=bias)
    gy, gx_t, gw_t, gb_t = torch_conv_transpose_grads(cfg, x, w, b, seed + 1)
    gx, gw, gb = G.conv_backward(gy, x, w, stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation,
                                 groups=cfg.groups, transposed=True, output_padding=cfg.output_padding,
                                 needs=(True, True, bias))
    assert_close(gx, gx_t, what="grad_input")
    assert_close(gw, gw_t, what="grad_weight")
    if bias:
        assert_close(gb, gb_t, what="grad_bias", atol=_bias_atol(gy))
    # output_padding read from grad_output's shape (default None) and given explicitly agree
    args = (cfg.stride, cfg.padding)
    tail = (cfg.groups, cfg.dilation)
    fn_in, fn_w = (getattr(G, f"conv_transpose{cfg.nd}d_{k}") for k in ("input", "weight"))
    assert_close(fn_in(x.shape, w, gy, *args, None, *tail), gx_t)
    assert_close(fn_in(x.shape, w, gy, *args, cfg.output_padding, *tail), gx_t)
    assert_close(fn_w(x, w.shape, gy, *args, None, *tail), gw_t)


@HYP
@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2 ** 30), bias=st.booleans())
def test_conv_transpose_gradients_float64(cfg, seed, bias):
    _check_conv_transpose(cfg, seed, bias, np.float64)


@SMALL
@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2 ** 30))
def test_conv_transpose_gradients_float32(cfg, seed):
    _check_conv_transpose(cfg, seed, True, np.float32)


@SMALL
@given(cfg=conv_configs(per_side=False), seed=st.integers(0, 2 ** 30))
def test_matches_torch_nn_grad_functions(cfg, seed):
    x, w, _ = cfg.arrays(np.random.default_rng(seed))
    p = tuple(lo for lo, _ in cfg.padding)
    y = getattr(tF, f"conv{cfg.nd}d")(to_torch(x), to_torch(w), None, cfg.stride, p, cfg.dilation, cfg.groups)
    gy = np.random.default_rng(seed + 1).standard_normal(tuple(y.shape))
    args = (cfg.stride, p, cfg.dilation, cfg.groups)
    t_in = getattr(torch.nn.grad, f"conv{cfg.nd}d_input")(x.shape, to_torch(w), to_torch(gy), *args).numpy()
    t_w = getattr(torch.nn.grad, f"conv{cfg.nd}d_weight")(to_torch(x), w.shape, to_torch(gy), *args).numpy()
    assert_close(getattr(G, f"conv{cfg.nd}d_input")(x.shape, w, gy, *args), t_in)
    assert_close(getattr(G, f"conv{cfg.nd}d_weight")(x, w.shape, gy, *args), t_w)


# -- modules ------------------------------------------------------------------------------------------------------
def _copy_params(ours, theirs):
    with torch.no_grad():
        theirs.weight.copy_(to_torch(np.asarray(ours.weight)))
        if ours.bias is not None:
            theirs.bias.copy_(to_torch(np.asarray(ours.bias)))


def _module_pair(nd, transposed=False, **kw):
    cls = f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d"
    ours = getattr(nn, cls)(dtype=np.float64, **kw)
    theirs = getattr(torch.nn, cls)(dtype=torch.float64, **kw)
    _copy_params(ours, theirs)
    return ours, theirs


def _backward(module, x, gy=None, seed=0, **call):
    """``y = module(x)``, then ``y.backward(gy)`` (random ``gy`` by default): (y, gy, x.grad)."""
    xg = convforge.tensor(x, requires_grad=True)
    y = module(xg, **call)
    if gy is None:
        gy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(gy)
    return y, gy, xg.grad


def _compare_module_backward(ours, theirs, x, seed=0, **call):
    y, gy, gx = _backward(ours, x, seed=seed, **call)
    xt = to_torch(x).requires_grad_()
    yt = theirs(xt, **call)
    assert_close(y, yt.detach().numpy(), what="forward")
    yt.backward(to_torch(gy))
    assert_close(gx, xt.grad.numpy(), what="grad_input")
    assert_close(ours.weight.grad, theirs.weight.grad.numpy(), what="weight.grad")
    assert ours.weight.grad.shape == ours.weight.shape
    if ours.bias is not None:
        assert_close(ours.bias.grad, theirs.bias.grad.numpy(), what="bias.grad")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2, "same", "valid", "per-dim"])
def test_module_backward_every_padding_mode(mode, nd, padding):
    if padding == "per-dim":
        padding = (1, 2, 0)[:nd]
    convforge.manual_seed(nd)
    ours, theirs = _module_pair(nd, in_channels=4, out_channels=6, kernel_size=(3, 4, 2)[:nd],
                                dilation=(1, 2, 1)[:nd], groups=2, padding=padding, padding_mode=mode)
    x = np.random.default_rng(1).standard_normal((2, 4) + (7, 9, 5)[:nd])
    _compare_module_backward(ours, theirs, x)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_module_backward_per_side_padding(mode, nd):
    """Per-side padding has no torch module: the oracle is F.pad in the same mode, then a valid convolution."""
    pairs = ((0, 2), (1, 0), (2, 1))[:nd]
    ours = getattr(nn, f"Conv{nd}d")(3, 4, 3, stride=2, padding=pairs, padding_mode=mode, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((2, 3) + (6, 7, 5)[:nd])
    xt, wt, bt = to_torch(x).requires_grad_(), to_torch(np.asarray(ours.weight)).requires_grad_(), \
        to_torch(np.asarray(ours.bias)).requires_grad_()
    yt = getattr(tF, f"conv{nd}d")(tF.pad(xt, _torch_order(pairs), mode="constant" if mode == "zeros" else mode),
                                   wt, bt, 2)
    y, gy, gx = _backward(ours, x, seed=3)
    assert_close(y, yt.detach().numpy())
    yt.backward(to_torch(gy))
    assert_close(gx, xt.grad.numpy())
    assert_close(ours.weight.grad, wt.grad.numpy())
    assert_close(ours.bias.grad, bt.grad.numpy())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_module_backward_unbatched(mode, nd):
    ours, theirs = _module_pair(nd, in_channels=3, out_channels=2, kernel_size=3, padding="same",
                                padding_mode=mode)
    x = np.random.default_rng(4).standard_normal((3,) + (5, 6, 4)[:nd])
    _compare_module_backward(ours, theirs, x)


def test_module_backward_depthwise_strided_float32():
    ours = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4)
    theirs = torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4)
    _copy_params(ours, theirs)
    x = np.random.default_rng(5).standard_normal((3, 4, 9, 8)).astype(np.float32)
    _compare_module_backward(ours, theirs, x)
    assert ours.weight.grad.dtype == np.float32


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=3, padding=2, dilation=2, groups=2),
    dict(stride=1, padding=1, dilation=3, output_padding=2),
    dict(stride=2, padding=0, groups=2, bias=False),
])
def test_transposed_module_backward(nd, kw):
    ours, theirs = _module_pair(nd, transposed=True, in_channels=4, out_channels=2, kernel_size=3, **kw)
    x = np.random.default_rng(6).standard_normal((2, 4) + (5, 4, 3)[:nd])
    _compare_module_backward(ours, theirs, x)
    ours.zero_grad()
    theirs.zero_grad()
    _compare_module_backward(ours, theirs, x[0], seed=1)      # unbatched


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_transposed_module_backward_with_output_size(nd):
    ours, theirs = _module_pair(nd, transposed=True, in_channels=2, out_channels=4, kernel_size=3, stride=2,
                                padding=1)
    x = np.random.default_rng(7).standard_normal((2, 2) + (4, 3, 3)[:nd])
    for extra in (0, 1):
        size = tuple(2 * i - 1 + extra for i in x.shape[2:])
        ours.zero_grad()
        theirs.zero_grad()
        _compare_module_backward(ours, theirs, x, output_size=size)


def test_complex128_follows_torch_conjugate_convention():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 7)) + 1j * rng.standard_normal((2, 4, 7))
    w = rng.standard_normal((6, 2, 3)) + 1j * rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    xt, wt, bt = (to_torch(a).requires_grad_() for a in (x, w, b))
    y = tF.conv1d(xt, wt, bt, 2, 1, 1, 2)
    gy = rng.standard_normal(tuple(y.shape)) + 1j * rng.standard_normal(tuple(y.shape))
    y.backward(to_torch(gy))
    gx, gw, gb = G.conv_backward(gy, x, w, stride=2, padding=1, groups=2)
    assert_close(gx, xt.grad.numpy())
    assert_close(gw, wt.grad.numpy())
    assert_close(gb, bt.grad.numpy())
    xt, wt = to_torch(x).requires_grad_(), to_torch(w[:4]).requires_grad_()
    y = tF.conv_transpose1d(xt, wt, None, 2, 1, 1, 2)
    gy = rng.standard_normal(tuple(y.shape)) + 1j * rng.standard_normal(tuple(y.shape))
    y.backward(to_torch(gy))
    gx, gw, _ = G.conv_backward(gy, x, w[:4], stride=2, padding=1, groups=2, transposed=True, output_padding=1)
    assert_close(gx, xt.grad.numpy())
    assert_close(gw, wt.grad.numpy())

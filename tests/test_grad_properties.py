"""Convolution gradients checked without torch: finite differences, group splitting, adjoints, modes and errors.

Finite differences: the loss ``L = <y, R>`` is quadratic in (input, weight, bias) jointly (linear in each), so the
central difference ``(L(t + h v) - L(t - h v)) / 2h`` equals the directional derivative ``<grad L, v>`` exactly in
exact arithmetic; float64 rounding is the only error, which allows a 1e-10 relative tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import convforge
import convforge.nn as nn
import convforge.nn.functional as F
import convforge.nn.grad as G
from convforge._padding import pad, pad_backward
from conftest import assert_close
from _configs import conv_configs

PROP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.filter_too_much])
H = 0.5


def _dot(a, b):
    return float(np.vdot(np.asarray(a).ravel(), np.asarray(b).ravel()).real)


def _check_directional(loss, params, grads, rng):
    """``loss(*params)`` against ``sum <grad, v>`` along one random direction ``v`` over all params."""
    dirs = [rng.standard_normal(p.shape) for p in params]
    plus = loss(*[p + H * v for p, v in zip(params, dirs)])
    minus = loss(*[p - H * v for p, v in zip(params, dirs)])
    fd = (plus - minus) / (2 * H)
    analytic = sum(_dot(g, v) for g, v in zip(grads, dirs))
    scale = max(abs(plus), abs(minus), 1.0)
    assert abs(fd - analytic) <= 1e-10 * scale, (fd, analytic)


def _set_params(m, w, b):
    m.weight[...] = w
    if b is not None:
        m.bias[...] = b


def _module_fd(m, x, rng, **call):
    """Backward of module ``m`` at ``x`` against finite differences in (x, weight, bias)."""
    tracked = convforge.tensor(x, requires_grad=True)
    y = m(tracked, **call)
    r = rng.standard_normal(y.shape)
    y.backward(r)
    gx = tracked.grad
    params = [x, np.array(m.weight)] + ([np.array(m.bias)] if m.bias is not None else [])
    grads = [gx, m.weight.grad] + ([m.bias.grad] if m.bias is not None else [])

    def loss(xv, wv, bv=None):
        _set_params(m, wv, bv)
        with convforge.no_grad():
            return _dot(m(xv, **call), r)

    _check_directional(loss, params, grads, rng)


@PROP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 30), bias=st.booleans(), unbatched=st.booleans(),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]), same=st.booleans())
def test_finite_differences_conv_modules(cfg, seed, bias, unbatched, mode, same):
    padding = "same" if same else cfg.padding
    m = getattr(nn, f"Conv{cfg.nd}d")(cfg.cin, cfg.cout, cfg.kernel, cfg.stride, padding, cfg.dilation, cfg.groups,
                                      bias, mode, dtype=np.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg.batch, cfg.cin) + cfg.sizes)
    try:
        m(x)
    except ValueError:          # reflect/circular pad too large, or the kernel does not fit the input
        assume(False)
    _module_fd(m, x[0] if unbatched else x, rng)


@PROP
@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2 ** 30), bias=st.booleans(),
       unbatched=st.booleans(), use_output_size=st.booleans())
def test_finite_differences_conv_transpose_modules(cfg, seed, bias, unbatched, use_output_size):
    kw = dict(output_padding=0) if use_output_size else dict(output_padding=cfg.output_padding)
    m = getattr(nn, f"ConvTranspose{cfg.nd}d")(cfg.cin, cfg.cout, cfg.kernel, cfg.stride, cfg.padding,
                                               groups=cfg.groups, bias=bias, dilation=cfg.dilation, dtype=np.float64,
                                               **kw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg.batch, cfg.cin) + cfg.sizes)
    call = {}
    if use_output_size:
        try:                      # output_size needs the output_padding-0 size to be valid too
            convforge.shapes.conv_transpose_output_shape(cfg.sizes, cfg.kernel, cfg.stride, cfg.padding,
                                                         cfg.dilation)
        except ValueError:
            assume(False)
        call["output_size"] = convforge.shapes.conv_transpose_output_shape(
            cfg.sizes, cfg.kernel, cfg.stride, cfg.padding, cfg.dilation, cfg.output_padding)
    _module_fd(m, x[0] if unbatched else x, rng, **call)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_finite_differences_4d_through_generic_functions(transposed, seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    kernel = tuple(int(k) for k in rng.integers(1, 3, 4))
    stride = tuple(int(s) for s in rng.integers(1, 3, 4))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 4))
    padding = tuple((int(lo), int(hi)) for lo, hi in rng.integers(0, 2, (4, 2)))
    x = rng.standard_normal((2, 2 * groups) + tuple(int(s) for s in rng.integers(3, 5, 4)))
    if transposed:
        w = rng.standard_normal((2 * groups, 1) + kernel)
        op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))

        def fwd(xv, wv, bv):
            return F.conv_transpose(xv, wv, bv, stride, padding, op, groups, dilation)
    else:
        w = rng.standard_normal((3 * groups, 2) + kernel)
        op = None

        def fwd(xv, wv, bv):
            return F.conv(xv, wv, bv, stride, padding, dilation, groups)
    b = rng.standard_normal(w.shape[1] * groups if transposed else w.shape[0])
    r = rng.standard_normal(fwd(x, w, b).shape)
    grads = G.conv_backward(r, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            transposed=transposed, output_padding=op)
    _check_directional(lambda *p: _dot(fwd(*p), r), [x, w, b], grads, rng)


@PROP
@given(cfg=conv_configs(), seed=st.integers(0, 2 ** 30), transposed=st.booleans())
def test_grouped_gradients_equal_split_and_concatenate(cfg, seed, transposed):
    assume(cfg.groups > 1)
    rng = np.random.default_rng(seed)
    x, w, _ = cfg.arrays(rng, transposed=transposed, bias=False)
    pads = cfg.padding
    op = (0,) * cfg.nd
    if transposed:
        try:
            out = convforge.shapes.conv_transpose_output_shape(cfg.sizes, cfg.kernel, cfg.stride, pads,
                                                               cfg.dilation)
        except ValueError:       # output would be empty
            assume(False)
    else:
        out = convforge.shapes.conv_output_shape(cfg.sizes, cfg.kernel, cfg.stride, pads, cfg.dilation)
    gy = rng.standard_normal((cfg.batch, cfg.cout) + tuple(out))
    kw = dict(stride=cfg.stride, padding=pads, dilation=cfg.dilation, transposed=transposed, output_padding=op)
    gx, gw, gb = G.conv_backward(gy, x, w, groups=cfg.groups, **kw)
    xs = np.split(x, cfg.groups, axis=1)
    ws = np.split(w, cfg.groups, axis=0)
    gys = np.split(gy, cfg.groups, axis=1)
    parts = [G.conv_backward(g_, x_, w_, groups=1, **kw) for g_, x_, w_ in zip(gys, xs, ws)]
    assert_close(gx, np.concatenate([p[0] for p in parts], axis=1))
    assert_close(gw, np.concatenate([p[1] for p in parts], axis=0))
    assert_close(gb, np.concatenate([p[2] for p in parts]))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_pad_backward_is_the_adjoint_of_pad(mode, nd):
    rng = np.random.default_rng(nd)
    for _ in range(20):
        sizes = tuple(int(s) for s in rng.integers(2, 6, nd))
        p = []
        for s in reversed(sizes):
            top = s - 1 if mode == "reflect" else s
            p += [int(rng.integers(-1, top + 1)), int(rng.integers(-1, top + 1))]
        x = rng.standard_normal((2,) + sizes)
        try:
            y = pad(x, tuple(p), mode)
        except ValueError:
            continue
        r = rng.standard_normal(y.shape)
        gx = pad_backward(r, tuple(p), mode)
        assert gx.shape == x.shape
        assert abs(_dot(y, r) - _dot(x, gx)) <= 1e-12 * max(1.0, abs(_dot(y, r)))


def test_pad_backward_hand_values():
    g = np.arange(1.0, 8.0)             # gradient of pad(x of size 4, (2, 1))
    assert pad_backward(g, (2, 1), "reflect").tolist() == [3.0, 2.0 + 4.0, 1.0 + 5.0 + 7.0, 6.0]
    assert pad_backward(g, (2, 1), "replicate").tolist() == [1.0 + 2.0 + 3.0, 4.0, 5.0, 6.0 + 7.0]
    assert pad_backward(g, (2, 1), "circular").tolist() == [3.0 + 7.0, 4.0, 1.0 + 5.0, 2.0 + 6.0]
    assert pad_backward(g, (2, 1), "constant").tolist() == [3.0, 4.0, 5.0, 6.0]
    assert pad_backward(np.ones(3), (-1, 0)).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_rows_no_window_reads_get_zero_gradient():
    """Input 9, kernel 2, stride 3: windows cover rows 0..7, so row 8 gets no gradient (and the shape is kept)."""
    x, w = np.ones((1, 1, 9)), np.ones((1, 1, 2))
    gx = G.conv1d_input(x.shape, w, np.ones((1, 1, 3)), stride=3)
    assert gx.tolist() == [[[1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]]]
    gx = G.conv1d_input((1, 1, 9), w, np.ones((1, 1, 4)), stride=3, padding=1)
    assert gx.tolist() == [[[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]]]


def test_hand_computed_weight_and_bias_gradients():
    x = np.arange(6.0).reshape(1, 1, 6)
    gw = G.conv1d_weight(x, (1, 1, 2), np.ones((1, 1, 3)), stride=2)       # windows (0,1), (2,3), (4,5)
    assert gw.tolist() == [[[0.0 + 2 + 4, 1.0 + 3 + 5]]]
    _, _, gb = G.conv_backward(np.full((2, 3, 4), 0.5), np.ones((2, 1, 4)), np.ones((3, 1, 1)))
    assert gb.tolist() == [4.0, 4.0, 4.0]


def test_workspace_tiling_gives_the_same_gradients():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4, 12, 11)), rng.standard_normal((6, 2, 3, 3))
    gy = rng.standard_normal((3, 6, 6, 11))
    kw = dict(stride=(2, 1), padding=1, groups=2)
    full = G.conv_backward(gy, x, w, **kw)
    with convforge.config(workspace_bytes=2000):      # below one sample's im2col: tiles over output rows too
        tiled = G.conv_backward(gy, x, w, **kw)
    for a, b in zip(full, tiled):
        assert_close(a, b)


def test_float16_accumulates_in_float32():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 16, 16)), rng.standard_normal((4, 4, 3, 3))
    gy = rng.standard_normal((2, 4, 16, 16))
    ref = G.conv_backward(gy, x, w, padding=1)
    half = G.conv_backward(gy.astype(np.float16), x.astype(np.float16), w.astype(np.float16), padding=1)
    for a, b in zip(half, ref):
        assert a.dtype == np.float16
        np.testing.assert_allclose(a.astype(np.float64), b, rtol=2e-2, atol=2e-2 * np.abs(b).max())


@pytest.mark.parametrize("transposed", [False, True])
def test_empty_batch_gradients(transposed):
    w = np.ones((2, 3, 3)) if transposed else np.ones((3, 2, 3))
    x = np.ones((0, 2, 5))
    n_out = 7 if transposed else 3
    gx, gw, gb = G.conv_backward(np.ones((0, 3, n_out)), x, w, transposed=transposed)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (3,)
    assert not gw.any() and not gb.any()


def test_needs_mask_returns_none():
    x, w, gy = np.ones((1, 2, 5)), np.ones((3, 2, 3)), np.ones((1, 3, 3))
    assert [g is None for g in G.conv_backward(gy, x, w, needs=(False, True, False))] == [True, False, True]


# -- training API --------------------------------------------------------------------------------------------------
def test_no_grad_keeps_nothing_and_backward_explains():
    m = nn.Conv2d(2, 3, 3, padding_mode="reflect", padding=1, dtype=np.float64)
    x = np.ones((1, 2, 5, 5))
    assert m(x).grad_fn is not None                  # the parameters require grad: recorded
    with convforge.no_grad():
        y = m(x)
        assert y.grad_fn is None
        with convforge.enable_grad():
            assert m(x).grad_fn is not None
        assert m(x).grad_fn is None
    with pytest.raises(RuntimeError, match=r"does not require grad and does not have a grad_fn"):
        y.backward(np.ones_like(y))
    t = nn.ConvTranspose1d(2, 2, 3)
    with convforge.no_grad():
        out = t(np.ones((1, 2, 4), np.float32))
    with pytest.raises(RuntimeError, match="does not require grad"):
        out.backward(np.ones((1, 2, 6), np.float32))


def test_backward_accumulates_skips_frozen_params_and_zero_grad():
    m = nn.Conv1d(2, 3, 3, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 2, 6))
    gy = np.ones((2, 3, 4))
    m(x).backward(gy)
    first = m.weight.grad.copy()
    m(x).backward(gy)
    assert_close(m.weight.grad, 2 * first)
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.bias.requires_grad = False
    m(x).backward(gy)
    assert m.bias.grad is None and m.weight.grad is not None


def test_wrong_grad_output_shape_names_both_shapes():
    m = nn.Conv2d(2, 4, 3, stride=2, dtype=np.float64)
    with pytest.raises(RuntimeError, match=r"grad_output\[0\] has a shape of \(1, 4, 3, 4\) and output\[0\] has a "
                                           r"shape of \(1, 4, 4, 4\)"):
        m(np.ones((1, 2, 9, 9))).backward(np.ones((1, 4, 3, 4)))
    with pytest.raises(ValueError, match=r"conv2d_input: grad_output has shape \(1, 5, 4, 4\), but the forward "
                                         r"output has shape \(1, 4, 4, 4\)"):
        G.conv2d_input((1, 2, 9, 9), np.ones((4, 2, 3, 3)), np.ones((1, 5, 4, 4)), stride=2)
    with pytest.raises(ValueError, match=r"grad_output has shape \(4, 4, 4\), but the forward output has shape "
                                         r"\(4, 3, 3\)"):
        G.conv2d_weight(np.ones((2, 5, 5)), (4, 2, 3, 3), np.ones((4, 4, 4)))
    with pytest.raises(ValueError, match=r"grad_output of shape \(1, 4, 4, 4\) must have 3 dims like the unbatched"):
        G.conv2d_weight(np.ones((2, 9, 9)), (4, 2, 3, 3), np.ones((1, 4, 4, 4)), stride=2)


def test_transposed_grad_output_size_out_of_range_lists_valid_sizes():
    with pytest.raises(ValueError, match=r"grad_output has shape \(1, 3, 13, 11\).*valid sizes per dimension: "
                                         r"11 to 12, 11 to 12"):
        G.conv_transpose2d_input((1, 4, 5, 5), np.ones((4, 3, 3, 3)), np.ones((1, 3, 13, 11)), stride=2)
    with pytest.raises(ValueError, match=r"but the forward output has shape \(1, 3, 11, 11\)"):
        G.conv_transpose2d_input((1, 4, 5, 5), np.ones((4, 3, 3, 3)), np.ones((1, 3, 12, 12)), stride=2,
                                 output_padding=0)


def test_argument_errors():
    x, w, gy = np.ones((1, 4, 5)), np.ones((3, 2, 3)), np.ones((1, 3, 3))
    with pytest.raises(ValueError, match=r"expected input \(1, 4, 5\) to have 2 channels, but got 4"):
        G.conv_backward(gy, x, w)
    with pytest.raises(TypeError, match=r"input dtype \(float32\) and grad_output dtype \(float64\)"):
        G.conv_backward(gy, x.astype(np.float32), w.astype(np.float32), groups=2)
    with pytest.raises(ValueError, match="needs must be three booleans"):
        G.conv_backward(gy, x, w, groups=2, needs=(True, True))
    with pytest.raises(ValueError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv1d_input"):
        G.conv1d_input((5,), w, gy)
    with pytest.raises(ValueError, match="not supported for transposed convolution"):
        G.conv_transpose1d_input((1, 3, 3), w, np.ones((1, 6, 5)), padding="same")
    with pytest.raises(ValueError, match="Kernel size can't be greater than actual input size"):
        G.conv1d_weight(np.ones((1, 2, 2)), (3, 2, 3), np.ones((1, 3, 1)))

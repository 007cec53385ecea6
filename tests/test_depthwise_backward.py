"""The Numba backward kernels of depthwise layers (``convforge.engine.algorithms.depthwise``) called directly,
against torch:

* ``weight_grad_direct`` -- the weight gradient of a convolution, vs torch autograd;
* ``transpose_direct`` -- a transposed convolution, both as the input gradient of a convolution (asymmetric
  padding, vs torch autograd) and as a plain transposed convolution with output_padding (vs
  ``conv_transpose{1,2,3}d``).

Random configs cover 1-D to 3-D, stride, dilation, asymmetric padding, batch 1 and > 1, and three channel
layouts: depthwise, depthwise with a channel multiplier, and general groups.  Half the configs are "same-size
stride 1" (the kernels' masked flat path, blocked on small planes); the rest take the phase-layout path.  Some
examples shrink the kernels' buffer constants so that strips, chunks, batch tiles and the thread split all run.
Tolerances are relative to the largest expected value: float64 1e-10, float32 1e-5.

Without Numba (or with ``convforge.config(numba=False)``) the functions raise ValueError: they have no NumPy
path of their own (the generic algorithms are that path) and are only chosen when Numba is available.
"""
from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import convforge
from convforge._algos import numba_kernels
from conftest import to_torch, torch

pytestmark = pytest.mark.skipif(numba_kernels() is None, reason="Numba is not available")

if numba_kernels() is not None:
    from convforge.engine.algorithms import depthwise as D

tF = torch.nn.functional
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.filter_too_much])
TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def check_rel(actual, expected, rtol, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1.0)
    err = float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


@st.composite
def configs(draw, transposed=False):
    """A convolution (or transposed convolution) config; ``same``: stride 1 and output size == input size."""
    nd = draw(st.integers(1, 3))
    layout = draw(st.sampled_from(["depthwise", "multiplier", "groups"]))
    groups = draw(st.integers(1, 5))
    cg, og = {"depthwise": (1, 1), "multiplier": (1, draw(st.integers(2, 3))),
              "groups": (draw(st.integers(1, 3)), draw(st.integers(1, 3)))}[layout]
    same = draw(st.booleans())
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    stride = (1,) * nd if same else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    max_size = {1: 12, 2: 9, 3: 5}[nd]
    sizes, padding = [], []
    for k, d in zip(kernel, dilation):
        span = d * (k - 1) + 1
        if same:
            lo = draw(st.integers(0, span - 1))
            padding.append((lo, span - 1 - lo))
        else:
            padding.append((draw(st.integers(0, 3)), draw(st.integers(0, 3))))
        low = 1 if transposed else max(1, span - sum(padding[-1]))
        sizes.append(draw(st.integers(low, max(low, max_size))))
    return dict(nd=nd, batch=draw(st.integers(1, 3)), groups=groups, cg=cg, og=og, kernel=kernel, stride=stride,
                dilation=dilation, padding=tuple(padding), sizes=tuple(sizes), same=same)


@contextlib.contextmanager
def small_buffers(on):
    """Shrink the kernels' buffer constants (and allow a thread split on any size) so that every tiling runs."""
    if not on:
        yield
        return
    with mock.patch.object(D, "TILE_BYTES", 64), mock.patch.object(D, "BLOCK_POSITIONS", 40), \
            mock.patch.object(D, "STRIP_POSITIONS", 5), mock.patch.object(D, "PARTIAL_BYTES", 64), \
            mock.patch.object(D, "MIN_PARALLEL_MACS", 0), convforge.config(threads=2):
        yield


def torch_conv_grads(cfg, x, w, gy_seed):
    """(gy, gx, gw) of ``conv(pad(x), w)`` from torch autograd in float64."""
    xt = to_torch(x.astype(np.float64)).requires_grad_()
    wt = to_torch(w.astype(np.float64)).requires_grad_()
    pads = []
    for lo, hi in reversed(cfg["padding"]):
        pads += [lo, hi]
    y = getattr(tF, f"conv{cfg['nd']}d")(tF.pad(xt, pads), wt, None, cfg["stride"], 0, cfg["dilation"],
                                          cfg["groups"])
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape))
    y.backward(to_torch(gy))
    return gy, xt.grad.numpy(), wt.grad.numpy()


def conv_arrays(cfg, seed, dtype):
    rng = np.random.default_rng(seed)
    g, cg, og = cfg["groups"], cfg["cg"], cfg["og"]
    x = rng.standard_normal((cfg["batch"], g * cg) + cfg["sizes"]).astype(dtype)
    w = rng.standard_normal((g * og, cg) + cfg["kernel"]).astype(dtype)
    return x, w


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(cfg=configs(), seed=st.integers(0, 2 ** 16), small=st.booleans())
def test_weight_grad_matches_torch(dtype, cfg, seed, small):
    x, w = conv_arrays(cfg, seed, dtype)
    gy, _, gw_ref = torch_conv_grads(cfg, x, w, seed + 1)
    with small_buffers(small):
        gw = D.weight_grad_direct(x, gy.astype(dtype), cfg["kernel"], cfg["stride"], cfg["padding"],
                                  cfg["dilation"], cfg["groups"])
    assert gw.dtype == dtype
    check_rel(gw, gw_ref, TOL[dtype], "weight_grad_direct")


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(cfg=configs(), seed=st.integers(0, 2 ** 16), small=st.booleans())
def test_transpose_as_input_grad_matches_torch(dtype, cfg, seed, small):
    """The grad-input of a convolution: the transposed conv of gy with the forward weight, cropped by the low
    padding, its output the input size (rows no window reaches get zero)."""
    x, w = conv_arrays(cfg, seed, dtype)
    gy, gx_ref, _ = torch_conv_grads(cfg, x, w, seed + 1)
    with small_buffers(small):
        gx = D.transpose_direct(gy.astype(dtype), w, cfg["stride"], cfg["padding"], cfg["dilation"],
                                cfg["groups"], cfg["sizes"])
    assert gx.dtype == dtype
    check_rel(gx, gx_ref, TOL[dtype], "transpose_direct (input grad)")


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(cfg=configs(transposed=True), seed=st.integers(0, 2 ** 16), small=st.booleans(), data=st.data())
def test_transpose_matches_torch_conv_transpose(dtype, cfg, seed, small, data):
    """A transposed convolution in PyTorch's terms: symmetric padding, output_padding < max(stride, dilation)."""
    nd, g, cg, og = cfg["nd"], cfg["groups"], cfg["cg"], cfg["og"]
    pad = tuple(lo for lo, _ in cfg["padding"])
    op = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(cfg["stride"], cfg["dilation"]))
    out = tuple((i - 1) * s - 2 * p + d * (k - 1) + o + 1
                for i, s, p, d, k, o in zip(cfg["sizes"], cfg["stride"], pad, cfg["dilation"], cfg["kernel"], op))
    assume(all(o >= 1 for o in out))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], g * cg) + cfg["sizes"]).astype(dtype)
    w = rng.standard_normal((g * cg, og) + cfg["kernel"]).astype(dtype)
    ref = getattr(tF, f"conv_transpose{nd}d")(to_torch(x.astype(np.float64)), to_torch(w.astype(np.float64)),
                                              None, cfg["stride"], pad, op, g, cfg["dilation"]).numpy()
    with small_buffers(small):
        y = D.transpose_direct(x, w, cfg["stride"], tuple((p, p) for p in pad), cfg["dilation"], g, out)
    check_rel(y, ref, TOL[dtype], "transpose_direct")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 48, 7, 7), (2, 24, 14, 14), (2, 8, 40, 40)])
def test_mobilenet_like_layers(dtype, shape):
    """Depthwise 3x3 stride 1 and 2 on MobileNet-like planes (blocked 7x7 and 14x14, strips on 40x40), default
    buffer sizes, the thread split allowed: both gradients against torch."""
    _, c, h, w_ = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, 3, 3)).astype(dtype)
    for s in (1, 2):
        cfg = dict(nd=2, stride=(s, s), dilation=(1, 1), padding=((1, 1), (1, 1)), groups=c)
        gy, gx_ref, gw_ref = torch_conv_grads(cfg, x, w, 1)
        with mock.patch.object(D, "MIN_PARALLEL_MACS", 0), convforge.config(threads=2):
            gw = D.weight_grad_direct(x, gy.astype(dtype), (3, 3), (s, s), cfg["padding"], (1, 1), c)
            gx = D.transpose_direct(gy.astype(dtype), w, (s, s), cfg["padding"], (1, 1), c, (h, w_))
        check_rel(gw, gw_ref, TOL[dtype], f"weight grad stride {s}")
        check_rel(gx, gx_ref, TOL[dtype], f"input grad stride {s}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3])
def test_blocked_weight_grad_in_chunks(dtype, batch):
    """Small planes, blocks of 3 channels, partial sums in chunks of 6 channels (the last one short), split on
    2 threads: every chunk boundary must land its channels in the right rows."""
    rng = np.random.default_rng(batch)
    c = 17
    x = rng.standard_normal((batch, c, 4, 4)).astype(dtype)
    w = rng.standard_normal((c, 1, 3, 3)).astype(dtype)
    cfg = dict(nd=2, stride=(1, 1), dilation=(1, 1), padding=((0, 2), (1, 1)), groups=c)
    gy, _, gw_ref = torch_conv_grads(cfg, x, w, 2)
    chunk_bytes = 9 * 16 * x.itemsize * 6
    with mock.patch.object(D, "BLOCK_POSITIONS", 48), mock.patch.object(D, "PARTIAL_BYTES", chunk_bytes), \
            mock.patch.object(D, "MIN_PARALLEL_MACS", 0), convforge.config(threads=2):
        gw = D.weight_grad_direct(x, gy.astype(dtype), (3, 3), (1, 1), cfg["padding"], (1, 1), c)
    check_rel(gw, gw_ref, TOL[dtype], "chunked weight grad")


@pytest.mark.parametrize("shape", [(2, 6, 4, 4), (1, 2, 9, 9), (2, 3, 5, 5)])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_non_finite_values_stay_where_torch_has_them(shape, stride):
    """An inf at the end of a row of x (at stride 3 beyond every window) and one in gy: the taps that wrap onto
    them from the next row, and the phase layout's gaps, must not turn them into inf/nan elsewhere (a multiply by
    a zero mask would); a gy inf next to the padding must give NaN there, as zero padding does in torch."""
    rng = np.random.default_rng(5)
    c = shape[1]
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c, 1, 3, 3))
    cfg = {"nd": 2, "stride": (stride, stride), "dilation": (1, 1), "padding": ((1, 1), (1, 1)), "groups": c}
    gy, _, _ = torch_conv_grads(cfg, x, w, 1)
    gy[0, 0, 0, -1] = np.inf
    x[0, -1, 1, -1] = np.inf
    xt, wt = to_torch(x).requires_grad_(), to_torch(w).requires_grad_()
    tF.conv2d(xt, wt, None, stride, 1, 1, c).backward(to_torch(gy))
    gx = D.transpose_direct(gy, w, (stride, stride), cfg["padding"], (1, 1), c, shape[2:])
    gw = D.weight_grad_direct(x, gy, (3, 3), (stride, stride), cfg["padding"], (1, 1), c)
    for ours, ref in ((gx, xt.grad.numpy()), (gw, wt.grad.numpy())):
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        fin = np.isfinite(ref)
        np.testing.assert_allclose(ours[fin], ref[fin], rtol=1e-10, atol=1e-10)
        assert (~fin).any() and fin.any()


def test_float32_weight_grad_accuracy_on_a_large_plane():
    """float32 sums over 8 x 56 x 56 products stay near 1e-6 relative (per-position sums, then pairwise)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 4, 56, 56))
    gy = rng.standard_normal((8, 4, 56, 56))
    exact = D.weight_grad_direct(x, gy, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4)
    approx = D.weight_grad_direct(x.astype(np.float32), gy.astype(np.float32), (3, 3), (1, 1), ((1, 1), (1, 1)),
                                  (1, 1), 4)
    rel = np.max(np.abs(approx - exact)) / np.max(np.abs(exact))
    assert rel < 2e-6, rel


def test_empty_inputs_give_zeros():
    x = np.zeros((0, 3, 5, 5))
    gw = D.weight_grad_direct(x, np.zeros((0, 3, 5, 5)), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3)
    assert gw.shape == (3, 1, 3, 3) and not gw.any()
    y = D.transpose_direct(x, np.ones((3, 1, 3, 3)), (1, 1), ((1, 1), (1, 1)), (1, 1), 3, (5, 5))
    assert y.shape == (0, 3, 5, 5)


def test_without_numba_they_raise():
    x = np.ones((1, 2, 5, 5))
    w = np.ones((2, 1, 3, 3))
    with convforge.config(numba=False):
        assert not D.available(np.float64)
        with pytest.raises(ValueError, match="needs Numba"):
            D.transpose_direct(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 2, (5, 5))
        with pytest.raises(ValueError, match="needs Numba"):
            D.weight_grad_direct(x, x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2)
    assert D.available(np.float32)


@pytest.mark.parametrize("dtype", [np.float16, np.complex128, np.int64])
def test_other_dtypes_raise(dtype):
    x = np.ones((1, 2, 5, 5), dtype=dtype)
    assert not D.available(dtype)
    with pytest.raises(ValueError, match="float32 or float64"):
        D.weight_grad_direct(x, x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2)
    with pytest.raises(ValueError, match="float32 or float64"):
        D.transpose_direct(x, np.ones((2, 1, 3, 3), dtype=dtype), (1, 1), ((1, 1), (1, 1)), (1, 1), 2, (5, 5))


def test_four_spatial_dims_raise():
    x = np.ones((1, 2, 3, 3, 3, 3))
    with pytest.raises(ValueError, match="1 to 3 spatial dims"):
        D.weight_grad_direct(x, x, (1, 1, 1, 1), (1,) * 4, ((0, 0),) * 4, (1,) * 4, 2)
    with pytest.raises(ValueError, match="1 to 3 spatial dims"):
        D.transpose_direct(x, np.ones((2, 1, 1, 1, 1, 1)), (1,) * 4, ((0, 0),) * 4, (1,) * 4, 2, (3, 3, 3, 3))

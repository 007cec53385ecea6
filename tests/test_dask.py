"""convforge on Dask arrays: every op, any chunking, equals the in-memory NumPy result (itself tested vs torch).

Hypothesis draws rank, stride, dilation, groups, padding form and mode, and the chunking (chunks of one cell,
chunks smaller than the kernel, uneven last chunks, several chunks along the channel axis); the in-memory
computation on the same data is the oracle: float64 within 1e-12 of max|y|, float32 within 1e-5.
Graphs are computed with the synchronous scheduler here; tests/test_dask_cluster.py runs a real LocalCluster.
"""
from __future__ import annotations

import functools
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import convforge  # noqa: E402
import convforge.nn as nn  # noqa: E402
import convforge.nn.functional as F  # noqa: E402
from convforge.autograd import Function  # noqa: E402
from convforge.dask import map_network, network_halo  # noqa: E402
from convforge.dask._ops import _conv_block, _window_plan, run_forward  # noqa: E402
from convforge.dask._tiling import _run_block  # noqa: E402

from conftest import assert_close  # noqa: E402

@pytest.fixture(autouse=True)
def no_hidden_compute():
    """Building a graph must never compute a Dask array (np.asarray on a lazy input would, silently): the default
    scheduler refuses; the checks compute with an explicit one."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Dask array was computed while a graph was built (np.asarray on a lazy array?)")
    with dask.config.set(scheduler=refuse):
        yield


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                database=None)


def _partition(draw, size):
    """Random chunk sizes summing to ``size``: from one chunk to many single cells, uneven last chunks."""
    if size == 0:
        return (0,)
    kind = draw(st.sampled_from(["one", "ones", "random", "regular"]))
    if kind == "one":
        return (size,)
    if kind == "ones":
        return (1,) * size
    if kind == "regular":
        c = draw(st.integers(1, size))
        return (c,) * (size // c) + ((size % c,) if size % c else ())
    cuts = sorted(draw(st.sets(st.integers(1, max(size - 1, 1)), max_size=4)) - {size})
    bounds = [0] + cuts + [size]
    return tuple(b - a for a, b in zip(bounds, bounds[1:]))


def _dask(draw, x, chunk_channels=True):
    chunks = tuple(_partition(draw, s) if (axis != 1 or chunk_channels) else (s,)
                   for axis, s in enumerate(x.shape))
    return da.from_array(x, chunks=chunks)


def _check(lazy, expected, tol=1e-12):
    assert isinstance(lazy, da.Array), type(lazy)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    got = lazy.compute(scheduler="sync")
    assert got.shape == expected.shape
    assert_close(got, expected, rtol=tol, atol=tol)


def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))


def _conv_geometry(draw, max_kernel):
    """Rank, groups, channels, kernel, stride and dilation of a random convolution."""
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    return n, groups, cin, cout, kernel, stride, dilation


@settings(max_examples=50, **SETTINGS)
@given(st.data())
def test_conv_any_rank_stride_dilation_groups_padding_and_chunking(data):
    draw, rng = data.draw, _rng(data)
    n, groups, cin, cout, kernel, stride, dilation = _conv_geometry(draw, max_kernel=3)
    sizes = tuple(draw(st.integers(1, 11 if n < 3 else 7)) for _ in range(n))
    padding = draw(st.sampled_from(["int", "pairs", "same", "valid"]))
    padding = {"int": draw(st.integers(0, 2)), "same": "same", "valid": "valid",
               "pairs": tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(n))}[padding]
    x = rng.standard_normal((draw(st.integers(1, 3)), cin) + sizes)
    w = rng.standard_normal((cout, cin // groups) + kernel)
    b = rng.standard_normal(cout) if draw(st.booleans()) else None
    try:
        expected = F.conv(x, w, b, stride, padding, dilation, groups)
    except ValueError:
        assume(False)
    _check(F.conv(_dask(draw, x), w, b, stride, padding, dilation, groups), expected)


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_conv_transpose_any_rank_and_chunking(data):
    draw, rng = data.draw, _rng(data)
    n, groups, cin, cout, kernel, stride, dilation = _conv_geometry(draw, max_kernel=4)
    padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    sizes = tuple(draw(st.integers(1, 8 if n < 3 else 5)) for _ in range(n))
    x = rng.standard_normal((draw(st.integers(1, 2)), cin) + sizes)
    w = rng.standard_normal((cin, cout // groups) + kernel)
    b = rng.standard_normal(cout) if draw(st.booleans()) else None
    try:
        expected = F.conv_transpose(x, w, b, stride, padding, out_pad, groups, dilation)
    except ValueError:
        assume(False)
    _check(F.conv_transpose(_dask(draw, x), w, b, stride, padding, out_pad, groups, dilation), expected)


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_conv_modules_every_padding_mode(data):
    draw, rng = data.draw, _rng(data)
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    sizes = tuple(draw(st.integers(3, 9 if n < 3 else 6)) for _ in range(n))
    k = draw(st.integers(1, 3))
    padding = draw(st.sampled_from([0, 1, "same"])) if k < 3 else draw(st.sampled_from([1, 2, "same"]))
    stride = draw(st.integers(1, 2)) if padding != "same" else 1
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[n - 1](2, 3, k, stride=stride, padding=padding, padding_mode=mode,
                                                     dtype=np.float64)
    x = rng.standard_normal((2, 2) + sizes)
    _check(conv(_dask(draw, x)), np.asarray(conv(x)))


@settings(max_examples=50, **SETTINGS)
@given(st.data())
def test_pooling_and_chunking(data):
    draw, rng = data.draw, _rng(data)
    n = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel // 2))
    ceil_mode = draw(st.booleans())
    x = rng.standard_normal((2, 2) + tuple(draw(st.integers(3, 9 if n < 3 else 6)) for _ in range(n)))
    if draw(st.booleans()):
        dilation = draw(st.integers(1, 2))
        pool = getattr(F, f"max_pool{n}d")
        args = (kernel, stride, padding, dilation, ceil_mode)
    else:
        pool = getattr(F, f"avg_pool{n}d")
        args = (kernel, stride, padding, ceil_mode, draw(st.booleans()))
    try:
        expected = pool(x, *args)
    except ValueError:
        assume(False)
    _check(pool(_dask(draw, x), *args), expected)


@settings(max_examples=30, **SETTINGS)
@given(st.data())
def test_adaptive_avg_pool_and_chunking(data):
    draw, rng = data.draw, _rng(data)
    n = draw(st.integers(1, 3))
    x = rng.standard_normal((2, 2) + tuple(draw(st.integers(1, 9 if n < 3 else 6)) for _ in range(n)))
    size = tuple(draw(st.one_of(st.none(), st.integers(1, 7))) for _ in range(n))
    pool = getattr(F, f"adaptive_avg_pool{n}d")
    _check(pool(_dask(draw, x), size), pool(x, size))


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_interpolate_and_chunking(data):
    draw, rng = data.draw, _rng(data)
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", ("linear", "bilinear", "trilinear")[n - 1]]))
    x = rng.standard_normal((1, 2) + tuple(draw(st.integers(1, 8 if n < 3 else 5)) for _ in range(n)))
    kwargs = {"mode": mode}
    if draw(st.booleans()):
        kwargs["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2, 3]))
    else:
        kwargs["size"] = tuple(draw(st.integers(1, 12)) for _ in range(n))
    if "linear" in mode:
        kwargs["align_corners"] = draw(st.booleans())
    try:
        expected = F.interpolate(x, **kwargs)
    except ValueError:
        assume(False)
    _check(F.interpolate(_dask(draw, x), **kwargs), expected)


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_pad_every_mode_with_crops(data):
    draw, rng = data.draw, _rng(data)
    x = rng.standard_normal((2, 2, draw(st.integers(1, 7)), draw(st.integers(1, 7))))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    widths = tuple(draw(st.integers(-2, 4)) for _ in range(draw(st.sampled_from([2, 4]))))
    try:
        expected = F.pad(x, widths, mode, 1.5)
    except ValueError:
        assume(False)
    _check(F.pad(_dask(draw, x), widths, mode, 1.5), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_and_whole_axis_ops(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    xd = da.from_array(x, chunks=(2, 3, 2, 4))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for op in (F.relu, F.relu6, F.leaky_relu, F.silu, F.gelu, F.hardswish, F.hardsigmoid, F.sigmoid):
        _check(op(xd), op(x), tol)
    _check(F.relu(xd, inplace=True), F.relu(x.copy()), tol)
    assert np.array_equal(xd.compute(scheduler="sync"), x)     # inplace never writes into Dask's blocks
    stats = [rng.random(4).astype(dtype) + 0.5 for _ in range(4)]
    _check(F.batch_norm(xd, stats[0], stats[1], stats[2], stats[3]),
           F.batch_norm(x, stats[0], stats[1], stats[2], stats[3]), tol)
    _check(F.softmax(xd, dim=1), F.softmax(x, dim=1), tol)
    _check(F.log_softmax(xd, dim=-1), F.log_softmax(x, dim=-1), tol)
    _check(F.layer_norm(xd, (5, 6)), F.layer_norm(x, (5, 6)), tol)
    w = rng.standard_normal((3, 6)).astype(dtype)
    _check(F.linear(xd, w), F.linear(x, w), tol)
    _check(F.dropout(xd, 0.5, training=False) * 2 - F.relu(xd), x * 2 - F.relu(x), tol)


def test_float32_network_within_tolerance():
    rng = np.random.default_rng(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.SiLU(),
                        nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Upsample(scale_factor=2, mode="bilinear"))
    net.eval()
    net[1].running_mean[...] = rng.random(8)
    x = rng.standard_normal((2, 3, 21, 19)).astype(np.float32)
    xd = da.from_array(x, chunks=(1, 2, 5, 8))
    _check(net(xd), np.asarray(net(x)), 1e-5)


def _stack(draw):
    layers, channels = [], 2
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "transpose", "max", "avg", "relu"]))
        out = draw(st.integers(1, 3))
        if kind == "conv":
            k = draw(st.integers(1, 3))
            mode = draw(st.sampled_from(["zeros", "reflect", "replicate"]))
            layers.append(nn.Conv2d(channels, out, k, stride=draw(st.integers(1, 2)), padding=k // 2,
                                    dilation=draw(st.integers(1, 2)), padding_mode=mode, dtype=np.float64))
            channels = out
        elif kind == "transpose":
            k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            layers.append(nn.ConvTranspose2d(channels, out, k, stride=s, padding=draw(st.integers(0, (k - 1) // 2)),
                                             dtype=np.float64))
            channels = out
        elif kind == "max":
            layers.append(nn.MaxPool2d(2, ceil_mode=draw(st.booleans())))
        elif kind == "avg":
            layers.append(nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=draw(st.booleans())))
        else:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_map_network_and_layer_by_layer_equal_in_memory(data):
    draw, rng = data.draw, _rng(data)
    net = _stack(draw)
    x = rng.standard_normal((draw(st.integers(1, 2)), 2, draw(st.integers(6, 20)), draw(st.integers(6, 20))))
    try:
        expected = np.asarray(net(x))
    except ValueError:
        assume(False)
    xd = _dask(draw, x)
    try:
        stacked = map_network(net, xd)
    except ValueError as err:          # a reflect border wider than its block: refused, never wrong
        assert "padding_mode='reflect') needs" in str(err)
        stacked = None
    _check(net(xd), expected)
    if stacked is not None:
        _check(stacked, expected)


def test_map_network_one_exchange_and_halo():
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv3d(4, 2, 3, padding=1), nn.ConvTranspose3d(2, 1, 2, stride=2))
    x = np.random.default_rng(2).standard_normal((1, 1, 12, 12, 12)).astype(np.float32)
    xd = da.from_array(x, chunks=(1, 1, 6, 6, 12))
    y = map_network(net, xd)
    assert y.chunks[2:] == ((12, 12), (12, 12), (24,))
    layers = [k for k in y.dask.layers if not k.startswith("array-")]
    assert len(layers) == 1, layers                        # one layer of tasks for the whole stack
    assert network_halo(net[:5], (12, 12, 12)) == ((3, 3),) * 3
    assert_close(y.compute(scheduler="sync"), np.asarray(net(x)), rtol=1e-5, atol=1e-5)


class Twice(Function):
    """An op the Dask backend has never heard of."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x


def test_unsupported_ops_fail_naming_the_op():
    xd = da.ones((1, 2, 8, 8), chunks=4)
    with pytest.raises(NotImplementedError, match="the op Twice has no Dask implementation yet"):
        Twice.apply(xd)
    with pytest.raises(NotImplementedError, match="training mode"):
        F.batch_norm(xd, np.zeros(2), np.ones(2), training=True)
    with pytest.raises(NotImplementedError, match="training mode"):
        F.dropout(xd, 0.5, training=True)
    with pytest.raises(ValueError, match="not supported"):
        map_network(nn.Sequential(nn.Conv2d(2, 2, 3, dtype=np.float64), nn.Flatten()), xd)
    with pytest.raises(ValueError, match="circular"):
        map_network(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", dtype=np.float64)), xd)


def test_whole_plane_fallback_is_exact_and_warns():
    x = np.random.default_rng(5).standard_normal((3, 2, 9, 7))
    xd = da.from_array(x, chunks=(2, 1, 4, 3))
    with pytest.warns(UserWarning, match="AdaptiveMaxPoolFn has no tiled Dask implementation"):
        lazy = F.adaptive_max_pool2d(xd, (4, 3))
    _check(lazy, F.adaptive_max_pool2d(x, (4, 3)))
    with pytest.warns(UserWarning, match="whole planes"):
        values, index = F.max_pool2d(xd, 2, return_indices=True)
    expected = F.max_pool2d(x, 2, return_indices=True)
    _check(values, expected[0])
    assert np.array_equal(index.compute(scheduler="sync"), expected[1])


def test_numpy_api_ops_residuals_and_cat_stay_lazy():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 10, 10))
    xd = da.from_array(x, chunks=(1, 2, 4, 6))
    conv = nn.Conv2d(3, 3, 3, padding=1, dtype=np.float64)
    with convforge.no_grad():    # Dask hashes a right-hand tensor's bytes: a view autograd allows without grad
        lazy = convforge.cat([conv(xd) + xd, np.tanh(xd) * conv.bias[:, None, None]], dim=1).sum(axis=(2, 3))
    assert isinstance(lazy, da.Array)
    assert isinstance(conv.bias[:, None, None] * xd, da.Array)
    expected = convforge.cat([conv(x) + x, np.tanh(x) * conv.bias[:, None, None]], dim=1).sum(axis=(2, 3))
    _check(lazy, np.asarray(expected))


def test_zoo_model_on_dask():
    convforge.manual_seed(0)
    net = convforge.models.mobilenet_v3_small().eval()  # depthwise, hardswish, squeeze-excitation, global pool
    x = np.random.default_rng(7).standard_normal((2, 3, 40, 40)).astype(np.float32)
    _check(net(da.from_array(x, chunks=(1, 2, 24, 15))), np.asarray(net(x)), 1e-5)


@pytest.mark.slow
def test_convnext_on_dask():
    convforge.manual_seed(0)
    net = convforge.models.convnext_tiny().eval()      # permutes, layer norm, linear, layer scale, residuals
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _check(net(da.from_array(x, chunks=(1, 3, 20, 12))), np.asarray(net(x)), 1e-5)


def test_errors_are_the_in_memory_ones_with_the_real_sizes():
    xd = da.ones((5, 3, 8, 8), chunks=4)
    w = np.ones((4, 4, 3, 3))
    with pytest.raises(ValueError) as lazy:
        F.conv2d(xd, w)
    with pytest.raises(ValueError) as eager:
        F.conv2d(np.ones((5, 3, 8, 8)), w)
    assert str(lazy.value) == str(eager.value) and "[5, 3, 8, 8]" in str(lazy.value)
    with pytest.raises(ValueError, match="reflect padding"):
        F.pad(xd, (8, 8), mode="reflect")
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(xd.astype(np.float32), w)


def test_unbatched_and_tensor_weights():
    conv = nn.Conv2d(3, 2, 3, padding=1, dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((3, 10, 9))
    _check(conv(da.from_array(x, chunks=(1, 4, 4))), np.asarray(conv(x)))
    _check(F.max_pool2d(da.from_array(x, chunks=(3, 3, 3)), 2), F.max_pool2d(x, 2))
    w = np.asarray(conv.weight)
    with dask.config.set(scheduler="sync"):      # Dask weights are computed once, as graph constants
        lazy = F.conv2d(x, da.from_array(w, chunks=1), padding=1)
    _check(lazy, F.conv2d(x, w, padding=1))
    empty = da.zeros((0, 3, 10, 9), chunks=(1, 3, 5, 5))
    _check(conv(empty), np.asarray(conv(np.zeros((0, 3, 10, 9)))))


def test_numpy_path_unchanged_and_dask_not_imported():
    code = ("import sys, numpy as np, convforge.nn as nn, convforge.nn.functional as F\n"
            "y = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))(np.ones((1, 1, 8, 8), np.float32))\n"
            "F.pad(np.ones((2, 2)), (1, 1), 'reflect'); F.interpolate(np.ones((1, 1, 2)), scale_factor=2)\n"
            "assert type(y).__name__ == 'Tensor', type(y)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')], 'dask imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_task_memory_within_stated_bound():
    """One output block's task (glue the halo pieces, pad, convolve): peak <= 2 x slab + 2 x block + the engine's
    workspace bound (the bound docs/SCALE.md states)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 4, 48, 48, 48))
    w = rng.standard_normal((4, 4, 3, 3, 3))
    plan = _window_plan((24, 24), 48, 3, 1, 1, 1)
    window = plan.windows[1]                                 # outputs [24, 48) read inputs [23, 49)
    assert window == (23, 49, 24, 48)
    parts = (slice(23, 24), slice(24, 48))
    pieces = [[[x[:, :, a, b, c].copy() for c in parts] for b in parts] for a in parts]
    block = functools.partial(_conv_block, sizes=(48,) * 3, stride=(1,) * 3, dilation=(1,) * 3, groups=1,
                              n_spatial=3, op="conv3d")
    slab_bytes, out_bytes = 4 * 25 ** 3 * 8, 4 * 24 ** 3 * 8
    tracemalloc.start()
    out = _run_block(block, pieces, None, x.dtype, (window,) * 3, w, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert_close(out, F.conv3d(x, w, padding=1)[:, :, 24:, 24:, 24:], rtol=1e-12, atol=1e-12)
    assert peak <= 2 * slab_bytes + 2 * out_bytes + max(64 << 20, out_bytes), peak


def test_run_forward_is_the_in_memory_forward():
    x = np.arange(10.0).reshape(1, 1, 10)
    assert np.array_equal(run_forward(F.Convolution, x, np.ones((1, 1, 3)), None, 1, 1, 1, 1),
                          F.conv1d(x, np.ones((1, 1, 3)), padding=1))

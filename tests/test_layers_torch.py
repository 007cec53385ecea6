"""Companion layers against PyTorch: forward, backward (torch autograd), buffers, repr and state_dict.

float64 within 1e-10 (relative to the largest reference value), float32 within 1e-5.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import convforge
import convforge.nn as nn
from conftest import assert_close_rel as assert_close

TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}



def copy_params_to_torch(ours, theirs):
    """Copy our parameters and buffers into the torch module (same names)."""
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def check_module(ours, theirs, x, dtype=np.float64, seed=0, train=True, steps=1, extra_inputs=()):
    """Forward, backward (autograd: ``y.backward(gy)``) and parameter/buffer updates of ``ours`` equal torch's."""
    rtol = TOL[dtype]
    ours.to(dtype)
    theirs.to(TORCH_DTYPE[dtype])
    copy_params_to_torch(ours, theirs)
    ours.train(train)
    theirs.train(train)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        ours.zero_grad()
        theirs.zero_grad()
        x = np.asarray(x, dtype=dtype)
        xc = convforge.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        y = ours(xc, *extra_inputs)
        yt = theirs(xt, *extra_inputs)
        assert_close(y, yt, rtol, "forward")
        gy = rng.standard_normal(y.shape).astype(dtype)
        yt.backward(torch.from_numpy(gy))
        y.backward(gy)
        assert xc.grad.dtype == np.dtype(dtype)
        assert_close(xc.grad, xt.grad, rtol, "grad_input")
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_close(p.grad, tparams[name].grad, rtol, f"grad of {name}")
        tbuf = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            assert_close(b, tbuf[name], rtol, f"buffer {name}")
        x = rng.standard_normal(x.shape)
    return y


DTYPES = [np.float64, np.float32]


# -- activations ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [
    lambda m: m.ReLU(), lambda m: m.LeakyReLU(), lambda m: m.LeakyReLU(0.2), lambda m: m.SiLU(),
    lambda m: m.Hardswish(), lambda m: m.Sigmoid(), lambda m: m.ReLU6(), lambda m: m.Hardsigmoid(),
    lambda m: m.GELU(), lambda m: m.GELU(approximate="tanh"), lambda m: m.Softmax(dim=1), lambda m: m.Softmax(dim=0),
], ids=["relu", "leaky", "leaky0.2", "silu", "hardswish", "sigmoid", "relu6", "hardsigmoid", "gelu", "gelu_tanh",
        "softmax1", "softmax0"])
def test_activation(make, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(40) * 4, [-3.0, 3.0, 0.0, -50.0, 50.0, 6.0, -6.0, 1e-3, -1e-3,
                                                      30.0]]).reshape(5, 10)
    check_module(make(nn), make(torch.nn), x, dtype)


@pytest.mark.parametrize("cls", ["ReLU", "ReLU6", "LeakyReLU", "SiLU", "Hardswish", "Hardsigmoid"])
def test_activation_inplace_writes_input_and_backward_still_exact(cls):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4)) * 4
    ours = getattr(nn, cls)(inplace=True)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn, cls)()(xt)
    buf = x.copy()
    y = ours(buf)
    assert y is buf
    assert_close(buf, yt, 1e-12)
    leaf = convforge.tensor(x, requires_grad=True)
    tracked = leaf * 1.0                                  # a non-leaf, as in-place activations follow layers
    y = ours(tracked)
    gy = rng.standard_normal(x.shape)
    yt.backward(torch.from_numpy(gy))
    y.backward(gy)
    assert_close(leaf.grad, xt.grad, 1e-12)


# -- BatchNorm -----------------------------------------------------------------------------------------------------
BN_CASES = [
    ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)), ("BatchNorm2d", (3, 3, 4, 5)),
    ("BatchNorm3d", (2, 3, 3, 2, 4)),
]
BN_OPTIONS = [
    dict(), dict(affine=False), dict(bias=False), dict(momentum=None), dict(momentum=0.3, eps=1e-3),
    dict(track_running_stats=False), dict(affine=False, track_running_stats=False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", BN_OPTIONS, ids=str)
@pytest.mark.parametrize("cls,shape", BN_CASES)
def test_batchnorm_train_then_eval(cls, shape, options, dtype):
    rng = np.random.default_rng(3)
    ours = getattr(nn, cls)(3, **options)
    theirs = getattr(torch.nn, cls)(3, **options)
    if ours.affine:  # non-trivial affine parameters
        ours.weight[...] = rng.uniform(0.5, 2, 3)
        if ours.bias is not None:
            ours.bias[...] = rng.standard_normal(3)
    x = rng.standard_normal(shape) * 3 + 1
    check_module(ours, theirs, x, dtype, steps=3)                       # 3 steps: running-stat updates
    check_module(ours, theirs, x, dtype, train=False, steps=2)          # eval: running statistics (or batch)


def test_batchnorm_state_dict_matches_torch():
    for opts in BN_OPTIONS:
        ours, theirs = nn.BatchNorm2d(4, **opts).state_dict(), torch.nn.BatchNorm2d(4, **opts).state_dict()
        assert list(ours) == list(theirs)
        for k in ours:
            assert ours[k].shape == tuple(theirs[k].shape)
            assert (ours[k].dtype == np.int64) == (theirs[k].dtype == torch.int64)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input"):
        nn.BatchNorm2d(3)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training.*\(1, 3\)"):
        nn.BatchNorm1d(3)(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected input with 4 channels.*\(2, 3, 5\)"):
        nn.BatchNorm1d(4)(np.zeros((2, 3, 5), np.float32))
    nn.BatchNorm1d(3).eval()(np.zeros((1, 3), np.float32))  # one value per channel is fine in eval


# -- pooling -------------------------------------------------------------------------------------------------------
@st.composite
def pool_config(draw, n, kind):
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(n))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * n)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n)) if kind == "max" else (1,) * n
    ceil = draw(st.booleans())
    sizes = tuple(max(1, d * (k - 1) + 1 - 2 * p + draw(st.integers(0, 5)))
                  for k, p, d in zip(kernel, padding, dilation))
    batched = draw(st.booleans())
    shape = ((2,) if batched else ()) + (3,) + sizes
    return kernel, stride, padding, dilation, ceil, shape


def _both_or_neither(make_ours, make_theirs, x, dtype):
    """Either both libraries reject the configuration, or both agree on the result."""
    try:
        theirs = make_theirs()
        theirs(torch.tensor(x))
    except RuntimeError:
        with pytest.raises(ValueError):
            make_ours()(x)
        return
    check_module(make_ours(), theirs, x, dtype)


def _has_window_in_padding_only(shape, kernel, stride, padding, dilation, ceil):
    """A dilated window whose taps all fall in the padding: PyTorch's backward then writes to a bogus (possibly
    out-of-bounds) index, so its gradient cannot serve as an oracle there."""
    for i, k, s, p, d in zip(shape[-len(kernel):], kernel, stride or kernel, padding, dilation):
        try:
            o = convforge.shapes.pool_output_size(i, k, s, p, d, ceil)
        except ValueError:
            return False
        pos = np.arange(o)[:, None] * s + np.arange(k)[None] * d - p
        if (~((pos >= 0) & (pos < i)).any(axis=1)).any():
            return True
    return False


def test_maxpool_window_entirely_in_padding_gets_no_gradient():
    # kernel 2, dilation 2, padding 1 on a width-1 input: the only window reads positions -1 and 1 (both padding)
    x = np.random.default_rng(13).standard_normal((1, 2, 2, 1))
    m = nn.MaxPool2d(2, padding=(0, 1), dilation=(1, 2))
    y = m(x)
    yt = torch.nn.MaxPool2d(2, padding=(0, 1), dilation=(1, 2))(torch.tensor(x))
    assert_close(y, yt, 1e-12)
    assert np.isneginf(y).all()
    xc = convforge.tensor(x, requires_grad=True)
    m(xc).backward(np.ones_like(y))
    np.testing.assert_array_equal(xc.grad, 0)


@pytest.mark.parametrize("n", [1, 2, 3])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_maxpool_random_configs(n, data):
    kernel, stride, padding, dilation, ceil, shape = data.draw(pool_config(n, "max"))
    dtype = data.draw(st.sampled_from(DTYPES))
    if _has_window_in_padding_only(shape, kernel, stride, padding, dilation, ceil):
        dilation = (1,) * n          # covered by test_maxpool_window_entirely_in_padding_gets_no_gradient
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    name = f"MaxPool{n}d"
    kw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil)
    _both_or_neither(lambda: getattr(nn, name)(kernel, **kw), lambda: getattr(torch.nn, name)(kernel, **kw), x,
                     dtype)


@pytest.mark.parametrize("n", [1, 2, 3])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_avgpool_random_configs(n, data):
    kernel, stride, padding, _, ceil, shape = data.draw(pool_config(n, "avg"))
    dtype = data.draw(st.sampled_from(DTYPES))
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=data.draw(st.booleans()))
    if n > 1:
        kw["divisor_override"] = data.draw(st.sampled_from([None, None, 3]))
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    name = f"AvgPool{n}d"
    _both_or_neither(lambda: getattr(nn, name)(kernel, **kw), lambda: getattr(torch.nn, name)(kernel, **kw), x,
                     dtype)


def test_pooling_ceil_mode_grid_against_torch():
    """Every small 1-d geometry, where the ceil_mode rule (last window must start inside) matters."""
    rng = np.random.default_rng(4)
    for i in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    x = rng.standard_normal((1, 2, i))
                    for ours_cls, torch_cls in ((nn.MaxPool1d, torch.nn.MaxPool1d),
                                                (nn.AvgPool1d, torch.nn.AvgPool1d)):
                        _both_or_neither(lambda: ours_cls(k, s, p, ceil_mode=True),
                                         lambda: torch_cls(k, s, p, ceil_mode=True), x, np.float64)


def test_maxpool_ties_go_to_first_maximum_like_torch():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1:3, 1:3] = 1.0
    check_module(nn.MaxPool2d(2, stride=1), torch.nn.MaxPool2d(2, stride=1), x)
    check_module(nn.MaxPool2d(3, stride=1, padding=1), torch.nn.MaxPool2d(3, stride=1, padding=1), x)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_maxpool_return_indices(n):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3) + (7,) * n)
    kw = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True, return_indices=True)
    y, idx = getattr(nn, f"MaxPool{n}d")(**kw)(x)
    yt, idxt = getattr(torch.nn, f"MaxPool{n}d")(**kw)(torch.tensor(x))
    assert_close(y, yt, 1e-12)
    np.testing.assert_array_equal(idx, idxt.numpy())
    assert idx.dtype == np.int64


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"padding should be at most half of kernel size"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"padding should be at most half of kernel size"):
        nn.AvgPool1d(2, padding=2)
    with pytest.raises(ValueError, match=r"kernel_size \(9, 9\).*output size is too small"):
        nn.MaxPool2d(9)(np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to avg_pool2d.*\[8, 8\]"):
        nn.AvgPool2d(2)(np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a sequence of 2 ints"):
        nn.MaxPool2d((2, 2, 2))
    with pytest.raises(ValueError, match=r"stride must be positive"):
        nn.AvgPool2d(2, stride=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,in_sizes,out_size", [
    (1, (7,), 3), (1, (5,), 8), (1, (6,), 1), (2, (7, 5), (3, 2)), (2, (4, 9), (None, 4)), (2, (6, 6), 1),
    (3, (5, 4, 7), (2, 3, None)), (3, (3, 3, 3), 5),
])
def test_adaptive_avgpool(n, in_sizes, out_size, dtype):
    x = np.random.default_rng(6).standard_normal((2, 3) + in_sizes)
    name = f"AdaptiveAvgPool{n}d"
    check_module(getattr(nn, name)(out_size), getattr(torch.nn, name)(out_size), x, dtype)
    check_module(getattr(nn, name)(out_size), getattr(torch.nn, name)(out_size), x[0], dtype)   # unbatched


# -- Flatten, Linear, Upsample, Sequential -------------------------------------------------------------------------
@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (-3, -2), (2, 2)])
def test_flatten(start, end):
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5))
    check_module(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)


def test_flatten_error():
    with pytest.raises(ValueError, match=r"out of range for an input of shape \(2, 3\)"):
        nn.Flatten(1, 4)(np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,bias", [((5, 4), True), ((2, 3, 4), False), ((4,), True)])
def test_linear(shape, bias, dtype):
    convforge.manual_seed(0)
    x = np.random.default_rng(8).standard_normal(shape)
    check_module(nn.Linear(4, 6, bias=bias), torch.nn.Linear(4, 6, bias=bias), x, dtype)


def test_linear_init_bounds_and_errors():
    convforge.manual_seed(0)
    m = nn.Linear(25, 100)
    assert m.weight.shape == (100, 25) and m.weight.dtype == np.float32
    assert np.abs(m.weight).max() <= 0.2 and np.abs(m.weight).max() > 0.19     # U(-1/sqrt(25), 1/sqrt(25))
    assert np.abs(m.bias).max() <= 0.2
    with pytest.raises(ValueError, match=r"last dimension 25 \(in_features\).*\(3, 24\)"):
        m(np.zeros((3, 24), np.float32))


@pytest.mark.parametrize("shape,scale", [((2, 3, 4), 2), ((2, 3, 4, 5), 3), ((1, 2, 2, 3), (2, 1)),
                                         ((1, 2, 2, 2, 3), (1, 2, 3)), ((1, 2, 5, 3), 1.5), ((1, 2, 7, 6), 0.5)])
def test_upsample_nearest(shape, scale):
    x = np.random.default_rng(9).standard_normal(shape)
    check_module(nn.Upsample(scale_factor=scale), torch.nn.Upsample(scale_factor=scale), x)


@pytest.mark.parametrize("mode,shape", [("linear", (2, 3, 5)), ("bilinear", (1, 2, 4, 5)),
                                        ("trilinear", (1, 2, 3, 4, 2))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_linear_modes(mode, shape, align_corners):
    x = np.random.default_rng(9).standard_normal(shape)
    for kw in (dict(scale_factor=2), dict(size=tuple(s + 3 for s in shape[2:]))):
        check_module(nn.Upsample(mode=mode, align_corners=align_corners, **kw),
                     torch.nn.Upsample(mode=mode, align_corners=align_corners, **kw), x)


def test_upsample_size_and_errors():
    x = np.random.default_rng(10).standard_normal((1, 2, 3, 4))
    check_module(nn.Upsample(size=(6, 8)), torch.nn.Upsample(size=(6, 8)), x)
    check_module(nn.Upsample(size=(5, 7)), torch.nn.Upsample(size=(5, 7)), x)
    with pytest.raises(ValueError, match=r"mode 'bicubic' is not supported"):
        nn.Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"align_corners option can only be set with the interpolating modes"):
        nn.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"either size or scale_factor"):
        nn.Upsample()


def test_sequential_chain_and_container_protocol():
    convforge.manual_seed(0)
    ours = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3), torch.nn.Sigmoid())
    check_module(ours, theirs, np.random.default_rng(11).standard_normal((4, 5)))
    assert len(ours) == 4 and isinstance(ours[0], nn.Linear) and isinstance(ours[-1], nn.Sigmoid)
    assert [type(m).__name__ for m in ours] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    assert len(ours[1:3]) == 2 and isinstance(ours[1:3], nn.Sequential)
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(IndexError, match=r"index 4 is out of range for a Sequential of length 4"):
        ours[4]
    with pytest.raises(TypeError, match=r"must be convforge Modules, got function"):
        nn.Sequential(lambda x: x)


# -- repr and state_dict -------------------------------------------------------------------------------------------
REPR_CASES = [
    "ReLU()", "ReLU(inplace=True)", "LeakyReLU()", "LeakyReLU(0.2, inplace=True)", "SiLU()", "Hardswish()",
    "Sigmoid()", "BatchNorm1d(3)", "BatchNorm2d(8, momentum=None, affine=False)", "BatchNorm3d(2, bias=False)",
    "BatchNorm2d(4, eps=1e-3, track_running_stats=False)", "MaxPool1d(2)", "MaxPool2d((2, 3), stride=1)",
    "MaxPool3d(3, 2, 1, 2, ceil_mode=True)", "AvgPool1d(3, 2, 1)", "AvgPool2d(2)", "AvgPool3d((1, 2, 2), padding=0)",
    "AdaptiveAvgPool1d(4)", "AdaptiveAvgPool2d((None, 2))", "AdaptiveAvgPool3d(1)", "Flatten()", "Flatten(0, 2)",
    "Linear(3, 4)", "Linear(3, 4, bias=False)", "Dropout()", "Dropout(0.1, inplace=True)",
    "Upsample(scale_factor=2)", "Upsample(size=(4, 4))", "Upsample(scale_factor=(2, 3))", "MSELoss()",
    "CrossEntropyLoss()", "MSELoss(reduction='sum')", "ReLU6()", "ReLU6(inplace=True)", "Hardsigmoid()",
    "Hardsigmoid(inplace=True)", "GELU()", "GELU('tanh')", "Softmax()", "Softmax(dim=-1)", "LayerNorm(4)",
    "LayerNorm((2, 3), eps=1e-6, bias=False)", "LayerNorm(3, elementwise_affine=False)", "AdaptiveMaxPool2d(2)",
    "AdaptiveMaxPool2d((2, None))", "Identity()", "Upsample(scale_factor=1.5, mode='bilinear')",
    "Upsample(size=4, mode='linear', align_corners=True)", "ModuleList([Linear(2, 2), Linear(2, 2), ReLU()])",
    "ModuleList()", "ModuleDict({'a': ReLU(), 'b': Sequential(Linear(1, 2))})",
    "Sequential(Conv2d(1, 2, 3), BatchNorm2d(2), ReLU(), MaxPool2d(2), Sequential(Flatten(), Linear(8, 2)))",
]


@pytest.mark.parametrize("expr", REPR_CASES)
def test_repr_matches_torch(expr):
    names = [k for k in nn.__all__ if k[0].isupper() and hasattr(torch.nn, k)]
    ours = eval(expr, {k: getattr(nn, k) for k in names})
    theirs = eval(expr, {k: getattr(torch.nn, k) for k in names})
    assert repr(ours) == repr(theirs)


def _cnn(lib):
    return lib.Sequential(
        lib.Conv2d(3, 8, 3, padding=1), lib.BatchNorm2d(8), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(8, 8, 3, groups=2, bias=False), lib.BatchNorm2d(8, affine=False), lib.LeakyReLU(),
        lib.AvgPool2d(2), lib.Sequential(lib.BatchNorm2d(8, track_running_stats=False)),
        lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Dropout(), lib.Linear(8, 10), lib.BatchNorm1d(10),
    )


def test_state_dict_keys_shapes_dtypes_match_torch():
    ours, theirs = _cnn(nn).state_dict(), _cnn(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    for k, v in theirs.items():
        assert ours[k].shape == tuple(v.shape), k
        assert str(ours[k].dtype) == str(v.dtype).replace("torch.", ""), k
    weighted = nn.CrossEntropyLoss(weight=np.ones(3, np.float32)).state_dict()
    assert list(weighted) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict()) == ["weight"]


def test_torch_state_dict_loads_into_convforge_and_agrees():
    torch.manual_seed(0)
    theirs = _cnn(torch.nn).double()
    for m in theirs.modules():                       # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d) and m.track_running_stats:
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ours = _cnn(nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(12).standard_normal((4, 3, 10, 10))
    ours.eval(), theirs.eval()
    assert_close(ours(x), theirs(torch.tensor(x)), 1e-10)


def test_pool_output_size_matches_torch_grid():
    """shapes.pool_output_size (floor and ceil) is the length torch's max_pool1d produces, over a grid."""
    for i in range(1, 10):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            try:
                                ref = torch.nn.functional.max_pool1d(torch.zeros(1, 1, i), k, s, p, d, ceil).shape[-1]
                            except RuntimeError:
                                with pytest.raises(ValueError, match="pooling output size would be"):
                                    convforge.shapes.pool_output_size(i, k, s, p, d, ceil)
                                continue
                            assert convforge.shapes.pool_output_size(i, k, s, p, d, ceil) == ref, (i, k, s, p, d)

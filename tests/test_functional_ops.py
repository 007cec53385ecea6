"""``convforge.nn.functional``'s companion ops against ``torch.nn.functional``: forward and every gradient (torch
autograd), float64 within 1e-10 and float32 within 1e-5, with the Numba kernels and with the NumPy fallback."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import convforge
import convforge.nn.functional as F
from conftest import assert_close

TF = torch.nn.functional
DTYPES = [np.float64, np.float32]


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    """Run a test with the Numba kernels (when installed) and with the NumPy fallback."""
    with convforge.config(numba=request.param == "numba"):
        yield request.param


def check(ours_fn, torch_fn, arrays, dtype=np.float64, grads=None, seed=0):
    """Forward and the gradients of every array argument (``grads``: which ones) equal torch's.

    ``arrays`` are the positional array arguments (None stays None); the functions take them positionally."""
    grads = [a is not None and np.asarray(a).dtype.kind == "f" for a in arrays] if grads is None else grads
    ours_args, torch_args = [], []
    for a, need in zip(arrays, grads):
        if a is None:
            ours_args.append(None)
            torch_args.append(None)
            continue
        a = np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
        ours_args.append(convforge.tensor(a, requires_grad=True) if need else a)
        torch_args.append(torch.tensor(a, requires_grad=bool(need)))
    y = ours_fn(*ours_args)
    yt = torch_fn(*torch_args)
    y0, yt0 = (y[0], yt[0]) if isinstance(yt, tuple) else (y, yt)
    assert_close(np.asarray(y0), yt0.detach().numpy(), what="forward")
    if isinstance(yt, tuple):
        np.testing.assert_array_equal(np.asarray(y[1]), yt[1].numpy(), err_msg="indices")
    gy = np.asarray(np.random.default_rng(seed).standard_normal(y0.shape), dtype=y0.dtype)
    yt0.backward(torch.tensor(gy))
    y0.backward(gy)
    for i, (o, t, need) in enumerate(zip(ours_args, torch_args, grads)):
        if need:
            assert o.grad is not None, f"argument {i} got no gradient"
            assert_close(o.grad, t.grad.numpy(), what=f"grad of argument {i}")
    return y


def _inputs(shape, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    specials = np.array([0.0, -3.0, 3.0, 6.0, -6.0, 40.0, -40.0, 1e-4, -1e-4])
    x.flat[:len(specials)] = specials
    return x


# -- activations and softmax -----------------------------------------------------------------------------------------
ACTIVATIONS = [
    ("relu", lambda x: F.relu(x), lambda x: TF.relu(x)),
    ("relu6", lambda x: F.relu6(x), lambda x: TF.relu6(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("silu", lambda x: F.silu(x), lambda x: TF.silu(x)),
    ("gelu", lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    ("hardswish", lambda x: F.hardswish(x), lambda x: TF.hardswish(x)),
    ("hardsigmoid", lambda x: F.hardsigmoid(x), lambda x: TF.hardsigmoid(x)),
    ("sigmoid", lambda x: F.sigmoid(x), lambda x: torch.sigmoid(x)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,ours,theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_functions(name, ours, theirs, dtype, backend):
    check(ours, theirs, [_inputs((3, 4, 5))], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax(fn, dim, dtype):
    x = _inputs((2, 3, 4), scale=10)
    check(lambda v: getattr(F, fn)(v, dim=dim), lambda v: getattr(TF, fn)(v, dim=dim), [x], dtype)


def test_softmax_dtype_argument_and_implicit_dim():
    x = _inputs((2, 5)).astype(np.float32)
    y = check(lambda v: F.softmax(v, dim=1, dtype=np.float64), lambda v: TF.softmax(v, dim=1, dtype=torch.float64),
              [x], np.float32)
    assert y.dtype == np.float64
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        ours = F.log_softmax(x)
    assert_close(ours, TF.log_softmax(torch.tensor(x), dim=1).numpy())
    with pytest.raises(ValueError, match=r"dim 3 is out of range for an input with 2 dimensions"):
        F.softmax(x, dim=3)


def test_activation_errors():
    with pytest.raises(ValueError, match=r"approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(np.zeros(2), approximate="fast")
    with pytest.raises(TypeError, match=r"silu expects a floating-point input, got dtype int64"):
        F.silu(np.arange(3))


# -- pooling ------------------------------------------------------------------------------------------------------
@st.composite
def max_pool_case(draw):
    n = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    # every window keeps a tap inside the input (torch's backward is undefined otherwise)
    sizes = tuple(d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation))
    return n, kernel, stride, padding, dilation, draw(st.booleans()), sizes


@settings(max_examples=30, deadline=None)
@given(case=max_pool_case(), numba=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_max_pool_functional_random_configs_with_indices(case, numba, dtype):
    n, kernel, stride, padding, dilation, ceil, sizes = case
    x = np.random.default_rng(sum(sizes)).standard_normal((2, 3) + sizes)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil,
              return_indices=True)
    with convforge.config(numba=numba):
        check(lambda v: getattr(F, f"max_pool{n}d")(v, **kw), lambda v: getattr(TF, f"max_pool{n}d")(v, **kw), [x],
              dtype)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_nan_and_ties_like_torch(n, backend):
    x = np.zeros((1, 2) + (5,) * n)
    x.flat[3] = np.nan
    x.flat[7] = np.nan
    x.flat[-4] = -np.inf
    kw = dict(kernel_size=3, stride=2, padding=1, return_indices=True)
    y, idx = getattr(F, f"max_pool{n}d")(x, **kw)
    yt, idxt = getattr(TF, f"max_pool{n}d")(torch.tensor(x), **kw)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(idx, idxt.numpy())


def test_max_pool_shapes_of_the_zoo(backend):
    """ResNet's stem pool and MobileNet/VGG's 2x2 pool, with gradients, and integer inputs (forward only)."""
    x = np.random.default_rng(0).standard_normal((2, 4, 17, 16))
    check(lambda v: F.max_pool2d(v, 3, 2, 1), lambda v: TF.max_pool2d(v, 3, 2, 1), [x])
    check(lambda v: F.max_pool2d(v, 2), lambda v: TF.max_pool2d(v, 2), [x], np.float32)
    xi = np.arange(2 * 16 * 16).reshape(1, 2, 16, 16)[..., ::-1].copy()
    np.testing.assert_array_equal(F.max_pool2d(xi, 3, 2, 1), TF.max_pool2d(torch.tensor(xi).double(), 3, 2, 1))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_avg_pool_functional(n):
    x = np.random.default_rng(n).standard_normal((2, 3) + (6,) * n)
    for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True, count_include_pad=False),
               dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)):
        check(lambda v: getattr(F, f"avg_pool{n}d")(v, **kw), lambda v: getattr(TF, f"avg_pool{n}d")(v, **kw), [x])
    if n > 1:
        kw = dict(kernel_size=2, divisor_override=3)
        check(lambda v: getattr(F, f"avg_pool{n}d")(v, **kw), lambda v: getattr(TF, f"avg_pool{n}d")(v, **kw), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,sizes,out", [(1, (9,), 4), (2, (7, 5), (3, 2)), (2, (7, 7), 1), (2, (4, 6), (None, 4)),
                                         (3, (4, 5, 3), (2, 3, 1)), (3, (4, 4, 4), 1)])
def test_adaptive_avg_pool_functional(n, sizes, out, dtype):
    x = np.random.default_rng(1).standard_normal((2, 3) + sizes)
    check(lambda v: getattr(F, f"adaptive_avg_pool{n}d")(v, out),
          lambda v: getattr(TF, f"adaptive_avg_pool{n}d")(v, out), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes,out", [((7, 5), (3, 2)), ((5, 9), 4), ((6, 6), 1), ((3, 4), (5, 7)),
                                       ((8, 5), (None, 3))])
def test_adaptive_max_pool2d(sizes, out, dtype, backend):
    x = np.random.default_rng(2).standard_normal((2, 3) + sizes)
    x[0, 0, 0, :2] = 5.0                                                   # a tie: the first maximum wins
    check(lambda v: F.adaptive_max_pool2d(v, out, return_indices=True),
          lambda v: TF.adaptive_max_pool2d(v, out, return_indices=True), [x], dtype)
    check(lambda v: F.adaptive_max_pool2d(v, out), lambda v: TF.adaptive_max_pool2d(v, out), [x[0]], dtype)


def test_pooling_functional_errors():
    with pytest.raises(ValueError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to max_pool2d"):
        F.max_pool2d(np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match=r"padding should be at most half of kernel size"):
        F.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2)
    with pytest.raises(ValueError, match=r"output_size must be a positive int or 2 positive ints/None"):
        F.adaptive_max_pool2d(np.zeros((1, 1, 4, 4)), (0, 2))
    with pytest.raises(TypeError, match=r"unsupported input dtype bool"):
        F.max_pool1d(np.zeros((1, 1, 4), bool), 2)


# -- normalisation --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 5), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_functional(shape, training, dtype, backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    ours_stats = [rm.astype(dtype), rv.astype(dtype)]
    torch_stats = [torch.tensor(rm.astype(dtype)), torch.tensor(rv.astype(dtype))]
    check(lambda v, wv, bv: F.batch_norm(v, *ours_stats, wv, bv, training, 0.3, 1e-3),
          lambda v, wv, bv: TF.batch_norm(v, *torch_stats, wv, bv, training, 0.3, 1e-3), [x, w, b], dtype)
    assert_close(ours_stats[0], torch_stats[0].numpy(), what="running_mean")
    assert_close(ours_stats[1], torch_stats[1].numpy(), what="running_var")


def test_batch_norm_functional_without_affine_or_running_stats(backend):
    x = np.random.default_rng(4).standard_normal((5, 4, 3))
    check(lambda v: F.batch_norm(v, None, None, training=True), lambda v: TF.batch_norm(v, None, None, training=True),
          [x])
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training.*\(1, 4\)"):
        F.batch_norm(np.zeros((1, 4)), None, None, training=True)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(4,\)"):
        F.batch_norm(x, np.zeros(3), np.ones(4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 5), (5,)), ((2, 3, 4, 5), (4, 5)),
                                              ((3, 7), 7), ((2, 2, 2, 96), (96,))])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_functional(shape, normalized, affine, dtype, backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 2 + 3
    dims = (normalized,) if isinstance(normalized, int) else normalized
    w = rng.uniform(0.5, 2, dims) if affine != "none" else None
    b = rng.standard_normal(dims) if affine == "both" else None
    check(lambda v, wv, bv: F.layer_norm(v, normalized, wv, bv, 1e-6),
          lambda v, wv, bv: TF.layer_norm(v, dims, wv, bv, 1e-6), [x, w, b], dtype)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"normalized_shape=\[4\], expected input with shape \[\*, 4\], but got "
                                         r"input of size \[2, 3\]"):
        F.layer_norm(np.zeros((2, 3)), 4)


# -- linear, dropout, losses ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_functional(shape, bias, dtype):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(shape), rng.standard_normal((6, 4)), rng.standard_normal(6) if bias else None]
    check(F.linear, TF.linear, arrays, dtype)


def test_dropout_functional():
    x = np.ones((100, 10))
    assert F.dropout(x, training=False) is x and F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0), 0)
    convforge.manual_seed(5)
    xc = convforge.tensor(x, requires_grad=True)
    y = F.dropout(xc, 0.4)
    assert set(np.unique(np.asarray(y))) == {0.0, 1 / 0.6}
    y.backward(np.full(x.shape, 2.0))
    np.testing.assert_array_equal(xc.grad, 2 * np.asarray(y))
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1, but got -0.1"):
        F.dropout(x, -0.1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_functional_with_weight_and_target_gradient(reduction):
    rng = np.random.default_rng(7)
    x, t, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0, 2, (3, 4))
    check(lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
          [x, t])
    check(lambda a: F.mse_loss(a, t, reduction=reduction, weight=w),
          lambda a: TF.mse_loss(a, torch.tensor(t), reduction=reduction, weight=torch.tensor(w)), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_functional(reduction):
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((4, 5, 3)) * 3, rng.integers(0, 5, (4, 3))
    t[0, 0] = -100
    w = rng.uniform(0.5, 2, 5)
    check(lambda a: F.cross_entropy(a, t, w, reduction=reduction, label_smoothing=0.1),
          lambda a: TF.cross_entropy(a, torch.tensor(t), torch.tensor(w), reduction=reduction, label_smoothing=0.1),
          [x])
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        legacy = F.cross_entropy(x, t, size_average=False)
    assert_close(legacy, TF.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="sum").numpy())


# -- the public contract: torch's names, parameter names and defaults -----------------------------------------------
NAMES = ["relu", "relu6", "leaky_relu", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "softmax",
         "log_softmax", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
         "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d", "batch_norm",
         "layer_norm", "linear", "dropout", "interpolate", "cross_entropy", "mse_loss"]


def _torch_parameters(name):
    """torch's (name, default) list: from the Python signature, or from the builtin's documented signature."""
    import inspect
    import re
    fn = getattr(TF, name) if hasattr(TF, name) else getattr(torch, name)
    try:
        params = inspect.signature(fn).parameters
        if not any(p.kind == p.VAR_POSITIONAL for p in params.values()):
            return [(p.name, p.default) for p in params.values()]
    except (TypeError, ValueError):
        pass
    head = re.search(rf"{name}\((.*?)\)", fn.__doc__ or "")
    if head is None:
        return None
    out = []
    for part in head.group(1).split(","):
        key, _, default = part.strip().partition("=")
        key = key.strip().lstrip("*")
        if key:
            out.append((key, eval(default.strip()) if default else inspect.Parameter.empty))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_functional_signatures_match_torch(name):
    import inspect
    ours = [(p.name, p.default) for p in inspect.signature(getattr(F, name)).parameters.values()]
    theirs = _torch_parameters(name)
    if theirs is None:                     # max_pool*d / adaptive_max_pool2d: torch dispatches through *args
        theirs = {"adaptive_max_pool2d": [("input", inspect.Parameter.empty), ("output_size", inspect.Parameter.empty),
                                          ("return_indices", False)]}.get(name, [
            ("input", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty), ("stride", None),
            ("padding", 0), ("dilation", 1), ("ceil_mode", False), ("return_indices", False)])
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (k, mine), (_, want) in zip(ours, theirs):
        if want is not inspect.Parameter.empty:
            assert mine == want, f"{name}: default of {k} is {mine!r}, torch's is {want!r}"


@pytest.mark.parametrize("call", [
    lambda m, z: m.max_pool2d(z((0, 3, 8, 8)), 2), lambda m, z: m.avg_pool2d(z((0, 3, 8, 8)), 2),
    lambda m, z: m.softmax(z((2, 0)), dim=1), lambda m, z: m.log_softmax(z((0, 3)), dim=1),
    lambda m, z: m.batch_norm(z((0, 3, 4)), z((3,)), z((3,)) + 1), lambda m, z: m.layer_norm(z((0, 4)), (4,)),
    lambda m, z: m.interpolate(z((0, 2, 3, 3)), scale_factor=2, mode="bilinear"),
    lambda m, z: m.adaptive_avg_pool2d(z((0, 2, 3, 3)), 2), lambda m, z: m.adaptive_max_pool2d(z((0, 2, 3, 3)), 2),
    lambda m, z: m.gelu(z((0,))), lambda m, z: m.sigmoid(z((0, 5))), lambda m, z: m.linear(z((0, 3)), z((2, 3))),
], ids=["max_pool", "avg_pool", "softmax", "log_softmax", "batch_norm", "layer_norm", "interpolate",
        "adaptive_avg", "adaptive_max", "gelu", "sigmoid", "linear"])
def test_empty_inputs_give_torchs_empty_outputs(call, backend):
    ours = call(F, lambda shape: np.zeros(shape))
    theirs = call(TF, lambda shape: torch.zeros(shape, dtype=torch.float64))
    assert np.shape(ours) == tuple(theirs.shape)


@pytest.mark.parametrize("name,call", [
    ("relu", lambda m, v: m.relu(v)), ("gelu", lambda m, v: m.gelu(v)), ("silu", lambda m, v: m.silu(v)),
    ("hardswish", lambda m, v: m.hardswish(v)), ("max_pool", lambda m, v: m.max_pool2d(v, 3, 2, 1)),
    ("batch_norm", lambda m, v: m.batch_norm(v, None, None, training=True)),
    ("layer_norm", lambda m, v: m.layer_norm(v, (6,))), ("softmax", lambda m, v: m.softmax(v, dim=1)),
    ("interpolate", lambda m, v: m.interpolate(v, scale_factor=2, mode="bilinear")),
])
def test_non_contiguous_inputs(name, call, backend):
    base = np.random.default_rng(9).standard_normal((5, 2, 6, 4))
    x = base.transpose(3, 1, 0, 2)[:, :, ::-1]                             # (4, 2, 5, 6), no unit stride
    assert not x.flags.c_contiguous and not x.flags.f_contiguous
    ours = call(F, x)
    assert_close(ours, call(TF, torch.tensor(np.ascontiguousarray(x))).numpy(), what="forward")
    np.testing.assert_array_equal(x, base.transpose(3, 1, 0, 2)[:, :, ::-1])   # the input is left alone

"""Companion layers and losses independent of torch: float64 central finite differences along random directions.

For a module ``m`` and a random upstream gradient ``gy``, ``f(x) = <gy, m(x)>`` has directional derivative
``<x.grad, v>`` along ``v`` after ``m(x).backward(gy)`` (and ``<p.grad, u>`` along a parameter direction ``u``).
"""
import numpy as np
import pytest

import convforge
import convforge.nn as nn

EPS = 1e-6
RTOL = 1e-6


def _directional(f, value, direction):
    """Central difference of ``f`` when ``value`` (an array, modified in place and restored) moves along
    ``direction``."""
    original = value.copy()
    value[...] = original + EPS * direction
    plus = f()
    value[...] = original - EPS * direction
    minus = f()
    value[...] = original
    return (plus - minus) / (2 * EPS)


def fd_check(module, x, seed=0, reseed=None):
    """Input and parameter gradients of ``module`` agree with finite differences along random directions."""
    rng = np.random.default_rng(seed)
    module.double()
    x = np.array(x, dtype=np.float64)

    def run(value):
        if reseed is not None:
            convforge.manual_seed(reseed)      # same dropout mask on every call
        return module(value)

    tracked = convforge.tensor(x, requires_grad=True)
    y = run(tracked)
    gy = rng.standard_normal(y.shape)
    module.zero_grad()
    y.backward(gy)
    gx = tracked.grad
    grads = {name: np.array(p.grad) for name, p in module.named_parameters()}

    def f():
        with convforge.no_grad():
            return float(np.sum(run(x) * gy))
    for _ in range(2):
        v = rng.standard_normal(x.shape)
        numeric = _directional(f, x, v)
        analytic = float(np.sum(gx * v))
        assert abs(numeric - analytic) <= RTOL * max(1.0, abs(analytic)), ("input", numeric, analytic)
    for name, p in module.named_parameters():
        u = rng.standard_normal(p.shape)
        numeric = _directional(f, p.data, u)
        analytic = float(np.sum(grads[name] * u))
        assert abs(numeric - analytic) <= RTOL * max(1.0, abs(analytic)), (name, numeric, analytic)


def _x(shape, seed=1, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.1), nn.SiLU(), nn.Hardswish(), nn.Sigmoid()],
                         ids=lambda m: type(m).__name__)
def test_activations(module):
    fd_check(module, _x((3, 7), scale=3))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.BatchNorm1d(3), (5, 3)), (lambda: nn.BatchNorm1d(3, affine=False), (4, 3, 6)),
    (lambda: nn.BatchNorm2d(3, momentum=None), (2, 3, 4, 4)), (lambda: nn.BatchNorm3d(3, bias=False), (2, 3, 2, 3, 3)),
    (lambda: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 3, 3)),
])
def test_batchnorm(make, shape, train):
    m = make()
    if m.affine:
        m.weight[...] = np.linspace(0.5, 2, 3)
    m.running_mean = None if m.running_mean is None else np.array([0.3, -0.2, 0.1], np.float32)
    fd_check(m.train(train), _x(shape))


@pytest.mark.parametrize("module,shape", [
    (nn.MaxPool1d(3, 2, 1), (2, 3, 9)), (nn.MaxPool1d(2, dilation=2, ceil_mode=True), (2, 2, 8)),
    (nn.MaxPool2d((2, 3), stride=(1, 2), padding=(1, 1)), (2, 2, 5, 6)),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), (1, 2, 6, 6)), (nn.MaxPool3d(2, stride=1, padding=1), (1, 2, 3, 3, 3)),
    (nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 8)), (nn.AvgPool1d(2, ceil_mode=True), (2, 2, 7)),
    (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 5)),
    (nn.AvgPool2d(2, divisor_override=3), (1, 2, 4, 4)), (nn.AvgPool3d((1, 2, 2), padding=(0, 1, 1)), (1, 2, 2, 3, 3)),
    (nn.AdaptiveAvgPool1d(3), (2, 2, 7)), (nn.AdaptiveAvgPool2d((4, None)), (2, 2, 5, 3)),
    (nn.AdaptiveAvgPool3d(2), (1, 2, 3, 5, 4)), (nn.MaxPool2d(2), (3, 4, 4)),  # unbatched
], ids=repr)
def test_pooling(module, shape):
    fd_check(module, _x(shape))


@pytest.mark.parametrize("module,shape", [
    (nn.Flatten(), (2, 3, 2, 2)), (nn.Flatten(0, 1), (2, 3, 2)), (nn.Linear(4, 3), (2, 5, 4)),
    (nn.Linear(4, 3, bias=False), (4,)), (nn.Upsample(scale_factor=(2, 3)), (1, 2, 2, 3)),
    (nn.Upsample(scale_factor=2), (2, 1, 2, 2, 2)), (nn.Dropout(0.3).eval(), (3, 4)),
], ids=repr)
def test_shape_and_dense_layers(module, shape):
    convforge.manual_seed(0)
    fd_check(module, _x(shape))


def test_dropout_with_a_fixed_mask():
    fd_check(nn.Dropout(0.4), _x((4, 6)), reseed=5)


def test_small_cnn_end_to_end():
    convforge.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, groups=2), nn.BatchNorm2d(6), nn.SiLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(24, 3),
    )
    fd_check(net, _x((3, 2, 8, 8)), reseed=3)


# -- losses --------------------------------------------------------------------------------------------------------
def loss_fd_check(criterion, x, target, seed=0):
    rng = np.random.default_rng(seed)
    tracked = convforge.tensor(x, requires_grad=True)
    loss = criterion(tracked, target)
    g = None if criterion.reduction != "none" else rng.standard_normal(loss.shape)
    loss.backward(g)
    gx = tracked.grad
    weight = 1.0 if g is None else g

    def f():
        with convforge.no_grad():
            return float(np.sum(criterion(x, target) * weight))
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        numeric = _directional(f, x, v)
        analytic = float(np.sum(gx * v))
        assert abs(numeric - analytic) <= RTOL * max(1.0, abs(analytic)), (numeric, analytic)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse(reduction):
    loss_fd_check(nn.MSELoss(reduction=reduction), _x((3, 4)), _x((3, 4), seed=2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [dict(), dict(weight=np.array([0.5, 2.0, 1.0, 3.0])), dict(ignore_index=1),
                                     dict(label_smoothing=0.2), dict(weight=np.array([1.0, 2, 3, 4]),
                                                                     label_smoothing=0.1, ignore_index=0)], ids=str)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3, 2), (4,)])
def test_cross_entropy_indices(shape, options, reduction):
    rng = np.random.default_rng(3)
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, 4, target_shape)
    loss_fd_check(nn.CrossEntropyLoss(reduction=reduction, **options), _x(shape), target)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(smoothing):
    p = np.random.default_rng(4).dirichlet(np.ones(4), size=5)
    loss_fd_check(nn.CrossEntropyLoss(label_smoothing=smoothing, weight=np.array([1.0, 2, 1, 0.5])), _x((5, 4)), p)

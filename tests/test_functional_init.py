"""``convforge.nn.init`` against ``torch.nn.init``: gains and fans exactly, bounds exactly, and the distributions'
moments against torch's own samples (the random streams differ; 200k draws keep the checks far from chance)."""
import math

import numpy as np
import pytest
import torch

import convforge
import convforge.nn as nn
from convforge.nn import init

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("name", NONLINEARITIES)
def test_calculate_gain_matches_torch(name):
    assert init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    if name == "leaky_relu":
        for slope in (0, 0.2, math.sqrt(5), 3):
            assert init.calculate_gain(name, slope) == torch.nn.init.calculate_gain(name, slope)


@pytest.mark.parametrize("shape", [(3, 4), (16, 3, 7), (64, 3, 7, 7), (8, 4, 3, 2, 5), (1, 1, 1, 1)])
def test_fans_match_torch(shape):
    assert init.calculate_fan_in_and_fan_out(np.empty(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


SHAPE = (400, 50, 10)        # 200,000 values: fan_in 500, fan_out 4000


def _moments(a):
    a = np.asarray(a, dtype=np.float64)
    return a.mean(), a.std(), np.abs(a).max()


@pytest.mark.parametrize("fn,kwargs", [
    ("kaiming_uniform_", dict()), ("kaiming_uniform_", dict(a=math.sqrt(5))),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")), ("kaiming_normal_", dict()),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu")), ("xavier_uniform_", dict(gain=2.0)),
    ("xavier_normal_", dict()), ("uniform_", dict(a=-0.5, b=2.0)), ("normal_", dict(mean=1.0, std=0.5)),
    ("trunc_normal_", dict(std=0.02)), ("trunc_normal_", dict(mean=0.5, std=1.0, a=0.0, b=1.0)),
])
def test_distributions_match_torch_samples(fn, kwargs):
    convforge.manual_seed(0)
    torch.manual_seed(0)
    ours = getattr(init, fn)(np.empty(SHAPE, np.float32), **kwargs)
    theirs = getattr(torch.nn.init, fn)(torch.empty(SHAPE), **kwargs).numpy()
    (m1, s1, a1), (m2, s2, a2) = _moments(ours), _moments(theirs)
    assert abs(m1 - m2) < 0.02 * s2 + 1e-4
    assert abs(s1 / s2 - 1) < 0.02
    if fn.endswith("uniform_"):
        assert abs(a1 / a2 - 1) < 1e-3                                    # the same bound
    if fn == "trunc_normal_":
        a, b = kwargs.get("a", -2.0), kwargs.get("b", 2.0)
        assert ours.min() >= a and ours.max() <= b


def test_fills_are_in_place_and_work_on_parameters():
    p = nn.Parameter(np.empty((3, 4), np.float32))
    assert init.zeros_(p) is p and (np.asarray(p) == 0).all()
    assert init.ones_(p) is p and (np.asarray(p) == 1).all()
    assert init.constant_(p, 0.25) is p and (np.asarray(p) == 0.25).all() and p.dtype == np.float32
    w = init.kaiming_uniform_(p, a=math.sqrt(5))
    assert w is p and np.abs(np.asarray(p)).max() <= 1 / math.sqrt(4)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(init.normal_(np.empty(5), generator=g1), init.normal_(np.empty(5), generator=g2))


def test_init_errors_like_torch():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions"):
        init.xavier_uniform_(np.empty(5))
    with pytest.raises(ValueError, match=r"Mode fan_avg not supported, please use one of fan_in, fan_out"):
        init.kaiming_normal_(np.empty((2, 2)), mode="fan_avg")
    with pytest.raises(ValueError, match=r"Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.warns(UserWarning, match=r"Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(np.empty((0, 3)))

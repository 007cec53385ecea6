"""Conv modules: repr, init, parameters, state_dict and the Module base, compared with torch."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import convforge
import convforge.nn as nn
from conftest import to_torch, torch

CASES = [
    ("Conv1d", (4, 8, 3), {}),
    ("Conv2d", (8, 14, (3, 2)), {"stride": (2, 1)}),
    ("Conv2d", (8, 14, 3), {"padding": "same", "dilation": 2, "groups": 2, "bias": False}),
    ("Conv2d", (4, 4, 3), {"padding": 1, "padding_mode": "circular"}),
    ("Conv2d", (4, 4, 3), {"padding": "valid"}),
    ("Conv3d", (2, 4, (1, 2, 3)), {"stride": 2, "padding": (1, 0, 1)}),
    ("ConvTranspose1d", (4, 6, 3), {"stride": 2, "output_padding": 1, "groups": 2}),
    ("ConvTranspose2d", (4, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 4}),
    ("ConvTranspose3d", (2, 4, 2), {"dilation": 2, "bias": False}),
]


@pytest.mark.parametrize("name,args,kwargs", CASES)
def test_repr_state_dict_and_shapes_match_torch(name, args, kwargs):
    m = getattr(nn, name)(*args, **kwargs)
    tm = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(m) == repr(tm)
    tsd = tm.state_dict()
    sd = m.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        assert sd[k].shape == tuple(tsd[k].shape) and sd[k].dtype == np.float32
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "output_padding", "padding_mode", "transposed"):
        assert getattr(m, attr) == getattr(tm, attr), attr


@pytest.mark.parametrize("name,args,kwargs", CASES)
def test_default_init_is_uniform_with_torch_bound(name, args, kwargs):
    convforge.manual_seed(123)
    m = getattr(nn, name)(*args, **kwargs)
    w = np.asarray(m.weight)
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    assert np.all(np.abs(w) <= bound)
    # the values fill the interval (not e.g. a smaller or zero init)
    assert w.max() > 0.5 * bound and w.min() < -0.5 * bound or w.size < 8
    if m.bias is not None:
        assert np.all(np.abs(np.asarray(m.bias)) <= bound)


def test_init_distribution_matches_torch_statistically():
    convforge.manual_seed(0)
    w = np.asarray(nn.Conv2d(64, 64, 3).weight).ravel()
    torch.manual_seed(0)
    tw = torch.nn.Conv2d(64, 64, 3).weight.detach().numpy().ravel()
    bound = 1 / math.sqrt(64 * 9)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(w, q) - np.quantile(tw, q)) < 0.02 * bound * 2 + 0.01 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound


def test_manual_seed_reproducible():
    convforge.manual_seed(7)
    a = nn.Conv2d(3, 4, 3).state_dict()
    convforge.manual_seed(7)
    b = nn.Conv2d(3, 4, 3).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = nn.Conv2d(3, 4, 3).state_dict()
    assert not np.array_equal(a["weight"], c["weight"])


def test_parameter_behaves_as_ndarray():
    m = nn.Conv2d(2, 3, 3, dtype=np.float64)
    assert isinstance(m.weight, np.ndarray) and m.weight.shape == (3, 2, 3, 3) and m.weight.dtype == np.float64
    assert m.weight.grad is None
    m.weight[...] = 1.0
    assert np.asarray(m.weight).sum() == 54
    m.weight[0, 0, 0, 0] = 5
    assert m.weight[0, 0, 0, 0] == 5
    doubled = m.weight * 2                       # a recorded result, not a new parameter (as torch)
    assert type(doubled) is convforge.Tensor and doubled.grad_fn is not None
    m.weight = np.zeros((3, 2, 3, 3))
    assert isinstance(m.weight, nn.Parameter)
    for _ in range(2):                           # gradients accumulate until zeroed
        (m.weight * 1.0).sum().backward()
    assert m.weight.grad.sum() == 108
    m.zero_grad()
    assert m.weight.grad is None
    clone = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(clone.weight, m.weight)


def test_module_subclass_registers_by_assignment():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.proj = nn.Conv2d(4, 2, 1, bias=False)
            self.scale = nn.Parameter(np.ones(1, np.float32))

        def forward(self, x):
            return self.proj(self.conv(x)) * self.scale

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.proj = torch.nn.Conv2d(4, 2, 1, bias=False)
            self.scale = torch.nn.Parameter(torch.ones(1))

    b, tb = Block(), TBlock()
    assert [n for n, _ in b.named_parameters()] == [n for n, _ in tb.named_parameters()]
    assert list(b.state_dict()) == list(tb.state_dict())
    assert repr(b) == repr(tb).replace("TBlock", "Block")
    assert b(np.ones((1, 3, 5, 5), np.float32)).shape == (1, 2, 5, 5)
    b.eval()
    assert not b.conv.training
    b.train()
    assert b.proj.training
    # load a torch state_dict converted to numpy
    b.load_state_dict({k: v.detach().numpy() for k, v in tb.state_dict().items()})
    np.testing.assert_array_equal(b.conv.weight, tb.conv.weight.detach().numpy())
    del b.proj
    assert "proj.weight" not in b.state_dict()


def test_to_dtype_casts_parameters():
    m = nn.Conv2d(2, 3, 3).to(np.float64)
    assert m.weight.dtype == np.float64 and m.bias.dtype == np.float64
    assert m(np.ones((1, 2, 4, 4))).dtype == np.float64
    assert nn.Conv2d(2, 3, 3).half()(np.ones((1, 2, 4, 4), np.float16)).dtype == np.float16


def test_complex_module():
    m = nn.Conv1d(2, 2, 3, dtype=np.complex128)
    x = np.random.default_rng(0).standard_normal((1, 2, 6)) * (1 + 1j)
    expected = torch.nn.functional.conv1d(to_torch(x), to_torch(np.asarray(m.weight)),
                                          to_torch(np.asarray(m.bias))).numpy()
    np.testing.assert_allclose(m(x), expected, rtol=1e-12)


def test_load_state_dict_key_errors_are_runtime_errors_naming_the_keys():
    m = nn.Conv2d(2, 3, 3)
    state = m.state_dict()
    state["extra.weight"] = state.pop("bias")
    with pytest.raises(RuntimeError, match=r"missing keys \['bias'\], unexpected keys \['extra.weight'\]"):
        m.load_state_dict(state)
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra.weight"])
    weight = m.weight
    m.load_state_dict({"weight": np.ones((3, 2, 3, 3)), "bias": np.zeros(3)})
    assert m.weight is weight and np.all(np.asarray(m.weight) == 1)    # values copied into the same parameter


@pytest.mark.parametrize("module", ["Conv2d", "ConvTranspose2d"])
def test_byte_swapped_dtype_trains(module):
    """A module built with '>f4' stores native float32 and runs forward and backward (was a TypeError)."""
    convforge.manual_seed(0)
    m = getattr(nn, module)(2, 3, 3, dtype=">f4")
    convforge.manual_seed(0)
    ref = getattr(nn, module)(2, 3, 3, dtype=np.float32)
    assert m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight, ref.weight)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(">f4")
    m(x).sum().backward()
    ref(x.astype(np.float32)).sum().backward()
    np.testing.assert_array_equal(m.weight.grad, ref.weight.grad)
    np.testing.assert_array_equal(m.bias.grad, ref.bias.grad)

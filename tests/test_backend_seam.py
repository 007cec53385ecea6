"""The backend seam (convforge._backend): ops on a registered array type run on its backend, not NumPy.

A toy backend for a toy array type (a wrapper that records every op it runs and computes it with NumPy) shows
the whole contract: functions and modules hand such arrays to the backend untouched (no ``np.asarray``), the
backend sees the autograd ``Function`` and its arguments, and unregistered types keep the NumPy path.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import convforge.nn as nn
import convforge.nn.functional as F
from convforge import _backend

from conftest import assert_close


class Recorded:
    """A toy array type: a NumPy array inside, plus the shape/dtype attributes validation reads."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.shape, self.dtype, self.ndim = self.values.shape, self.values.dtype, self.values.ndim

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the seam must not convert a backend's array with np.asarray")

    def __getitem__(self, index):
        return Recorded(self.values[index])


class RecordingBackend:
    """Runs each op with NumPy on the unwrapped values and records its Function's name."""

    def __init__(self):
        self.calls = []

    def apply(self, fn, args, kwargs):
        self.calls.append(fn.__name__)
        raw = [a.values if isinstance(a, Recorded) else a for a in args]
        return Recorded(np.asarray(fn.apply(*raw, **kwargs)))


@pytest.fixture
def backend():
    b = RecordingBackend()
    _backend.register(Recorded, b)
    yield b
    _backend.unregister(Recorded)


def test_functions_run_on_the_registered_backend(backend):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(Recorded(x), w, stride=2, padding=1)
    assert isinstance(y, Recorded) and backend.calls == ["Convolution"]
    assert_close(y.values, F.conv2d(x, w, stride=2, padding=1))
    F.pad(Recorded(x), (1, 1), mode="reflect")
    F.max_pool2d(Recorded(x), 2)
    F.relu(Recorded(x))
    assert backend.calls == ["Convolution", "Pad", "MaxPoolFn", "ReLUFn"]


def test_modules_run_on_the_registered_backend(backend):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect", dtype=np.float64), nn.BatchNorm2d(
        4, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2), nn.ConvTranspose2d(4, 2, 2, stride=2, dtype=np.float64))
    net.eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    y = net(Recorded(x))
    assert backend.calls == ["Pad", "Convolution", "BatchNormFn", "ReLUFn", "MaxPoolFn", "ConvolutionTranspose"]
    assert_close(y.values, np.asarray(net(x)))


def test_numpy_arguments_never_reach_a_backend(backend):
    assert _backend.backend_for((np.ones(3), 1, 2.0, None, "same", (1, 2), np.float32(1))) is None
    F.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)))
    assert backend.calls == []


def test_unregistered_type_keeps_the_numpy_path():
    class Plain:
        def __array__(self, dtype=None, copy=None):
            return np.ones((1, 1, 5))
    assert _backend.backend_for((Plain(),)) is None
    assert F.conv1d(Plain(), np.ones((1, 1, 3))).tolist() == [[[3.0, 3.0, 3.0]]]


class ToyModuleArray(Recorded):
    """An array type defined (as far as the seam can tell) in a package ``toyarrays``, loaded lazily by name."""


ToyModuleArray.__module__ = "toyarrays.core"
TOY_BACKEND = RecordingBackend()


def test_backend_found_lazily_by_module_name():
    _backend.register_module("toyarrays", f"{__name__}:TOY_BACKEND")
    try:
        F.relu(ToyModuleArray(np.array([-1.0, 2.0])))
        assert TOY_BACKEND.calls == ["ReLUFn"]
    finally:
        _backend._BY_MODULE.pop("toyarrays")
        _backend._LOADED.pop("toyarrays", None)
        _backend._CACHE.clear()
    with pytest.raises(ValueError, match="package.module:attribute"):
        _backend.register_module("toyarrays", "no_colon")
    with pytest.raises(TypeError, match="apply"):
        _backend.register(ToyModuleArray, object())


def test_seam_cost_on_the_numpy_path_is_negligible():
    args = (np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3)), None, 1, 0, 1, 1)
    _backend.backend_for(args)
    start = time.perf_counter()
    for _ in range(10000):
        _backend.backend_for(args)
    per_call = (time.perf_counter() - start) / 10000
    assert per_call < 20e-6, per_call          # ~0.5 us measured; generous for a busy machine

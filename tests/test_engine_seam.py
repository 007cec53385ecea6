"""The engine's side of the backend seam (``convforge.engine.entry``): a call that reaches the engine with another
backend's arrays is handed, as one ``ConvProblem``, to that backend's ``convolve`` / ``convolve_backward``.

The toy backend below stands in for a GPU or Dask backend: it records the problems it gets and computes them
with the NumPy engine, so its results can be checked against the NumPy path (and torch through it).
"""
from __future__ import annotations

import numpy as np
import pytest

import convforge.nn.functional as F
from convforge import _api, _backend, engine, onnx
from convforge.engine import ConvProblem

from conftest import assert_close


class Lazy:
    """A toy array type: a NumPy array inside and the attributes validation reads; never converted."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.shape, self.dtype, self.ndim = self.values.shape, self.values.dtype, self.values.ndim
        self.itemsize = self.values.itemsize

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the seam must not convert a backend's array with np.asarray")

    def __getitem__(self, index):
        return Lazy(self.values[index])


def _raw(a):
    return a.values if isinstance(a, Lazy) else a


class ProblemBackend:
    """Runs the problems it is handed with the NumPy engine and records them."""

    def __init__(self):
        self.problems = []

    def apply(self, fn, args, kwargs):
        raise AssertionError("these calls reach the backend through the engine, not Function.apply")

    def convolve(self, problem, x, w, b):
        self.problems.append(problem)
        return Lazy(engine.forward(_raw(x), _raw(w), _raw(b), problem))

    def convolve_backward(self, problem, grad_output, x, w, needs):
        self.problems.append(problem)
        return engine.backward(_raw(grad_output), _raw(x), _raw(w), problem, needs)


@pytest.fixture
def backend():
    b = ProblemBackend()
    _backend.register(Lazy, b)
    yield b
    _backend.unregister(Lazy)


def test_a_forward_reaching_the_engine_runs_on_the_backend(backend):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    y = _api.convolution(Lazy(x), w, b, stride=2, padding=1, dilation=(1, 2), groups=2)
    assert isinstance(y, Lazy)
    assert backend.problems == [ConvProblem.conv((2, 4, 9, 8), (6, 2, 3, 3), np.float64, (2, 2),
                                                 ((1, 1), (1, 1)), (1, 2), 2)]
    assert_close(y.values, F.conv2d(x, w, b, stride=2, padding=1, dilation=(1, 2), groups=2), rtol=1e-12)


def test_onnx_conv_transpose_hands_its_problem_over(backend):
    """``convforge.onnx`` calls the API directly (no recorded Function): its arrays meet the seam at the engine,
    with the problem it made (output_padding included)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 2, 3, 3))
    y = onnx.conv_transpose(Lazy(x[None]), w, strides=(2, 2), pads=(1, 0, 0, 1), output_padding=(1, 1))
    (problem,) = backend.problems
    assert problem.transposed and problem.output_padding == (1, 1) and problem.padding == ((1, 0), (0, 1))
    assert problem.output_shape == y.shape
    want = onnx.conv_transpose(x[None], w, strides=(2, 2), pads=(1, 0, 0, 1), output_padding=(1, 1))
    assert_close(y.values, want, rtol=1e-12)


def test_the_backward_of_a_problem_runs_on_the_backend(backend):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 7)), rng.standard_normal((4, 3, 3))
    problem = ConvProblem.conv(x.shape, w.shape, x.dtype, (2,), ((1, 1),), (1,), 1)
    gy = rng.standard_normal(problem.output_shape)
    got = engine.backward(Lazy(gy), x, w, problem)
    assert backend.problems == [problem]
    for a, b in zip(got, engine.backward(gy, x, w, problem)):
        assert_close(a, b, rtol=0)


def test_a_backend_without_the_engine_hooks_is_refused_by_name():
    class Opaque(Lazy):
        pass

    class ApplyOnly:
        def apply(self, fn, args, kwargs):
            raise AssertionError("not reached")

    _backend.register(Opaque, ApplyOnly())
    try:
        problem = ConvProblem.conv((1, 1, 5), (1, 1, 3), np.float64, (1,), ((0, 0),), (1,), 1)
        with pytest.raises(TypeError, match=r"backend of Opaque arrays has no convolve\(problem, \.\.\.\)"):
            engine.forward(Opaque(np.ones((1, 1, 5))), np.ones((1, 1, 3)), None, problem)
    finally:
        _backend.unregister(Opaque)


def test_numpy_arrays_stay_on_the_numpy_engine(backend):
    F.conv1d(np.ones((1, 2, 6)), np.ones((3, 2, 3)))
    engine.backward(np.ones((1, 3, 4)), np.ones((1, 2, 6)), np.ones((3, 2, 3)),
                    ConvProblem.conv((1, 2, 6), (3, 2, 3), np.float64, (1,), ((0, 0),), (1,), 1))
    assert backend.problems == []

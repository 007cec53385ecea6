"""Shared test helpers: the torch oracle and tolerance-checked comparisons."""
from __future__ import annotations

import numpy as np
import pytest

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a test dependency
    torch = None

TOL = {np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float32): (1e-5, 1e-6),
       np.dtype(np.float16): (1e-2, 1e-2), np.dtype(np.complex128): (1e-10, 1e-12),
       np.dtype(np.complex64): (1e-5, 1e-6)}


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, what=""):
    """Shape, dtype and values equal within the dtype's tolerance (exact for integers).

    Args:
        actual, expected: array-likes (a ``Tensor`` compares as its values).
        dtype: the dtype ``actual`` must have (default: ``expected``'s); it also picks the default tolerances.
        rtol: relative tolerance (default: the dtype's; 0 means exact relative agreement, not the default).
        atol: absolute tolerance, scaled by ``max(|expected|, 1)`` (default: the dtype's).
        what: named in the failure message.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what} shape {actual.shape} != expected {expected.shape}"
    dtype = np.dtype(dtype or expected.dtype)
    assert actual.dtype == dtype, f"{what} dtype {actual.dtype} != expected {dtype}"
    if dtype.kind in "iub":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    r, a = TOL[dtype]
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1.0)
    np.testing.assert_allclose(actual, expected, rtol=r if rtol is None else rtol,
                               atol=(a if atol is None else atol) * scale, err_msg=what)


def to_torch(a):
    """A NumPy array (or None) as a torch tensor sharing nothing with the caller's non-contiguous views."""
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def requires_torch():
    """``@requires_torch()``: skip a test when the torch oracle is not installed."""
    return pytest.mark.skipif(torch is None, reason="torch (test oracle) is not installed")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def assert_close_rel(actual, expected, rtol, what=""):
    """Shapes equal and values within ``rtol`` relative, ``rtol * max(1, max|expected|)`` absolute (NaN-aware);
    ``expected`` may be a torch tensor."""
    if torch is not None and isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)

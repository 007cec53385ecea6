"""Every docstring example in the package runs and prints what it says."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import convforge
from convforge._algos import numba_kernels

MODULES = sorted(m.name for m in pkgutil.walk_packages(convforge.__path__, "convforge.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.startswith("convforge._kernels.") and numba_kernels() is None:
        pytest.skip("the compiled kernels need a working Numba (imported only through convforge._algos)")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"

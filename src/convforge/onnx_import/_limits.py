"""A bound on the arrays a model file can make convforge allocate.

Example:
    >>> check_size([2, 3], "Expand")
    [2, 3]
"""
from __future__ import annotations

import numpy as np

MAX_ELEMENTS = 2 ** 28
"""The largest array an operator may create from sizes written in the file (ConstantOfShape, Expand, Range, Pad,
Resize): 1 GiB of float32, far above any CNN activation, far below what would exhaust the machine."""


def check_size(shape, op):
    """Refuse an output of ``shape`` (sizes taken from the model file) with more than MAX_ELEMENTS elements."""
    count = int(np.prod([int(v) for v in shape], dtype=object)) if len(shape) else 1
    if count > MAX_ELEMENTS or any(int(v) < 0 for v in shape):
        raise ValueError(f"{op} would create an array of shape {[int(v) for v in shape]} ({count} elements; the "
                         f"limit is {MAX_ELEMENTS}): the model file asks for more memory than any real graph needs")
    return [int(v) for v in shape]

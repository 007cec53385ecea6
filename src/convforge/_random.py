"""The seeded generator behind default initialisation and dropout."""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed convforge's generator so that module initialisation (and dropout) is reproducible.

    >>> import convforge
    >>> convforge.manual_seed(0)
    """
    global _generator
    _generator = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    return _generator

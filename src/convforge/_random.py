"""The seeded generator behind default initialisation and dropout."""
from __future__ import annotations

import numbers

import numpy as np

_generator = np.random.default_rng()
_LOWEST, _HIGHEST = -0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF


def manual_seed(seed: int) -> None:
    """Seed convforge's generator so that module initialisation (and dropout) is reproducible.

    Accepts what ``torch.manual_seed`` accepts: any int in ``[-2**63, 2**64 - 1]``; a negative seed is remapped
    to ``0xffff_ffff_ffff_ffff + seed`` as PyTorch does.  (The random stream itself is NumPy's, not PyTorch's.)

    >>> import convforge
    >>> convforge.manual_seed(0)
    >>> convforge.manual_seed(-1)
    """
    global _generator
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not _LOWEST <= seed <= _HIGHEST:
        raise ValueError(f"Overflow when unpacking long: the seed must be within [-2**63, 2**64 - 1] "
                         f"([-0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff]), got {seed}")
    _generator = np.random.default_rng(seed if seed >= 0 else _HIGHEST + seed)


def generator() -> np.random.Generator:
    return _generator

"""The registered algorithms.  Adding one is a new module in ``algorithms/`` ending in ``ALGORITHM =
Algorithm(...)`` plus one line in :data:`ALGORITHMS` (see docs/ARCHITECTURE.md); forcing one is a lookup here.

The names are also announced to ``convforge._config`` so that ``convforge.config(algorithm=...)`` accepts them.
"""
from __future__ import annotations

from .. import _config
from .algorithms import col2im, direct, im2col, implicit, pointwise, winograd

ALGORITHMS = (
    im2col.ALGORITHM,
    pointwise.ALGORITHM,
    direct.ALGORITHM,
    winograd.ALGORITHM,
    implicit.ALGORITHM,
    col2im.ALGORITHM,
)

BY_NAME = {a.name: a for a in ALGORITHMS}

#: the operation a role belongs to, as ``convforge._config.forced_algorithm`` names it
KIND = {"forward": "conv", "weight_grad": "conv", "transpose": "conv_transpose"}

#: algorithms that split their own work over threads (the engine runs them whole)
OWN_THREADS = frozenset(a.name for a in ALGORITHMS if a.threading.own_threads)


def with_role(role: str):
    """The algorithms that have ``role``, in the order selection asks them."""
    return sorted((a for a in ALGORITHMS if role in a.roles), key=lambda a: a.roles[role].rank)


_config.register_algorithms("conv", [a.name for a in ALGORITHMS if "forward" in a.roles])
_config.register_algorithms("conv_transpose", [a.name for a in ALGORITHMS if "transpose" in a.roles])

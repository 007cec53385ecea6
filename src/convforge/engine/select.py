"""The one selector, for forward, transposed and weight-gradient calls alike: a forced algorithm
(``convforge.config(algorithm=...)``) is a registry lookup, automatic selection asks the registered roles in
rank order for the first that fits (``unfit`` is None) and pays.  The rules themselves live with their
algorithms (``algorithms/*.py``).
"""
from __future__ import annotations

import threading

from .. import _config
from .registry import BY_NAME, KIND, with_role

_ORDER = {role: tuple(with_role(role)) for role in KIND}
_WHAT = {"forward": "convolution", "transpose": "transposed convolution", "weight_grad": "weight gradient"}
_last = threading.local()


def last_choice():
    """Name of the algorithm the last forward or transposed call on this thread used (for benchmarks and tests)."""
    return getattr(_last, "name", None)


def forced_fits(problem, role: str) -> bool:
    """False when ``convforge.config(algorithm=...)`` forces an algorithm that cannot run ``problem`` in ``role``
    (internal convolutions, e.g. in gradients or reduced calls, then take another route instead of raising)."""
    name = _config.forced_algorithm(KIND[role])
    if name is None:
        return True
    found = BY_NAME[name].roles.get(role)
    return found is not None and found.unfit(problem) is None


def choose(problem, role: str):
    """The :class:`~convforge.engine.algorithms.Algorithm` that runs ``problem`` in ``role``.

    A forced algorithm that cannot run it raises ValueError saying why, except for a weight gradient, which
    then takes the fallback (the last in rank order: gradients follow a forced algorithm only where it has a
    gradient form)."""
    name = _config.forced_algorithm(KIND[role])
    if name is not None:
        algorithm = BY_NAME[name]
        found = algorithm.roles.get(role)
        reason = f"it has no {role} form" if found is None else found.unfit(problem)
        if reason is None:
            return algorithm
        if role == "weight_grad":
            return _ORDER[role][-1]
        raise ValueError(f"convforge.config(algorithm={name!r}) cannot run this {_WHAT[role]}: {reason}; "
                         f"use algorithm='auto' to let convforge choose")
    for algorithm in _ORDER[role]:
        found = algorithm.roles[role]
        if found.unfit(problem) is None and found.pays(problem):
            return algorithm
    return _ORDER[role][-1]


def record(algorithm) -> None:
    _last.name = algorithm.name

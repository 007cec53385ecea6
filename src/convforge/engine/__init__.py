"""The N-d convolution engine: one core for every rank, for convolution, transposed convolution and their
gradients.  Everything here takes canonical, validated arrays and one :class:`ConvProblem` describing them
(made at the API boundary: ``convforge._api``, ``convforge.nn.grad``).

Layers, each importing only the ones below it (checked by ``lint-imports``, see pyproject.toml)::

    entry         the backend seam; forward / backward
    gradients     gradients as convolutions (new problems through the same path)
    run           compute dtype, cut-down to the cells that meet, selected algorithm, thread split, bias
    select        the one selector (forced: a registry lookup; automatic: first role that fits and pays)
    registry      the registered algorithms
    algorithms/   one module per algorithm: its computation and its ``ALGORITHM`` record
    problem       ConvProblem
    parallel      when and how a call is split over threads
    reduce        the cells where input, taps and output meet (integer arithmetic)
    arrays        array helpers (padding, crops, window views, batch tiles, bands)

Below the engine: ``convforge._algos`` (the one Numba kernel loader and the thread pool) and
``convforge._kernels`` (the Numba kernels), ``convforge._config``, ``convforge.shapes``.
See docs/ARCHITECTURE.md for the path of one call and how to add an algorithm or a backend.
"""
from __future__ import annotations

from .entry import backward, forward
from .problem import ConvProblem
from .select import last_choice

__all__ = ["ConvProblem", "forward", "backward", "last_choice"]

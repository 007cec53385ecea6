"""The convolution algorithms, one module each, and the record every one of them fills in: :class:`Algorithm`.

An algorithm module defines its computation and ends with one ``ALGORITHM = Algorithm(...)``; the registry
(``convforge.engine.registry``) lists those records, and the one selector (``convforge.engine.select``) reads
nothing else.  A record has one :class:`Role` per thing the algorithm can run:

* ``"forward"`` -- a convolution: ``run(x, w, problem) -> y (N, O, *out)``;
* ``"transpose"`` -- a transposed convolution: ``run(x, w, problem) -> y`` (``w (C, O/g, *K)``);
* ``"weight_grad"`` -- a convolution's weight gradient: ``run(x, grad_output, problem) -> (O, C/g, *K)``.

(Input gradients need no role of their own: they are transposed or plain convolutions, see
``convforge.engine.gradients``.)  Each role says why it cannot run a problem (``unfit``: a reason, or None; a
forced algorithm that is unfit raises ValueError with it) and whether automatic selection should take it
(``pays``); the selector asks the roles in ``rank`` order and takes the first that fits and pays.

Every ``run`` gets the arrays in the compute dtype (``x (N, C, *S)`` unpadded) and the problem describing them
(``problem.on(x, w)``); it works under the workspace bound of ``convforge.config``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional


def always(problem) -> bool:
    """``pays`` of a fallback: automatic selection takes it when nothing before it pays."""
    return True


def never_unfit(problem) -> Optional[str]:
    """``unfit`` of a role that runs every problem."""
    return None


@dataclasses.dataclass(frozen=True)
class Role:
    """One thing an algorithm runs: ``run``, and the rules selection applies to it (see the module docstring)."""
    run: Callable
    rank: int
    unfit: Callable = never_unfit
    pays: Callable = always


@dataclasses.dataclass(frozen=True)
class Threading:
    """How the engine splits a call of this algorithm over threads (``convforge.engine.parallel``).

    Args:
        own_threads: the algorithm splits its own work (the engine runs it whole).
        blas_threaded: its time is one big BLAS product: below the thread count in samples a small call is left
            to the BLAS's own threads.
        speed_ratio: how many times fewer multiply-adds per second it runs than a product (the engine splits
            from a correspondingly smaller size).
        band_multiple: bands of output rows are a multiple of this (Winograd's 4-row tiles).
        shared: ``shared(w, problem)`` computes something all parts of a split call share (Winograd's weight
            transform), handed to ``run`` as a fourth argument for parts that use the whole weight.
    """
    own_threads: bool = False
    blas_threaded: bool = False
    speed_ratio: int = 1
    band_multiple: int = 1
    shared: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its name (as ``convforge.config(algorithm=...)`` spells it), its roles and its
    threading."""
    name: str
    roles: Dict[str, Role]
    threading: Threading = Threading()

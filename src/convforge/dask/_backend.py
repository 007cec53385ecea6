"""The Dask backend behind :mod:`convforge._backend`: a table from autograd ``Function`` to its Dask version."""
from __future__ import annotations

from ._ops import IMPLEMENTATIONS

__all__ = ["DaskBackend", "BACKEND"]


class DaskBackend:
    """Runs convforge ops on Dask arrays lazily (inference only); refuses, naming the op, what it cannot run."""

    name = "dask"

    def apply(self, fn, args, kwargs):
        impl = IMPLEMENTATIONS.get(fn)
        if impl is None:
            raise NotImplementedError(
                f"convforge.dask: the op {fn.__name__} has no Dask implementation yet; compute its input first "
                f"(x.compute()) or apply it per block with dask.array.map_blocks where that is exact. Supported: "
                f"{', '.join(sorted(f.__name__ for f in IMPLEMENTATIONS))}")
        return impl(fn, args, kwargs)

    def __repr__(self) -> str:
        return "DaskBackend()"


BACKEND = DaskBackend()

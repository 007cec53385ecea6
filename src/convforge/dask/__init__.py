"""convforge on Dask arrays: every convforge function and module accepts a ``dask.array.Array`` (inference) and
returns a lazy Dask array equal to the in-memory result, chunk by chunk, in bounded memory.

Nothing needs importing: passing a Dask array to ``F.conv2d`` or to a module is enough (the backend seam in
:mod:`convforge._backend` finds this package by the array's type).  This package adds :func:`map_network`,
which runs a whole stack of layers per output block with one halo exchange.  Requires the extra ``dask``.

Example:
    >>> import numpy as np, dask.array as da
    >>> import convforge.nn.functional as F
    >>> x = da.from_array(np.arange(32.0).reshape(1, 1, 32), chunks=(1, 1, 5))
    >>> y = F.conv1d(x, np.ones((1, 1, 3)), padding=1, stride=2)
    >>> type(y).__name__, y.shape, y.chunks[2]
    ('Array', (1, 1, 16), (3, 2, 3, 2, 3, 2, 1))
    >>> bool(np.array_equal(y.compute(), F.conv1d(x.compute(), np.ones((1, 1, 3)), padding=1, stride=2)))
    True
"""
from ._backend import BACKEND, DaskBackend
from ._network import map_network, network_halo

__all__ = ["BACKEND", "DaskBackend", "map_network", "network_halo"]

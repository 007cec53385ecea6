"""The functional ops behind ``convforge.nn.functional`` and the companion layers.

Each op is an autograd ``Function`` (static ``forward(ctx, ...)`` and ``backward(ctx, ...)`` on plain
``np.ndarray`` values) plus the public function with PyTorch's name, signature and defaults, which validates and
canonicalises its arguments and calls ``Fn.apply``.  Modules in ``convforge.nn`` are thin wrappers over these
functions.  Heavy loops run in the optional Numba kernels of ``convforge._kernels.layer_kernels``; every op has a
vectorised NumPy path that gives the same values.
"""

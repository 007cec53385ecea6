"""Optional compiled kernels (Numba).  Everything here has a pure-NumPy counterpart in ``convforge._algos``."""

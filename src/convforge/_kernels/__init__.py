"""Optional compiled kernels (Numba).  Everything here has a pure-NumPy counterpart in
``convforge.engine.algorithms`` (or ``convforge.nn._ops``)."""

"""The engine's entry: the backend seam, then the NumPy forward or backward path.

The seam (``convforge._backend``) is keyed by the arrays' type: for NumPy arrays (and tensors) it answers None
at the cost of one set lookup per array and the NumPy engine runs the problem; for another registered array
type its backend runs it, given the same :class:`~convforge.engine.problem.ConvProblem` (a backend's
``convolve(problem, x, w, b)`` and ``convolve_backward(problem, grad_output, x, w, needs)``).  Ops on such arrays
normally reach their backend earlier, at ``Function.apply``; this is the seam for code that calls the engine
directly (fused layers, a backend that computes by parts).
"""
from __future__ import annotations

from .. import _backend
from . import gradients, run


def _backend_method(arrays, name, problem):
    backend = _backend.backend_for(arrays)
    if backend is None:
        return None
    method = getattr(backend, name, None)
    if method is None:
        kinds = ", ".join(sorted({type(a).__name__ for a in arrays if _backend.backend_for((a,)) is backend}))
        raise TypeError(f"the backend of {kinds} arrays has no {name}(problem, ...), so the engine cannot run "
                        f"this {'transposed ' if problem.transposed else ''}convolution on them; call the "
                        f"convforge.nn.functional function instead (it hands the whole op to the backend) or "
                        f"convert the arrays with np.asarray")
    return method


def forward(x, w, b, problem):
    """``(N, O, *out)`` of the (transposed) convolution ``problem``: ``x`` ``problem.input_shape``, ``w``
    ``problem.weight_shape``, ``b`` ``(O,)`` or None."""
    on_backend = _backend_method((x, w, b), "convolve", problem)
    if on_backend is not None:
        return on_backend(problem, x, w, b)
    return run.forward(x, w, b, problem)


def backward(grad_output, x, w, problem, needs=(True, True, True)):
    """``(grad_input, grad_weight, grad_bias)`` of the (transposed) convolution ``problem``; None where ``needs``
    is False."""
    on_backend = _backend_method((grad_output, x, w), "convolve_backward", problem)
    if on_backend is not None:
        return on_backend(problem, grad_output, x, w, needs)
    return gradients.conv_backward(grad_output, x, w, problem, needs)

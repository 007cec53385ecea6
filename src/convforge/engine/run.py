"""The forward path below the entry: compute dtype, the cut-down to the cells that meet (``reduce``), the
selected algorithm and its thread split, the bias.

Memory and time follow the work, not the arguments: before an algorithm runs, each call is cut down to the cells
where input, kernel taps and output meet (:func:`convforge.engine.reduce.reduce_problem`, pure integer
arithmetic), so a padding, stride or dilation of 10**9 never materialises padding no output reads nor an
uncropped transposed buffer; when even the cut-down hull is mostly padding the taps are applied one by one
(``algorithms.direct.conv_taps``).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import _config
from . import parallel, select
from .algorithms import direct
from .arrays import compute_dtype
from .reduce import TAPS, ZERO, plain_steps, reduce_problem

_ROLE = {False: "forward", True: "transpose"}
_SPLIT = {False: parallel.split_conv, True: parallel.split_conv_transpose}


def forward(x, w, b, problem):
    """``(N, O, *out)`` of the (transposed) convolution ``problem`` of NumPy arrays, in ``x.dtype``."""
    out_dtype = x.dtype
    cdt = compute_dtype(out_dtype)
    x = x.astype(cdt, copy=False)
    w = w.astype(cdt, copy=False)
    p = problem.on(x, w)
    y = np.zeros(p.output_shape, dtype=cdt) if p.is_empty else _compute(x, w, p)
    if b is not None:
        y += b.astype(cdt, copy=False).reshape((1, -1) + (1,) * p.n_spatial)
    return y.astype(out_dtype, copy=False)


def algorithm_call(x, w, p):
    """One call of the selected algorithm on ``p`` (split over threads as it declares)."""
    role = _ROLE[p.transposed]
    algorithm = select.choose(p, role)
    select.record(algorithm)
    return _SPLIT[p.transposed](algorithm, algorithm.roles[role].run, x, w, p)


def _reduced_call(x, w, p, reduced):
    """A reduced call whose shape a forced algorithm cannot take is left to automatic selection (the user forced
    an algorithm for the call they made, not for its reduced form)."""
    forced_ok = not reduced or select.forced_fits(p, _ROLE[p.transposed])
    with contextlib.nullcontext() if forced_ok else _config.config(algorithm="auto"):
        return algorithm_call(x, w, p)


def _compute(x, w, p):
    """The problem computed on the cells where input, taps and output meet."""
    if p.transposed:
        other, moving = p.out_sizes, p.in_sizes
        full = [max((i - 1) * s + d * (k - 1) + 1, lo + o) for i, s, d, k, (lo, _), o in
                zip(p.in_sizes, p.stride, p.dilation, p.kernel, p.padding, p.out_sizes)]
    else:
        other, moving, full = p.in_sizes, p.out_sizes, p.padded_sizes
    red = reduce_problem(other, moving, p.kernel, p.stride, p.padding, p.dilation, full)
    if red is ZERO:
        return np.zeros(p.output_shape, dtype=x.dtype)
    if red is TAPS:
        if p.transposed:
            return direct.conv_transpose_taps(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)
        return direct.conv_taps(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)
    if red is None:
        stride, dilation = plain_steps(moving, p.kernel, p.stride, p.dilation)
        return _reduced_call(x, w, p.replace(stride=stride, dilation=dilation), False)
    everything = (slice(None), slice(None))
    w_r = w[everything + red.taps]
    x_r, y_at = (x[everything + red.moving], red.other) if p.transposed else (x[everything + red.other], red.moving)
    sub_out = tuple(sl.stop - sl.start for sl in y_at)
    part = _reduced_call(x_r, w_r, p.on(x_r, w_r, stride=red.stride, padding=red.padding, dilation=red.dilation,
                                        out_sizes=sub_out), True)
    if sub_out == p.out_sizes:
        return part
    y = np.zeros(p.output_shape, dtype=x.dtype)
    y[everything + y_at] = part
    return y

"""Gradients of convolution and transposed convolution, on canonical batched arguments.

Every function takes the arrays and the :class:`~convforge.engine.problem.ConvProblem` of the *forward* call
(canonical and batched; made by ``convforge.nn.grad``, which validates).  Gradients are convolutions: each is
described as a new problem and run through the same entry, selector and algorithms as a forward call.

The algebra (one spatial dim written out; every dim behaves the same, groups act block-diagonally)
------------------------------------------------------------------------------------------------------
Convolution, with ``xp`` the input zero-padded by ``(lo, hi)``::

    y[n, o, j] = sum_{c, t} W[o, c, t] * xp[n, c, j*s + t*d]                      (c in o's group)

* grad-input: input cell ``i = j*s + t*d - lo`` receives ``W[o, c, t] * gy[n, o, j]``, which is exactly the
  scatter a transposed convolution of ``gy`` with the *same* weight performs (``W (O, C/g, K)`` read as a
  transposed weight ``(in=O, out/g=C/g, K)``), cropped by ``lo``::

      gx = conv_transpose(gy, W, stride=s, padding=(lo, hi), dilation=d, output_padding=r)
      r  = (i + lo + hi - d*(k-1) - 1) mod s

  ``r`` counts the trailing input rows no window reaches when the stride does not divide evenly; choosing it
  as output_padding makes the transposed output exactly ``i`` long, and those rows get zero gradient.
* grad-weight: ``gW[o, c, t] = sum_{n, j} gy[n, o, j] * xp[n, c, j*s + t*d]`` -- the im2col windows of the
  padded input contracted with ``gy`` over batch and output pixels (``algorithms.im2col.weight_grad``, or the
  weight-gradient role of the algorithm the selector chooses).

* grad-bias: ``gb[o] = sum_{n, j} gy[n, o, j]``.

Transposed convolution (``W (C, O/g, K)``, output cropped by ``lo``, ``op`` = output_padding)::

    y[n, o, m] = sum_{c, t, i : i*s + t*d = m + lo} W[c, o, t] * x[n, c, i]

* grad-input: ``gx[n, c, i] = sum_{o, t} W[c, o, t] * gy[n, o, i*s + t*d - lo]``: a plain convolution of
  ``gy`` with ``W`` read as a conv weight ``(out=C, in/g=O/g, K)``, padding ``(lo, hi - op)``; a negative
  ``hi - op`` means the last ``op - hi`` rows of ``gy`` are never read, so they are cropped first.
* grad-weight: ``gW[c, o, t] = sum_{n, i} x[n, c, i] * gyp[n, o, i*s + t*d]``: the conv grad-weight with the
  roles swapped (``gy`` plays the input, ``x`` the output gradient); the result is already ``(C, O/g, K)``.

Complex dtypes follow PyTorch's convention (the gradient of a real loss is conjugate-linear): the operand
multiplied with ``gy`` is conjugated.  float16 accumulates in float32 and is returned as float16.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import _config
from . import run, select
from .algorithms import direct
from .arrays import all_finite, compute_dtype, stride1_dual
from .problem import ConvProblem
from .reduce import TAPS, ZERO, plain_steps, reduce_problem

_ALL = (True, True, True)


def conv_input_grad(grad_output, weight, p):
    """Gradient of the convolution ``p`` w.r.t. its input, ``(N, C, *in_sizes)``: a transposed conv of
    ``grad_output`` (at stride 1 computed as the equivalent plain convolution, see :func:`_stride1_input_grad`)."""
    if all(s == 1 for s in p.stride):
        gx = _stride1_input_grad(grad_output, weight, p)
        if gx is not None:
            return gx
    unread = tuple((i + lo + hi - d * (k - 1) - 1) % s
                   for i, (lo, hi), k, s, d in zip(p.in_sizes, p.padding, p.kernel, p.stride, p.dilation))
    tp = ConvProblem.conv_transpose(grad_output.shape, weight.shape, grad_output.dtype, p.stride, p.padding,
                                    p.dilation, p.groups, unread, p.in_sizes)
    # a forced algorithm that cannot run it leaves the choice to automatic selection
    with contextlib.nullcontext() if select.forced_fits(tp, "transpose") else _config.config(algorithm="auto"):
        return run.forward(grad_output, weight, None, tp)


def _stride1_input_grad(grad_output, weight, p):
    """At stride 1 the transposed convolution is a plain convolution of ``grad_output``
    (``arrays.stride1_dual``), so the forward's fastest algorithm (Winograd, the direct depthwise kernel, a single
    product for 1x1) computes it.  None when a side's padding exceeds the kernel span (the dual padding would
    crop), a forced algorithm cannot run it, or the weight has inf / NaN: the plain convolution multiplies it
    with the padding (``inf * 0 = NaN``) where the transposed one, like torch's gradient, never does."""
    w, pads = stride1_dual(weight, p.padding, p.dilation, p.groups)
    if any(lo < 0 or hi < 0 for lo, hi in pads) or not all_finite(weight):
        return None
    dual = ConvProblem.conv(grad_output.shape, w.shape, grad_output.dtype, p.stride, pads, p.dilation, p.groups)
    if not select.forced_fits(dual, "forward"):
        return None
    return run.forward(grad_output, w, None, dual)


def conv_weight_grad(input, grad_output, p):
    """Gradient of the convolution ``p`` (input ``input``, output gradient ``grad_output``) w.r.t. its weight:
    ``(O, C/g, *kernel)`` in ``input``'s dtype.

    Only the cells where input, taps and outputs meet are used (``reduce.reduce_problem``): taps that read
    nothing but padding get zero, outputs whose windows lie in the padding do not count."""
    red = reduce_problem(p.in_sizes, p.out_sizes, p.kernel, p.stride, p.padding, p.dilation, p.padded_sizes)
    if red is None:
        stride, dilation = plain_steps(p.out_sizes, p.kernel, p.stride, p.dilation)
        return _weight_grad(input, grad_output, p.replace(stride=stride, dilation=dilation))
    if red is TAPS:
        cdt = compute_dtype(input.dtype)
        return direct.weight_grad_taps(input.astype(cdt, copy=False), grad_output.astype(cdt, copy=False),
                                       p.kernel, p.stride, p.padding, p.dilation, p.groups
                                       ).astype(input.dtype, copy=False)
    o_ch, cg = grad_output.shape[1], input.shape[1] // p.groups
    gw = np.zeros((o_ch, cg) + p.kernel, dtype=input.dtype)
    if red is not ZERO:
        everything = (slice(None), slice(None))
        x, gy = input[everything + red.other], grad_output[everything + red.moving]
        sub_kernel = tuple(sl.stop - sl.start for sl in red.taps)
        sub = ConvProblem.conv(x.shape, (o_ch, cg) + sub_kernel, x.dtype, red.stride, red.padding, red.dilation,
                               p.groups, gy.shape[2:])
        gw[everything + red.taps] = _weight_grad(x, gy, sub)
    return gw


def _weight_grad(input, grad_output, p):
    """The weight gradient by the algorithm the selector chooses for it, in the compute dtype."""
    out_dtype = input.dtype
    cdt = compute_dtype(out_dtype)
    x = input.astype(cdt, copy=False)
    gy = grad_output.astype(cdt, copy=False)
    p = p.replace(dtype=cdt)
    algorithm = select.choose(p, "weight_grad")
    return algorithm.roles["weight_grad"].run(x, gy, p).astype(out_dtype, copy=False)


def bias_grad(grad_output):
    """``(O,)``: ``grad_output`` summed over batch and space (float16 accumulated in float32)."""
    cdt = compute_dtype(grad_output.dtype)
    axes = (0,) + tuple(range(2, grad_output.ndim))
    return grad_output.sum(axis=axes, dtype=cdt).astype(grad_output.dtype, copy=False)


def _crop_negative_high(grad_output, padding, output_padding):
    """Padding ``(lo, hi - op)`` for the transposed-conv gradients; a negative high side crops ``grad_output``."""
    pads = tuple((lo, hi - op) for (lo, hi), op in zip(padding, output_padding))
    if all(hi >= 0 for _, hi in pads):
        return grad_output, pads
    crop = (slice(None), slice(None)) + tuple(slice(0, size + min(hi, 0))
                                              for size, (_, hi) in zip(grad_output.shape[2:], pads))
    return grad_output[crop], tuple((lo, max(hi, 0)) for lo, hi in pads)


def conv_transpose_input_grad(grad_output, weight, p):
    """Gradient of the transposed convolution ``p`` w.r.t. its input ``(N, C, *in_sizes)``: a plain conv of
    ``grad_output``."""
    gy, pads = _crop_negative_high(grad_output, p.padding, p.output_padding)
    dual = ConvProblem.conv(gy.shape, weight.shape, gy.dtype, p.stride, pads, p.dilation, p.groups, p.in_sizes)
    return run.forward(gy, weight, None, dual)


def conv_transpose_weight_grad(input, grad_output, p):
    """Gradient of the transposed convolution ``p`` w.r.t. its weight ``(C, O/g, *kernel)``: the conv weight
    gradient with input and output-gradient swapped."""
    gy, pads = _crop_negative_high(grad_output, p.padding, p.output_padding)
    swapped = ConvProblem.conv(gy.shape, p.weight_shape, gy.dtype, p.stride, pads, p.dilation, p.groups,
                               p.in_sizes)
    return conv_weight_grad(gy, input, swapped)


def conv_backward(grad_output, input, weight, p, needs=_ALL):
    """``(grad_input, grad_weight, grad_bias)`` of the (transposed) convolution ``p``; ``None`` where ``needs``
    is False.  Canonical batched arrays only."""
    gy, x, w = grad_output, input, weight
    if gy.dtype.kind == "c":      # PyTorch's convention: conjugate the factor that meets grad_output
        x = x.conj() if needs[1] else x
        w = w.conj() if needs[0] else w
    gx = gw = gb = None
    if p.transposed:
        if needs[0]:
            gx = conv_transpose_input_grad(gy, w, p)
        if needs[1]:
            gw = conv_transpose_weight_grad(x, gy, p)
    else:
        if needs[0]:
            gx = conv_input_grad(gy, w, p)
        if needs[1]:
            gw = conv_weight_grad(x, gy, p)
    if needs[2]:
        gb = bias_grad(gy)
    return gx, gw, gb

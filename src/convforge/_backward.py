"""Gradients of convolution and transposed convolution, on canonical batched arguments.

Same conventions as ``_engine``: ``x (N, C, *S)``, weight ``(O, C/g, *K)`` (transposed: ``(C, O/g, *K)``),
``stride`` / ``dilation`` / ``output_padding`` int tuples, ``padding`` a tuple of ``(lo, hi)`` pairs (>= 0).
Validation happens before (``convforge.nn.grad``); these functions trust their arguments.

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
  padded input (``window_view``) contracted with ``gy`` over batch and output pixels, one batched product::

      gW (G, Og, Cg*K) = gy (G, Og, N*P) @ cols(xp)^T (G, N*P, Cg*K)

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
import math

import numpy as np

from . import _config, _engine
from ._algos import gemm as _gemm
from ._algos import threads as _threads

_ALL = (True, True, True)


def conv_input_grad(grad_output, weight, in_sizes, stride, padding, dilation, groups):
    """Gradient of a convolution w.r.t. its input: ``(N, C, *in_sizes)``, a transposed conv of ``grad_output``
    (at stride 1 computed as the equivalent plain convolution, see :func:`_stride1_input_grad`)."""
    from . import _algorithms
    kernel = weight.shape[2:]
    if all(s == 1 for s in stride):
        gx = _stride1_input_grad(grad_output, weight, padding, dilation, groups)
        if gx is not None:
            return gx
    unread = tuple((i + lo + hi - d * (k - 1) - 1) % s
                   for i, (lo, hi), k, s, d in zip(in_sizes, padding, kernel, stride, dilation))
    args = (grad_output, weight, None, stride, padding, unread, groups, dilation, tuple(in_sizes))
    forced_ok = _algorithms.forced_accepts("conv_transpose", grad_output, weight, stride, padding, dilation, groups)
    # a forced algorithm that cannot run it leaves the choice to automatic selection
    with contextlib.nullcontext() if forced_ok else _config.config(algorithm="auto"):
        return _engine.conv_transpose_forward(*args)


def _stride1_input_grad(grad_output, weight, padding, dilation, groups):
    """At stride 1 the transposed convolution is a plain convolution of ``grad_output`` (``_engine.stride1_dual``),
    so the forward engine's fastest algorithm (Winograd, the direct depthwise kernel, a single product for 1x1)
    computes it.  None when a side's padding exceeds the kernel span (the dual padding would crop), a forced
    algorithm cannot run it, or the weight has inf / NaN: the plain convolution multiplies it with the padding
    (``inf * 0 = NaN``) where the transposed one, like torch's gradient, never does."""
    from . import _algorithms
    w, pads = _engine.stride1_dual(weight, padding, dilation, groups)
    ones = (1,) * len(pads)
    if any(lo < 0 or hi < 0 for lo, hi in pads) or not _engine.all_finite(weight) or \
            not _algorithms.forced_accepts("conv", grad_output, w, ones, pads, dilation, groups):
        return None
    return _engine.conv_forward(grad_output, w, None, ones, pads, dilation, groups)


def conv_weight_grad(input, grad_output, kernel, stride, padding, dilation, groups):
    """Gradient of a convolution w.r.t. its weight: ``(O, C/g, *kernel)``; windows of the padded input times
    ``grad_output``, one batched matmul over groups per batch (and row) tile.

    Only the cells where input, taps and outputs meet are used (``_engine.reduce_problem``): taps that read
    nothing but padding get zero, outputs whose windows lie in the padding do not count."""
    kernel = tuple(kernel)
    out_sizes = grad_output.shape[2:]
    padded = [i + lo + hi for i, (lo, hi) in zip(input.shape[2:], padding)]
    red = _engine.reduce_problem(input.shape[2:], out_sizes, kernel, stride, padding, dilation, padded)
    if red is None:
        stride, dilation = _engine.plain_steps(out_sizes, kernel, stride, dilation)
        return _conv_weight_grad(input, grad_output, kernel, stride, padding, dilation, groups)
    if red is _engine.TAPS:
        from ._algos import direct
        cdt = _engine.compute_dtype(input.dtype)
        return direct.weight_grad_taps(input.astype(cdt, copy=False), grad_output.astype(cdt, copy=False), kernel,
                                       stride, padding, dilation, groups).astype(input.dtype, copy=False)
    gw = np.zeros((grad_output.shape[1], input.shape[1] // groups) + kernel, dtype=input.dtype)
    if red is not _engine.ZERO:
        everything = (slice(None), slice(None))
        sub_kernel = tuple(sl.stop - sl.start for sl in red.taps)
        gw[everything + red.taps] = _conv_weight_grad(input[everything + red.other],
                                                      grad_output[everything + red.moving], sub_kernel,
                                                      red.stride, red.padding, red.dilation, groups)
    return gw


def _conv_weight_grad(input, grad_output, kernel, stride, padding, dilation, groups):
    out_dtype = input.dtype
    cdt = _engine.compute_dtype(out_dtype)
    x = input.astype(cdt, copy=False)
    gy = grad_output.astype(cdt, copy=False)
    n, c = x.shape[:2]
    o_ch = gy.shape[1]
    g = groups
    cg, og = c // g, o_ch // g
    kernel = tuple(kernel)
    k_prod = math.prod(kernel)
    algorithm = _weight_grad_algorithm(x.dtype, kernel, stride, dilation, g, cg, og, gy.shape[2:])
    if n > 0 and c > 0 and math.prod(gy.shape[2:]) > 0 and algorithm == "winograd":
        from ._algos import winograd
        if _engine.all_finite(x, gy):      # its transforms would turn one inf into NaN over whole tiles
            return winograd.weight_grad(x, gy, padding, g).astype(out_dtype, copy=False)
        algorithm = "im2col"
    if algorithm == "implicit" and not _engine.all_finite(x):
        algorithm = "im2col"        # its kernels multiply the whole padded plane with a zero-extended gradient
    if algorithm == "implicit" and n > 0 and c > 0 and math.prod(gy.shape[2:]) > 0:
        from ._algos import implicit
        if implicit.weight_grad_sample_bytes(x, o_ch, padding) <= _config.workspace_limit(o_ch * cg * k_prod *
                                                                                           x.itemsize):
            return implicit.weight_grad(x, gy, kernel, padding, dilation, g).astype(out_dtype, copy=False)
    if algorithm == "direct":
        from ._algos import depthwise
        return depthwise.weight_grad_direct(x, gy, kernel, stride, padding, dilation, g).astype(out_dtype,
                                                                                             copy=False)
    gw = np.zeros((g, og, cg * k_prod), dtype=cdt)
    if n > 0 and math.prod(gy.shape[2:]) > 0 and c > 0:
        parts = _weight_grad_parts(x, gy, kernel, stride, padding, dilation, g, gw.nbytes)
        for part in _threads.run_parts(parts) if len(parts) > 1 else [parts[0]()]:
            gw += part
    return gw.reshape((o_ch, cg) + kernel).astype(out_dtype, copy=False)


def _weight_grad_algorithm(dtype, kernel, stride, dilation, groups, cg, og, out_sizes):
    """The weight gradient follows ``convforge.config(algorithm=...)`` where that algorithm has a weight-gradient
    form (``winograd``; ``direct`` and ``implicit`` with Numba, the latter at stride 1), and otherwise chooses as
    the forward does: Winograd for big float32 3x3 layers, the direct kernels for depthwise layers (one input
    channel per group), the implicit-GEMM kernels (AVX-512) for stride-1 grouped, dilated, 1-D and 3-D layers;
    dense 2-D layers stay on im2col, which measured as fast there (ResNet 3x3 b8: 8.7 vs 9.1 ms at 14x14,
    10.1 vs 11.6 at 7x7) while the kernels win elsewhere (V-Net 52.6 -> 11.5 ms, ResNeXt 512@14 3.1 -> 1.8,
    C3D 18.5 -> 7.3, DeepLab 14.2 -> 11.7)."""
    from . import _algorithms
    from ._algos import depthwise, implicit
    winograd_fits = _algorithms.winograd_unfit(dtype, kernel, stride, dilation) is None
    direct_fits = depthwise.available(dtype) and len(kernel) <= 3
    implicit_fits = implicit.unfit(dtype) is None and all(s == 1 for s in stride)
    forced = _config.forced_algorithm("conv")
    if forced is not None:
        if forced == "winograd" and winograd_fits or forced == "direct" and direct_fits or \
                forced == "implicit" and implicit_fits:
            return forced
        return "im2col"
    if winograd_fits and groups == 1 and _algorithms.winograd_pays(cg, og, out_sizes):
        return "winograd"
    if direct_fits and groups > 1 and cg == 1:
        return "direct"
    if implicit_fits and implicit.fast_here() and any(k > 1 for k in kernel) and \
            (groups > 1 or len(kernel) != 2 or any(d > 1 for d in dilation)):
        return "implicit"
    return "im2col"


def _weight_grad_parts(x, gy, kernel, stride, padding, dilation, g, gw_bytes):
    """Independent partial sums of the weight gradient: batch chunks run on separate threads (with a
    single-threaded BLAS, see ``_algos.threads``), each with its own accumulator and an equal share of the
    workspace bound."""
    from . import _algorithms
    n = x.shape[0]
    t = _threads.thread_count()
    macs = gy.size * (x.shape[1] // g) * math.prod(kernel)
    chunks = t if t > 1 and n >= t and _algorithms.worth_splitting("im2col", macs) else 1
    step = -(-n // chunks)
    share = max(1, (_config.workspace_limit(gw_bytes) - (chunks - 1) * gw_bytes) // chunks)

    def part(a, z):
        def run():
            acc = np.zeros((g, gy.shape[1] // g, (x.shape[1] // g) * math.prod(kernel)), dtype=x.dtype)
            for xs, gys in _weight_grad_tiles(x[a:z], gy[a:z], kernel, stride, padding, dilation, share):
                acc += _weight_grad_tile(xs, gys, kernel, stride, dilation, g)
            return acc
        return run
    return [part(a, min(a + step, n)) for a in range(0, n, step)]


def _weight_grad_tile(xp, gy, kernel, stride, dilation, g):
    n, c = xp.shape[:2]
    o_ch, out_sizes = gy.shape[1], gy.shape[2:]
    n_sp = len(kernel)
    k_prod, p_prod = math.prod(kernel), math.prod(out_sizes)
    win = _engine.window_view(xp, kernel, stride, dilation, out_sizes)      # (n, C, *K, *O) view
    order = (1,) + tuple(range(2, 2 + n_sp)) + (0,) + tuple(range(2 + n_sp, 2 + 2 * n_sp))
    cols = win.transpose(order).reshape(g, (c // g) * k_prod, n * p_prod)   # copy: (G, Cg*K, n*P)
    gys = gy.reshape(n, g, o_ch // g, p_prod).transpose(1, 2, 0, 3)        # (G, Og, n, P)
    gys = gys.reshape(g, o_ch // g, n * p_prod)                             # (G, Og, n*P), a copy if n > 1
    return np.matmul(gys, cols.transpose(0, 2, 1))                          # (G, Og, Cg*K)


def _weight_grad_tiles(x, gy, kernel, stride, padding, dilation, limit):
    """(zero-padded input, grad_output) tiles over the batch, and over bands of the first output dim when one
    sample's workspace exceeds ``limit``; each tile is padded on its own, so that its padded copy, columns and
    reordered grad_output together stay under ``limit``."""
    n, c = x.shape[:2]
    o_ch, out_sizes = gy.shape[1], gy.shape[2:]
    k_prod, item = math.prod(kernel), x.itemsize
    rest_padded = math.prod(i + lo + hi for i, (lo, hi) in zip(x.shape[3:], padding[1:]))
    rest_out = math.prod(out_sizes[1:])
    padded0 = x.shape[2] + sum(padding[0])
    per_sample = ((c * k_prod + o_ch) * math.prod(out_sizes) + c * padded0 * rest_padded) * item
    if per_sample <= limit or len(out_sizes) == 0 or out_sizes[0] <= 1:
        for a, z in _engine._batch_tiles(n, per_sample, limit):
            yield _engine.pad_zeros(x[a:z], padding), gy[a:z]
        return
    s0, lo0 = stride[0], padding[0][0]
    span0 = dilation[0] * (kernel[0] - 1) + 1
    per_row = ((c * k_prod + o_ch) * rest_out + c * s0 * rest_padded) * item
    rows = max(1, int((limit - c * span0 * rest_padded * item) // max(per_row, 1)))
    for b in range(n):
        for r0 in range(0, out_sizes[0], rows):
            r1 = min(r0 + rows, out_sizes[0])
            band = _gemm.padded_band(x[b:b + 1], r0 * s0 - lo0, (r1 - 1) * s0 + span0 - lo0, padding[1:])
            yield from _weight_grad_blocks(band, gy[b:b + 1, :, r0:r1], kernel, stride, dilation,
                                           limit - band.nbytes, 1)


def _weight_grad_blocks(xp, gy, kernel, stride, dilation, limit, dim):
    """Views of a padded region ``xp`` and its ``gy`` split along spatial dim ``dim`` (and deeper ones) until
    one block's columns and reordered ``gy`` fit ``limit`` (one output row of a 3-D sample can be too big)."""
    c, o_ch = xp.shape[1], gy.shape[1]
    out_sizes = gy.shape[2:]
    cost = (c * math.prod(kernel) + o_ch) * math.prod(out_sizes) * xp.itemsize
    if cost <= limit or dim >= len(out_sizes):
        yield xp, gy
        return
    rows = max(1, int(limit // max(cost // out_sizes[dim], 1)))
    s, span = stride[dim], dilation[dim] * (kernel[dim] - 1) + 1
    take = (slice(None),) * (2 + dim)
    for r0 in range(0, out_sizes[dim], rows):
        r1 = min(r0 + rows, out_sizes[dim])
        yield from _weight_grad_blocks(xp[take + (slice(r0 * s, (r1 - 1) * s + span),)],
                                       gy[take + (slice(r0, r1),)], kernel, stride, dilation, limit, dim + 1)


def bias_grad(grad_output):
    """``(O,)``: ``grad_output`` summed over batch and space (float16 accumulated in float32)."""
    cdt = _engine.compute_dtype(grad_output.dtype)
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


def conv_transpose_input_grad(grad_output, weight, in_sizes, stride, padding, output_padding, groups, dilation):
    """Gradient of a transposed convolution w.r.t. its input ``(N, C, *in_sizes)``: a plain conv of
    ``grad_output``."""
    gy, pads = _crop_negative_high(grad_output, padding, output_padding)
    return _engine.conv_forward(gy, weight, None, stride, pads, dilation, groups, tuple(in_sizes))


def conv_transpose_weight_grad(input, grad_output, kernel, stride, padding, output_padding, groups, dilation):
    """Gradient of a transposed convolution w.r.t. its weight ``(C, O/g, *kernel)``: the conv weight gradient
    with input and output-gradient swapped."""
    gy, pads = _crop_negative_high(grad_output, padding, output_padding)
    return conv_weight_grad(gy, input, kernel, stride, pads, dilation, groups)


def conv_backward(grad_output, input, weight, stride, padding, dilation, groups, transposed=False,
                  output_padding=None, needs=_ALL):
    """``(grad_input, grad_weight, grad_bias)`` of a (transposed) convolution; ``None`` where ``needs`` is False.

    Canonical batched arguments only; ``output_padding`` is used by transposed convolution.
    """
    gy, x, w = grad_output, input, weight
    if gy.dtype.kind == "c":      # PyTorch's convention: conjugate the factor that meets grad_output
        x = x.conj() if needs[1] else x
        w = w.conj() if needs[0] else w
    kernel, in_sizes = w.shape[2:], x.shape[2:]
    gx = gw = gb = None
    if transposed:
        op = tuple(output_padding) if output_padding is not None else (0,) * len(kernel)
        if needs[0]:
            gx = conv_transpose_input_grad(gy, w, in_sizes, stride, padding, op, groups, dilation)
        if needs[1]:
            gw = conv_transpose_weight_grad(x, gy, kernel, stride, padding, op, groups, dilation)
    else:
        if needs[0]:
            gx = conv_input_grad(gy, w, in_sizes, stride, padding, dilation, groups)
        if needs[1]:
            gw = conv_weight_grad(x, gy, kernel, stride, padding, dilation, groups)
    if needs[2]:
        gb = bias_grad(gy)
    return gx, gw, gb

"""The API boundary of the convolution functions: validation, canonicalisation, unbatched input.

Everything user-facing in ``convforge.nn.functional`` funnels through :func:`convolution` and
:func:`convolution_transpose`; after them only canonical values travel, as one
:class:`~convforge.engine.ConvProblem` (made here by :func:`conv_problem` / :func:`conv_transpose_problem`).
"""
from __future__ import annotations

import numpy as np

from . import _backend, _canon, engine, shapes
from .engine import ConvProblem

_ALLOWED_KINDS = "fciu"   # float, complex, signed and unsigned int
_CONV_LAYOUT = "(out_channels, in_channels/groups, *kernel)"
_TRANSPOSED_LAYOUT = "(in_channels, out_channels/groups, *kernel)"


def as_array(value, name: str) -> np.ndarray:
    if value is None:
        return None
    arr = value if _backend.backend_for((value,)) else np.asarray(value)   # another backend's array stays lazy
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} has dtype bool, which convolution does not support; convert it with "
                        f".astype(np.float32) (or an integer dtype)")
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(f"{name} has unsupported dtype {arr.dtype}; use a float, complex or integer dtype")
    return arr


def check_dtypes(x, w, b, op: str):
    if w.dtype != x.dtype:
        raise TypeError(f"{op}: input dtype ({x.dtype}) and weight dtype ({w.dtype}) should be the same; "
                        f"cast one of them, e.g. input.astype(np.{w.dtype}) or, for a module, module.to(np.{x.dtype})")
    if b is not None and b.dtype != x.dtype:
        raise TypeError(f"{op}: input dtype ({x.dtype}) and bias dtype ({b.dtype}) should be the same")


def _fmt(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _batch(x, n_spatial: int, op: str):
    """Return (batched input, was_unbatched)."""
    if x.ndim == n_spatial + 2:
        return x, False
    if x.ndim == n_spatial + 1:
        return x[None], True
    raise ValueError(f"Expected {n_spatial + 1}D (unbatched) or {n_spatial + 2}D (batched) input to {op}, "
                     f"but got input of size: {_fmt(x.shape)}")


def _check_weight(w, n_spatial, op, layout=_CONV_LAYOUT):
    if w.ndim != n_spatial + 2:
        raise ValueError(f"{op}: weight must be {n_spatial + 2}-D {layout} for {n_spatial} spatial dims, got "
                         f"weight of size {_fmt(w.shape)}")
    if any(k <= 0 for k in w.shape[2:]):
        raise ValueError(f"{op}: kernel sizes must be positive, got weight of size {_fmt(w.shape)}")


def _check_groups(groups):
    if not _canon.is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups <= 0:
        raise ValueError(f"non-positive groups is not supported, got groups={groups}")
    return int(groups)


def _channel_hint(x, expected, n_spatial):
    """A hint when the input looks channels-last."""
    if x.ndim >= 3 and x.shape[-1] == expected and x.shape[1] != expected:
        perm = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
        return (f". The input looks channels-last (..., {expected}); convforge expects channels first: "
                f"use x.transpose{perm}")
    return ""


def _check_bias(b, out_ch, op):
    if b is not None and (b.ndim != 1 or b.shape[0] != out_ch):
        raise ValueError(f"{op}: bias must have shape ({out_ch},) (one value per output channel), "
                         f"got {tuple(b.shape)}")


def _spatial_args(n, stride, dilation):
    stride = _canon.ntuple(stride, n, "stride", minimum=1)
    dilation = _canon.ntuple(dilation, n, "dilation", minimum=1)
    return stride, dilation


def _check_kernel_fits(sizes, kernel, padding, dilation, op, what="input"):
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(sizes, padding))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(p < s for p, s in zip(padded, span)):
        raise ValueError(
            f"{op}: calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, span))}) (kernel {tuple(kernel)}, dilation {tuple(dilation)}). "
            f"Kernel size can't be greater than actual {what} size (input {tuple(sizes)}, padding "
            f"{tuple(padding)}); use a larger input, more padding or a smaller kernel/dilation")


def prepare(input, weight, bias, stride, dilation, groups, n_spatial, op, layout=_CONV_LAYOUT):
    """Shared prologue of every entry point: arrays, dtypes, rank (``n_spatial`` None: from the weight), batch
    dimension, groups, stride and dilation.

    Returns ``(x, w, b, unbatched, n_spatial, stride, dilation, groups)`` with ``x`` batched."""
    x = as_array(input, "input")
    w = as_array(weight, "weight")
    b = as_array(bias, "bias")
    if n_spatial is None:
        if w.ndim < 3:
            raise ValueError(f"{op}: weight must have at least 3 dims {layout}, got {_fmt(w.shape)}")
        n_spatial = w.ndim - 2
    _check_weight(w, n_spatial, op, layout)
    check_dtypes(x, w, b, op)
    x, unbatched = _batch(x, n_spatial, op)
    groups = _check_groups(groups)
    stride, dilation = _spatial_args(n_spatial, stride, dilation)
    return x, w, b, unbatched, n_spatial, stride, dilation, groups


def conv_problem(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, n_spatial=None,
                 op="conv"):
    """Validate a convolution's arguments (``n_spatial`` None: infer it from the weight).

    Returns ``(x, w, b, problem, unbatched)``: the arrays (``x`` batched) and their :class:`ConvProblem`."""
    x, w, b, unbatched, n_spatial, stride, dilation, groups = prepare(
        input, weight, bias, stride, dilation, groups, n_spatial, op, _CONV_LAYOUT)
    pad_spec = _canon.canonical_padding(padding, n_spatial)
    out_ch, cg = w.shape[:2]
    if out_ch % groups:
        raise ValueError(f"{op}: out_channels ({out_ch}, weight of size {_fmt(w.shape)}) must be divisible by "
                         f"groups ({groups})")
    if x.shape[1] != cg * groups:
        raise ValueError(f"Given groups={groups}, weight of size {_fmt(w.shape)}, expected input"
                         f"{_fmt(x.shape)} to have {cg * groups} channels, but got {x.shape[1]} channels instead"
                         + _channel_hint(x, cg * groups, n_spatial))
    _check_bias(b, out_ch, op)
    kernel = w.shape[2:]
    pads = _canon.resolve_padding(pad_spec, x.shape[2:], kernel, stride, dilation)
    _check_kernel_fits(x.shape[2:], kernel, pads, dilation, op)
    out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d)
                      for i, k, s, p, d in zip(x.shape[2:], kernel, stride, pads, dilation))
    _canon.check_output_fits((x.shape[0], out_ch) + out_sizes, x.itemsize, op,
                      f"stride={stride}, padding={pads}, dilation={dilation}")
    problem = ConvProblem.conv(x.shape, w.shape, x.dtype, stride, pads, dilation, groups, out_sizes)
    return x, w, b, problem, unbatched


def convolution(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, n_spatial=None,
                op="conv"):
    """Validated N-d convolution. ``n_spatial`` None means: infer from the weight."""
    x, w, b, problem, unbatched = conv_problem(input, weight, bias, stride, padding, dilation, groups,
                                               n_spatial=n_spatial, op=op)
    y = engine.forward(x, w, b, problem)
    return y[0] if unbatched else y


def transpose_output_padding(in_sizes, kernel, stride, padding, dilation, output_size, op):
    """output_size (spatial, or with leading N/C) -> per-dim output_padding, with the valid range in errors.

    Accepts every size from the minimum to ``minimum + max(stride, dilation) - 1`` (PyTorch only accepts up to
    ``minimum + stride - 1``)."""
    n = len(in_sizes)
    size = list(output_size)
    if len(size) == n + 2:
        size = size[2:]
    elif len(size) == n + 1:
        size = size[1:]
    if len(size) != n or not all(_canon.is_int(v) for v in size):
        raise ValueError(f"{op}: output_size must have {n} or {n + 2} ints, got {tuple(output_size)!r}")
    out = []
    for dim, (i, k, s, p, d, t) in enumerate(zip(in_sizes, kernel, stride, padding, dilation, size)):
        lo, hi = shapes.conv_transpose_output_range(i, k, s, p, d)
        if not lo <= t <= hi:
            raise ValueError(f"{op}: requested an output size of {tuple(size)}, but valid sizes range from "
                             f"{lo} to {hi} in dimension {dim} (for an input of {tuple(in_sizes)})")
        out.append(t - lo)
    return tuple(out)


def check_output_padding(output_padding, stride, dilation, op):
    """Canonical output_padding, each smaller than ``max(stride, dilation)`` (PyTorch's rule)."""
    out_pad = _canon.ntuple(output_padding, len(stride), "output_padding", minimum=0)
    if any(o_p >= max(s, d) for s, d, o_p in zip(stride, dilation, out_pad)):
        raise ValueError(f"{op}: output padding must be smaller than either stride or dilation, but got "
                         f"output_padding={out_pad}, stride={stride}, dilation={dilation}")
    return out_pad


def conv_transpose_problem(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                           *, output_size=None, n_spatial=None, op="conv_transpose"):
    """Validate a transposed convolution's arguments; returns ``(x, w, b, problem, unbatched)`` like
    :func:`conv_problem`."""
    x, w, b, unbatched, n_spatial, stride, dilation, groups = prepare(
        input, weight, bias, stride, dilation, groups, n_spatial, op, _TRANSPOSED_LAYOUT)
    pads = _canon.canonical_padding(padding, n_spatial, allow_strings=False)
    in_ch, og = w.shape[:2]
    if in_ch % groups:
        raise ValueError(f"{op}: in_channels ({in_ch}, weight of size {_fmt(w.shape)}) must be divisible by "
                         f"groups ({groups})")
    if x.shape[1] != in_ch:
        raise ValueError(f"Given transposed=1, weight of size {_fmt(w.shape)}, expected input{_fmt(x.shape)} to "
                         f"have {in_ch} channels, but got {x.shape[1]} channels instead"
                         + _channel_hint(x, in_ch, n_spatial))
    _check_bias(b, og * groups, op)
    kernel = w.shape[2:]
    if output_size is not None:
        out_pad = transpose_output_padding(x.shape[2:], kernel, stride, pads, dilation, output_size, op)
    else:
        out_pad = check_output_padding(output_padding, stride, dilation, op)
    out_sizes = []
    for i, k, s, p, d, o_p in zip(x.shape[2:], kernel, stride, pads, dilation, out_pad):
        o = (i - 1) * s - p[0] - p[1] + d * (k - 1) + o_p + 1
        if o < 1:
            raise ValueError(f"{op}: output size would be {o} in a dimension (input {tuple(x.shape[2:])}, kernel "
                             f"{tuple(kernel)}, stride {stride}, padding {pads}, dilation {dilation}); "
                             f"reduce the padding")
        out_sizes.append(o)
    _canon.check_output_fits((x.shape[0], og * groups) + tuple(out_sizes), x.itemsize, op,
                      f"stride={stride}, padding={pads}, output_padding={out_pad}, dilation={dilation}")
    problem = ConvProblem.conv_transpose(x.shape, w.shape, x.dtype, stride, pads, dilation, groups, out_pad,
                                         tuple(out_sizes))
    return x, w, b, problem, unbatched


def convolution_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                          *, output_size=None, n_spatial=None, op="conv_transpose"):
    """Validated N-d transposed convolution."""
    x, w, b, problem, unbatched = conv_transpose_problem(input, weight, bias, stride, padding, output_padding,
                                                         groups, dilation, output_size=output_size,
                                                         n_spatial=n_spatial, op=op)
    y = engine.forward(x, w, b, problem)
    return y[0] if unbatched else y

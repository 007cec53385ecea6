"""Gradients of convolution, as ``torch.nn.grad`` (and more): ``import convforge.nn.grad as G``.

``conv{1,2,3}d_input`` / ``conv{1,2,3}d_weight`` have ``torch.nn.grad``'s signatures.  The transposed versions
follow the argument order of ``F.conv_transpose*`` (``stride, padding, output_padding, groups, dilation``):

* ``conv_transpose{1,2,3}d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=None,
  groups=1, dilation=1)``
* ``conv_transpose{1,2,3}d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=None,
  groups=1, dilation=1)``

``output_padding=None`` means "read it from ``grad_output``'s shape" (a forward call with ``output_size=``
is covered without knowing the padding it picked); an explicit value is checked against that shape.

:func:`conv_backward` is the N-d entry behind all of them (and behind ``Conv*.backward``): one call, a mask of
the gradients wanted.  Every function accepts what the forward functions accept: int / per-dim / per-side
``(lo, hi)`` padding, ``'same'`` / ``'valid'`` (convolution only), and unbatched input ``(C, *S)`` with an
unbatched ``grad_output``.  The algebra (gradients are convolutions) is written down in
``convforge/engine/gradients.py``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _api, _canon, engine, shapes
from ..engine import ConvProblem

__all__ = ["conv1d_input", "conv2d_input", "conv3d_input", "conv1d_weight", "conv2d_weight", "conv3d_weight",
           "conv_transpose1d_input", "conv_transpose2d_input", "conv_transpose3d_input",
           "conv_transpose1d_weight", "conv_transpose2d_weight", "conv_transpose3d_weight", "conv_backward"]


class _Validated(NamedTuple):
    """A validated gradient call: ``grad_output`` batched and the forward's :class:`ConvProblem`."""
    grad_output: np.ndarray
    problem: ConvProblem
    unbatched: bool


def _fmt(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _shape_tuple(size, name, op):
    try:
        shape = tuple(size)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {size!r}") from None
    if not all(_canon.is_int(v) and v >= 0 for v in shape):
        raise ValueError(f"{op}: {name} must contain non-negative ints, got {size!r}")
    shape = tuple(int(v) for v in shape)
    _canon.check_output_fits(shape, 1, op, f"{name}={shape}")
    return shape


def _validate(op, input_shape, weight_shape, grad_output, stride, padding, dilation, groups, transposed,
              output_padding, n_spatial=None) -> _Validated:
    """Check every argument of a gradient call and return it canonical; errors name the sizes involved."""
    if n_spatial is None:
        if len(weight_shape) < 3:
            raise ValueError(f"{op}: weight must have at least 3 dims (out, in/groups, *kernel), "
                             f"got weight of size {_fmt(weight_shape)}")
        n_spatial = len(weight_shape) - 2
    n = n_spatial
    layout = "(in_channels, out_channels/groups, *kernel)" if transposed else "(out_channels, in_channels/groups, *kernel)"
    if len(weight_shape) != n + 2 or any(k <= 0 for k in weight_shape[2:]):
        raise ValueError(f"{op}: weight must be {n + 2}-D {layout} with positive kernel sizes, got weight of "
                         f"size {_fmt(weight_shape)}")
    if len(input_shape) not in (n + 1, n + 2):
        raise ValueError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, but got input of "
                         f"size: {_fmt(input_shape)}")
    unbatched = len(input_shape) == n + 1
    gy = grad_output
    if gy.ndim != len(input_shape):
        kind = "unbatched" if unbatched else "batched"
        raise ValueError(f"{op}: grad_output of shape {_fmt(gy.shape)} must have {len(input_shape)} dims like the "
                         f"{kind} input of shape {_fmt(input_shape)}")
    x_shape = (1,) + tuple(input_shape) if unbatched else tuple(input_shape)
    if unbatched:
        gy = gy[None]
    groups = _api._check_groups(groups)
    stride, dilation = _api._spatial_args(n, stride, dilation)
    spec = _canon.canonical_padding(padding, n, allow_strings=not transposed)
    in_sizes, kernel = x_shape[2:], tuple(weight_shape[2:])
    first, second = weight_shape[:2]
    if first % groups:
        what = "in_channels" if transposed else "out_channels"
        raise ValueError(f"{op}: {what} ({first}, weight of size {_fmt(weight_shape)}) must be divisible by "
                         f"groups ({groups})")
    expected_c = first if transposed else second * groups
    if x_shape[1] != expected_c:
        raise ValueError(f"{op}: given groups={groups}, weight of size {_fmt(weight_shape)}, expected input "
                         f"{_fmt(input_shape)} to have {expected_c} channels, but got {x_shape[1]} channels instead")
    if transposed:
        pads = spec
        if output_padding is None:      # read it from grad_output: valid sizes are minimum + [0, max(s, d))
            out_pad = tuple(t - ((i - 1) * s - lo - hi + d * (k - 1) + 1) for t, i, k, s, (lo, hi), d in
                            zip(gy.shape[2:], in_sizes, kernel, stride, pads, dilation))
            if not all(0 <= o_p < max(s, d) for o_p, s, d in zip(out_pad, stride, dilation)):
                lows = tuple(t - o_p for t, o_p in zip(gy.shape[2:], out_pad))
                ranges = ", ".join(f"{m} to {m + max(s, d) - 1}" for m, s, d in zip(lows, stride, dilation))
                raise ValueError(f"{op}: grad_output has shape {_fmt(grad_output.shape)}, whose spatial sizes no "
                                 f"output_padding produces from input {_fmt(input_shape)} and weight "
                                 f"{_fmt(weight_shape)} (stride {stride}, padding {pads}, dilation {dilation}); "
                                 f"valid sizes per dimension: {ranges}")
        else:
            out_pad = _api.check_output_padding(output_padding, stride, dilation, op)
        out_sizes = tuple((i - 1) * s - lo - hi + d * (k - 1) + o_p + 1
                          for i, k, s, (lo, hi), d, o_p in zip(in_sizes, kernel, stride, pads, dilation, out_pad))
        out_ch = second * groups
    else:
        pads = _canon.resolve_padding(spec, in_sizes, kernel, stride, dilation)
        _api._check_kernel_fits(in_sizes, kernel, pads, dilation, op)
        out_pad = None
        out_sizes = tuple(shapes.conv_output_size(i, k, s, p, d)
                          for i, k, s, p, d in zip(in_sizes, kernel, stride, pads, dilation))
        out_ch = first
    expected = (x_shape[0], out_ch) + out_sizes
    if tuple(gy.shape) != expected:
        shown = expected[1:] if unbatched else expected
        raise ValueError(f"{op}: grad_output has shape {_fmt(grad_output.shape)}, but the forward output has shape "
                         f"{_fmt(shown)} (input {_fmt(input_shape)}, weight {_fmt(weight_shape)}, stride {stride}, "
                         f"padding {pads}, dilation {dilation}, groups {groups}"
                         + (f", output_padding {out_pad})" if transposed else ")"))
    if transposed:
        problem = ConvProblem.conv_transpose(x_shape, tuple(weight_shape), gy.dtype, stride, pads, dilation,
                                             groups, out_pad, out_sizes)
    else:
        problem = ConvProblem.conv(x_shape, tuple(weight_shape), gy.dtype, stride, pads, dilation, groups,
                                   out_sizes)
    return _Validated(gy, problem, unbatched)


def _array(value, name):
    arr = _api.as_array(value, name)
    if arr is None:
        raise TypeError(f"{name} must be an array, got None")
    return arr


def _same_dtype(op, **arrays):
    (first_name, first), *rest = arrays.items()
    for name, arr in rest:
        if arr.dtype != first.dtype:
            raise TypeError(f"{op}: {first_name} dtype ({first.dtype}) and {name} dtype ({arr.dtype}) should be the "
                            f"same; cast one of them, e.g. {name}.astype(np.{first.dtype})")


def _backward_call(op, grad_output, input, weight, input_shape, weight_shape, stride, padding, dilation, groups,
                   transposed, output_padding, needs, n_spatial=None):
    """Validate, then run the canonical core; arrays not needed for the requested gradients may be None."""
    gy = _array(grad_output, "grad_output")
    given = {name: a for name, a in (("input", input), ("weight", weight)) if a is not None}
    _same_dtype(op, **given, grad_output=gy)
    pr = _validate(op, input_shape, weight_shape, gy, stride, padding, dilation, groups, transposed,
                   output_padding, n_spatial)
    return _run(pr.problem, pr.grad_output, input, weight, pr.unbatched, needs)


def _run(problem, grad_output, input, weight, unbatched, needs):
    """The engine's backward of ``problem`` on validated arrays (``grad_output`` batched)."""
    x = None if input is None else (input[None] if unbatched else input)
    if x is None:     # only the input gradient is wanted; its value is not needed, its shape is
        x = np.broadcast_to(np.zeros((), grad_output.dtype), problem.input_shape)
    w = weight if weight is not None else np.broadcast_to(np.zeros((), grad_output.dtype), problem.weight_shape)
    gx, gw, gb = engine.backward(grad_output, x, w, problem, needs)
    if unbatched and gx is not None:
        gx = gx[0]
    return gx, gw, gb


def backward_of(op, problem, unbatched, grad_output, input, weight, needs):
    """Gradients of a forward call whose :class:`ConvProblem` was made by ``convforge._api`` (the recorded
    ``Convolution`` / ``ConvolutionTranspose``): only ``grad_output`` is checked (dtype and shape)."""
    gy = _array(grad_output, "grad_output")
    given = {name: a for name, a in (("input", input), ("weight", weight)) if a is not None}
    _same_dtype(op, **given, grad_output=gy)
    expected = problem.output_shape[1:] if unbatched else problem.output_shape
    if tuple(gy.shape) != expected:
        raise ValueError(f"{op}: grad_output has shape {_fmt(gy.shape)}, but the forward output has shape "
                         f"{_fmt(expected)}")
    return _run(problem, gy[None] if unbatched else gy, input, weight, unbatched, needs)


def conv_backward(grad_output, input, weight, *, stride=1, padding=0, dilation=1, groups=1, transposed=False,
                  output_padding=0, needs=(True, True, True)):
    """Gradients of an N-d convolution (or transposed convolution) with respect to input, weight and bias.

    Args:
        grad_output: gradient of the loss w.r.t. the forward output, ``(N, O, *out)`` or unbatched ``(O, *out)``.
        input: the forward input ``(N, C, *S)`` or ``(C, *S)``.
        weight: ``(O, C/groups, *K)``; for ``transposed=True`` ``(C, O/groups, *K)``.
        stride, dilation: int or one int per spatial dim.
        padding: int, per-dim ints, per-dim ``(lo, hi)`` pairs, or ``'same'`` / ``'valid'`` (convolution only).
        groups: number of channel groups.
        transposed: the forward was a transposed convolution.
        output_padding: the transposed forward's output_padding (int or per dim); ``None`` reads it from
            ``grad_output``'s shape.
        needs: which of ``(grad_input, grad_weight, grad_bias)`` to compute; the others come back as None.

    Returns:
        ``(grad_input, grad_weight, grad_bias)`` shaped like input, weight and ``(O,)``, in the input's dtype.

    Shape:
        ``grad_output`` must have exactly the shape the forward produces, otherwise ValueError names both.

    Example:
        >>> import numpy as np
        >>> x, w = np.ones((2, 3, 6, 6)), np.ones((4, 3, 3, 3))
        >>> gx, gw, gb = conv_backward(np.ones((2, 4, 3, 3)), x, w, stride=2, padding=1)
        >>> gx.shape, gw.shape, gb.tolist()
        ((2, 3, 6, 6), (4, 3, 3, 3), [18.0, 18.0, 18.0, 18.0])
    """
    op = "conv_transpose_backward" if transposed else "conv_backward"
    x = _array(input, "input")
    w = _array(weight, "weight")
    gy = _array(grad_output, "grad_output")
    needs = tuple(bool(v) for v in needs)
    if len(needs) != 3:
        raise ValueError(f"{op}: needs must be three booleans (grad_input, grad_weight, grad_bias), got {needs!r}")
    return _backward_call(op, gy, x, w, x.shape, w.shape, stride, padding, dilation, groups, transposed,
                          output_padding, needs)


def _input_grad(n, transposed, input_size, weight, grad_output, stride, padding, dilation, groups, output_padding):
    op = (f"conv_transpose{n}d_input" if transposed else f"conv{n}d_input")
    w = _array(weight, "weight")
    gy = _array(grad_output, "grad_output")
    shape = _shape_tuple(input_size, "input_size", op)
    return _backward_call(op, gy, None, w, shape, w.shape, stride, padding, dilation, groups, transposed,
                          output_padding, (True, False, False), n_spatial=n)[0]


def _weight_grad(n, transposed, input, weight_size, grad_output, stride, padding, dilation, groups, output_padding):
    op = (f"conv_transpose{n}d_weight" if transposed else f"conv{n}d_weight")
    x = _array(input, "input")
    gy = _array(grad_output, "grad_output")
    shape = _shape_tuple(weight_size, "weight_size", op)
    return _backward_call(op, gy, x, None, x.shape, shape, stride, padding, dilation, groups, transposed,
                          output_padding, (False, True, False), n_spatial=n)[1]


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv1d`` w.r.t. its input, as ``torch.nn.grad.conv1d_input``.

    Args:
        input_size: the input's shape ``(N, C, L)`` (or ``(C, L)`` with an unbatched ``grad_output``).
        weight: ``(O, C/groups, k)``.
        grad_output: ``(N, O, L_out)``.
        stride, padding, dilation, groups: as in the forward call (padding may be per-side or 'same'/'valid').

    Example:
        >>> import numpy as np
        >>> conv1d_input((1, 2, 5), np.ones((3, 2, 3)), np.ones((1, 3, 3))).tolist()[0][0]
        [3.0, 6.0, 9.0, 6.0, 3.0]
    """
    return _input_grad(1, False, input_size, weight, grad_output, stride, padding, dilation, groups, None)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv2d`` w.r.t. its input, as ``torch.nn.grad.conv2d_input`` (see :func:`conv1d_input`).

    Example:
        >>> import numpy as np
        >>> conv2d_input((2, 3, 8, 8), np.ones((4, 3, 3, 3)), np.ones((2, 4, 4, 4)), stride=2, padding=1).shape
        (2, 3, 8, 8)
    """
    return _input_grad(2, False, input_size, weight, grad_output, stride, padding, dilation, groups, None)


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv3d`` w.r.t. its input, as ``torch.nn.grad.conv3d_input`` (see :func:`conv1d_input`).

    Example:
        >>> import numpy as np
        >>> conv3d_input((1, 2, 4, 4, 4), np.ones((2, 2, 2, 2, 2)), np.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 4, 4, 4)
    """
    return _input_grad(3, False, input_size, weight, grad_output, stride, padding, dilation, groups, None)


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv1d`` w.r.t. its weight, as ``torch.nn.grad.conv1d_weight``.

    Args:
        input: the forward input ``(N, C, L)`` (or unbatched ``(C, L)``).
        weight_size: the weight's shape ``(O, C/groups, k)``.
        grad_output: ``(N, O, L_out)``.
        stride, padding, dilation, groups: as in the forward call.

    Example:
        >>> import numpy as np
        >>> conv1d_weight(np.arange(5.0)[None, None], (1, 1, 3), np.ones((1, 1, 3))).tolist()
        [[[3.0, 6.0, 9.0]]]
    """
    return _weight_grad(1, False, input, weight_size, grad_output, stride, padding, dilation, groups, None)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv2d`` w.r.t. its weight, as ``torch.nn.grad.conv2d_weight`` (see :func:`conv1d_weight`).

    Example:
        >>> import numpy as np
        >>> conv2d_weight(np.ones((2, 4, 8, 8)), (6, 2, 3, 3), np.ones((2, 6, 8, 8)), padding="same", groups=2).shape
        (6, 2, 3, 3)
    """
    return _weight_grad(2, False, input, weight_size, grad_output, stride, padding, dilation, groups, None)


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv3d`` w.r.t. its weight, as ``torch.nn.grad.conv3d_weight`` (see :func:`conv1d_weight`).

    Example:
        >>> import numpy as np
        >>> conv3d_weight(np.ones((1, 2, 4, 4, 4)), (3, 2, 2, 2, 2), np.ones((1, 3, 3, 3, 3))).shape
        (3, 2, 2, 2, 2)
    """
    return _weight_grad(3, False, input, weight_size, grad_output, stride, padding, dilation, groups, None)


def conv_transpose1d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                           dilation=1):
    """Gradient of ``conv_transpose1d`` w.r.t. its input (a plain convolution of ``grad_output``).

    Args:
        input_size: the forward input's shape ``(N, C_in, L)`` (or ``(C_in, L)``).
        weight: ``(C_in, C_out/groups, k)``.
        grad_output: ``(N, C_out, L_out)``.
        stride, padding, groups, dilation: as in the forward call (int or per-side padding).
        output_padding: the forward's output_padding; None (default) reads it from ``grad_output``'s length.

    Example:
        >>> import numpy as np
        >>> conv_transpose1d_input((1, 1, 3), np.ones((1, 1, 2)), np.ones((1, 1, 6)), stride=2).tolist()
        [[[2.0, 2.0, 2.0]]]
    """
    return _input_grad(1, True, input_size, weight, grad_output, stride, padding, dilation, groups, output_padding)


def conv_transpose2d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                           dilation=1):
    """Gradient of ``conv_transpose2d`` w.r.t. its input (see :func:`conv_transpose1d_input`).

    Example:
        >>> import numpy as np
        >>> w, gy = np.ones((4, 2, 3, 3)), np.ones((1, 2, 8, 8))
        >>> conv_transpose2d_input((1, 4, 4, 4), w, gy, stride=2, padding=1).shape
        (1, 4, 4, 4)
    """
    return _input_grad(2, True, input_size, weight, grad_output, stride, padding, dilation, groups, output_padding)


def conv_transpose3d_input(input_size, weight, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                           dilation=1):
    """Gradient of ``conv_transpose3d`` w.r.t. its input (see :func:`conv_transpose1d_input`).

    Example:
        >>> import numpy as np
        >>> conv_transpose3d_input((1, 2, 3, 3, 3), np.ones((2, 1, 2, 2, 2)), np.ones((1, 1, 6, 6, 6)), 2).shape
        (1, 2, 3, 3, 3)
    """
    return _input_grad(3, True, input_size, weight, grad_output, stride, padding, dilation, groups, output_padding)


def conv_transpose1d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                            dilation=1):
    """Gradient of ``conv_transpose1d`` w.r.t. its weight.

    Args:
        input: the forward input ``(N, C_in, L)`` (or unbatched).
        weight_size: the weight's shape ``(C_in, C_out/groups, k)``.
        grad_output: ``(N, C_out, L_out)``.
        stride, padding, output_padding, groups, dilation: as in :func:`conv_transpose1d_input`.

    Example:
        >>> import numpy as np
        >>> conv_transpose1d_weight(np.arange(3.0)[None, None], (1, 1, 2), np.ones((1, 1, 6)), stride=2).tolist()
        [[[3.0, 3.0]]]
    """
    return _weight_grad(1, True, input, weight_size, grad_output, stride, padding, dilation, groups, output_padding)


def conv_transpose2d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                            dilation=1):
    """Gradient of ``conv_transpose2d`` w.r.t. its weight (see :func:`conv_transpose1d_weight`).

    Example:
        >>> import numpy as np
        >>> x, gy = np.ones((1, 4, 4, 4)), np.ones((1, 2, 8, 8))
        >>> conv_transpose2d_weight(x, (4, 1, 3, 3), gy, stride=2, padding=1, groups=2).shape
        (4, 1, 3, 3)
    """
    return _weight_grad(2, True, input, weight_size, grad_output, stride, padding, dilation, groups, output_padding)


def conv_transpose3d_weight(input, weight_size, grad_output, stride=1, padding=0, output_padding=None, groups=1,
                            dilation=1):
    """Gradient of ``conv_transpose3d`` w.r.t. its weight (see :func:`conv_transpose1d_weight`).

    Example:
        >>> import numpy as np
        >>> conv_transpose3d_weight(np.ones((1, 2, 3, 3, 3)), (2, 1, 2, 2, 2), np.ones((1, 1, 6, 6, 6)), 2).shape
        (2, 1, 2, 2, 2)
    """
    return _weight_grad(3, True, input, weight_size, grad_output, stride, padding, dilation, groups, output_padding)

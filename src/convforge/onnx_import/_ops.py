"""ONNX operators as NumPy functions: ``op(inputs, attrs, opset) -> tuple of outputs``.

``inputs`` holds one array per node input (None for an omitted optional input), ``attrs`` the node's attributes
as Python values, ``opset`` the model's default-domain opset (where an operator's signature changed).  The layer
operators with weights (Conv, ConvTranspose, BatchNormalization, Gemm) are modules, in :mod:`._layers`.
"""
from __future__ import annotations

import numpy as np

from convforge import onnx as onnx_ops
from convforge.convert import from_onnx_padding
from convforge.nn._ops import pooling as _pooling
from convforge.nn._ops.normalization import batch_norm
from convforge.nn._ops.special import erf as _erf

from ._limits import check_size
from ._resize import resize


def _axes_from(inputs, attrs, index, opset, since):
    """Axes given as an attribute (before opset ``since``) or as input ``index`` (from it)."""
    if opset >= since:
        value = inputs[index] if len(inputs) > index else None
        return None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]
    return attrs.get("axes")


def _norm_axes(axes, rank):
    return tuple(sorted(a + rank if a < 0 else a for a in axes))


def _unary(fn):
    return lambda inputs, attrs, opset: (fn(inputs[0]),)


def _binary(fn):
    return lambda inputs, attrs, opset: (fn(inputs[0], inputs[1]),)


def _same_dtype(fn):
    return lambda x, y: np.asarray(fn(x, y)).astype(np.result_type(x), copy=False)


def _div(x, y):
    if np.result_type(x).kind in "iu":
        return np.trunc(np.true_divide(x, y)).astype(np.result_type(x))
    return np.true_divide(x, y).astype(np.result_type(x), copy=False)


def _sigmoid(x):
    return (np.tanh(x * np.asarray(0.5, x.dtype)) + 1) * np.asarray(0.5, x.dtype)     # stable, and recorded


def _clip(inputs, attrs, opset):
    x = inputs[0]
    low = inputs[1] if len(inputs) > 1 else attrs.get("min")
    high = inputs[2] if len(inputs) > 2 else attrs.get("max")
    if low is not None:
        x = np.maximum(x, np.asarray(low, np.result_type(x)))
    if high is not None:
        x = np.minimum(x, np.asarray(high, np.result_type(x)))
    return (x,)


def _hard_sigmoid(x, alpha, beta):
    return np.clip(x * np.asarray(alpha, x.dtype) + np.asarray(beta, x.dtype), 0, 1).astype(x.dtype, copy=False)


def _gelu(inputs, attrs, opset):
    x = inputs[0]
    if attrs.get("approximate", "none") == "tanh":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    else:
        y = 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    return (np.asarray(y).astype(np.result_type(x), copy=False),)


def _leaky_relu(inputs, attrs, opset):
    x = inputs[0]
    return (np.where(x >= 0, x, x * np.asarray(attrs.get("alpha", 0.01), x.dtype)),)


def _flatten(inputs, attrs, opset):
    x = inputs[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return (x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1),)


def _reshape(inputs, attrs, opset):
    x, shape = inputs[0], [int(v) for v in np.asarray(inputs[1]).reshape(-1)]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 and i < x.ndim else v for i, v in enumerate(shape)]
    return (x.reshape(shape),)


def _transpose(inputs, attrs, opset):
    return (np.transpose(inputs[0], attrs.get("perm")),)


def _concat(inputs, attrs, opset):
    return (np.concatenate([v for v in inputs if v is not None], axis=attrs["axis"]),)


def _split(inputs, attrs, opset, n_outputs):
    x, axis = inputs[0], attrs.get("axis", 0)
    sizes = inputs[1] if opset >= 13 and len(inputs) > 1 and inputs[1] is not None else attrs.get("split")
    if sizes is None:
        parts = attrs.get("num_outputs", n_outputs)
        step = -(-x.shape[axis] // parts)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(parts)]
    ends = np.cumsum([int(v) for v in np.asarray(sizes).reshape(-1)])
    axis = axis % x.ndim
    return tuple(x[(slice(None),) * axis + (slice(int(end - size), int(end)),)]
                 for end, size in zip(ends, np.asarray(sizes).reshape(-1)))


def _slice(inputs, attrs, opset):
    x = inputs[0]
    starts, ends = (np.asarray(v).reshape(-1) for v in inputs[1:3])
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, np.asarray(axes).reshape(-1), np.asarray(steps).reshape(-1)):
        size = x.shape[int(axis)]
        start, end = (int(min(max(v, -size - 1), size + 1)) for v in (start, end))   # INT64_MAX-safe clamps
        if int(step) < 0 and end < -size:
            end = None
        index[int(axis)] = slice(start, end, int(step))
    return (x[tuple(index)],)


def _squeeze(inputs, attrs, opset):
    axes = _axes_from(inputs, attrs, 1, opset, 13)
    x = inputs[0]
    return (np.squeeze(x) if axes is None else np.squeeze(x, axis=_norm_axes(axes, x.ndim)),)


def _unsqueeze(inputs, attrs, opset):
    x, axes = inputs[0], _axes_from(inputs, attrs, 1, opset, 13)
    return (np.expand_dims(x, _norm_axes(axes, x.ndim + len(axes))),)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad(inputs, attrs, opset):
    x = inputs[0]
    pads = [int(v) for v in np.asarray(inputs[1] if len(inputs) > 1 else attrs["pads"]).reshape(-1)]
    axes = _norm_axes(_axes_from(inputs, attrs, 3, opset, 18) or range(x.ndim), x.ndim)
    n = len(axes)
    widths = [(0, 0)] * x.ndim
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + n])
    mode = attrs.get("mode", "constant")
    crop = tuple(slice(-lo if lo < 0 else None, hi if hi < 0 else None) for lo, hi in widths)
    x = x[crop]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    check_size([n + lo + hi for n, (lo, hi) in zip(x.shape, grow)], "Pad")
    if mode == "constant":
        value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("value", 0)
        return (np.pad(x, grow, mode="constant", constant_values=np.asarray(value).reshape(-1)[0]
                       if np.size(value) else 0),)
    if mode not in _PAD_MODES:
        raise ValueError(f"Pad mode {mode!r} is not one of {sorted(_PAD_MODES)}")
    return (np.pad(x, grow, mode=_PAD_MODES[mode]),)


def _reduce(fn):
    def op(inputs, attrs, opset):
        x = inputs[0]
        axes = _axes_from(inputs, attrs, 1, opset, 18)
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return (x,)
        axes = None if not axes else _norm_axes(axes, x.ndim)
        return (np.asarray(fn(x, axis=axes, keepdims=bool(attrs.get("keepdims", 1)))).astype(x.dtype, copy=False),)
    return op


def _softmax(inputs, attrs, opset):
    x = inputs[0]
    if opset < 13:       # the input is viewed as 2-D: (prod(shape[:axis]), prod(shape[axis:]))
        axis = attrs.get("axis", 1)
        flat = x.reshape(int(np.prod(x.shape[:axis % max(x.ndim, 1)], dtype=np.int64)), -1)
        return (_softmax([flat], {"axis": 1}, 13)[0].reshape(x.shape),)
    axis = attrs.get("axis", -1)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / np.sum(e, axis=axis, keepdims=True),)


def _gather(inputs, attrs, opset):
    x, index = inputs[0], np.asarray(inputs[1])
    axis = attrs.get("axis", 0)
    index = np.where(index < 0, index + x.shape[axis], index)
    return (np.take(x, index, axis=axis),)


def _shape(inputs, attrs, opset):
    shape = np.array(np.shape(inputs[0]), np.int64)
    return (shape[attrs.get("start", 0):attrs.get("end", None)],)


def _constant(inputs, attrs, opset):
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return (np.asarray(attrs[key], dtype),)
    raise ValueError(f"Constant has none of the supported value attributes (it has {sorted(attrs)})")


def _constant_of_shape(inputs, attrs, opset):
    value = attrs.get("value", np.zeros(1, np.float32))
    shape = check_size(np.asarray(inputs[0]).reshape(-1), "ConstantOfShape")
    return (np.full(shape, value.reshape(-1)[0], value.dtype),)


def _gemm(inputs, attrs, opset):
    a, b = inputs[0], inputs[1]
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    y = np.asarray(attrs.get("alpha", 1.0), a.dtype) * (a @ b)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + np.asarray(attrs.get("beta", 1.0), a.dtype) * inputs[2]
    return (y.astype(a.dtype, copy=False),)


def _windows(x, kernel, strides, dilations, pairs, ceil_mode, fill):
    """Pooling windows of ``x (N, C, *S)``: a view ``(N, C, *O, *K)`` over ``x`` padded with ``fill``, and
    the padding actually used per side (the explicit pads plus what ceil_mode adds at the end)."""
    n = len(kernel)
    full = []
    for i, k, s, d, (lo, hi) in zip(x.shape[2:], kernel, strides, dilations, pairs):
        span = d * (k - 1) + 1
        out = (i + lo + hi - span) // s + 1
        if ceil_mode:
            out = -(-(i + lo + hi - span) // s) + 1
            if (out - 1) * s >= i + lo:         # a window may not start in the end padding
                out -= 1
        full.append((lo, max(hi, (out - 1) * s + span - i - lo)))
    padded = np.pad(x, [(0, 0), (0, 0)] + full, constant_values=fill)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    view = np.lib.stride_tricks.sliding_window_view(padded, spans, axis=tuple(range(2, 2 + n)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) \
        + tuple(slice(None, None, d) for d in dilations)
    return view[index], full


def _pool_args(x, attrs):
    kernel = list(attrs["kernel_shape"])
    n = len(kernel)
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    pairs = from_onnx_padding(attrs.get("auto_pad", "NOTSET"), attrs.get("pads"), kernel_shape=kernel,
                              strides=strides, dilations=dilations, input_size=x.shape[2:])
    return kernel, strides, dilations, pairs


def _torch_pool(kernel, pairs, dilations, op):
    """torch's pooling function (recorded for gradients) when the ONNX padding is one it takes, else None."""
    symmetric = all(lo == hi and lo <= k // 2 for (lo, hi), k in zip(pairs, kernel))
    if not 1 <= len(kernel) <= 3 or not symmetric or (op == "avg" and any(d != 1 for d in dilations)):
        return None
    return getattr(_pooling, f"{op}_pool{len(kernel)}d"), [lo for lo, _ in pairs]


def _max_pool(inputs, attrs, opset):
    x = inputs[0]
    kernel, strides, dilations, pairs = _pool_args(x, attrs)
    recorded = _torch_pool(kernel, pairs, dilations, "max")
    if recorded is not None and x.dtype.kind == "f":
        fn, pads = recorded
        return (fn(x, kernel, strides, pads, dilations, bool(attrs.get("ceil_mode", 0))),)
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    view, _ = _windows(x, kernel, strides, dilations, pairs, attrs.get("ceil_mode", 0), fill)
    return (view.max(axis=tuple(range(-len(kernel), 0))),)


def _average_pool(inputs, attrs, opset):
    x = inputs[0]
    kernel, strides, dilations, pairs = _pool_args(x, attrs)
    recorded = _torch_pool(kernel, pairs, dilations, "avg")
    if recorded is not None:
        fn, pads = recorded
        return (fn(x, kernel, strides, pads, bool(attrs.get("ceil_mode", 0)), bool(attrs.get("count_include_pad", 0))),)
    axes = tuple(range(-len(kernel), 0))
    view, full = _windows(x, kernel, strides, dilations, pairs, attrs.get("ceil_mode", 0), 0)
    inside = np.ones((1, 1) + x.shape[2:], x.dtype)
    if attrs.get("count_include_pad", 0):       # explicit pads count, the ceil_mode extension does not
        inside = np.pad(inside, [(0, 0), (0, 0)] + list(pairs), constant_values=1)
        full = [(0, hi - p_hi) for (lo, hi), (p_lo, p_hi) in zip(full, pairs)]
    counts, _ = _windows(inside, kernel, strides, dilations, full, False, 0)
    return (view.sum(axis=axes) / counts.sum(axis=axes),)


def _global(fn):
    return lambda inputs, attrs, opset: (fn(inputs[0], axis=tuple(range(2, inputs[0].ndim)), keepdims=True),)


def _dropout(inputs, attrs, opset):
    if len(inputs) > 2 and inputs[2] is not None and bool(np.asarray(inputs[2])):
        raise ValueError("Dropout with training_mode=True is not supported (convforge runs ONNX graphs for "
                         "inference; train the module instead)")
    return inputs[0], np.ones(np.shape(inputs[0]), bool)


_CAST_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
               9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def _cast(inputs, attrs, opset):
    if attrs["to"] not in _CAST_TYPES:
        raise ValueError(f"Cast to ONNX data type {attrs['to']} is not supported")
    return (np.asarray(inputs[0]).astype(_CAST_TYPES[attrs["to"]]),)


def _conv(inputs, attrs, opset):
    return (onnx_ops.conv(*inputs, **attrs),)


def _conv_transpose(inputs, attrs, opset):
    return (onnx_ops.conv_transpose(*inputs, **attrs),)


def _batch_normalization(inputs, attrs, opset):
    if attrs.get("training_mode", 0):
        raise ValueError("BatchNormalization with training_mode=1 is not supported (convforge runs ONNX graphs for "
                         "inference)")
    x, scale, bias, mean, var = inputs[:5]
    y = batch_norm(x, mean, var, scale, bias, False, 0.0, attrs.get("epsilon", 1e-5))
    return (np.asarray(y).astype(np.result_type(x), copy=False),)


def _where(inputs, attrs, opset):
    return (np.where(inputs[0], inputs[1], inputs[2]),)


def _expand(inputs, attrs, opset):
    shape = [int(v) for v in np.asarray(inputs[1]).reshape(-1)]
    check_size(np.broadcast_shapes(np.shape(inputs[0]), tuple(shape)), "Expand")
    return (inputs[0] * np.ones(shape, inputs[0].dtype),)


def _range(inputs, attrs, opset):
    start, limit, delta = (np.asarray(v).reshape(()) for v in inputs)
    if delta == 0:
        raise ValueError("Range with delta 0")
    check_size([max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)], "Range")
    return (np.arange(start, limit, delta).astype(start.dtype),)


def _variadic(fn):
    def op(inputs, attrs, opset):
        out = inputs[0]
        for v in inputs[1:]:
            out = fn(out, v)
        return (out,)
    return op


def _resize(inputs, attrs, opset):
    return (resize(inputs, attrs),)


OPS = {
    "Relu": _unary(lambda x: np.maximum(x, np.zeros((), x.dtype))), "LeakyRelu": _leaky_relu, "Clip": _clip,
    "Sigmoid": _unary(_sigmoid),
    "HardSigmoid": lambda i, a, o: (_hard_sigmoid(i[0], a.get("alpha", 0.2), a.get("beta", 0.5)),),
    "HardSwish": _unary(lambda x: x * _hard_sigmoid(x, 1 / 6, 0.5)),
    "Mul": _binary(_same_dtype(np.multiply)), "Add": _binary(_same_dtype(np.add)),
    "Sub": _binary(_same_dtype(np.subtract)), "Div": _binary(_div), "Pow": _binary(_same_dtype(np.power)),
    "MatMul": _binary(np.matmul), "Gemm": _gemm, "Sqrt": _unary(np.sqrt),
    "Erf": _unary(lambda x: _erf(x).astype(np.result_type(x), copy=False)), "Gelu": _gelu,
    "MaxPool": _max_pool, "AveragePool": _average_pool, "GlobalAveragePool": _global(np.mean),
    "GlobalMaxPool": _global(np.max), "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Concat": _concat, "Slice": _slice, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Pad": _pad,
    "Resize": _resize, "ReduceMean": _reduce(np.mean), "ReduceSum": _reduce(np.sum), "ReduceMax": _reduce(np.max),
    "Softmax": _softmax, "Identity": _unary(lambda x: x), "Dropout": _dropout, "Constant": _constant,
    "Shape": _shape, "Gather": _gather, "ConstantOfShape": _constant_of_shape, "Cast": _cast, "Where": _where,
    "Expand": _expand, "Range": _range, "Equal": _binary(np.equal), "Less": _binary(np.less),
    "Greater": _binary(np.greater), "Not": _unary(np.logical_not), "Neg": _unary(np.negative),
    "Abs": _unary(np.abs), "Exp": _unary(np.exp), "Log": _unary(np.log), "Tanh": _unary(np.tanh),
    "Floor": _unary(np.floor), "Ceil": _unary(np.ceil), "Reciprocal": _unary(np.reciprocal),
    "Max": _variadic(np.maximum), "Min": _variadic(np.minimum), "Sum": _variadic(np.add),
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batch_normalization,
}
"""op_type -> implementation; ``Split`` (whose output count is the node's) is handled by :func:`run`."""


def run(op_type, inputs, attrs, opset, n_outputs):
    """Run one operator; returns a tuple of outputs."""
    if op_type == "Split":
        return _split(inputs, attrs, opset, n_outputs)
    return OPS[op_type](inputs, attrs, opset)


SUPPORTED = sorted(set(OPS) | {"Split"})

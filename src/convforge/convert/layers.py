"""Layers between convforge, Keras and ONNX: build a ``convforge.nn`` module from a Keras layer or an ONNX node,
and give the ONNX attributes or ``tf.nn`` arguments of a module.

:func:`from_keras` (a Keras layer config + weights) and :func:`from_onnx` (an ONNX Conv / ConvTranspose node +
initialisers) build an equivalent module; :func:`to_onnx` and :func:`to_tf` go the other way.  Layers are read
through :func:`convforge.layer_view.layer_view` (sizes) and :func:`convforge.layer_view.padding_spec` (padding).
"""
from __future__ import annotations

import importlib

import numpy as np

from .. import nn, shapes
from ..layer_view import layer_view, padding_spec
from ..nn.module import Module
from .layouts import depthwise_weight_from_tf, transposed_weight_from_tf, transposed_weight_to_tf, weight_from_tf, \
    weight_to_tf
from .padding import _spatial, check_auto_pad, from_onnx_padding, from_tf_padding, onnx_transpose_pads, \
    tf_transpose_padding, to_onnx_padding, to_tf_padding

__all__ = ["SeparableConv", "from_keras", "from_onnx", "to_onnx", "to_tf"]


class SeparableConv(Module):
    """Depthwise convolution followed by a 1x1 pointwise convolution (Keras ``SeparableConv*D``).

    Args:
        depthwise: a ``Conv*d`` with ``groups == in_channels`` and no bias (Keras puts the bias on the pointwise).
        pointwise: a ``Conv*d`` with kernel size 1.

    Shape:
        as the depthwise convolution, with ``pointwise.out_channels`` channels.

    Example:
        >>> import convforge.nn as nn
        >>> m = SeparableConv(nn.Conv2d(3, 6, 3, groups=3, bias=False), nn.Conv2d(6, 4, 1))
        >>> m(np.zeros((1, 3, 8, 8), np.float32)).shape
        (1, 4, 6, 6)
    """

    def __init__(self, depthwise, pointwise):
        super().__init__()
        if depthwise.out_channels != pointwise.in_channels:
            raise ValueError(f"the pointwise convolution takes {pointwise.in_channels} channels but the depthwise "
                             f"one gives {depthwise.out_channels}")
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, input):
        return self.pointwise(self.depthwise(input))


_KERAS_CONV = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}
_KERAS_TRANSPOSE = {"Conv1DTranspose": 1, "Conv2DTranspose": 2, "Conv3DTranspose": 3}
_KERAS_DEPTHWISE = {"DepthwiseConv1D": 1, "DepthwiseConv2D": 2}
_KERAS_SEPARABLE = {"SeparableConv1D": 1, "SeparableConv2D": 2}


def _keras_parts(config, class_name):
    if "class_name" in config and "config" in config:
        return config["class_name"], config["config"]
    if class_name is None:
        raise ValueError("give class_name= (e.g. 'Conv2D') or a serialized layer {'class_name': ..., 'config': ...}")
    return class_name, config


def _module_dtype(weights):
    dt = np.asarray(weights[0]).dtype
    return dt if dt.kind in "fc" else np.dtype(np.float32)


def _load(module, weight, bias):
    module.weight[...] = weight
    if module.bias is not None:
        module.bias[...] = bias
    return module


def _keras_padding(cfg, n, transposed=False):
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal") or (padding == "causal" and (n != 1 or transposed)):
        raise ValueError(f"Keras padding must be 'valid' or 'same' ('causal' for Conv1D), got {cfg.get('padding')!r}")
    return padding


def from_keras(config, weights, *, class_name=None):
    """A Keras convolution layer (config + weights) -> an equivalent channels-first ``convforge.nn`` module.

    Supported: Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D, SeparableConv1D/2D (the latter becomes a
    :class:`SeparableConv`).  The module takes ``(N, C, *spatial)`` input whatever the layer's ``data_format``:
    transpose channels-last data with ``x.transpose(0, n+1, 1, ..., n)``.  Keras ``'same'`` with stride > 1 maps
    to convforge's ``'same'`` (TF's SAME split for every input size); transposed layers map to fixed padding plus
    output_padding following Keras's output-size rule (:func:`convforge.shapes.keras_conv_transpose_output_size`).

    Args:
        config: ``layer.get_config()`` (then give ``class_name``) or ``keras.layers.serialize(layer)``.
        weights: ``layer.get_weights()``: kernel(s) then bias when ``use_bias``.
        class_name: the layer class, e.g. ``'Conv2D'``.

    Example:
        >>> cfg = {"filters": 4, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same", "use_bias": False}
        >>> m = from_keras(cfg, [np.ones((3, 3, 2, 4), np.float32)], class_name="Conv2D")
        >>> m, m(np.ones((1, 2, 7, 8), np.float32)).shape
        (Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=same, bias=False), (1, 4, 4, 4))
    """
    name, cfg = _keras_parts(config, class_name)
    weights = [np.asarray(w) for w in weights]
    use_bias = bool(cfg.get("use_bias", True))
    expected = {**{k: 1 for k in _KERAS_CONV}, **{k: 1 for k in _KERAS_TRANSPOSE},
                **{k: 1 for k in _KERAS_DEPTHWISE}, **{k: 2 for k in _KERAS_SEPARABLE}}
    if name not in expected:
        raise ValueError(f"unsupported Keras layer {name!r}; supported: {sorted(expected)}")
    if len(weights) != expected[name] + use_bias:
        raise ValueError(f"{name} with use_bias={use_bias} has {expected[name] + use_bias} weight arrays, got "
                         f"{len(weights)} (shapes {[w.shape for w in weights]})")
    n = {**_KERAS_CONV, **_KERAS_TRANSPOSE, **_KERAS_DEPTHWISE, **_KERAS_SEPARABLE}[name]
    kernel = weights[0]
    if kernel.ndim != n + 2:
        raise ValueError(f"{name}: kernel must be {n + 2}-D, got shape {kernel.shape}")
    k = tuple(kernel.shape[:n])
    s = _spatial(cfg.get("strides", 1), n, "strides")
    d = _spatial(cfg.get("dilation_rate", 1), n, "dilation_rate")
    bias = weights[-1] if use_bias else None
    dtype = _module_dtype(weights)
    conv_cls = getattr(nn, f"Conv{n}d")
    padding = _keras_padding(cfg, n, transposed=name in _KERAS_TRANSPOSE)
    pad_arg = from_tf_padding(padding, kernel_size=k, strides=s, dilations=d)   # stride > 1 'same': size-free

    if name in _KERAS_CONV:
        groups = int(cfg.get("groups", 1))
        in_ch = kernel.shape[n] * groups
        m = conv_cls(in_ch, kernel.shape[n + 1], k, s, pad_arg, d, groups, use_bias, dtype=dtype)
        return _load(m, weight_from_tf(kernel), bias)
    if name in _KERAS_DEPTHWISE or name in _KERAS_SEPARABLE:
        c, mult = kernel.shape[n:]
        dw = conv_cls(c, c * mult, k, s, pad_arg, d, c, name in _KERAS_DEPTHWISE and use_bias, dtype=dtype)
        _load(dw, depthwise_weight_from_tf(kernel), bias)
        if name in _KERAS_DEPTHWISE:
            return dw
        pw_kernel = weights[1]
        if pw_kernel.shape[:n] != (1,) * n or pw_kernel.shape[n] != c * mult:
            raise ValueError(f"{name}: pointwise kernel must have shape {(1,) * n + (c * mult, 'filters')}, got "
                             f"{pw_kernel.shape}")
        pw = conv_cls(c * mult, pw_kernel.shape[-1], 1, bias=use_bias, dtype=dtype)
        return SeparableConv(dw, _load(pw, weight_from_tf(pw_kernel), bias))
    # transposed: Keras calls tf.nn.conv_transpose with output_shape from its own rule; that gives fixed
    # padding and output_padding for every input size (the algebra is in docs/PORTING.md)
    op_cfg = cfg.get("output_padding")
    op = None if op_cfg is None else _spatial(op_cfg, n, "output_padding", minimum=0)
    pairs, out_pad = [], []
    for dim in range(n):
        i = 2 * max(s[dim], 1) + 3   # any size > 1 gives the same answer; this one is checked by the fixtures
        o = shapes.keras_conv_transpose_output_size(i, k[dim], s[dim], padding, None if op is None else op[dim],
                                                    d[dim])
        (p,), (q,) = tf_transpose_padding(padding.upper(), input_size=(i,), output_size=(o,), kernel_size=k[dim],
                                          strides=s[dim], dilations=d[dim])
        pairs.append(p)
        out_pad.append(q)
    cls = getattr(nn, f"ConvTranspose{n}d")
    in_ch, out_ch = kernel.shape[n + 1], kernel.shape[n]
    m = cls(in_ch, out_ch, k, s, tuple(pairs), tuple(out_pad), 1, use_bias, d, dtype=dtype)
    return _load(m, transposed_weight_from_tf(kernel), bias)


def _onnx_attributes(node):
    """NodeProto or dict -> (op_type, attribute dict, input names)."""
    if isinstance(node, dict):
        attrs = dict(node.get("attributes", node))
        op_type = attrs.pop("op_type", node.get("op_type"))
        attrs.pop("attributes", None)
        return op_type, attrs, None
    helper = importlib.import_module("onnx.helper")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    return node.op_type, attrs, list(node.input)


def _as_array(value):
    if isinstance(value, np.ndarray) or value is None:
        return value
    if type(value).__name__ == "TensorProto":
        return importlib.import_module("onnx.numpy_helper").to_array(value)
    return np.asarray(value)


def from_onnx(node, initializers, *, op_type=None, input_shape=None):
    """An ONNX Conv / ConvTranspose node + its initialisers -> an equivalent ``convforge.nn`` module.

    Args:
        node: an ``onnx.NodeProto``, or a dict of attributes (with ``'op_type'`` or ``op_type=``).
        initializers: for a NodeProto a mapping from input names to arrays / TensorProtos (e.g.
            ``{t.name: t for t in graph.initializer}``); for a dict, ``{'W': ..., 'B': ...}`` or ``[W, B]``.
        op_type: 'Conv' or 'ConvTranspose' when ``node`` is a dict without it.
        input_shape: the input's spatial (or full) shape; needed only where the padding depends on it
            (Conv SAME_LOWER with stride > 1, ConvTranspose output_shape).

    Example:
        >>> m = from_onnx({"op_type": "Conv", "pads": [0, 1, 1, 2], "strides": [2, 1]}, [np.ones((4, 3, 3, 3))])
        >>> m
        Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 1), padding=((0, 1), (1, 2)), bias=False)
    """
    kind, attrs, names = _onnx_attributes(node)
    kind = kind or op_type
    if kind not in ("Conv", "ConvTranspose"):
        raise ValueError(f"op_type must be 'Conv' or 'ConvTranspose', got {kind!r}")
    if names is not None:
        w = _as_array(initializers[names[1]])
        b = _as_array(initializers[names[2]]) if len(names) > 2 and names[2] else None
    elif isinstance(initializers, dict):
        w, b = _as_array(initializers["W"]), _as_array(initializers.get("B"))
    else:
        items = list(initializers)
        w, b = _as_array(items[0]), _as_array(items[1]) if len(items) > 1 else None
    unknown = set(attrs) - {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "output_padding",
                            "output_shape"}
    if unknown or (kind == "Conv" and {"output_padding", "output_shape"} & set(attrs)):
        raise ValueError(f"unknown {kind} attributes {sorted(unknown or {'output_padding', 'output_shape'})}")
    n = w.ndim - 2
    k = tuple(w.shape[2:])
    if attrs.get("kernel_shape") is not None and tuple(attrs["kernel_shape"]) != k:
        raise ValueError(f"kernel_shape {tuple(attrs['kernel_shape'])} does not match the weight's kernel {k}")
    s = _spatial(attrs.get("strides"), n, "strides")
    d = _spatial(attrs.get("dilations"), n, "dilations")
    g = int(attrs.get("group", 1))
    ap = check_auto_pad(attrs.get("auto_pad", "NOTSET"))
    spatial_in = None if input_shape is None else tuple(input_shape)[-n:]
    dtype = w.dtype if w.dtype.kind in "fc" else np.dtype(np.float32)
    if kind == "Conv":
        pad = from_onnx_padding(ap, attrs.get("pads"), kernel_shape=k, strides=s, dilations=d, input_size=spatial_in)
        m = getattr(nn, f"Conv{n}d")(w.shape[1] * g, w.shape[0], k, s, pad, d, g, b is not None, dtype=dtype)
        return _load(m, w, b)
    op = _spatial(attrs.get("output_padding"), n, "output_padding", minimum=0) \
        if attrs.get("output_padding") is not None else (0,) * n
    needs_size = attrs.get("output_shape") is not None
    if needs_size and spatial_in is None:
        raise ValueError("ConvTranspose with output_shape: the padding depends on the input size "
                         "(total = s*(i-1) + output_padding + (k-1)*d + 1 - output_shape); pass input_shape=")
    size_for = spatial_in if spatial_in is not None else (1,) * n   # SAME_*/pads: independent of the size
    pairs = onnx_transpose_pads(size_for, k, strides=s, dilations=d, auto_pad=ap, pads=attrs.get("pads"),
                                output_padding=op, output_shape=attrs.get("output_shape"))
    # fold negative end padding into output_padding (both add cells at the end)
    pairs2, op2 = [], []
    for (lo, hi), o_p in zip(pairs, op):
        if hi < 0:
            lo, hi, o_p = lo, 0, o_p - hi
        pairs2.append((lo, hi))
        op2.append(o_p)
    bad = [dim for dim, ((lo, hi), o_p, ss, dd) in enumerate(zip(pairs2, op2, s, d)) if lo < 0 or o_p >= max(ss, dd)]
    if bad:
        raise ValueError(f"ConvTranspose pads {pairs} with output_padding {op} (strides {s}, dilations {d}) are not "
                         f"expressible as a convforge module (negative begin padding or output_padding >= "
                         f"max(stride, dilation) in dims {bad}); use convforge.onnx.conv_transpose instead")
    m = getattr(nn, f"ConvTranspose{n}d")(w.shape[0], w.shape[1] * g, k, s, tuple(pairs2), tuple(op2), g,
                                          b is not None, d, dtype=dtype)
    return _load(m, w, b)


def _module_kind(module):
    conv_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    tr_types = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    if isinstance(module, conv_types):
        kind = "Conv"
    elif isinstance(module, tr_types):
        kind = "ConvTranspose"
    else:
        raise TypeError(f"expected a convforge.nn Conv*d or ConvTranspose*d module, got {type(module).__name__}")
    if module.padding_mode != "zeros":
        raise ValueError(f"padding_mode={module.padding_mode!r} has no ONNX Conv / tf.nn equivalent; pad first "
                         f"(ONNX Pad mode='reflect'/'edge'/'wrap', tf.pad) and use a module with padding=0")
    return kind


def to_onnx(module):
    """A convforge Conv / ConvTranspose module -> ``{'op_type', 'attributes', 'W', 'B'}`` for an ONNX node.

    ``convforge.onnx.conv(x, r['W'], r['B'], **r['attributes'])`` (or ``conv_transpose``) reproduces the module;
    ``onnx.helper.make_node(r['op_type'], ['X', 'W', 'B'], ['Y'], **r['attributes'])`` builds the node.

    Example:
        >>> import convforge.nn as nn
        >>> to_onnx(nn.Conv2d(3, 4, 3, stride=2, padding="same"))["attributes"]["auto_pad"]
        'SAME_UPPER'
    """
    kind = _module_kind(module)
    n = len(module.kernel_size)
    attrs = {"kernel_shape": list(module.kernel_size), "strides": list(module.stride),
             "dilations": list(module.dilation), "group": module.groups}
    attrs.update(to_onnx_padding(padding_spec(module), kernel_shape=module.kernel_size, strides=module.stride,
                                 dilations=module.dilation))
    if kind == "ConvTranspose":
        attrs["output_padding"] = list(module.output_padding)
    if attrs.get("auto_pad") == "NOTSET" and n:
        attrs.pop("auto_pad")
    return {"op_type": kind, "attributes": attrs, "W": np.asarray(module.weight),
            "B": None if module.bias is None else np.asarray(module.bias)}


def to_tf(module, *, input_shape=None, data_format="channels_last"):
    """A convforge Conv / ConvTranspose module -> arguments of ``tf.nn.convolution`` / ``tf.nn.conv_transpose``.

    Returns a dict with ``filters`` (TF layout), ``strides``, ``padding``, ``dilations``, ``data_format`` (and
    ``output_shape`` for transposed modules) plus ``bias`` (None without one; add it after the TF call).

    Args:
        module: a ``convforge.nn`` ``Conv*d`` / ``ConvTranspose*d`` (zeros padding mode).
        input_shape: the input's spatial (or full channels-first) shape; required for transposed modules
            (TF needs ``output_shape``), optional otherwise (lets per-side pairs become 'SAME').
        data_format: 'channels_last' (``N...C``) or 'channels_first' (``NC...``).

    Example:
        >>> import convforge.nn as nn
        >>> a = to_tf(nn.Conv2d(3, 4, 3, stride=2, padding="same"))
        >>> a["filters"].shape, a["padding"], a["data_format"]
        ((3, 3, 3, 4), 'SAME', 'NHWC')
    """
    kind = _module_kind(module)
    n = len(module.kernel_size)
    cf = data_format == "channels_first"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    fmt = {1: "W", 2: "HW", 3: "DHW"}.get(n)
    if fmt is None:
        raise ValueError(f"tf.nn has no {n}-D convolution")
    fmt = "NC" + fmt if cf else "N" + fmt + "C"
    spatial = None if input_shape is None else tuple(input_shape)[-n:]
    out = {"strides": list(module.stride), "dilations": list(module.dilation), "data_format": fmt,
           "bias": None if module.bias is None else np.asarray(module.bias)}
    if kind == "Conv":
        out["filters"] = weight_to_tf(module.weight)
        out["padding"] = to_tf_padding(padding_spec(module), kernel_size=module.kernel_size, strides=module.stride,
                                       dilations=module.dilation, input_size=spatial, data_format=fmt)
        return out
    big = [dim for dim, (o_p, ss) in enumerate(zip(module.output_padding, module.stride)) if o_p >= ss]
    if big:
        raise ValueError(f"output_padding {module.output_padding} >= stride {module.stride} in dims {big} is not "
                         f"expressible in TF (its output_shape must convolve back to the input size)")
    if module.groups != 1:
        raise ValueError(f"tf.nn.conv_transpose has no groups; this module has groups={module.groups}")
    if spatial is None:
        raise ValueError("tf.nn.conv_transpose needs output_shape, which depends on the input size: pass "
                         "input_shape= (spatial sizes or the full channels-first shape)")
    size_out = layer_view(module, (module.in_channels,) + spatial).out_sizes
    # TF's padding is the forward padding for an input of size_out; output_padding is then implied
    out["filters"] = transposed_weight_to_tf(module.weight)
    out["padding"] = to_tf_padding(padding_spec(module), kernel_size=module.kernel_size, strides=module.stride,
                                   dilations=module.dilation, input_size=size_out, data_format=fmt)
    batch = tuple(input_shape)[0] if input_shape is not None and len(tuple(input_shape)) == n + 2 else None
    full = (module.out_channels,) + size_out if cf else size_out + (module.out_channels,)
    out["output_shape"] = list(((batch,) if batch is not None else ()) + full) if batch is not None \
        else list(size_out)
    return out

"""Modules for ONNX nodes: the layers with weights become ``convforge.nn`` layers or small parameter-holding
modules; every other node is an :class:`OnnxOp` that calls its NumPy implementation.
"""
from __future__ import annotations

import numpy as np

from convforge import onnx as onnx_ops
from convforge.convert import from_onnx
from convforge.nn import Linear, Module, Parameter
from convforge.nn._ops.normalization import batch_norm

from . import _ops


def _attr_text(attrs):
    shown = []
    for key, value in sorted(attrs.items()):
        if isinstance(value, np.ndarray):
            value = f"array{list(value.shape)}" if value.size > 4 else value.tolist()
        shown.append(f"{key}={value}")
    return ", ".join(shown)


class OnnxOp(Module):
    """One ONNX node without weights: ``forward(*inputs)`` runs the operator (see :mod:`._ops`).

    Example:
        >>> OnnxOp("Concat", {"axis": 1}, 17, 1)
        Concat(axis=1)
    """

    def __init__(self, op_type, attrs, opset, n_outputs):
        super().__init__()
        self.op_type, self.attrs, self.opset, self.n_outputs = op_type, attrs, opset, n_outputs

    def forward(self, *inputs):
        return _ops.run(self.op_type, list(inputs), self.attrs, self.opset, self.n_outputs)

    def extra_repr(self):
        return _attr_text(self.attrs)

    def __repr__(self):
        return f"{self.op_type}({self.extra_repr()})"


class OnnxConv(Module):
    """An ONNX Conv / ConvTranspose whose padding depends on the input size (SAME_LOWER with a stride, an
    ``output_shape``): weights as parameters, computed by :func:`convforge.onnx.conv` / ``conv_transpose``."""

    def __init__(self, op_type, attrs, weight, bias):
        super().__init__()
        self.op_type, self.attrs = op_type, attrs
        self.weight = Parameter(weight)
        self.bias = None if bias is None else Parameter(bias)

    def forward(self, x):
        fn = onnx_ops.conv if self.op_type == "Conv" else onnx_ops.conv_transpose
        return fn(x, self.weight, self.bias, **self.attrs)

    def extra_repr(self):
        return f"weight={list(self.weight.shape)}, {_attr_text(self.attrs)}"

    def __repr__(self):
        return f"{self.op_type}({self.extra_repr()})"


class BatchNormalization(Module):
    """ONNX BatchNormalization in inference mode over axis 1 of any rank (``eps``; running statistics).

    Example:
        >>> BatchNormalization(*np.ones((4, 3), np.float32), eps=1e-3)
        BatchNormalization(3, eps=0.001)
    """

    def __init__(self, scale, bias, mean, var, eps=1e-5):
        super().__init__()
        self.weight, self.bias = Parameter(scale), Parameter(bias)
        self.register_buffer("running_mean", mean)
        self.register_buffer("running_var", var)
        self.num_features, self.eps = len(scale), float(eps)

    def forward(self, x):
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps:g}"


def conv_module(op_type, attrs, weight, bias):
    """An ``nn.ConvNd`` / ``nn.ConvTransposeNd`` when the padding is fixed, else an :class:`OnnxConv`."""
    try:
        return from_onnx({"op_type": op_type, **attrs}, [weight, bias])
    except ValueError:
        return OnnxConv(op_type, attrs, weight, bias)


def gemm_module(attrs, b, c):
    """``nn.Linear`` for ``Gemm(x, B, C)`` with constant B, C and transA = 0 (alpha / beta folded), else None."""
    if attrs.get("transA", 0) or b.ndim != 2 or (c is not None and c.ndim > 1):
        return None
    weight = (b if attrs.get("transB", 0) else b.T) * np.asarray(attrs.get("alpha", 1.0), b.dtype)
    layer = Linear(weight.shape[1], weight.shape[0], bias=c is not None, dtype=b.dtype)
    layer.weight = weight
    if c is not None:
        layer.bias = np.broadcast_to(c * np.asarray(attrs.get("beta", 1.0), b.dtype), (weight.shape[0],)).copy()
    return layer

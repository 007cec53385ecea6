"""Automatic differentiation with PyTorch's habits: ``Tensor``, ``Function``, the backward engine.

``convforge.tensor(values, requires_grad=True)`` makes a leaf; every convforge module and functional op, NumPy
arithmetic and ufuncs, indexing, reshaping and reductions on it are recorded, and ``loss.backward()`` fills
``.grad`` of every leaf that took part.
"""
from .tensor import Tensor, tensor
from .function import Function, FunctionCtx
from .graph import Node
from .ops import cat, stack

__all__ = ["Tensor", "tensor", "Function", "FunctionCtx", "Node", "cat", "stack"]

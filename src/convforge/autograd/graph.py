"""The recorded graph and the backward engine.

Each recorded operation is a :class:`Node`: the ``Function`` class, its ``ctx`` (what forward saved) and one edge
per positional input: ``(node, output_index, shape, dtype)`` for an input produced by another recorded op,
``(leaf_tensor, -1, shape, dtype)`` for a leaf that requires a gradient, ``None`` otherwise.  :func:`run_backward`
counts, for every node reachable from the roots, how many edges point at it; a node runs once all of them have
delivered (so a tensor used any number of times gets the sum of its gradients), then hands each input gradient to
its edge.  Leaves accumulate into ``.grad``.  Unless ``retain_graph``, every ``ctx`` is released as soon as its
node has run, so saved activations live no longer than needed.
"""
from __future__ import annotations

import numpy as np

FREED_MESSAGE = ("Trying to backward through the graph a second time (or directly access saved tensors after they "
                 "have already been freed). Saved intermediate values of the graph are freed when you call "
                 ".backward(). Specify retain_graph=True if you need to backward through the graph a second time or "
                 "if you need to access saved tensors after calling backward.")


class Node:
    """One recorded call of a ``Function``; tensors it produced point at it through ``grad_fn``."""

    __slots__ = ("fn", "ctx", "edges", "out_meta")

    def __init__(self, fn, ctx, args):
        self.fn = fn
        self.ctx = ctx
        self.edges = tuple(_edge(a) for a in args)
        self.out_meta = ()

    def name(self) -> str:
        """``'<Function>Backward'``, as torch names its graph nodes."""
        name = self.fn.__name__
        return name if name.endswith("Backward") else name + "Backward"

    @property
    def next_functions(self) -> tuple:
        return tuple((None, 0) if e is None else (e[0] if e[1] >= 0 else "AccumulateGrad", max(e[1], 0))
                     for e in self.edges)

    def __repr__(self):
        return f"<{self.name()}>"


class _Origin:
    """The ctx of an unrecorded node: where the array was made; nothing to free."""
    _freed = False

    def __init__(self, where):
        self.where = where

    def release(self):
        pass


class UnrecordedOperation:
    """The ``fn`` behind an array NumPy derived from a tensor that requires grad without autograd seeing it."""

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise RuntimeError(f"a gradient reached an array that NumPy derived from a tensor that requires grad through "
                           f"an operation autograd does not record ({ctx.where}); its gradient would be "
                           f"wrong. Use recorded operations there, or detach() to cut the graph on purpose")


def unrecorded_node(where: str) -> Node:
    node = Node(UnrecordedOperation, _Origin(where), ())
    node.out_meta = (None,)
    return node


def _edge(arg):
    if not getattr(arg, "requires_grad", False):
        return None
    grad_fn = arg.grad_fn
    if grad_fn is None:
        return (arg, -1, arg.shape, arg.dtype)
    return (grad_fn, arg._output_nr, arg.shape, arg.dtype)


def sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape`` (the adjoint of NumPy broadcasting)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0:
        raise RuntimeError(f"gradient of shape {grad.shape} cannot be summed to shape {shape}")
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    if lead:
        out = out.reshape(out.shape[lead:])
    if out.shape != shape:
        raise RuntimeError(f"gradient of shape {grad.shape} cannot be summed to shape {shape}")
    return out


def _accumulate_leaf(leaf, grad) -> None:
    if leaf.grad is None:
        leaf.grad = np.array(grad, dtype=leaf.dtype.newbyteorder("="), copy=True)
    else:
        leaf.grad += grad


def _checked(fn_name, index, grad, shape, dtype):
    """Validate one gradient a backward returned against the input it belongs to (torch's validate_outputs)."""
    grad = np.asarray(grad)
    if grad.shape != shape:
        try:
            grad = sum_to(grad, shape)
        except RuntimeError:
            raise RuntimeError(f"Function {fn_name} returned an invalid gradient at index {index} - got shape "
                               f"{list(grad.shape)} but expected shape compatible with {list(shape)}") from None
    if grad.dtype != dtype:
        grad = grad.astype(dtype.newbyteorder("="))
    return grad


def _dependencies(roots):
    deps = {}
    stack = list(roots)
    seen = set(map(id, roots))
    while stack:
        node = stack.pop()
        for edge in node.edges:
            if edge is None or edge[1] < 0:
                continue
            child = edge[0]
            deps[child] = deps.get(child, 0) + 1
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return deps


def _materialized(node, grads):
    out = []
    for g, meta in zip(grads, node.out_meta):
        if g is None and meta is not None:
            g = np.zeros(meta[0], meta[1].newbyteorder("="))
        out.append(g)
    return out


def run_backward(tensors, grads, retain_graph: bool = False) -> None:
    """Accumulate d(sum of tensors * grads)/d(leaf) into every leaf's ``.grad`` that the tensors depend on."""
    buffers = {}
    roots = []
    for t, g in zip(tensors, grads):
        if t.grad_fn is None:
            _accumulate_leaf(t, g)
            continue
        node = t.grad_fn
        if node not in buffers:
            buffers[node] = [None] * len(node.out_meta)
            roots.append(node)
        slot = buffers[node]
        slot[t._output_nr] = g if slot[t._output_nr] is None else slot[t._output_nr] + g
    deps = _dependencies(roots)
    ready = [n for n in roots if n not in deps]
    while ready:
        node = ready.pop()
        grads_in = buffers.pop(node, None)
        results = _run_node(node, grads_in, retain_graph)
        for i, edge in enumerate(node.edges):
            if edge is None:
                continue
            target, nr = edge[0], edge[1]
            g = results[i] if i < len(results) else None
            if g is not None:
                g = _checked(node.name(), i, g, edge[2], edge[3])
            if nr < 0:
                if g is not None:
                    _accumulate_leaf(target, g)
                continue
            if g is not None:
                slot = buffers.get(target)
                if slot is None:
                    slot = buffers[target] = [None] * len(target.out_meta)
                slot[nr] = g if slot[nr] is None else slot[nr] + g
            deps[target] -= 1
            if deps[target] == 0:
                ready.append(target)


def _run_node(node, grads_in, retain_graph):
    ctx = node.ctx
    if ctx._freed:
        raise RuntimeError(FREED_MESSAGE)
    if grads_in is None or all(g is None for g in grads_in):
        results = ()
    else:
        if getattr(ctx, "_materialize", True):
            grads_in = _materialized(node, grads_in)
        results = node.fn.backward(ctx, *grads_in)
        if not isinstance(results, tuple):
            results = (results,)
        extra = [r for r in results[len(node.edges):] if r is not None]
        if len(results) < len(node.edges) or extra:
            raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients (expected "
                               f"{len(node.edges)}, got {len(results)})")
    if not retain_graph:
        ctx.release()
    return results

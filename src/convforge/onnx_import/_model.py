"""The graph as a module: ONNX nodes in topological order, each a child module, run over a name -> value table.

Loading folds every node whose inputs are all constants (initializers, ``Constant`` nodes and what they feed:
the shape arithmetic an exporter writes) into a constant, so only the nodes that depend on the graph inputs
are kept as children.
"""
from __future__ import annotations

import re

import numpy as np

from convforge import no_grad
from convforge.nn import Module

from . import _ops
from ._layers import BatchNormalization, OnnxOp, conv_module, gemm_module
from ._proto import attributes, to_array


class OnnxModel(Module):
    """A loaded ONNX graph.  ``forward(*inputs)`` takes the graph inputs in order and returns its output, or a
    tuple when the graph has several.

    The weights load frozen (``requires_grad=False``): an exported graph is for inference.  To fine-tune, call
    ``model.requires_grad_(True)``; gradients flow through the layers (Conv, ConvTranspose, Gemm, MatMul,
    BatchNormalization), the element-wise operators, the reshaping ones, pooling with symmetric padding, Resize
    and Softmax; an operator autograd does not record raises a ``RuntimeError`` naming it.

    Attributes:
        input_names, output_names: the graph's input / output names.
        input_shapes: the declared input shapes (None or a name for a dynamic dimension).
        opset: the default-domain opset the model was exported with.
    """

    def __init__(self, steps, constants, input_names, output_names, input_shapes, opset):
        super().__init__()
        self._steps = []
        for child_name, module, inputs, outputs in steps:
            self.add_module(child_name, module)
            self._steps.append((module, inputs, outputs))
        self._constants = constants
        self.input_names, self.output_names = input_names, output_names
        self.input_shapes, self.opset = input_shapes, opset
        self.requires_grad_(False)

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"the ONNX graph takes {len(self.input_names)} input(s) {self.input_names}, got "
                            f"{len(inputs)}")
        values = dict(self._constants)
        values.update(zip(self.input_names, inputs))
        for module, names, outputs in self._steps:
            results = module(*[values[n] if n else None for n in names])
            if not isinstance(results, tuple):
                results = (results,)
            values.update((name, value) for name, value in zip(outputs, results) if name)
        out = tuple(values[n] for n in self.output_names)
        return out[0] if len(out) == 1 else out

    def output_shape(self, input_shape):
        """The output shape for one input of ``input_shape`` (used by :func:`convforge.summary`); found by running
        the graph on zeros."""
        with no_grad():
            out = self.forward(np.zeros(input_shape, np.float32))
        return np.shape(out[0] if isinstance(out, tuple) else out)


def _child_name(node, index, taken):
    base = re.sub(r"\W+", "_", node.get("name") or f"{node['op_type']}_{index}").strip("_") or f"node_{index}"
    base = base if not base[0].isdigit() else f"n{base}"
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _layer(op_type, attrs, inputs, constants):
    """A module holding the node's weights, or None when the node is an op (weights not constant, or no weights)."""
    const = [constants.get(n) if n else None for n in inputs]
    if op_type in ("Conv", "ConvTranspose") and len(inputs) > 1 and const[1] is not None \
            and (len(inputs) < 3 or not inputs[2] or const[2] is not None):
        return conv_module(op_type, attrs, const[1], const[2] if len(const) > 2 else None), inputs[:1]
    if op_type == "BatchNormalization" and all(c is not None for c in const[1:5]) \
            and not attrs.get("training_mode", 0):
        return BatchNormalization(*const[1:5], eps=attrs.get("epsilon", 1e-5)), inputs[:1]
    if op_type == "Gemm" and len(inputs) > 1 and const[1] is not None \
            and (len(inputs) < 3 or not inputs[2] or const[2] is not None):
        module = gemm_module(attrs, const[1], const[2] if len(const) > 2 else None)
        if module is not None:
            return module, inputs[:1]
    return None, inputs


def _check_node(node, opset):
    if node["op_type"] == "MaxPool" and len(node.get("output", [])) > 1 and node["output"][1]:
        raise ValueError(f"MaxPool node {node.get('name') or '?'!r} (opset {opset}) asks for its Indices output, "
                         "which convforge does not compute")


def _check_supported(nodes, opset):
    bad = [n for n in nodes if n.get("op_type") not in _ops.SUPPORTED or n.get("domain", "") not in ("", "ai.onnx")]
    if bad:
        first = bad[0]
        others = sorted({n["op_type"] for n in bad[1:]} - {first["op_type"]})
        domain = f" (domain {first['domain']!r})" if first.get("domain") else ""
        raise ValueError(f"ONNX operator {first['op_type']!r}{domain} in node {first.get('name') or '?'!r} (opset "
                         f"{opset}) is not supported by convforge.onnx.load_model"
                         + (f"; the graph also uses unsupported {others}" if others else "")
                         + f". Supported operators: {', '.join(_ops.SUPPORTED)}")


def build(model, base_dir=None):
    """ModelProto dicts -> :class:`OnnxModel`, constants folded, unsupported operators refused at once."""
    opsets = {o.get("domain", ""): o.get("version", 0) for o in model.get("opset_import", [])}
    opset = opsets.get("", opsets.get("ai.onnx"))
    if opset is None or opset < 11:
        raise ValueError(f"the model's default opset is {opset}; convforge reads opset 11 to 22 (re-export it, e.g. "
                         "torch.onnx.export(..., opset_version=17))")
    graph = model["graph"]
    nodes = graph.get("node", [])
    _check_supported(nodes, opset)
    constants = {t.get("name", ""): to_array(t, base_dir) for t in graph.get("initializer", [])}
    inputs = [v["name"] for v in graph.get("input", []) if v["name"] not in constants]
    shapes = [[d.get("dim_value", d.get("dim_param")) for d in
               v.get("type", {}).get("tensor_type", {}).get("shape", {}).get("dim", [])]
              for v in graph.get("input", []) if v["name"] not in constants]
    steps, taken = [], set()
    for index, node in enumerate(nodes):
        op_type, names, outputs = node["op_type"], node.get("input", []), node.get("output", [])
        attrs = attributes(node, base_dir)
        _check_node(node, opset)
        if all(not n or n in constants for n in names):
            try:
                values = _ops.run(op_type, [constants[n] if n else None for n in names], attrs, opset, len(outputs))
            except Exception as e:
                raise ValueError(f"node {node.get('name') or index!r} ({op_type}, opset {opset}) failed on its "
                                 f"constant inputs: {e}") from None
            constants.update((name, np.asarray(v)) for name, v in zip(outputs, values) if name)
            continue
        module, runtime_inputs = _layer(op_type, attrs, names, constants)
        if module is None:
            module = OnnxOp(op_type, attrs, opset, len(outputs))
        steps.append((_child_name(node, index, taken), module, runtime_inputs, outputs))
    output_names = [v["name"] for v in graph.get("output", [])]
    needed = {n for _, _, ins, _ in steps for n in ins} | set(output_names)
    kept = {n: v for n, v in constants.items() if n in needed}
    return OnnxModel(steps, kept, inputs, output_names, shapes, opset)

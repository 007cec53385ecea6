"""The ONNX messages convforge reads (field numbers from ``onnx/onnx.proto``), and TensorProto -> NumPy.

External tensor data (``data_location = EXTERNAL``) is read only from files inside the model's folder: a
``location`` that is absolute, climbs out with ``..`` or resolves (through links) outside the folder is refused.
"""
from __future__ import annotations

import os

import numpy as np

from ._wire import parse

STRING_ENTRY = {1: ("key", "str", False), 2: ("value", "str", False)}
TENSOR = {1: ("dims", "int", True), 2: ("data_type", "int", False), 4: ("float_data", "float", True),
          5: ("int32_data", "int", True), 6: ("string_data", "bytes", True), 7: ("int64_data", "int", True),
          8: ("name", "str", False), 9: ("raw_data", "bytes", False), 10: ("double_data", "double", True),
          11: ("uint64_data", "uint", True), 13: ("external_data", STRING_ENTRY, True),
          14: ("data_location", "int", False), 3: ("segment", "bytes", False)}
DIMENSION = {1: ("dim_value", "int", False), 2: ("dim_param", "str", False)}
TENSOR_TYPE = {1: ("elem_type", "int", False), 2: ("shape", {1: ("dim", DIMENSION, True)}, False)}
VALUE_INFO = {1: ("name", "str", False), 2: ("type", {1: ("tensor_type", TENSOR_TYPE, False)}, False)}
GRAPH: dict = {}
ATTRIBUTE = {1: ("name", "str", False), 20: ("type", "int", False), 2: ("f", "float", False),
             3: ("i", "int", False), 4: ("s", "bytes", False), 5: ("t", TENSOR, False), 6: ("g", GRAPH, False),
             7: ("floats", "float", True), 8: ("ints", "int", True), 9: ("strings", "bytes", True),
             10: ("tensors", TENSOR, True), 11: ("graphs", GRAPH, True), 21: ("ref_attr_name", "str", False)}
NODE = {1: ("input", "str", True), 2: ("output", "str", True), 3: ("name", "str", False),
        4: ("op_type", "str", False), 7: ("domain", "str", False), 5: ("attribute", ATTRIBUTE, True)}
GRAPH.update({1: ("node", NODE, True), 2: ("name", "str", False), 5: ("initializer", TENSOR, True),
              11: ("input", VALUE_INFO, True), 12: ("output", VALUE_INFO, True),
              15: ("sparse_initializer", "bytes", True)})
OPSET = {1: ("domain", "str", False), 2: ("version", "int", False)}
MODEL = {1: ("ir_version", "int", False), 2: ("producer_name", "str", False), 7: ("graph", GRAPH, False),
         8: ("opset_import", OPSET, True), 25: ("functions", "bytes", True)}

# TensorProto.DataType -> (NumPy dtype, the repeated field that holds it when raw_data is absent)
DATA_TYPES = {1: ("float32", "float_data"), 2: ("uint8", "int32_data"), 3: ("int8", "int32_data"),
              4: ("uint16", "int32_data"), 5: ("int16", "int32_data"), 6: ("int32", "int32_data"),
              7: ("int64", "int64_data"), 9: ("bool", "int32_data"), 10: ("float16", "int32_data"),
              11: ("float64", "double_data"), 12: ("uint32", "uint64_data"), 13: ("uint64", "uint64_data"),
              14: ("complex64", "float_data"), 15: ("complex128", "double_data"), 16: ("bfloat16", "int32_data")}
TYPE_NAMES = {8: "STRING", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ",
              21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1"}


def read_model(data):
    """ModelProto bytes -> nested dicts (see the schemas above)."""
    model = parse(data, MODEL)
    if "graph" not in model:
        raise ValueError("the file has no graph (is it an ONNX model?)")
    return model


def _external_bytes(tensor, base_dir):
    info = {e.get("key"): e.get("value") for e in tensor.get("external_data", [])}
    location = info.get("location")
    name = tensor.get("name", "?")
    if base_dir is None:
        raise ValueError(f"tensor {name!r} keeps its data in an external file {location!r}; load the model from a "
                         "path (not bytes) so the file can be found next to it")
    if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        raise ValueError(f"tensor {name!r}: external data location {location!r} is refused: it must be a relative "
                         "path inside the model's folder")
    folder = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, path]) != folder:
        raise ValueError(f"tensor {name!r}: external data location {location!r} resolves outside the model's "
                         f"folder {folder!r} and is refused")
    offset, length = int(info.get("offset") or 0), info.get("length")
    size = os.path.getsize(path)
    length = size - offset if length is None else int(length)
    if offset < 0 or length < 0 or offset + length > size:
        raise ValueError(f"tensor {name!r}: external data [{offset}, {offset + length}) is outside {location!r} "
                         f"({size} bytes)")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def to_array(tensor, base_dir=None):
    """TensorProto dict -> np.ndarray (bfloat16 widened to float32), its byte count checked against its dims."""
    name, code = tensor.get("name", "?"), tensor.get("data_type", 0)
    if code not in DATA_TYPES:
        raise ValueError(f"tensor {name!r} has ONNX data type {TYPE_NAMES.get(code, code)}, which convforge does not "
                         "read")
    dtype_name, field = DATA_TYPES[code]
    dims = tuple(tensor.get("dims", []))
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor {name!r} has negative dims {dims}")
    count = int(np.prod(dims, dtype=object)) if dims else 1
    storage = "uint16" if dtype_name == "bfloat16" else dtype_name
    itemsize = np.dtype(storage).itemsize
    if tensor.get("data_location") == 1:
        raw = _external_bytes(tensor, base_dir)
    else:
        raw = tensor.get("raw_data")
    if raw is not None:
        if len(raw) != count * itemsize:
            raise ValueError(f"tensor {name!r} of shape {dims} and type {dtype_name} needs {count * itemsize} bytes, "
                             f"the file holds {len(raw)}")
        flat = np.frombuffer(bytes(raw), np.dtype(storage).newbyteorder("<")).astype(storage)
    else:
        values = tensor.get(field, [])
        if dtype_name.startswith("complex"):
            values = np.asarray(values, "float32" if dtype_name == "complex64" else "float64").view(dtype_name)
        if len(values) != count:
            raise ValueError(f"tensor {name!r} of shape {dims} needs {count} values, the file holds {len(values)}")
        if dtype_name in ("float16", "bfloat16"):     # the bit patterns, one per int32
            flat = np.asarray(values, np.int64).astype(np.uint16).view(storage)
        else:
            flat = np.asarray(values).astype(storage)
    if dtype_name == "bfloat16":
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    return flat.reshape(dims)


def attributes(node, base_dir=None):
    """AttributeProto list -> {name: Python value} (ints, floats, str, arrays, lists of them)."""
    out = {}
    for attr in node.get("attribute", []):
        kind = attr.get("type")
        value = {1: lambda a: a.get("f", 0.0), 2: lambda a: a.get("i", 0),
                 3: lambda a: bytes(a.get("s", b"")).decode("utf-8", "replace"),
                 4: lambda a: to_array(a["t"], base_dir), 6: lambda a: [float(v) for v in a.get("floats", [])],
                 7: lambda a: list(a.get("ints", [])),
                 8: lambda a: [bytes(s).decode("utf-8", "replace") for s in a.get("strings", [])]}.get(kind)
        if value is None:
            raise ValueError(f"node {node.get('name', '?')!r} ({node.get('op_type')}): attribute "
                             f"{attr.get('name')!r} has a type convforge does not read (graph / sparse / type "
                             f"attributes: {kind})")
        out[attr.get("name")] = value(attr)
    return out

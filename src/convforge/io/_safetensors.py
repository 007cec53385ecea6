"""The safetensors format, read and written with NumPy alone (no ``safetensors`` package needed).

Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length ``n``, ``n`` bytes of
JSON ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then
the tensors' little-endian bytes; offsets are relative to the end of the header and must tile the data exactly.
The format holds no code, so reading it is safe once every offset and size has been checked.

Example:
    >>> import io
    >>> buffer = io.BytesIO()
    >>> write(buffer, {"w": np.arange(3, dtype=np.int16)})
    >>> read(buffer.getvalue())
    {'w': array([0, 1, 2], dtype=int16)}
"""
from __future__ import annotations

import json
import struct

import numpy as np

from ._storage import widen_bfloat16

DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "F16": "float16",
          "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32", "F64": "float64", "I64": "int64",
          "U64": "uint64", "C64": "complex64"}
_CODES = {np.dtype(v): k for k, v in DTYPES.items() if v != "bfloat16"}
_MAX_HEADER = 100 * 1024 * 1024        # the reference implementation's limit


def _entry(name, spec, data_size):
    if not (isinstance(spec, dict) and isinstance(spec.get("shape"), list) and isinstance(spec.get("dtype"), str)
            and isinstance(spec.get("data_offsets"), list) and len(spec["data_offsets"]) == 2):
        raise ValueError(f"tensor {name!r}: header entry {spec!r} lacks dtype / shape / data_offsets")
    if spec["dtype"] not in DTYPES:
        raise ValueError(f"tensor {name!r} has safetensors dtype {spec['dtype']!r}, which NumPy cannot represent "
                         f"(readable: {', '.join(DTYPES)})")
    shape, (begin, end) = spec["shape"], spec["data_offsets"]
    if not all(type(v) is int and v >= 0 for v in shape + [begin, end]) or not begin <= end <= data_size:
        raise ValueError(f"tensor {name!r}: shape {shape} / data_offsets [{begin}, {end}] invalid for "
                         f"{data_size} data bytes")
    size = 2 if spec["dtype"] == "BF16" else np.dtype(DTYPES[spec["dtype"]]).itemsize
    if int(np.prod(shape, dtype=object)) * size != end - begin:
        raise ValueError(f"tensor {name!r}: shape {shape} of {spec['dtype']} needs "
                         f"{int(np.prod(shape, dtype=object)) * size} bytes, data_offsets give {end - begin}")
    return spec["dtype"], tuple(shape), begin, end


def _decode(raw, code, shape):
    if code == "BF16":
        return widen_bfloat16(np.frombuffer(raw, "<u2")).reshape(shape)
    dtype = np.dtype(DTYPES[code]).newbyteorder("<")
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def read(data):
    """``{name: array}`` from safetensors bytes (bfloat16 widened to float32); checks every offset first."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes is too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(_MAX_HEADER, len(data) - 8):
        raise ValueError(f"the header claims {n} bytes, the file has {len(data) - 8} after the length")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    header.pop("__metadata__", None)
    body = memoryview(data)[8 + n:]
    entries = {name: _entry(name, spec, len(body)) for name, spec in header.items()}
    spans = sorted((b, e) for _, _, b, e in entries.values())
    if spans and (spans[0][0] != 0 or any(a[1] != b[0] for a, b in zip(spans, spans[1:]))):
        raise ValueError("tensor data_offsets overlap or leave holes")
    out = {}
    for name, (code, shape, begin, end) in entries.items():
        out[name] = _decode(body[begin:end], code, shape)
    return out


def _code(name, array):
    native = array.dtype.newbyteorder("=") if array.dtype.kind in "biufc" else array.dtype
    if native not in _CODES:
        hint = (" (safetensors has no complex128; save real and imaginary parts, or complex64)"
                if array.dtype.kind == "c" else "")
        raise TypeError(f"convforge.save: {name!r} has dtype {array.dtype}, which safetensors cannot hold{hint}; "
                        f"supported: {', '.join(sorted(str(d) for d in _CODES))}")
    return _CODES[native]


def write(stream, tensors, metadata=None):
    """Write ``{name: array}`` as safetensors to a binary stream (widest dtypes first, so every tensor is aligned)."""
    arrays = {name: np.asarray(value) for name, value in tensors.items()}
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name in order:
        nbytes = arrays[name].nbytes
        header[name] = {"dtype": _code(name, arrays[name]), "shape": list(arrays[name].shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    stream.write(struct.pack("<Q", len(text)) + text)
    for name in order:
        little = arrays[name].astype(arrays[name].dtype.newbyteorder("<"), copy=False)
        stream.write(np.ascontiguousarray(little).tobytes())

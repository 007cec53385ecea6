"""A small reader of the protobuf wire format, for the ONNX messages convforge needs (no ``onnx`` package).

A message is a sequence of ``(field number, wire type, value)`` records: wire type 0 a varint, 1 eight bytes,
2 a length-prefixed byte string (a string, bytes, a sub-message or a packed repeated number field), 5 four bytes.
A schema maps field numbers to ``(name, kind, repeated)``; kinds are ``int`` (int32/int64/enum, two's
complement), ``uint``, ``float``, ``double``, ``str``, ``bytes`` or a nested schema (a sub-message).  Unknown fields
are skipped, as protobuf requires; every length is checked against the bytes present.

Example:
    >>> parse(b"\\x08\\x96\\x01\\x12\\x02hi", {1: ("n", "int", False), 2: ("s", "str", False)})
    {'n': 150, 's': 'hi'}
"""
from __future__ import annotations


import numpy as np

_PACKED = {"float": "<f4", "double": "<f8"}
_NUMBERS = ("int", "uint", "float", "double")


def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("the protobuf data ends inside a varint (truncated file?)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("a protobuf varint is longer than 10 bytes (corrupted file?)")


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def records(buf):
    """Yield ``(field number, wire type, value)``; ``value`` is an int (wire types 0/1/5) or a memoryview (2)."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(buf):
                raise ValueError("the protobuf data ends inside a fixed-size field (truncated file?)")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"a protobuf field declares {size} bytes but only {len(buf) - pos} remain "
                                 "(truncated file?)")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"protobuf wire type {wire} (field {number}) is not valid here (corrupted file?)")
        if number == 0:
            raise ValueError("protobuf field number 0 (corrupted file?)")
        yield number, wire, value


def _scalar(kind, wire, value):
    if isinstance(kind, dict):
        if wire != 2:
            raise ValueError(f"a sub-message field has wire type {wire}")
        return parse(value, kind)
    if kind in ("int", "uint"):
        if wire != 0:
            raise ValueError(f"an integer field has wire type {wire}")
        return _signed(value) if kind == "int" else value
    if kind in _PACKED:
        if wire not in (1, 5):
            raise ValueError(f"a {kind} field has wire type {wire}")
        return float(np.frombuffer(value, _PACKED[kind])[0])
    if wire != 2:
        raise ValueError(f"a {kind} field has wire type {wire}")
    if kind == "str":
        return bytes(value).decode("utf-8", "replace")
    return value


def _packed(kind, value):
    if kind in _PACKED:
        if len(value) % np.dtype(_PACKED[kind]).itemsize:
            raise ValueError(f"packed {kind} data of {len(value)} bytes")
        return np.frombuffer(value, _PACKED[kind]).tolist()
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v) if kind == "int" else v)
    return out


def parse(buf, schema):
    """The fields of ``schema`` found in ``buf`` as a dict (repeated fields as lists, absent fields left out)."""
    out = {}
    for number, wire, value in records(buf):
        if number not in schema:
            continue
        name, kind, repeated = schema[number]
        if repeated and wire == 2 and kind in _NUMBERS:
            out.setdefault(name, []).extend(_packed(kind, value))
        elif repeated:
            out.setdefault(name, []).append(_scalar(kind, wire, value))
        else:
            out[name] = _scalar(kind, wire, value)
    return out


__all__ = ["parse", "records"]

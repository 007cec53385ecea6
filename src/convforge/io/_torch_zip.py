"""PyTorch checkpoints: the zip format (``torch.save`` since 1.6) and the legacy stream of pickles.

Zip layout: ``<root>/data.pkl`` (the object, tensors as persistent ids ``('storage', type, key, location,
numel)``), ``<root>/data/<key>`` (each storage's raw bytes), ``<root>/byteorder`` (``little``/``big``, absent in
old files: little).  Nothing is extracted to disk; records are read by exact name, and a storage's declared size
must equal the record's size before the record is read.

Legacy layout (``_use_new_zipfile_serialization=False``): pickles of the magic number, the protocol version,
a sys-info dict, the object, the sorted storage keys, then per key an int64 element count and the little-endian
raw bytes.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile

from ._storage import Storage, itemsize
from ._unpickler import unpickle

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_MAX_DEFLATE_RATIO = 1100          # deflate cannot expand more than ~1032:1; anything above is a zip bomb


def _checked_key(key):
    if not _KEY.fullmatch(key):
        raise ValueError(f"storage key {key!r} is not a plain name")
    return key


def _declared_bytes(dtype_name, numel):
    if numel < 0:
        raise ValueError(f"a storage declares {numel} elements")
    return numel * itemsize(dtype_name)


def is_torch_zip(archive):
    return _root(archive, required=False) is not None


def _root(archive, required=True):
    roots = [n[: -len("/data.pkl")] for n in archive.namelist() if n.endswith("/data.pkl")]
    roots = [r for r in roots if r and "/" not in r and r not in (".", "..")]
    if len(roots) != 1:
        if required:
            raise ValueError(f"expected one '<root>/data.pkl' record, found {len(roots)}")
        return None
    return roots[0]


def _read_record(archive, name, expected):
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ValueError(f"record {name!r} is missing") from None
    if expected is not None and info.file_size != expected:
        raise ValueError(f"record {name!r} holds {info.file_size} bytes, the checkpoint declares {expected}")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"record {name!r} uses zip compression method {info.compress_type}; torch.save writes "
                         "uncompressed records")
    if info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
        raise ValueError(f"record {name!r} expands from {info.compress_size} to {info.file_size} bytes (a zip "
                         "bomb?)")
    return archive.read(info)


def load_zip(archive):
    """The object of a torch zip checkpoint (``archive``: an open ``zipfile.ZipFile``), tensors as arrays."""
    root = _root(archive)
    names = set(archive.namelist())
    byteorder = "little"
    if f"{root}/byteorder" in names:
        byteorder = _read_record(archive, f"{root}/byteorder", None).decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(f"byteorder record says {byteorder!r}, expected 'little' or 'big'")
    storages = {}

    def storage(dtype_name, key, numel):
        if key not in storages:
            expected = _declared_bytes(dtype_name, numel)
            raw = _read_record(archive, f"{root}/data/{_checked_key(key)}", expected)
            storages[key] = Storage(dtype_name, raw, byteorder)
        return storages[key]

    return unpickle(_read_record(archive, f"{root}/data.pkl", None), storage)


def load_legacy(data):
    """The object of a legacy (non-zip) torch checkpoint held in ``data`` (bytes).

    The storages follow the object in the file, so the object is read twice: a dry run with declared-only storages
    (which checks every tensor against its storage's declared size and yields the dtypes), then, once the storage
    bytes are read and checked against those declarations, for real.
    """
    stream = io.BytesIO(data)
    if unpickle(stream) != LEGACY_MAGIC:
        raise ValueError("a pickle that is not a torch checkpoint (no torch magic number)")
    version = unpickle(stream)
    if version != 1001:
        raise ValueError(f"torch legacy protocol version {version!r}, expected 1001")
    if not isinstance(unpickle(stream), dict):
        raise ValueError("the sys-info record is not a dict")
    object_start = stream.tell()
    declared = {}

    def declare(dtype_name, key, numel):
        _declared_bytes(dtype_name, numel)
        return declared.setdefault(_checked_key(key), Storage(dtype_name, None, numel=numel))

    unpickle(stream, declare)
    keys = unpickle(stream)
    if not isinstance(keys, list) or sorted(keys) != sorted(declared):
        raise ValueError("the storage key list does not match the storages the object references")
    storages = {}
    for key in keys:
        record = declared[key]
        header = stream.read(8)
        if len(header) != 8:
            raise ValueError(f"storage {key!r} is cut off")
        (numel,) = struct.unpack("<q", header)
        nbytes = _declared_bytes(record.dtype_name, numel)
        left = len(data) - stream.tell()
        if numel != record.numel or nbytes > left:
            raise ValueError(f"storage {key!r} declares {numel} elements ({nbytes} bytes); the object declares "
                             f"{record.numel} and {left} bytes are left in the file")
        storages[key] = Storage(record.dtype_name, stream.read(nbytes), "little")
    stream.seek(object_start)
    return unpickle(stream, lambda dtype_name, key, numel: storages[key])

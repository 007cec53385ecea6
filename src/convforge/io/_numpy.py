"""NumPy ``.npy`` / ``.npz`` files, read with ``allow_pickle=False`` after checking each header against the bytes.

``np.load`` allocates the declared shape before reading; the declared size is therefore compared with the data
actually present first, so a forged header cannot make the reader allocate more than the file holds.
"""
from __future__ import annotations

import io

import numpy as np

from ._errors import unsafe

NPY_MAGIC = b"\x93NUMPY"
_MAX_DEFLATE_RATIO = 1100


def _header(stream):
    version = np.lib.format.read_magic(stream)
    reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise ValueError(f".npy format version {version} is not supported")
    shape, _, dtype = reader(stream, max_header_size=10000)
    if dtype.hasobject:
        raise unsafe("the .npy data has an object dtype, which can only be read by unpickling (running code), so "
                     "convforge.load refuses it; save plain numeric arrays instead")
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def _load_array(data, what):
    stream = io.BytesIO(data)
    needed = _header(stream)
    if needed > len(data) - stream.tell():
        raise ValueError(f"{what} declares {needed} bytes of data but holds {len(data) - stream.tell()}")
    stream.seek(0)
    return np.load(stream, allow_pickle=False)


def load_npy(data):
    """The array stored in ``.npy`` bytes."""
    return _load_array(data, "the .npy header")


def load_npz(archive):
    """``{name: array}`` from an open ``zipfile.ZipFile`` holding ``.npy`` members."""
    out = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"member {info.filename!r} is not a .npy array")
        if info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
            raise ValueError(f"member {info.filename!r} expands from {info.compress_size} to {info.file_size} bytes "
                             "(a zip bomb?)")
        out[info.filename[: -len(".npy")]] = _load_array(archive.read(info), f"member {info.filename!r}")
    return out


def is_npz(archive):
    names = archive.namelist()
    return bool(names) and all(n.endswith(".npy") for n in names)


__all__ = ["NPY_MAGIC", "load_npy", "load_npz", "is_npz"]

"""Read checkpoints from PyTorch, safetensors and NumPy with NumPy alone, never running code from the file.

``load(path_or_file)`` recognises the format from the file's first bytes (not its name):

- PyTorch zip checkpoints (``torch.save`` since 1.6: ``.pt``, ``.pth``, ``.bin``) and legacy (non-zip) ones;
- safetensors;
- NumPy ``.npz`` / ``.npy`` (read with ``allow_pickle=False``).

Tensors become NumPy arrays of the same dtype, shape and strides (bfloat16 widened exactly to float32, with a
warning); tensors that shared a storage in PyTorch share memory; the containers around them (dicts, OrderedDicts,
lists, tuples, numbers, strings) are kept as they are.  ``save(state_dict, path)`` writes safetensors.

Security: PyTorch files are pickles, and a pickle may call any function it names.  convforge's unpickler calls
none of them: each named global is looked up in a fixed allow-list of tensor-rebuild functions, storages,
``OrderedDict`` and plain containers, and replaced by convforge's own argument-checking stand-in; anything else
raises :class:`UnsafeCheckpointError` before a call happens.  Declared sizes are checked against the bytes
present before anything is allocated.  A truncated, corrupted or foreign file raises ``ValueError`` naming it.

Example:
    >>> import io, numpy as np
    >>> buffer = io.BytesIO()
    >>> save({"conv.weight": np.ones((2, 1, 3), np.float32)}, buffer)
    >>> _ = buffer.seek(0)
    >>> load(buffer)["conv.weight"].shape
    (2, 1, 3)
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from ._errors import UnsafeCheckpointError, unreadable
from ._numpy import NPY_MAGIC, is_npz, load_npy, load_npz
from ._safetensors import write as _write_safetensors, read as _read_safetensors
from ._torch_zip import is_torch_zip, load_legacy, load_zip

__all__ = ["load", "save", "UnsafeCheckpointError"]


def _read_source(path_or_file):
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return f.read(), os.fspath(path_or_file)
    if isinstance(path_or_file, (bytes, bytearray, memoryview)):
        return bytes(path_or_file), "<bytes>"
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"convforge.load needs a binary file (opened with 'rb'), got one that reads "
                            f"{type(data).__name__}")
        return bytes(data), str(getattr(path_or_file, "name", "<file object>"))
    raise TypeError(f"convforge.load takes a path, a binary file object or bytes, got {type(path_or_file).__name__}")


def _whole_safetensors_header(data) -> bool:
    """Whether ``data`` starts with a complete safetensors header: its 8-byte little-endian length, then that many
    bytes of a JSON object (padded with spaces).  Tells a safetensors file whose length's first byte happens to be
    0x80 from a pickle (whose protocol opcode is 0x80)."""
    size = int.from_bytes(data[:8], "little")
    header = data[8:8 + size].rstrip(b" ")
    return 8 + size <= len(data) and header.startswith(b"{") and header.endswith(b"}")


def _load_bytes(data):
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if is_torch_zip(archive):
                return load_zip(archive)
            if is_npz(archive):
                return load_npz(archive)
        raise ValueError("a zip archive that is neither a torch checkpoint (<root>/data.pkl) nor an .npz")
    if data[:6] == NPY_MAGIC:
        return load_npy(data)
    if data[8:9] == b"{" and (data[:1] != b"\x80" or _whole_safetensors_header(data)):
        return _read_safetensors(data)
    return load_legacy(data)         # any other bytes: read as pickles, which the allow-list makes harmless


def load(path_or_file):
    """Read a PyTorch, safetensors or NumPy checkpoint into NumPy arrays without running code from it.

    Args:
        path_or_file: a path, a binary file object, or the file's bytes.

    Returns:
        The checkpoint's object with every tensor as an ``np.ndarray``: usually a ``dict[str, np.ndarray]``
        (a state_dict), or the nesting the file holds (``{"state_dict": {...}, "epoch": 3}``); a ``.npy`` file
        gives its array.

    Raises:
        UnsafeCheckpointError: the file names a global outside the allow-list (nothing was run).
        ValueError: the file is empty, truncated, corrupted or not a checkpoint (the message names it).

    Example:
        >>> import io, numpy as np
        >>> buffer = io.BytesIO()
        >>> np.savez(buffer, bias=np.zeros(3))
        >>> load(buffer.getvalue())
        {'bias': array([0., 0., 0.])}
    """
    data, name = _read_source(path_or_file)
    try:
        return _load_bytes(data)
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{name}: {e}") from None
    except Exception as e:        # any parse failure of a hostile or damaged file becomes one clear ValueError
        raise unreadable(name, f"{type(e).__name__}: {e}") from None


def save(state_dict, path, metadata=None):
    """Write a flat ``{name: array}`` dict as a safetensors file (readable by ``safetensors`` and ``load``).

    Args:
        state_dict: mapping of str to arrays (``module.state_dict()``); bool, int8-64, uint8-64, float16/32/64
            and complex64 arrays; any layout or byte order (written C-contiguous, little-endian).
        path: a path or a binary file object.
        metadata: optional ``{str: str}`` stored in the header's ``__metadata__``.

    Example:
        >>> import io, numpy as np
        >>> save({"w": np.eye(2)}, io.BytesIO())
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"convforge.save takes a dict of arrays (a state_dict), got {type(state_dict).__name__}")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"convforge.save: key {key!r} is {type(key).__name__}; safetensors keys are strings")
        if isinstance(value, dict):
            raise TypeError(f"convforge.save: {key!r} holds a nested dict; safetensors is flat: save one dict at a "
                            f"time or flatten the names ('{key}.<name>')")
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"convforge.save: {key!r} is {type(value).__name__}, not an array; store numbers as "
                            "arrays (np.asarray(value)) or as strings in metadata=")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("convforge.save: metadata must map str to str")
    if hasattr(path, "write"):
        _write_safetensors(path, state_dict, metadata)
        return
    with open(path, "wb") as f:
        _write_safetensors(f, state_dict, metadata)

"""``load_model``: an ONNX file (opset 11-22) as a ``convforge.nn.Module``, read without the ``onnx`` package.

The protobuf is decoded by a small wire-format reader (:mod:`._wire`); tensors become NumPy arrays (external
data only from inside the model's folder); nodes with weights become ``convforge.nn`` layers (Conv, ConvTranspose,
Gemm as Linear) or parameter-holding modules (BatchNormalization); the shape arithmetic on constants is folded
at load time; every other node is an op module over NumPy.  An operator outside the supported set is refused
when loading, naming the operator, the node and the opset.

Example:
    >>> [op for op in ("Conv", "Resize", "LSTM") if op in SUPPORTED]
    ['Conv', 'Resize']
"""
from __future__ import annotations

import os

from ._model import OnnxModel, build
from ._ops import SUPPORTED
from ._proto import read_model

__all__ = ["load_model", "OnnxModel", "SUPPORTED"]


def load_model(path_or_bytes):
    """Load an ONNX model into a :class:`OnnxModel` (a ``convforge.nn.Module``).

    Args:
        path_or_bytes: a path to a ``.onnx`` file, its bytes, or a binary file object.  External tensor data is
            looked up next to the file (only for a path).

    Returns:
        The model: ``model(x)`` runs it; ``print(model)`` shows the layers; ``model.state_dict()`` holds the
        weights.

    Raises:
        ValueError: a truncated or corrupted file, an opset below 11, an unsupported operator (named with its
            node and the opset), or external data outside the model's folder.
    """
    base_dir = None
    if isinstance(path_or_bytes, (str, os.PathLike)):
        base_dir = os.path.dirname(os.path.abspath(path_or_bytes))
        with open(path_or_bytes, "rb") as f:
            data, name = f.read(), os.fspath(path_or_bytes)
    elif isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, name = bytes(path_or_bytes), "<bytes>"
    elif hasattr(path_or_bytes, "read"):
        data, name = path_or_bytes.read(), str(getattr(path_or_bytes, "name", "<file object>"))
    else:
        raise TypeError(f"load_model takes a path, bytes or a binary file object, got {type(path_or_bytes).__name__}")
    if not data:
        raise ValueError(f"{name}: the file is empty (0 bytes)")
    try:
        return build(read_model(data), base_dir)
    except RecursionError:
        raise ValueError(f"{name}: the ONNX graph nests too deeply to read (corrupted file?)") from None
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None

"""The two ways reading a checkpoint can fail: the file is unsafe, or it is not a readable checkpoint."""
from __future__ import annotations


class UnsafeCheckpointError(ValueError):
    """A checkpoint asks to run code (a pickled global outside the tensor allow-list); nothing was executed.

    Example:
        >>> issubclass(UnsafeCheckpointError, ValueError)
        True
    """


def unsafe(detail):
    """The UnsafeCheckpointError for ``detail``, with what it means for the user."""
    return UnsafeCheckpointError(f"{detail}. Nothing was executed; the file may be unsafe (a pickle can run arbitrary "
                                 "code when loaded): do not open it with torch.load or pickle unless you trust its "
                                 "source")


def unreadable(name, detail):
    """The ValueError for a truncated, corrupted or foreign file: names the file and what was wrong."""
    return ValueError(f"{name}: cannot read this checkpoint: {detail}. The file may be truncated or corrupted, or "
                      "not a checkpoint (convforge.load reads PyTorch .pt/.pth/.bin, .safetensors, .npz and .npy)")

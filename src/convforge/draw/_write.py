"""Writing pictures: SVG (no dependency), PNG and GIF (Pillow), the interactive HTML page; :func:`draw` picks the
format from the file extension."""
from __future__ import annotations

import os
from typing import Sequence

from ._frames import FrameSet, frames
from ._layout import layout
from ._page import page_html
from ._raster import _pillow, write_gif, write_png
from ._svg import svg_document

__all__ = ["draw", "to_svg", "to_png", "to_gif", "to_html", "svg_string", "MAX_ANIMATED_FRAMES"]

MAX_ANIMATED_FRAMES = 400


def _frameset(layer_or_frames, input_shape, **kw) -> FrameSet:
    if isinstance(layer_or_frames, FrameSet):
        return layer_or_frames
    if input_shape is None:
        raise ValueError("input_shape is required when drawing a layer, e.g. (1, 1, 5, 5)")
    return frames(layer_or_frames, input_shape, **kw)


def _frame_indices(fs: FrameSet, frame) -> Sequence[int]:
    if frame is None or frame == "all":
        if len(fs) > MAX_ANIMATED_FRAMES:
            raise ValueError(f"{len(fs)} frames are too many to animate (at most {MAX_ANIMATED_FRAMES}); use a "
                             f"smaller input, fewer output channels (--channels 0 on the command line, channels=0 "
                             f"in Python) or one frame (--frame N, frame=N)")
        return range(len(fs))
    if not isinstance(frame, int) or isinstance(frame, bool):
        raise TypeError(f"frame must be an int or 'all', got {frame!r}")
    if not 0 <= frame < len(fs):
        raise ValueError(f"frame {frame} does not exist: this drawing has {len(fs)} frames (0 to {len(fs) - 1})")
    return [frame]


def svg_string(layer, input_shape=None, frame=0, **kw) -> str:
    """The SVG text of one frame (``frame=N``) or of all frames as an animation (``frame='all'``)."""
    fs = _frameset(layer, input_shape, **kw)
    return svg_document([layout(fs, k) for k in _frame_indices(fs, frame)])


def to_svg(layer, input_shape=None, out="conv.svg", frame=0, **kw) -> str:
    """Write an SVG (no dependency). ``frame='all'`` makes an animated SVG. Returns the path.

    Args:
        layer: a convforge conv module, a spec string, or a :class:`FrameSet` from :func:`frames`.
        input_shape: ``(N, C, *S)`` or ``(C, *S)``.
        frame: frame number, or ``'all'``.
        **kw: passed to :func:`frames` (``view``, ``channels``, ``values``, ``seed``, ``x``, ``weight``, ``bias``).
    """
    text = svg_string(layer, input_shape, frame, **kw)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(out)


def to_png(layer, input_shape=None, out="conv.png", frame=0, scale: float = 1.5, **kw) -> str:
    """Write one frame as PNG (needs Pillow: ``pip install convforge[viz]``). Returns the path."""
    _pillow()
    if frame == "all":
        raise ValueError("a PNG shows one frame (frame=N); for every frame write a .gif, or an .svg with "
                         "frame='all'")
    fs = _frameset(layer, input_shape, **kw)
    (k,) = _frame_indices(fs, frame)
    write_png(layout(fs, k), out, scale)
    return os.fspath(out)


def to_gif(layer, input_shape=None, out="conv.gif", ms_per_frame: int = 700, scale: float = 1.25, **kw) -> str:
    """Write every frame as an animated GIF (needs Pillow: ``pip install convforge[viz]``). Returns the path."""
    _pillow()
    fs = _frameset(layer, input_shape, **kw)
    write_gif([layout(fs, k) for k in _frame_indices(fs, "all")], out, scale, ms_per_frame)
    return os.fspath(out)


def to_html(layer, input_shape=None, out="conv.html", **kw) -> str:
    """Write the interactive page: one offline HTML file with the layer's parameters editable. Returns the path."""
    if isinstance(layer, FrameSet):
        raise TypeError("the interactive page starts from a layer (or spec string) and an input shape, not a "
                        "FrameSet: call to_html(layer, input_shape, out)")
    text = page_html(layer, input_shape, **kw)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(out)


def draw(layer, input_shape, out: str, frame=None, **kw) -> str:
    """Draw ``layer`` on an input of ``input_shape`` into ``out``; the format follows the extension.

    ``.svg`` (frame 0, or ``frame=N`` / ``frame='all'`` for an animation), ``.png`` (frame 0 or ``frame=N``),
    ``.gif`` (all frames), ``.html`` (the interactive page).

    Example:
        >>> import tempfile, os
        >>> from convforge import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "conv.svg")
        >>> draw(nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5), path) == path
        True
    """
    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext == ".svg":
        return to_svg(layer, input_shape, out, frame=0 if frame is None else frame, **kw)
    if ext == ".png":
        return to_png(layer, input_shape, out, frame=0 if frame is None else frame, **kw)
    if ext == ".gif":
        if frame not in (None, "all"):
            raise ValueError("a GIF shows every frame; use .png or .svg for one frame")
        return to_gif(layer, input_shape, out, **kw)
    if ext in (".html", ".htm"):
        return to_html(layer, input_shape, out, **kw)
    raise ValueError(f"unknown output format {ext or '(none)'!r} for {out!r}; use .svg, .png, .gif or .html")

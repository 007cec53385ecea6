"""Pictures of how a convolution moves, computed by convforge's own index code.

``convforge draw "Conv2d(1, 1, 3, stride=2, padding=1)" --input 1,1,5,5 --out conv.svg`` (or .png, .gif, .html).

Every frame shows the (padded / stride-expanded) input with the window of one output cell highlighted, the kernel,
the output with that cell highlighted, its formula line (with ``values=True``: the products and their sum, equal to
the layer's own output) and the output-size formula with numbers.  Transposed layers have two views: ``'conv'``
(the stride-expanded input, re-padded, with the flipped kernel) and ``'scatter'`` (each input cell spreading the
kernel over the output; targets outside it are cropped by ``padding``).  Groups get a colour each; 3-D grids are
drawn as a row of depth slices.

SVG is written directly; PNG and GIF need Pillow (``pip install convforge[viz]``); the HTML page is one offline file.

Example:
    >>> from convforge import nn, draw
    >>> fs = draw.frames(nn.Conv1d(1, 1, 3, padding=1), (1, 1, 4), values=True)
    >>> [c.position for c in fs[0].cells], fs[0].value == sum(c.product for c in fs[0].cells) + fs[0].bias
    ([(-1,), (0,), (1,)], True)
"""
from __future__ import annotations

from typing import Optional, Sequence

from ._cli import main as _main
from ._frames import Cell, Frame, FrameSet, Geometry, formula, frames, geometry, source_grid
from ._layout import layout
from ._write import MAX_ANIMATED_FRAMES, draw, svg_string, to_gif, to_html, to_png, to_svg

__all__ = ["draw", "frames", "geometry", "to_svg", "to_png", "to_gif", "to_html", "svg_string", "cli",
           "Frame", "FrameSet", "Cell", "Geometry", "source_grid", "formula", "layout"]


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """``convforge draw "<layer spec>" --input 1,1,5,5 --out conv.svg`` — see ``convforge draw --help``."""
    return _main(argv)

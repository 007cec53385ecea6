"""A tiny vector scene (rectangles, text, lines) that both the SVG writer and the Pillow rasteriser draw.

Laying a frame out once and rendering it twice keeps the SVG, PNG and GIF pictures identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

MONO_WIDTH = 0.62  # advance of a monospace glyph, in font sizes


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: Optional[str] = None
    stroke_width: float = 1.0
    dash: bool = False
    cross: bool = False          # draw an X through it (cropped cells)
    data: Dict[str, str] = field(default_factory=dict)   # SVG data-* attributes (testable DOM)


@dataclass
class Text:
    x: float
    y: float              # baseline
    text: str
    size: float = 11.0
    fill: str = "#222222"
    anchor: str = "start"  # 'start' | 'middle' | 'end'
    bold: bool = False


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = "#444444"
    width: float = 1.0


@dataclass
class Scene:
    width: float
    height: float
    items: List[object] = field(default_factory=list)
    background: str = "#ffffff"

    def add(self, item):
        self.items.append(item)
        return item


def text_width(s: str, size: float) -> float:
    """Width of ``s`` in the monospace font every renderer uses."""
    return len(s) * size * MONO_WIDTH


def mix(color: str, weight: float, other: str = "#ffffff") -> str:
    """``weight`` of ``color`` blended with ``other`` (hex colours)."""
    a = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(weight * u + (1 - weight) * v):02x}" for u, v in zip(a, b))

"""SVG output, written directly (no dependency).

Every grid cell is a ``<rect>`` with ``data-grid`` (input / kernel / output), ``data-c`` (channel), ``data-pos``
(coordinates), ``data-kind`` and ``data-hl`` ("1" when highlighted), so a picture can be checked by a program.
"""
from __future__ import annotations

from typing import List, Sequence
from xml.sax.saxutils import escape, quoteattr

from ._scene import Line, Rect, Scene, Text

FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def _items(scene: Scene) -> List[str]:
    out = []
    for it in scene.items:
        if isinstance(it, Rect):
            attrs = [f'x="{it.x:.1f}" y="{it.y:.1f}" width="{it.w:.1f}" height="{it.h:.1f}"',
                     f'fill="{it.fill}"', f'stroke="{it.stroke or "none"}"', f'stroke-width="{it.stroke_width:g}"']
            if it.dash:
                attrs.append('stroke-dasharray="3,2"')
            attrs += [f"data-{k}={quoteattr(v)}" for k, v in it.data.items()]
            out.append(f"<rect {' '.join(attrs)}/>")
            if it.cross:
                out.append(f'<path d="M{it.x:.1f},{it.y:.1f}l{it.w:.1f},{it.h:.1f}M{it.x + it.w:.1f},{it.y:.1f}'
                           f'l{-it.w:.1f},{it.h:.1f}" stroke="#c0392b" stroke-width="1.2"/>')
        elif isinstance(it, Text):
            anchor = {"start": "start", "middle": "middle", "end": "end"}[it.anchor]
            weight = ' font-weight="bold"' if it.bold else ""
            out.append(f'<text x="{it.x:.1f}" y="{it.y:.1f}" font-size="{it.size:g}" fill="{it.fill}" '
                       f'text-anchor="{anchor}"{weight} xml:space="preserve">{escape(it.text)}</text>')
        elif isinstance(it, Line):
            out.append(f'<line x1="{it.x1:.1f}" y1="{it.y1:.1f}" x2="{it.x2:.1f}" y2="{it.y2:.1f}" '
                       f'stroke="{it.stroke}" stroke-width="{it.width:g}"/>')
    return out


def svg_document(scenes: Sequence[Scene], seconds_per_frame: float = 0.8) -> str:
    """One SVG; several scenes become an animation (SMIL, one ``<g class="frame">`` per scene; the first frame is
    visible where animation is not supported)."""
    width = max(s.width for s in scenes)
    height = max(s.height for s in scenes)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT_FAMILY}">',
             f'<rect width="100%" height="100%" fill="{scenes[0].background}"/>']
    n = len(scenes)
    for k, scene in enumerate(scenes):
        if n == 1:
            parts.append('<g class="frame" data-frame="0">')
        else:
            vis = "visible" if k == 0 else "hidden"
            parts.append(f'<g class="frame" data-frame="{k}" visibility="{vis}">')
            begin, end = k / n, (k + 1) / n
            if k == 0:
                values, times = "visible;hidden", f"0;{end:.6f}"
            elif k == n - 1:
                values, times = "hidden;visible", f"0;{begin:.6f}"
            else:
                values, times = "hidden;visible;hidden", f"0;{begin:.6f};{end:.6f}"
            parts.append(f'<animate attributeName="visibility" calcMode="discrete" dur="{n * seconds_per_frame:g}s" '
                         f'repeatCount="indefinite" values="{values}" keyTimes="{times}"/>')
        parts += _items(scene)
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

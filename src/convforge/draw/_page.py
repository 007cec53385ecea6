"""The interactive page: one offline HTML file (no network, no external scripts or fonts).

The layer's parameters are editable; a slider and step buttons move through the frames; the page shows the
output-size formula with numbers and the arithmetic of the highlighted cell.  The index rules run in JavaScript
(``index.js``, package data read by ``_page_js``, checked against Python by the tests); the Python frames (and
the layer's own output values) of the initial layer are embedded and re-checked by the page when it loads.

Testable DOM: every cell is a ``div.cf-cell`` with ``data-grid``, ``data-c``, ``data-pos``, ``data-kind`` and
``data-hl``; ``<script id="cf-state" type="application/json">`` holds the current frame (highlighted cells, the
sum); ``#cf-check[data-ok]`` says whether the embedded Python frames equal the page's.
"""
from __future__ import annotations

import html
import json
import math
import re

import numpy as np

from ._frames import FrameSet, frames, geometry, _resolve_layer
from ._page_js import INDEX_JS, UI_JS


def page_values(layer, geo):
    """The page's numbers, the same formulas as ``INDEX_JS``: ``x = (7f+3) mod 10``, ``w = (3f+1) mod 5 - 2``,
    ``b = oc mod 3 - 1`` (``f`` the flat C-order index)."""
    x = ((7 * np.arange(geo.in_channels * math.prod(geo.in_sizes)) + 3) % 10).astype(np.float64)
    wshape = tuple(np.shape(layer.weight))
    w = ((3 * np.arange(math.prod(wshape)) + 1) % 5 - 2).astype(np.float64)
    b = (np.arange(geo.out_channels) % 3 - 1).astype(np.float64) if geo.bias else None
    return x.reshape((geo.in_channels,) + geo.in_sizes), w.reshape(wshape), b


def _frame_key(fr) -> list:
    return [fr.out_channel, fr.in_channel, list(fr.position),
            [[c.in_channel, list(c.tap), list(c.position), c.kind, None if c.source is None else list(c.source)]
             for c in fr.cells]]


def python_frames(layer, input_shape, view=None) -> FrameSet:
    """The frames the page embeds for its initial layer: channels 'groups', the page's values."""
    layer = _resolve_layer(layer)
    geo = geometry(layer, input_shape)
    x, w, b = page_values(layer, geo)
    return frames(layer, input_shape, view=view, channels="groups", x=x, weight=w, bias=b)


def page_html(layer, input_shape, view=None, values: bool = True, **_ignored) -> str:
    """The HTML text of the page, starting from ``layer`` on ``input_shape``.

    Options of the static pictures that the page sets interactively (``channels``, ``frame``, ``seed``) are
    accepted and ignored.
    """
    layer = _resolve_layer(layer)
    fs = python_frames(layer, input_shape, view)
    geo = fs.geometry
    config = {"transposed": geo.transposed, "inChannels": geo.in_channels, "outChannels": geo.out_channels,
              "groups": geo.groups, "inSizes": list(geo.in_sizes), "kernel": list(geo.kernel),
              "stride": list(geo.stride), "padding": [list(p) for p in geo.padding],
              "dilation": list(geo.dilation), "outputPadding": list(geo.output_padding),
              "paddingMode": geo.padding_mode, "bias": geo.bias}
    initial = {"config": config, "view": fs.view, "values": bool(values), "layer": geo.name}
    python = {"frames": [_frame_key(f) for f in fs.frames],
              "values": [f.value for f in fs.frames] if fs.view == "conv" else None}
    fills = {"TITLE": html.escape(geo.name), "CSS": CSS, "INITIAL": _json(initial), "PYTHON": _json(python),
             "INDEX_JS": INDEX_JS, "UI_JS": UI_JS}
    # one pass: text inserted for one placeholder (a layer name with "%UI_JS%" in it) is never filled again
    return _PLACEHOLDER.sub(lambda m: fills[m.group(1)], TEMPLATE)


_PLACEHOLDER = re.compile(r"%([A-Z_]+)%")
# inside <script>, "<!--", "<script" and "</script" change how the HTML parser finds the end of the element;
# JSON escapes of <, > and & (and of the two line separators JavaScript once refused in strings) keep them out
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                              "\u2029": "\\u2029"})


def _json(obj) -> str:
    """JSON text safe inside a ``<script>`` element: parses back to ``obj``, contains no ``<``, ``>`` or ``&``."""
    return json.dumps(obj, separators=(",", ":")).translate(_SCRIPT_SAFE)


CSS = """
:root { --cell: 30px; }
body { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; margin: 16px; color: #222; font-size: 13px; }
h1 { font-size: 17px; margin: 0 0 4px 0; }
#cf-title { color: #444; margin-bottom: 10px; white-space: pre-wrap; }
.cf-controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; padding: 10px; background: #f5f6f8;
  border: 1px solid #ddd; border-radius: 6px; }
.cf-controls label { display: flex; flex-direction: column; font-size: 11px; color: #555; }
.cf-controls input[type=text], .cf-controls input[type=number] {
  width: 86px; font: inherit; padding: 2px 4px; }
.cf-controls input[type=number] { width: 52px; }
.cf-nav { display: flex; gap: 8px; align-items: center; margin: 12px 0; }
.cf-nav input[type=range] { width: 320px; }
button { font: inherit; padding: 3px 10px; }
#cf-error { display: none; color: #a00; background: #fdecea; border: 1px solid #f5c2c0; padding: 6px 10px;
  margin: 8px 0; }
#cf-check { font-size: 11px; margin-left: 12px; }
#cf-check.ok { color: #1a7f37; } #cf-check.bad { color: #a00; font-weight: bold; }
#cf-panels { display: flex; flex-wrap: wrap; gap: 36px; align-items: flex-start; }
.cf-panel h3 { font-size: 13px; margin: 0 0 6px 0; }
.cf-block { display: flex; align-items: center; gap: 8px; margin-bottom: 10px; }
.cf-label { width: 48px; font-weight: bold; }
.cf-slices { display: flex; gap: 14px; }
.cf-slice-label { font-size: 10px; color: #555; text-align: center; }
.cf-grid { display: grid; gap: 2px; align-items: center; }
.cf-axis { font-size: 9px; color: #999; text-align: center; }
.cf-cell { width: var(--cell); height: var(--cell); box-sizing: border-box; border: 1px solid #bbb; display: flex;
  align-items: center; justify-content: center; font-size: 11px; background: #fff; overflow: hidden; }
.cf-cell.pad { background: #e6e6e6; border-style: dashed; color: #777; font-size: 9px; }
.cf-cell.zero { border-style: dotted; color: #aaa; font-size: 9px; }
.cf-cell.crop { background: #f3d6d6; color: #c0392b; border-style: dashed; }
.cf-cell.hl { border-width: 3px; font-weight: bold; }
pre { background: #fafafa; border: 1px solid #eee; padding: 8px; white-space: pre-wrap; word-break: break-word; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>convforge draw: %TITLE%</title>
<style>%CSS%</style>
</head>
<body>
<h1>How this convolution moves <span id="cf-check"></span></h1>
<div id="cf-title"></div>
<div class="cf-controls">
  <label>input size<input id="cf-input" type="text" title="spatial sizes, e.g. 5,5"></label>
  <label>kernel<input id="cf-kernel" type="text"></label>
  <label>stride<input id="cf-stride" type="text"></label>
  <label>padding<input id="cf-padding" type="text" title="int, one per dim, or lo:hi pairs"></label>
  <label>dilation<input id="cf-dilation" type="text"></label>
  <label>in ch<input id="cf-in-channels" type="number" min="1" max="16"></label>
  <label>out ch<input id="cf-out-channels" type="number" min="1" max="16"></label>
  <label>groups<input id="cf-groups" type="number" min="1" max="16"></label>
  <label>padding mode<select id="cf-padding-mode"><option>zeros</option><option>reflect</option>
    <option>replicate</option><option>circular</option></select></label>
  <label>bias<input id="cf-bias" type="checkbox"></label>
  <label>transposed<input id="cf-transposed" type="checkbox"></label>
  <label>output_padding<input id="cf-output-padding" type="text"></label>
  <label>view<select id="cf-view"><option value="conv">conv (expanded input)</option>
    <option value="scatter">scatter</option></select></label>
  <label>values<input id="cf-values" type="checkbox"></label>
</div>
<div id="cf-error" role="alert"></div>
<div class="cf-nav">
  <button id="cf-prev" type="button" title="previous (left arrow)">&#9664; prev</button>
  <input id="cf-slider" type="range" min="0" max="0" value="0" step="1" aria-label="frame">
  <button id="cf-next" type="button" title="next (right arrow)">next &#9654;</button>
  <button id="cf-play" type="button">play</button>
  <span id="cf-frame-label"></span>
</div>
<div id="cf-panels"></div>
<h3>output size</h3>
<pre id="cf-size"></pre>
<h3>arithmetic of the highlighted cell</h3>
<pre id="cf-formula"></pre>
<script type="application/json" id="cf-initial">%INITIAL%</script>
<script type="application/json" id="cf-python">%PYTHON%</script>
<script type="application/json" id="cf-state">{}</script>
<script>%INDEX_JS%</script>
<script>%UI_JS%</script>
</body>
</html>
"""

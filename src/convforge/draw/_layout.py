"""Lay one frame out as a :class:`~convforge.draw._scene.Scene`: input panel, kernel panel, output panel, the
formula line, the output-size formula and a legend.

Grids of any rank: 1-D is one row, 2-D rows x columns, 3-D a row of 2-D slices (one per depth index).  Axis
labels show real coordinates, so padding appears at negative indices and past the end.
"""
from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Sequence, Tuple

from ._frames import Frame, FrameSet, fmt_number
from ._scene import Line, Rect, Scene, Text, mix, text_width

CELL = 28
SLICE_GAP = 14
CHANNEL_GAP = 12
PANEL_GAP = 44
MARGIN = 16
LABEL_W = 54
AXIS = 13
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
GREY = "#9a9a9a"
PAD_FILL = "#e6e6e6"
CROP_FILL = "#f3d6d6"
FONT = 11.0
SMALL = 8.5


def group_color(g: int) -> str:
    """The colour of group ``g`` (cycled)."""
    return PALETTE[g % len(PALETTE)]


def _translate(items, dx, dy):
    for it in items:
        if isinstance(it, Line):
            it.x1 += dx
            it.x2 += dx
            it.y1 += dy
            it.y2 += dy
        else:
            it.x += dx
            it.y += dy
    return items


def _planes(ranges: Sequence[Tuple[int, int]]):
    """Split n-d coordinate ranges into (slices, rows, cols) ranges; 1-D has one row, 3-D slices on dim 0."""
    n = len(ranges)
    if n == 1:
        return [None], (0, 1), ranges[0]
    if n == 2:
        return [None], ranges[0], ranges[1]
    return list(range(*ranges[0])), ranges[1], ranges[2]


def _grid(ranges, style: Callable[[Tuple[int, ...]], Dict], data: Dict[str, str]) -> Tuple[List, float, float]:
    """Draw a grid at the origin; ``style(pos)`` gives fill / stroke / text for each cell."""
    items: List = []
    n = len(ranges)
    slices, rows, cols = _planes(ranges)
    nrow, ncol = rows[1] - rows[0], cols[1] - cols[0]
    top = AXIS + (AXIS if n == 3 else 0)
    left = AXIS + 4 if n > 1 else 0
    slice_w = ncol * CELL
    for si, sl in enumerate(slices):
        x0 = left + si * (slice_w + SLICE_GAP)
        if sl is not None:
            items.append(Text(x0 + slice_w / 2, AXIS - 3, f"d={sl}", SMALL, "#555555", "middle"))
        for c in range(ncol):
            items.append(Text(x0 + (c + 0.5) * CELL, top - 3, str(cols[0] + c), SMALL, GREY, "middle"))
        for r in range(nrow):
            if n > 1 and si == 0:
                items.append(Text(left - 4, top + (r + 0.5) * CELL + 3, str(rows[0] + r), SMALL, GREY, "end"))
            for c in range(ncol):
                if n == 1:
                    pos = (cols[0] + c,)
                elif n == 2:
                    pos = (rows[0] + r, cols[0] + c)
                else:
                    pos = (sl, rows[0] + r, cols[0] + c)
                st = style(pos)
                x, y = x0 + c * CELL, top + r * CELL
                attrs = dict(data, pos=",".join(map(str, pos)), hl="1" if st.get("hl") else "0",
                             kind=st.get("kind", ""))
                items.append(Rect(x + 1, y + 1, CELL - 2, CELL - 2, st.get("fill", "#ffffff"),
                                  st.get("stroke", "#bbbbbb"), st.get("sw", 1.0), st.get("dash", False),
                                  st.get("cross", False), attrs))
                label = st.get("text", "")
                if label:
                    size = st.get("size", FONT)
                    while size > 6 and text_width(label, size) > CELL - 4:
                        size -= 0.5
                    items.append(Text(x + CELL / 2, y + CELL / 2 + size * 0.36, label, size,
                                      st.get("color", "#222222"), "middle", st.get("bold", False)))
    width = left + len(slices) * slice_w + (len(slices) - 1) * SLICE_GAP
    return items, width, top + nrow * CELL


def _panel(title: str, blocks) -> Tuple[List, float, float]:
    """Stack channel grids vertically under a title. ``blocks``: (label, colour, ranges, style, data)."""
    items: List = [Text(0, 13, title, 12.5, "#111111", "start", True)]
    y, width = 22.0, text_width(title, 12.5)
    for label, color, ranges, style, data in blocks:
        g_items, w, h = _grid(ranges, style, data)
        items.append(Text(0, y + h / 2 + 8, label, FONT, color, "start", True))
        items += _translate(g_items, LABEL_W, y)
        width = max(width, LABEL_W + w)
        y += h + CHANNEL_GAP
    return items, width, y


def _wrap(text: str, width: float, size: float) -> List[str]:
    limit = max(int(width / (size * 0.6)), 20)
    lines, cur = [], ""
    for tok in text.replace(" + ", " + \u0000").replace("; ", "; \u0000").split("\u0000"):
        if cur and len(cur) + len(tok) > limit:
            lines.append(cur.rstrip())
            cur = "    "
        cur += tok
    lines.append(cur.rstrip())
    return lines


# -- panels for each view --------------------------------------------------------------------------------------

def _conv_input_blocks(fs: FrameSet, fr: Frame):
    geo = fs.geometry
    hl = {(c.in_channel, c.position) for c in fr.cells}
    if geo.transposed:
        (exp, pad) = geo.expanded_sizes, geo.expanded_padding
        ranges = [(min(0, -lo), max(e, e + hi)) for e, (lo, hi) in zip(exp, pad)]
        window = [(-lo, e + hi) for e, (lo, hi) in zip(exp, pad)]
    else:
        ranges = [(-lo, i + hi) for i, (lo, hi) in zip(geo.in_sizes, geo.padding)]
    blocks = []
    for ic in range(geo.in_channels):
        g = geo.group_of_in(ic)
        color = group_color(g)
        active = g == fr.group

        def style(pos, ic=ic, color=color, active=active):
            on = (ic, pos) in hl
            st: Dict = {"hl": on}
            if geo.transposed:
                real_span = all(0 <= p < e for p, e in zip(pos, exp))
                in_window = all(a <= p < b for p, (a, b) in zip(pos, window))
                is_input = real_span and all(p % s == 0 for p, s in zip(pos, geo.stride))
                if is_input and not in_window:
                    st.update(kind="cropped", fill=CROP_FILL, cross=True)
                    src = None
                elif is_input:
                    st.update(kind="input", fill=mix(color, 0.22 if active else 0.10))
                    src = tuple(p // s for p, s in zip(pos, geo.stride))
                elif real_span:
                    st.update(kind="zero", fill="#ffffff", dash=True, text="0", color=GREY, size=SMALL)
                    src = None
                else:
                    st.update(kind="padding", fill=PAD_FILL, dash=True, text="0", color=GREY, size=SMALL)
                    src = None
                if src is not None and fs.input is not None:
                    st["text"] = _num(fs.input[(ic,) + src])
                elif src is not None:
                    st.update(text=",".join(map(str, src)), size=SMALL, color="#555555")
            else:
                inside = all(0 <= p < i for p, i in zip(pos, geo.in_sizes))
                if inside:
                    st.update(kind="input", fill=mix(color, 0.22 if active else 0.10))
                    if fs.input is not None:
                        st["text"] = _num(fs.input[(ic,) + pos])
                else:
                    flat = int(fs.source_grid[tuple(p + lo for p, (lo, _) in zip(pos, geo.padding))])
                    st.update(kind="padding", fill=PAD_FILL, dash=True, color="#666666")
                    if flat < 0:
                        st.update(text="0", size=SMALL if fs.input is None else FONT)
                    else:
                        src = _unravel(flat, geo.in_sizes)
                        if fs.input is not None:
                            st["text"] = _num(fs.input[(ic,) + src])
                        else:
                            st.update(text=",".join(map(str, src)), size=SMALL)
            if on:
                st.update(fill=mix(color, 0.55), stroke=color, sw=3.0, bold=True)
                if st.get("kind") in ("padding", "zero"):
                    st["fill"] = mix(color, 0.30, PAD_FILL)
            return st

        blocks.append((f"x[{ic}]", color if active else mix(color, 0.5), ranges, style,
                       {"grid": "input", "c": str(ic)}))
    title = "input, stride-expanded (transposed as conv)" if geo.transposed else \
        f"input, padded ({geo.padding_mode})" if any(p != (0, 0) for p in geo.padding) else "input"
    return title, blocks


def _kernel_blocks(fs: FrameSet, fr: Frame):
    geo = fs.geometry
    color = group_color(fr.group)
    flipped = geo.transposed and fr.view == "conv"
    used = {(c.in_channel, c.tap) for c in fr.cells if c.inside or c.source is not None or not geo.transposed}
    blocks = []
    if fr.view == "scatter":
        ics = [fr.in_channel]
    else:
        ics = list(geo.in_channels_of_group(fr.group))
    for ic in ics:
        if geo.transposed:
            lead = (ic, fr.out_channel - fr.group * geo.out_per_group)
        else:
            lead = (fr.out_channel, ic - fr.group * geo.in_per_group)

        def style(pos, ic=ic, lead=lead):
            tap = tuple(k - 1 - p for k, p in zip(geo.kernel, pos)) if flipped else pos
            on = (ic, tap) in used
            st: Dict = {"hl": on, "kind": "tap", "fill": mix(color, 0.55 if on else 0.15),
                        "stroke": color if on else "#bbbbbb", "sw": 2.0 if on else 1.0}
            if fs.weight is not None:
                st.update(text=_num(fs.weight[lead + tap]), bold=on)
            else:
                st.update(text=",".join(map(str, tap)), size=SMALL, color="#333333")
            return st

        label = f"w[{lead[0]},{lead[1]}]"
        blocks.append((label, color, [(0, k) for k in geo.kernel], style,
                       {"grid": "kernel", "c": str(ic)}))
    title = "kernel, flipped" if flipped else "kernel"
    return title, blocks


def _output_blocks(fs: FrameSet, fr: Frame, order: Dict):
    geo = fs.geometry
    chosen = sorted({f.out_channel for f in fs.frames})
    blocks = []
    if fr.view == "scatter":
        full = [(min(0, -lo), max(o, (i - 1) * s - lo + d * (k - 1) + 1)) for i, o, k, s, (lo, _), d in
                zip(geo.in_sizes, geo.out_sizes, geo.kernel, geo.stride, geo.padding, geo.dilation)]
        sums = _scatter_sums(fs, fr)
    for oc in chosen:
        g = geo.group_of_out(oc)
        color = group_color(g)
        if fr.view == "scatter":
            targets = {c.position for c in fr.cells} if oc == fr.out_channel else set()

            def style(pos, oc=oc, color=color, targets=targets):
                inside = all(0 <= p < o for p, o in zip(pos, geo.out_sizes))
                on = pos in targets
                st: Dict = {"hl": on, "kind": "output" if inside else "cropped",
                            "fill": mix(color, 0.12) if inside else PAD_FILL, "dash": not inside}
                if (oc, pos) in sums:
                    st.update(fill=mix(color, 0.30) if inside else CROP_FILL)
                    if fs.input is not None:
                        st["text"] = _num(sums[(oc, pos)])
                if on:
                    st.update(fill=mix(color, 0.6) if inside else CROP_FILL, stroke=color if inside else "#c0392b",
                              sw=3.0, bold=True, cross=not inside)
                return st

            blocks.append((f"y[{oc}]", color, full, style, {"grid": "output", "c": str(oc)}))
            continue

        def style(pos, oc=oc, color=color):
            k = order.get((oc, pos))
            on = k == fr.index
            done = k is not None and k < fr.index
            st: Dict = {"hl": on, "kind": "output", "fill": mix(color, 0.6 if on else 0.25 if done else 0.06)}
            if on:
                st.update(stroke=color, sw=3.0, bold=True)
            if fs.output is not None and (on or done):
                st["text"] = _num(fs.output[(oc,) + pos])
            return st

        blocks.append((f"y[{oc}]", color, [(0, o) for o in geo.out_sizes], style,
                       {"grid": "output", "c": str(oc)}))
    title = "output (cropped by padding outside)" if fr.view == "scatter" else "output"
    return title, blocks


def _scatter_sums(fs: FrameSet, fr: Frame) -> Dict:
    """Partial sums of the output after the scatter frames up to this one (bias added once at the start)."""
    sums: Dict = {}
    for f in fs.frames[:fr.index + 1]:
        for c in f.cells:
            key = (f.out_channel, c.position)
            base = sums.get(key, f.bias if (f.bias is not None and c.inside) else 0.0)
            sums[key] = base + (c.product if c.product is not None else 0.0)
    return sums


def _scatter_input_blocks(fs: FrameSet, fr: Frame):
    geo = fs.geometry
    blocks = []
    for ic in range(geo.in_channels):
        g = geo.group_of_in(ic)
        color = group_color(g)
        active = g == fr.group

        def style(pos, ic=ic, color=color, active=active):
            on = ic == fr.in_channel and pos == fr.position
            st: Dict = {"hl": on, "kind": "input", "fill": mix(color, 0.22 if active else 0.10)}
            if fs.input is not None:
                st["text"] = _num(fs.input[(ic,) + pos])
            if on:
                st.update(fill=mix(color, 0.6), stroke=color, sw=3.0, bold=True)
            return st

        blocks.append((f"x[{ic}]", color if active else mix(color, 0.5), [(0, i) for i in geo.in_sizes], style,
                       {"grid": "input", "c": str(ic)}))
    return "input (each cell scatters the kernel)", blocks


def _num(v) -> str:
    """A number inside a cell: like the formula, without parentheses around negatives."""
    return fmt_number(float(v)).strip("()")


def _unravel(flat: int, sizes) -> Tuple[int, ...]:
    out = []
    for s in reversed(sizes):
        out.append(flat % s)
        flat //= s
    return tuple(reversed(out))


def _legend(fs: FrameSet, fr: Frame) -> List[Tuple[str, Dict]]:
    geo = fs.geometry
    color = group_color(fr.group)
    entries = [("window" if fr.view == "conv" else "moving cell / targets",
                {"fill": mix(color, 0.55), "stroke": color, "sw": 3.0})]
    if fr.view == "conv" and not geo.transposed and any(p != (0, 0) for p in geo.padding):
        what = "padding (0)" if geo.padding_mode == "zeros" else f"padding ({geo.padding_mode}: copies x[...])"
        entries.append((what, {"fill": PAD_FILL, "dash": True}))
    if geo.transposed and fr.view == "conv":
        entries += [("inserted zero (stride)", {"fill": "#ffffff", "dash": True}),
                    ("padding d*(k-1)-p (+output_padding at the end)", {"fill": PAD_FILL, "dash": True})]
        if any(lo < 0 or hi < 0 for lo, hi in geo.expanded_padding):
            entries.append(("cropped (padding > d*(k-1))", {"fill": CROP_FILL, "cross": True}))
    if fr.view == "scatter":
        entries.append(("cropped by padding", {"fill": CROP_FILL, "cross": True}))
    if geo.groups > 1:
        entries += [(f"group {g}", {"fill": mix(group_color(g), 0.4), "stroke": group_color(g)})
                    for g in range(min(geo.groups, len(PALETTE)))]
    return entries


def layout(fs: FrameSet, k: int) -> Scene:
    """The picture of frame ``k`` of ``fs``."""
    if not 0 <= k < len(fs.frames):
        raise ValueError(f"frame {k} does not exist: this drawing has {len(fs.frames)} frames (0 to "
                         f"{len(fs.frames) - 1})")
    fr = fs.frames[k]
    geo = fs.geometry
    order = {(f.out_channel, f.position): f.index for f in fs.frames} if fr.view == "conv" else {}
    if fr.view == "scatter":
        panels = [_scatter_input_blocks(fs, fr), _kernel_blocks(fs, fr), _output_blocks(fs, fr, order)]
    else:
        panels = [_conv_input_blocks(fs, fr), _kernel_blocks(fs, fr), _output_blocks(fs, fr, order)]
    built = [_panel(title, blocks) for title, blocks in panels]
    header = geo.name
    in_shape = (1, geo.in_channels) + geo.in_sizes
    out_shape = (1, geo.out_channels) + geo.out_sizes
    sub = (f"input {in_shape} -> output {out_shape}   frame {k + 1}/{len(fs.frames)}   "
           + (f"input cell x[{fr.in_channel},{','.join(map(str, fr.position))}] -> channel {fr.out_channel}"
              if fr.view == "scatter" else
              f"output y[{fr.out_channel},{','.join(map(str, fr.position))}]")
           + (f"   group {fr.group}" if geo.groups > 1 else ""))
    panels_w = sum(w for _, w, _ in built) + PANEL_GAP * (len(built) - 1)
    width = max(panels_w, text_width(header, 13), text_width(sub, FONT), 560) + 2 * MARGIN
    inner = width - 2 * MARGIN
    items: List = [Text(MARGIN, MARGIN + 12, header, 13, "#111111", "start", True),
                   Text(MARGIN, MARGIN + 30, sub, FONT, "#444444")]
    y0 = MARGIN + 46
    x = MARGIN
    panel_h = 0.0
    for it, w, h in built:
        items += _translate(it, x, y0)
        x += w + PANEL_GAP
        panel_h = max(panel_h, h)
    y = y0 + panel_h + 6
    items.append(Line(MARGIN, y, width - MARGIN, y, "#dddddd"))
    y += 18
    for line in _wrap(fr.formula, inner, FONT):
        items.append(Text(MARGIN, y, line, FONT, "#111111"))
        y += FONT + 5
    y += 4
    names = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(geo.n, tuple(f"S{i}" for i in range(geo.n)))
    size_line = ("transposed output size: " if geo.transposed else "output size: ") + "; ".join(
        f"{name}_out = {f}" for name, f in zip(names, geo.size_formulas()))
    for line in _wrap(size_line, inner, FONT):
        items.append(Text(MARGIN, y, line, FONT, "#555555"))
        y += FONT + 5
    y += 6
    lx = MARGIN
    for label, st in _legend(fs, fr):
        wlab = 16 + 6 + text_width(label, SMALL + 1) + 18
        if lx + wlab > width - MARGIN and lx > MARGIN:
            lx = MARGIN
            y += 22
        items.append(Rect(lx, y, 16, 16, st.get("fill", "#ffffff"), st.get("stroke", "#999999"), st.get("sw", 1.0),
                          st.get("dash", False), st.get("cross", False)))
        items.append(Text(lx + 22, y + 12, label, SMALL + 1, "#333333"))
        lx += wlab
    height = y + 16 + MARGIN
    return Scene(width, height, items)


def all_positions(sizes) -> List[Tuple[int, ...]]:
    return list(itertools.product(*(range(v) for v in sizes)))

"""Frame data: for every step of a convolution, which cells meet which kernel taps, and the arithmetic.

Nothing here re-derives an index rule: windows come from :mod:`convforge._indexing` (``conv_window``,
``transpose_scatter``, ``transpose_contributions``' formula through ``conv_window`` on the stride-expanded input),
sizes and the padding split from :func:`convforge.layer_view.layer_view` (which takes them from
:mod:`convforge.shapes`), and the cell a padding cell copies from
convforge's own ``pad`` applied to a grid of flat indices.  Values (``values=True``) are pushed through the layer
itself (a float64 copy), so the number under each output cell is the engine's.

Views:
    ``'conv'``     forward convolution: one frame per output position; transposed convolution: the equivalent
                   stride-1 convolution of the stride-expanded, re-padded input with the flipped kernel.
    ``'scatter'``  transposed convolution only: one frame per input position, showing where ``x[j] * w[t]`` lands
                   (targets outside the output are cropped by ``padding``; ``output_padding`` adds cells at the end).
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field, fields
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .. import _canon, _indexing
from ..layer_view import LayerView, layer_view
from .._padding import pad as _pad
from .._spec import parse_layer

Index = Tuple[int, ...]
Pairs = Tuple[Tuple[int, int], ...]

MAX_CELLS = 4096   # input or output cells per channel we agree to draw


@dataclass(frozen=True)
class Geometry(LayerView):
    """Everything about a layer and its input that the pictures need, in canonical form: the layer's
    :class:`~convforge.layer_view.LayerView` (``padding`` per-dimension ``(lo, hi)`` pairs, 'same' already
    resolved for the input size) with ``name`` the layer's repr, plus the pictures' derived sizes.
    """

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    def group_of_out(self, oc: int) -> int:
        return _indexing.group_of(oc, self.out_channels, self.groups)

    def group_of_in(self, ic: int) -> int:
        return _indexing.group_of(ic, self.in_channels, self.groups)

    def in_channels_of_group(self, g: int) -> range:
        return range(g * self.in_per_group, (g + 1) * self.in_per_group)

    @property
    def expanded_sizes(self) -> Index:
        """Transposed only: input sizes after inserting ``stride - 1`` zeros between cells."""
        return tuple((i - 1) * s + 1 for i, s in zip(self.in_sizes, self.stride))

    @property
    def expanded_padding(self) -> Pairs:
        """Transposed only: padding of the stride-expanded input in the equivalent convolution,
        ``(d*(k-1) - p_lo, d*(k-1) - p_hi + output_padding)`` (negative values crop)."""
        return tuple((d * (k - 1) - lo, d * (k - 1) - hi + op) for k, d, (lo, hi), op
                     in zip(self.kernel, self.dilation, self.padding, self.output_padding))

    def size_formulas(self) -> List[str]:
        """The output-size formula of each dimension, with this layer's numbers."""
        out = []
        for i, k, s, (lo, hi), d, op, o in zip(self.in_sizes, self.kernel, self.stride, self.padding,
                                               self.dilation, self.output_padding, self.out_sizes):
            if self.transposed:
                out.append(f"({i}-1)*{s} - {lo} - {hi} + {d}*({k}-1) + {op} + 1 = {o}")
            else:
                out.append(f"floor(({i} + {lo} + {hi} - {d}*({k}-1) - 1) / {s}) + 1 = {o}")
        return out


@dataclass
class Cell:
    """One kernel tap meeting one grid cell inside a frame.

    ``position`` is in the coordinates of the grid the view draws: unpadded input coordinates for the forward
    'conv' view (outside ``[0, size)`` is padding), stride-expanded coordinates for the transposed 'conv' view,
    output coordinates for the 'scatter' view.  ``source`` is the input cell whose value is used (for a padding
    cell in reflect / replicate / circular mode, the cell it copies; None for zero padding, inserted zeros and
    cropped scatter targets).  ``kind`` is one of 'input', 'padding', 'zero' (inserted by the stride), 'output',
    'cropped'.
    """
    in_channel: int
    tap: Index
    weight_index: Index
    position: Index
    inside: bool
    kind: str
    source: Optional[Index] = None
    x: Optional[float] = None
    w: Optional[float] = None

    @property
    def product(self) -> Optional[float]:
        if self.x is None or self.w is None:
            return None
        return self.x * self.w


@dataclass
class Frame:
    """One step: the cells that one output cell reads (views 'conv') or that one input cell writes ('scatter')."""
    view: str
    index: int
    out_channel: int
    group: int
    position: Index
    cells: List[Cell]
    in_channel: Optional[int] = None   # scatter view: the input channel whose cell moves
    bias: Optional[float] = None
    value: Optional[float] = None      # engine output at (out_channel, position) for 'conv' views
    formula: str = ""

    @property
    def highlighted(self) -> List[Tuple[int, Index]]:
        """``(channel, position)`` of every highlighted grid cell (input channel for 'conv' views, output
        channel for 'scatter'), in tap order."""
        if self.view == "scatter":
            return [(self.out_channel, c.position) for c in self.cells]
        return [(c.in_channel, c.position) for c in self.cells]


@dataclass
class FrameSet:
    """All frames of one drawing, plus the layer geometry and (with values) the arrays used."""
    geometry: Geometry
    view: str
    frames: List[Frame]
    input: Optional[np.ndarray] = None     # (C_in, *S)
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    output: Optional[np.ndarray] = None    # (C_out, *S_out), computed by the layer itself
    source_grid: Optional[np.ndarray] = field(default=None, repr=False)

    def __len__(self):
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    def __getitem__(self, i):
        return self.frames[i]


# -- building the geometry ---------------------------------------------------------------------------------------

def _resolve_layer(layer):
    if isinstance(layer, str):
        layer = parse_layer(layer)
    if not all(hasattr(layer, a) for a in ("kernel_size", "stride", "dilation", "groups", "in_channels")):
        raise TypeError(f"draw needs a convolution layer (convforge.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d) "
                        f"or a spec string such as 'Conv2d(1, 1, 3)', got {type(layer).__name__}")
    return layer


def geometry(layer, input_shape: Sequence[int]) -> Geometry:
    """Canonical geometry of ``layer`` applied to an input of ``input_shape`` (``(N, C, *S)`` or ``(C, *S)``).

    Args:
        layer: a convforge conv module, or a spec string such as ``"Conv2d(1, 1, 3, stride=2)"``.
        input_shape: input shape with channels first, batched or not.

    Example:
        >>> from convforge import nn
        >>> g = geometry(nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5))
        >>> g.out_sizes, g.padding
        ((3, 3), ((1, 1), (1, 1)))
    """
    layer = _resolve_layer(layer)
    n = len(layer.kernel_size)
    shape = tuple(input_shape)
    if not all(_canon.is_int(v) for v in shape):
        raise TypeError(f"input_shape must be a sequence of ints, got {input_shape!r}")
    if len(shape) == n + 2:
        shape = shape[1:]
    if len(shape) != n + 1:
        raise ValueError(f"input_shape must be (N, C, *S) or (C, *S) with {n} spatial dims for "
                         f"{type(layer).__name__}, got {tuple(input_shape)}")
    channels, sizes = int(shape[0]), tuple(int(v) for v in shape[1:])
    if channels != layer.in_channels:
        raise ValueError(f"input_shape has {channels} channels but {type(layer).__name__} expects "
                         f"in_channels={layer.in_channels}; use an input shape like "
                         f"(1, {layer.in_channels}, {', '.join(map(str, sizes))})")
    if any(v < 1 for v in sizes):
        raise ValueError(f"input spatial sizes must be positive to draw, got {sizes}")
    if math.prod(sizes) > MAX_CELLS:
        raise ValueError(f"input of {math.prod(sizes)} cells per channel is too large to draw (at most "
                         f"{MAX_CELLS}); use a smaller --input such as 1,{channels},{','.join(['5'] * n)}")
    view = layer_view(layer, (channels,) + sizes)
    if math.prod(view.out_sizes) > MAX_CELLS:
        raise ValueError(f"output of {math.prod(view.out_sizes)} cells per channel is too large to draw (at most "
                         f"{MAX_CELLS}); use a smaller input")
    return Geometry(**{**{f.name: getattr(view, f.name) for f in fields(view)}, "name": repr(layer)})


def source_grid(geo: Geometry) -> np.ndarray:
    """Flat index of the input cell each padded-input cell holds (-1 for zero padding), made by convforge's own
    ``pad`` on a grid of flat indices, so each padding mode shows exactly the value it copies."""
    flat = np.arange(math.prod(geo.in_sizes), dtype=np.float64).reshape(geo.in_sizes)
    order = _canon.torch_pad_order(geo.padding)
    if geo.padding_mode == "zeros":
        padded = _pad(flat, order, mode="constant", value=-1.0)
    else:
        padded = _pad(flat, order, mode=geo.padding_mode)
    return padded.astype(np.int64)


def _source_of(grid: np.ndarray, geo: Geometry, idx: Index) -> Optional[Index]:
    flat = int(grid[tuple(v + lo for v, (lo, _) in zip(idx, geo.padding))])
    return None if flat < 0 else tuple(int(v) for v in np.unravel_index(flat, geo.in_sizes))


# -- values ----------------------------------------------------------------------------------------------------

def _demo_values(layer, geo: Geometry, seed: int, x=None, weight=None, bias=None):
    """Small integers (x in 0..9, w and b in -2..2) so the arithmetic reads easily, unless arrays are given."""
    rng = np.random.default_rng(seed)
    wshape = tuple(np.shape(layer.weight))
    x = rng.integers(0, 10, (geo.in_channels,) + geo.in_sizes).astype(np.float64) if x is None else \
        np.asarray(x, dtype=np.float64)
    if x.shape == (1, geo.in_channels) + geo.in_sizes:
        x = x[0]
    if x.shape != (geo.in_channels,) + geo.in_sizes:
        raise ValueError(f"values input must have shape {(geo.in_channels,) + geo.in_sizes}, got {x.shape}")
    weight = rng.integers(-2, 3, wshape).astype(np.float64) if weight is None else \
        np.asarray(weight, dtype=np.float64)
    if weight.shape != wshape:
        raise ValueError(f"values weight must have the layer's weight shape {wshape}, got {weight.shape}")
    if geo.bias:
        bias = rng.integers(-2, 3, (geo.out_channels,)).astype(np.float64) if bias is None else \
            np.asarray(bias, dtype=np.float64).reshape(geo.out_channels)
    else:
        bias = None
    return x, weight, bias


def _engine_output(layer, x, weight, bias) -> np.ndarray:
    """Run the layer itself (a float64 copy carrying these values): the numbers the pictures must agree with."""
    m = copy.deepcopy(layer).to(np.float64)
    m.weight[...] = weight
    if bias is not None:
        m.bias[...] = bias
    return np.asarray(m(x[None]))[0]


# -- frames ----------------------------------------------------------------------------------------------------

def _channels(geo: Geometry, channels) -> List[int]:
    if channels is None or channels == "groups":
        return [g * geo.out_per_group for g in range(geo.groups)]
    if channels == "all":
        return list(range(geo.out_channels))
    chosen = [channels] if _canon.is_int(channels) else list(channels)
    for c in chosen:
        if not _canon.is_int(c) or not 0 <= c < geo.out_channels:
            raise ValueError(f"channels must be 'groups', 'all' or output channel numbers in [0, "
                             f"{geo.out_channels}), got {channels!r}")
    return [int(c) for c in chosen]


def _grid(sizes) -> List[Index]:
    return list(itertools.product(*(range(v) for v in sizes)))


def frames(layer, input_shape: Sequence[int], view: Optional[str] = None, channels=None, values: bool = False,
           seed: int = 0, x=None, weight=None, bias=None) -> FrameSet:
    """Frames of ``layer`` moving over an input of ``input_shape``.

    Args:
        layer: a convforge conv module or a spec string (``"ConvTranspose2d(1, 1, 3, stride=2)"``).
        input_shape: ``(N, C, *S)`` or ``(C, *S)``.
        view: ``'conv'`` (default) or, for transposed layers, ``'scatter'``.
        channels: output channels to animate: ``'groups'`` (default: the first of each group), ``'all'``, an int or
            a list of ints.
        values: attach numbers (small integers from ``seed`` unless ``x`` / ``weight`` / ``bias`` are given) and
            compute the output with the layer itself.

    Returns:
        a :class:`FrameSet`; each :class:`Frame` lists its cells in (input channel, kernel tap) order.

    Example:
        >>> from convforge import nn
        >>> fs = frames(nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5), values=True)
        >>> len(fs), fs[0].position, [c.position for c in fs[0].cells][:2]
        (9, (0, 0), [(-1, -1), (-1, 0)])
        >>> sum(c.product for c in fs[0].cells) + fs[0].bias == fs[0].value
        True
    """
    layer = _resolve_layer(layer)
    geo = geometry(layer, input_shape)
    view = view or "conv"
    if view not in ("conv", "scatter"):
        raise ValueError(f"view must be 'conv' or 'scatter', got {view!r}")
    if view == "scatter" and not geo.transposed:
        raise ValueError("view='scatter' is only for transposed convolutions; a forward convolution has the "
                         "'conv' view")
    xv = wv = bv = y = None
    if values or x is not None or weight is not None:
        xv, wv, bv = _demo_values(layer, geo, seed, x, weight, bias)
        y = _engine_output(layer, xv, wv, bv)
    chosen = _channels(geo, channels)
    if geo.transposed:
        build = _scatter_frames if view == "scatter" else _transposed_conv_frames
        grid = None
    else:
        build = _conv_frames
        grid = source_grid(geo)
    out = build(geo, chosen, xv, wv, grid)
    for i, fr in enumerate(out):
        fr.index = i
        if bv is not None:
            fr.bias = float(bv[fr.out_channel])
        if y is not None and fr.view == "conv":
            fr.value = float(y[(fr.out_channel,) + fr.position])
        fr.formula = formula(geo, fr, values=xv is not None)
    return FrameSet(geometry=geo, view=view, frames=out, input=xv, weight=wv, bias=bv, output=y,
                    source_grid=grid)


def _conv_frames(geo: Geometry, chosen, xv, wv, grid) -> List[Frame]:
    out = []
    for oc in chosen:
        g = geo.group_of_out(oc)
        for pos in _grid(geo.out_sizes):
            cells = []
            for ic in geo.in_channels_of_group(g):
                for tap, idx, inside in _indexing.conv_window(pos, geo.kernel, geo.stride, geo.padding,
                                                              geo.dilation, geo.in_sizes):
                    src = idx if inside else _source_of(grid, geo, idx)
                    widx = (oc, ic - g * geo.in_per_group) + tap
                    cells.append(Cell(ic, tap, widx, idx, inside, "input" if inside else "padding", src,
                                      _x(xv, ic, src), _w(wv, widx)))
            out.append(Frame("conv", 0, oc, g, pos, cells))
    return out


def _transposed_conv_frames(geo: Geometry, chosen, xv, wv, grid) -> List[Frame]:
    # the equivalent convolution: stride 1 over the stride-expanded input, padding d*(k-1)-p (+op at the end),
    # kernel flipped; conv_window's tap t' is the flipped tap k-1-t' of the real weight
    ones = (1,) * geo.n
    exp_sizes, exp_pad = geo.expanded_sizes, geo.expanded_padding
    out = []
    for oc in chosen:
        g = geo.group_of_out(oc)
        for pos in _grid(geo.out_sizes):
            cells = []
            for ic in geo.in_channels_of_group(g):
                for flipped, m, inside in _indexing.conv_window(pos, geo.kernel, ones, exp_pad, geo.dilation,
                                                                exp_sizes):
                    tap = tuple(k - 1 - t for k, t in zip(geo.kernel, flipped))
                    real = inside and all(v % s == 0 for v, s in zip(m, geo.stride))
                    src = tuple(v // s for v, s in zip(m, geo.stride)) if real else None
                    kind = "input" if real else ("zero" if inside else "padding")
                    widx = (ic, oc - g * geo.out_per_group) + tap
                    cells.append(Cell(ic, tap, widx, m, real, kind, src, _x(xv, ic, src), _w(wv, widx)))
            out.append(Frame("conv", 0, oc, g, pos, cells))
    return out


def _scatter_frames(geo: Geometry, chosen, xv, wv, grid) -> List[Frame]:
    out = []
    for oc in chosen:
        g = geo.group_of_out(oc)
        for ic in geo.in_channels_of_group(g):
            for j in _grid(geo.in_sizes):
                cells = []
                for tap, idx, inside in _indexing.transpose_scatter(j, geo.kernel, geo.stride, geo.padding,
                                                                    geo.dilation, geo.out_sizes):
                    widx = (ic, oc - g * geo.out_per_group) + tap
                    cells.append(Cell(ic, tap, widx, idx, inside, "output" if inside else "cropped", j,
                                      _x(xv, ic, j), _w(wv, widx)))
                out.append(Frame("scatter", 0, oc, g, j, cells, in_channel=ic))
    return out


def _x(xv, ic, src):
    if xv is None:
        return None
    return 0.0 if src is None else float(xv[(ic,) + src])


def _w(wv, widx):
    return None if wv is None else float(wv[widx])


# -- the formula line ------------------------------------------------------------------------------------------

def fmt_number(v: float) -> str:
    """Integers without a decimal point, others with 4 significant digits; negatives in parentheses."""
    s = str(int(v)) if float(v).is_integer() else f"{v:.4g}"
    return f"({s})" if v < 0 else s


def _ix(idx: Index) -> str:
    return ",".join(str(v) for v in idx)


def formula(geo: Geometry, fr: Frame, values: bool = False) -> str:
    """The formula line of a frame: symbolic, or with values the products and their sum."""
    if fr.view == "scatter":
        j = (fr.in_channel,) + fr.position
        lines = []
        for c in fr.cells:
            target = f"y[{fr.out_channel},{_ix(c.position)}]"
            if values:
                term = f"{fmt_number(c.x)}×{fmt_number(c.w)} = {fmt_number(c.product)}"
            else:
                term = f"x[{_ix(j)}]·w[{_ix(c.weight_index)}]"
            lines.append(f"{target} += {term}" + ("" if c.inside else " (cropped)"))
        return "; ".join(lines)
    lhs = f"y[{fr.out_channel},{_ix(fr.position)}]"
    if values:
        terms = [f"{fmt_number(c.x)}×{fmt_number(c.w)}" for c in fr.cells]
        if fr.bias is not None:
            terms.append(fmt_number(fr.bias))
        return f"{lhs} = {' + '.join(terms)} = {fmt_number(fr.value)}"
    terms = []
    for c in fr.cells:
        if c.kind == "input":
            xs = f"x[{c.in_channel},{_ix(c.source)}]"
        elif c.source is not None:   # padding that copies an input cell
            xs = f"x[{c.in_channel},{_ix(c.source)}]"
        else:
            xs = "0"
        terms.append(f"{xs}·w[{_ix(c.weight_index)}]")
    if geo.bias:
        terms.append(f"b[{fr.out_channel}]")
    return f"{lhs} = {' + '.join(terms)}"

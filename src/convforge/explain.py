"""``convforge.explain``: how a convolution layer computes, traced by the engine's own index rules.

:func:`explain` is a data builder (``_build``: sizes and counts from :func:`convforge.layer_view.layer_view`,
which takes them from :mod:`convforge.shapes`; traced values) followed by a renderer (``_render``: the text).
The output sizes come from :mod:`convforge.shapes`, the window of every explained output from
:mod:`convforge._indexing` (``conv_window`` / ``transpose_contributions`` / ``transpose_scatter``, the functions
the reference loops use), and every explained value is compared with the output of the real engine, so the
text and the result cannot disagree.

Usage::

    explain(layer, input, at=None, weight=None, bias=None)

``layer`` is a convolution module or a layer spec string; ``input`` is a shape (ints: sizes, parameters and
formulas only) or an array (values too).  ``at`` lists output positions to trace.  Everything is computed in
float64.

Example
-------
>>> import numpy as np
>>> e = explain("Conv1d(1, 1, 3, bias=False)", np.arange(16), weight=[0.1, 0.2, 0.3], at=[0])
>>> print(e.positions[0].equation)
y[0] = 0×0.1 + 1×0.2 + 2×0.3 = 0.8
>>> e.output_shape, e.params
((1, 1, 14), 3)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _canon, _indexing
from ._padding import pad
from ._spec import parse_layer
from .layer_view import LayerView, layer_view
from .nn import functional as F

__all__ = ["explain", "Explanation", "DimExplanation", "PositionTrace", "Term"]

Index = Tuple[int, ...]
Pairs = Tuple[Tuple[int, int], ...]
MAX_TERMS_IN_TEXT = 48


@dataclass
class Term:
    """One product of an explained output: ``x[input_index] × w[weight_index]``."""

    input_index: Index
    weight_index: Index
    x: float
    w: float

    @property
    def product(self) -> float:
        return self.x * self.w


@dataclass
class PositionTrace:
    """An explained output value: its products, the bias, their sum, and the engine's value."""

    output_index: Index
    terms: List[Term]
    bias: Optional[float]
    value: float           # sum of the products (in the order listed) plus the bias
    engine_value: float    # the same output as computed by convforge's engine
    padding_taps: int = 0  # taps that fell on the zero padding (conv) or outside the input (transposed)
    equation: str = ""


@dataclass
class DimExplanation:
    """One spatial dimension: sizes, the formula with the numbers filled in, and the padding split."""

    axis: int
    input_size: int
    kernel: int
    stride: int
    dilation: int
    padding: Tuple[int, int]
    output_padding: int
    output_size: int
    formula: str


@dataclass
class Explanation:
    """The result of :func:`explain`; ``.text`` is the readable trace, the other fields the same facts as data."""

    layer: str
    transposed: bool
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    dims: List[DimExplanation]
    weight_shape: Tuple[int, ...]
    bias_shape: Optional[Tuple[int, ...]]
    params: int
    params_formula: str
    macs: int
    groups: int
    positions: List[PositionTrace] = field(default_factory=list)
    output: Optional[np.ndarray] = None
    text: str = ""

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> Dict[str, Any]:
        def pos(p: PositionTrace):
            return {"output_index": list(p.output_index), "value": p.value, "engine_value": p.engine_value,
                    "bias": p.bias, "padding_taps": p.padding_taps, "equation": p.equation,
                    "terms": [{"input_index": list(t.input_index), "weight_index": list(t.weight_index),
                               "x": t.x, "w": t.w} for t in p.terms]}
        return {"layer": self.layer, "transposed": self.transposed, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "groups": self.groups,
                "dims": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in d.__dict__.items()}
                         for d in self.dims],
                "weight_shape": list(self.weight_shape),
                "bias_shape": None if self.bias_shape is None else list(self.bias_shape),
                "params": self.params, "params_formula": self.params_formula, "macs": self.macs,
                "positions": [pos(p) for p in self.positions], "text": self.text}


def _num(v) -> str:
    """Numbers as people write them: 2 not 2.0, 0.1 not 0.1000000000000000055."""
    if isinstance(v, (complex, np.complexfloating)):
        return f"({v.real:.12g}{v.imag:+.12g}j)"
    v = float(v)
    return "0" if v == 0 else f"{v:.12g}"


def _idx(index: Sequence[int]) -> str:
    return ", ".join(str(i) for i in index)


def _resolve_layer(layer):
    if isinstance(layer, str):
        layer = parse_layer(layer)
    if not (hasattr(layer, "kernel_size") and hasattr(layer, "in_channels") and hasattr(layer, "weight")):
        raise TypeError(f"explain expects a convolution layer (Conv*/ConvTranspose*) or its spec, got "
                        f"{type(layer).__name__}")
    return layer


def _input(layer, input) -> Tuple[Tuple[int, ...], Optional[np.ndarray]]:
    """``input`` -> (batched shape, batched float64 array or None)."""
    n = len(layer.kernel_size)
    if isinstance(input, (tuple, list)) and input and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in input) and len(input) <= n + 2 \
            and not isinstance(input, list):
        shape = tuple(int(v) for v in input)
        array = None
    else:
        array = np.asarray(input)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"explain: input must be numbers, got dtype {array.dtype}")
        array = array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)
        shape = array.shape
    if len(shape) == n:   # spatial only: one sample, one channel
        if layer.in_channels != 1:
            raise ValueError(f"explain: an input of shape {list(shape)} has no channel axis, but "
                             f"{type(layer).__name__} expects {layer.in_channels} channels; give (C, *spatial) or "
                             f"(N, C, *spatial)")
        shape = (1, 1) + shape
    elif len(shape) == n + 1:
        shape = (1,) + shape
    elif len(shape) != n + 2:
        raise ValueError(f"explain: {type(layer).__name__} expects an input with {n} (spatial), {n + 1} (C, *spatial) "
                         f"or {n + 2} (N, C, *spatial) dimensions, got shape {list(shape)}")
    if shape[1] != layer.in_channels:
        raise ValueError(f"explain: {type(layer).__name__} expects {layer.in_channels} input channels, got input of "
                         f"shape {list(shape)}")
    return shape, None if array is None else array.reshape(shape)


def _parameter(value, shape, what, default):
    if value is None:
        return None if default is None else np.asarray(default, dtype=np.float64)
    arr = np.asarray(value)
    arr = arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64)
    if arr.size != math.prod(shape):
        raise ValueError(f"explain: {what} needs {math.prod(shape)} values for shape {list(shape)}, got {arr.size}")
    return arr.reshape(shape)


def _positions(at, out_shape) -> List[Index]:
    n = len(out_shape) - 2
    if at is None:
        return []
    if isinstance(at, (int, np.integer)) or (isinstance(at, tuple) and all(isinstance(v, (int, np.integer))
                                                                          for v in at)):
        at = [at]
    result = []
    for pos in at:
        pos = (int(pos),) if isinstance(pos, (int, np.integer)) else tuple(int(v) for v in pos)
        if len(pos) == n:
            pos = (0, 0) + pos
        elif len(pos) == n + 1:
            pos = (0,) + pos
        elif len(pos) != n + 2:
            raise ValueError(f"explain: an output position has {n} (spatial), {n + 1} (channel, *spatial) or {n + 2} "
                             f"(batch, channel, *spatial) indices, got {pos}")
        full = []
        for v, size, name in zip(pos, out_shape, ["batch", "channel"] + [f"dim {a}" for a in range(n)]):
            if not -size <= v < size:
                raise ValueError(f"explain: output position {pos} is outside the output of shape {list(out_shape)} "
                                 f"({name} index {v} not in [0, {size}))")
            full.append(v % size)
        result.append(tuple(full))
    return result


def _dims(view: LayerView) -> List[DimExplanation]:
    dims = []
    for a, (i, k, s, d, (lo, hi), op, o) in enumerate(zip(view.in_sizes, view.kernel, view.stride, view.dilation,
                                                          view.padding, view.output_padding, view.out_sizes)):
        if view.transposed:
            formula = (f"o = (i-1)×s - p_lo - p_hi + d×(k-1) + output_padding + 1 = ({i}-1)×{s} - {lo} - {hi} + "
                       f"{d}×({k}-1) + {op} + 1 = {o}")
        else:
            formula = (f"o = floor((i + p_lo + p_hi - d×(k-1) - 1) / s) + 1 = floor(({i} + {lo} + {hi} - {d}×({k}-1) "
                       f"- 1) / {s}) + 1 = {o}")
        dims.append(DimExplanation(a, i, k, s, d, (lo, hi), op, o, formula))
    return dims


def _conv_trace(view: LayerView, pos, x, w) -> Tuple[List[Term], int]:
    bi, oc, spatial = pos[0], pos[1], pos[2:]
    cg = view.in_channels // view.groups
    g = oc // (view.out_channels // view.groups)
    terms, outside = [], 0
    for tap, idx, inside in _indexing.conv_window(spatial, view.kernel, view.stride, view.padding, view.dilation,
                                                  view.in_sizes):
        if not inside:
            outside += 1
            continue
        for ci in range(cg):
            xi = (bi, g * cg + ci) + idx
            wi = (oc, ci) + tap
            terms.append(Term(xi, wi, x[xi].item(), w[wi].item()))
    return terms, outside


def _transpose_trace(view: LayerView, pos, x, w) -> Tuple[List[Term], int]:
    bi, oc, spatial = pos[0], pos[1], pos[2:]
    cg = view.in_channels // view.groups
    g, oj = divmod(oc, view.out_channels // view.groups)
    terms = []
    pairs = list(_indexing.transpose_contributions(spatial, view.kernel, view.stride, view.padding, view.dilation,
                                                   view.in_sizes))
    for tap, idx in pairs:
        for ci in range(cg):
            xi = (bi, g * cg + ci) + idx
            wi = (g * cg + ci, oj) + tap
            terms.append(Term(xi, wi, x[xi].item(), w[wi].item()))
    terms.sort(key=lambda t: (t.input_index, t.weight_index))
    return terms, math.prod(view.kernel) - len(pairs)


def _equivalent_value(view: LayerView, x, w, pos):
    """Value at ``pos`` from the stride-expanded formulation, computed independently of the scatter view."""
    n = view.n
    bi, oc = pos[0], pos[1]
    cg = view.in_channels // view.groups
    g, oj = divmod(oc, view.out_channels // view.groups)
    xs = x[bi, g * cg:(g + 1) * cg]
    expanded = np.zeros((cg,) + tuple((i - 1) * s + 1 for i, s in zip(xs.shape[1:], view.stride)), xs.dtype)
    expanded[(slice(None),) + tuple(slice(None, None, s) for s in view.stride)] = xs
    total = 0.0
    flipped = np.flip(w[g * cg:(g + 1) * cg, oj], axis=tuple(range(1, n + 1)))
    for tap in np.ndindex(*view.kernel):
        e = tuple(o + t * d - (d * (k - 1) - lo)
                  for o, t, d, k, (lo, _) in zip(pos[2:], tap, view.dilation, view.kernel, view.padding))
        if all(0 <= v < m for v, m in zip(e, expanded.shape[1:])):
            total = total + np.dot(expanded[(slice(None),) + e], flipped[(slice(None),) + tap])
    return total


def _output_padding_reach(view: LayerView) -> List[Tuple[int, List[int], List[int]]]:
    """Per dimension with ``output_padding > 0``: ``(axis, the cells it adds, input×tap products reaching each)``."""
    reach = []
    for a, (i, k, s, d, (lo, _), op, o) in enumerate(zip(view.in_sizes, view.kernel, view.stride, view.dilation,
                                                        view.padding, view.output_padding, view.out_sizes)):
        if op:
            extra = list(range(o - op, o))
            reach.append((a, extra, [sum(1 for j in range(i) for t in range(k) if j * s - lo + t * d == e)
                                     for e in extra]))
    return reach


@dataclass
class _Facts:
    """What the renderer needs beyond the public :class:`Explanation`: the layer view (after any non-zero padding
    mode was applied to the input), that mode, the padding as the layer states it, and the transposed extras."""

    view: LayerView
    padding_mode: str
    mode_pads: Pairs
    stated_padding: Any
    scatter_first: List[Tuple[Index, Index, bool]] = field(default_factory=list)
    output_padding_reach: List[Tuple[int, List[int], List[int]]] = field(default_factory=list)
    expanded_values: List[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# the data: sizes, counts and traced values
# ---------------------------------------------------------------------------------------------------------------
def _build(layer, input, at, weight, bias) -> Tuple[Explanation, _Facts]:
    """Compute and validate everything :func:`explain` reports; no text."""
    layer = _resolve_layer(layer)
    shape, x = _input(layer, input)
    view = layer_view(layer, shape)
    mode = view.padding_mode
    mode_pads = view.padding
    if mode != "zeros":   # pad with the mode's values, then convolve with no padding
        if x is not None:
            x = pad(x, _canon.torch_pad_order(mode_pads), mode=mode)
        padded = tuple(i + lo + hi for i, (lo, hi) in zip(view.in_sizes, mode_pads))
        view = replace(view, in_sizes=padded, padding=((0, 0),) * view.n)
    w_shape = tuple(layer.weight.shape)
    w = _parameter(weight, w_shape, "weight", layer.weight)
    b = _parameter(bias, (view.out_channels,), "bias", layer.bias) if layer.bias is not None or bias is not None \
        else None
    view = replace(view, bias=b is not None)
    exp = Explanation(repr(layer), view.transposed, view.input_shape, view.output_shape, _dims(view), w_shape,
                      (view.out_channels,) if b is not None else None, view.params, _params_formula(view),
                      view.macs, view.groups)
    facts = _Facts(view, mode, mode_pads, getattr(layer, "padding", None))
    if view.transposed:
        facts.scatter_first = list(_indexing.transpose_scatter((0,) * view.n, view.kernel, view.stride,
                                                               view.padding, view.dilation, view.out_sizes))
        facts.output_padding_reach = _output_padding_reach(view)
    positions = _positions(at, view.output_shape)
    if positions and x is None:
        raise ValueError("explain: tracing output values (at=...) needs an input array, not just a shape")
    if x is None:
        return exp, facts
    if view.transposed:
        exp.output = F.conv_transpose(x, w, b, view.stride, view.padding, view.output_padding, view.groups,
                                      view.dilation)
    else:
        exp.output = F.conv(x, w, b, view.stride, view.padding, view.dilation, view.groups)
    for pos in positions:
        terms, missing = (_transpose_trace if view.transposed else _conv_trace)(view, pos, x, w)
        bias_v = None if b is None else b[pos[1]].item()
        value = sum((t.product for t in terms), 0.0) + (0.0 if bias_v is None else bias_v)
        trace = PositionTrace(pos, terms, bias_v, value, exp.output[pos].item(), missing)
        trace.equation = _equation(pos, terms, bias_v, value)
        exp.positions.append(trace)
        if view.transposed:
            facts.expanded_values.append(_equivalent_value(view, x, w, pos) + (0.0 if bias_v is None else bias_v))
    return exp, facts


def _params_formula(view: LayerView) -> str:
    w_shape = view.weight_shape
    kdims = "×".join(map(str, view.kernel))
    return f"{w_shape[0]}×{w_shape[1]}×{kdims}" + (f" + {view.out_channels}" if view.bias else "") + \
        f" = {view.params}"


# ---------------------------------------------------------------------------------------------------------------
# the text
# ---------------------------------------------------------------------------------------------------------------
def _equation(pos, terms, bias, value) -> str:
    name = f"y[{_idx(pos[2:])}]" if pos[:2] == (0, 0) else f"y[{_idx(pos)}]"
    shown = terms[:MAX_TERMS_IN_TEXT]
    parts = [f"{_num(t.x)}×{_num(t.w)}" for t in shown]
    if len(terms) > len(shown):
        rest = sum(t.product for t in terms[len(shown):])
        parts.append(f"... ({len(terms) - len(shown)} more products, summing to {_num(rest)})")
    if bias is not None:
        parts.append(f"{_num(bias)} (bias)")
    return f"{name} = {' + '.join(parts) if parts else '0'} = {_num(value)}"


def _term_sources(terms, transposed) -> str:
    if not terms:
        return ""
    shown = terms[:MAX_TERMS_IN_TEXT]
    more = f", ... ({len(terms) - len(shown)} more)" if len(terms) > len(shown) else ""
    if all(t.input_index[1] == 0 and t.weight_index[:2] == (0, 0) for t in terms):   # one channel: spatial only
        src = ", ".join(f"x[{_idx(t.input_index[2:])}]·w[{_idx(t.weight_index[2:])}]" for t in shown)
        return f"    products (spatial indices x[input]·w[tap]): {src}{more}"
    src = ", ".join(f"x[{_idx(t.input_index[1:])}]·w[{_idx(t.weight_index)}]" for t in shown)
    w_axes = "in, out/groups" if transposed else "out, in/groups"
    return f"    products (x[channel, input]·w[{w_axes}, tap]): {src}{more}"


def _expanded_view(view: LayerView) -> List[str]:
    """The transposed conv as a stride-1 convolution over the stride-expanded, padded input with the kernel
    flipped: per dim, ``s-1`` zeros between cells, ``d*(k-1) - p_lo`` cells before and
    ``d*(k-1) - p_hi + output_padding`` after (negative = cropped)."""
    lines = []
    for a, (i, k, s, d, (lo, hi), op) in enumerate(zip(view.in_sizes, view.kernel, view.stride, view.dilation,
                                                      view.padding, view.output_padding)):
        before, after = d * (k - 1) - lo, d * (k - 1) - hi + op
        expanded = (i - 1) * s + 1
        total = before + expanded + after
        lines.append(f"  dim {a}: {i} inputs with {s - 1} zero(s) between them -> {expanded} cells; padded by "
                     f"{before} before and {after} after (d×(k-1) - p_lo = {d}×{k - 1} - {lo}, d×(k-1) - p_hi + "
                     f"output_padding = {d}×{k - 1} - {hi} + {op}) -> {total} cells; a stride-1 window of {k} taps "
                     f"(dilation {d}) gives {total - d * (k - 1)} outputs")
        if view.n == 1 and total <= 80 and before >= 0 and after >= 0:
            cells = ["0"] * before
            for j in range(i):
                cells += [f"x{j}"] + (["0"] * (s - 1) if j < i - 1 else [])
            cells += ["0"] * after
            lines.append("         " + " ".join(cells))
    lines.append("  kernel flipped in every spatial dim and its channel axes swapped per group: "
                 "w'[o, i, t] = w[i, o, k-1-t]")
    return lines


def _output_padding_note(view: LayerView, reach) -> List[str]:
    lines = []
    for a, extra, counts in reach:
        op, o = view.output_padding[a], view.out_sizes[a]
        where = ", ".join(f"index {e}: {c} input×tap product(s) per channel pair" for e, c in zip(extra, counts))
        if all(counts):
            verdict = "real outputs that the padding would otherwise have cropped -- not zeros"
        elif not any(counts):
            verdict = "no input reaches them here (p_hi < output_padding), so they hold only the bias"
        else:
            verdict = "some are real outputs, the rest hold only the bias"
        lines.append(f"  dim {a}: output_padding={op} adds {op} cell(s) at the end ({o - op} -> {o}); {where}: "
                     f"{verdict}.")
    if lines:
        lines.insert(0, "What output_padding adds (it only un-crops cells at the far end; it never inserts zeros):")
    return lines


def _render(exp: Explanation, facts: _Facts) -> str:
    view = facts.view
    g, cin, cout, kprod = view.groups, view.in_channels, view.out_channels, math.prod(view.kernel)
    has_bias = exp.bias_shape is not None
    lines = [f"{exp.layer}", f"input {list(exp.input_shape)} -> output {list(exp.output_shape)}", ""]
    if facts.padding_mode != "zeros":
        lines.append(f"padding_mode={facts.padding_mode!r}: the input is first padded by {list(facts.mode_pads)} "
                     f"with {facts.padding_mode} values, then convolved with no padding; indices below refer to "
                     f"that padded input.")
    lines.append("Output size per spatial dimension:")
    for d in exp.dims:
        lines.append(f"  dim {d.axis}: i={d.input_size}, k={d.kernel}, s={d.stride}, d={d.dilation}, "
                     f"padding (lo, hi)=({d.padding[0]}, {d.padding[1]})" +
                     (f", output_padding={d.output_padding}" if view.transposed else "") + f": {d.formula}")
    if isinstance(facts.stated_padding, str) and facts.stated_padding == "same":
        lines.append("  padding='same': total d×(k-1) per dim (stride 1), split with the smaller half first: " +
                     ", ".join(f"{lo + hi} -> ({lo}, {hi})" for lo, hi in view.padding))
    elif any(lo != hi for lo, hi in view.padding):
        lines.append("  padding is asymmetric: " + ", ".join(f"dim {a}: {lo} before, {hi} after"
                                                             for a, (lo, hi) in enumerate(view.padding)))
    kernel_list = ", ".join(map(str, view.kernel))
    if view.transposed:
        w_formula = f"(in, out/groups, *kernel) = ({cin}, {cout}/{g}, {kernel_list})"
        mac_formula = (f"N×C_in×prod(in)×(C_out/groups)×prod(k) = {view.batch}×{cin}×{math.prod(view.in_sizes)}×"
                       f"{cout // g}×{kprod}")
    else:
        w_formula = f"(out, in/groups, *kernel) = ({cout}, {cin}/{g}, {kernel_list})"
        mac_formula = (f"N×C_out×prod(out)×(C_in/groups)×prod(k) = {view.batch}×{cout}×"
                       f"{math.prod(view.out_sizes)}×{cin // g}×{kprod}")
    lines += ["", "Parameters:", f"  weight {list(exp.weight_shape)}: {w_formula}",
              f"  bias {[cout] if has_bias else None}",
              ("  count = in×(out/groups)×prod(kernel)" if view.transposed else
               "  count = out×(in/groups)×prod(kernel)") + (" + out" if has_bias else "") +
              f" = {exp.params_formula}",
              f"  MACs = {mac_formula} = {exp.macs:,}  (FLOPs = 2×MACs = {2 * exp.macs:,}; bias not counted)"]
    if g > 1:
        spans = [f"out {k * (cout // g)}-{(k + 1) * (cout // g) - 1} <- in {k * (cin // g)}-{(k + 1) * (cin // g) - 1}"
                 for k in range(min(g, 6))]
        lines.append(f"  groups={g}{' (depthwise)' if g == cin else ''}: each group of channels is a separate "
                     f"convolution: " + "; ".join(spans) + ("; ..." if g > 6 else ""))
    if view.transposed:
        first = facts.scatter_first
        lines += ["", "As a scatter: input cell j adds x[j]×w[t] into output j×s - p_lo + t×d for every tap t "
                  "(targets outside [0, o) are cropped by the padding).",
                  "  e.g. input " + str(list((0,) * view.n)) + " spreads its kernel onto outputs " +
                  ", ".join(f"{list(idx)}{'' if inside else ' (cropped)'}" for _, idx, inside in first[:16]) +
                  (" ..." if len(first) > 16 else "")]
        lines += ["", "As a convolution over the stride-expanded, padded input with the flipped kernel:"]
        lines += _expanded_view(view)
        note = _output_padding_note(view, facts.output_padding_reach)
        if note:
            lines += [""] + note
    if exp.positions:
        lines += ["", "Output values (products from the engine's index rules; value checked against the engine):"]
    for k, trace in enumerate(exp.positions):
        lines.append("  " + trace.equation)
        src = _term_sources(trace.terms, view.transposed)
        if src:
            lines.append(src)
        if trace.padding_taps:
            why = ("fell on the zero padding" if not view.transposed else
                   "receive no input cell here (the stride skips them or the input ends)")
            lines.append(f"    ({trace.padding_taps} of {kprod} kernel taps {why})")
        if view.transposed:
            lines.append(f"    same value from the expanded-input convolution: {_num(facts.expanded_values[k])}")
        if not np.isclose(trace.value, trace.engine_value, rtol=1e-9, atol=1e-12):  # pragma: no cover
            lines.append(f"    WARNING: the engine computed {_num(trace.engine_value)}")
    return "\n".join(lines)


def explain(layer, input, *, at=None, weight=None, bias=None) -> Explanation:
    """Explain a convolution or transposed convolution: sizes, padding, parameters, and chosen output values.

    Args:
        layer: a ``Conv1d/2d/3d`` / ``ConvTranspose1d/2d/3d`` module, or its spec string
            (``"Conv2d(3, 8, 3, padding=1)"``).
        input: an input shape (a tuple of ints, for sizes and formulas only) or an input array (list or ndarray;
            spatial only for one channel, ``(C, *S)`` or ``(N, C, *S)``).
        at: output positions to trace: ints (1-D), spatial tuples (batch 0, channel 0), ``(c, *spatial)`` or
            ``(n, c, *spatial)``; negative indices count from the end.  Needs an input array.
        weight: weight values (any shape with the right number of elements, reshaped to the layer's weight shape);
            default: the layer's own weight.
        bias: bias values; default: the layer's bias (None when the layer has none).

    Returns:
        :class:`Explanation`: ``.text`` plus ``.dims``, ``.weight_shape``, ``.params``, ``.positions`` (each with
        its ``terms``, ``value`` and ``engine_value``) and ``.output`` (the engine's output).

    Shape:
        conv ``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1``; transposed
        ``o = (i-1)*s - p_lo - p_hi + d*(k-1) + op + 1``.

    >>> e = explain("ConvTranspose1d(1, 1, 3, stride=2, bias=False)", [1.0, 2.0], weight=[1, 10, 100], at=[2])
    >>> print(e.positions[0].equation)
    y[2] = 1×100 + 2×1 = 102
    """
    exp, facts = _build(layer, input, at, weight, bias)
    exp.text = _render(exp, facts)
    return exp

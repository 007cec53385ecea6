// convforge draw: the index rules of the interactive page (shipped as package data, read by draw/_page_js.py).
// Mirrors convforge's Python: _indexing.conv_window / transpose_scatter, the size formulas of shapes, and the
// cell each padding mode copies (Python gets it from pad).  Runs unchanged in the browser (window.CF) and under
// node (module.exports): tests/test_page_js.py runs it on random layers and compares every frame with
// convforge.draw.frames; the page re-checks the embedded Python frames when it loads.
(function (root) {
"use strict";

function fail(msg) { const e = new Error(msg); e.name = "LayerError"; throw e; }
function isInt(v) { return Number.isInteger(v); }
function mod(a, b) { return ((a % b) + b) % b; }

// every index in the box ranges[d] = [lo, hi), last dimension fastest (itertools.product order)
function product(ranges) {
  let out = [[]];
  for (const [lo, hi] of ranges) {
    const next = [];
    for (const p of out) for (let v = lo; v < hi; v++) next.push(p.concat([v]));
    out = next;
  }
  return out;
}
function box(sizes) { return sizes.map(s => [0, s]); }

// shapes.conv_output_size
function convOutputSize(i, k, s, lo, hi, d) {
  const padded = i + lo + hi, span = d * (k - 1) + 1;
  if (padded < span) fail(`padded input size ${padded} (input ${i} + padding ${lo}+${hi}) is smaller than the ` +
                          `dilated kernel size ${span} (kernel ${k}, dilation ${d})`);
  return Math.floor((padded - span) / s) + 1;
}
// shapes.conv_transpose_output_size
function convTransposeOutputSize(i, k, s, lo, hi, d, op) {
  if (op >= Math.max(s, d)) fail(`output_padding (${op}) must be smaller than either stride (${s}) or dilation (${d})`);
  const o = (i - 1) * s - lo - hi + d * (k - 1) + op + 1;
  if (o < 1) fail(`transposed convolution output size would be ${o} (input ${i}, kernel ${k}, stride ${s}, padding ${lo}+${hi}); reduce the padding`);
  return o;
}

function checkList(name, v, n, min) {
  if (!Array.isArray(v) || v.length !== n) fail(`${name} needs ${n} value(s), one per spatial dimension`);
  for (const x of v) if (!isInt(x) || x < min) fail(`${name} must be integers >= ${min}, got ${v.join(",")}`);
}

// the layer + input as the pictures need it (Python: draw._frames.geometry)
function geometry(cfg) {
  const n = cfg.inSizes.length;
  if (n < 1 || n > 3) fail("1, 2 or 3 spatial dimensions");
  checkList("input size", cfg.inSizes, n, 1);
  checkList("kernel", cfg.kernel, n, 1);
  checkList("stride", cfg.stride, n, 1);
  checkList("dilation", cfg.dilation, n, 1);
  checkList("output_padding", cfg.outputPadding, n, 0);
  if (!Array.isArray(cfg.padding) || cfg.padding.length !== n) fail(`padding needs ${n} value(s)`);
  for (const p of cfg.padding) if (!Array.isArray(p) || p.length !== 2 || !isInt(p[0]) || !isInt(p[1]) || p[0] < 0 || p[1] < 0)
    fail("padding must be non-negative integers (lo:hi pairs allowed)");
  for (const [name, v] of [["in_channels", cfg.inChannels], ["out_channels", cfg.outChannels], ["groups", cfg.groups]])
    if (!isInt(v) || v < 1) fail(`${name} must be a positive integer`);
  if (cfg.inChannels % cfg.groups) fail(`in_channels (${cfg.inChannels}) must be divisible by groups (${cfg.groups})`);
  if (cfg.outChannels % cfg.groups) fail(`out_channels (${cfg.outChannels}) must be divisible by groups (${cfg.groups})`);
  const mode = cfg.paddingMode || "zeros";
  const g = {n, transposed: !!cfg.transposed, inChannels: cfg.inChannels, outChannels: cfg.outChannels,
             groups: cfg.groups, inSizes: cfg.inSizes.slice(), kernel: cfg.kernel.slice(), stride: cfg.stride.slice(),
             padding: cfg.padding.map(p => p.slice()), dilation: cfg.dilation.slice(), paddingMode: mode,
             bias: cfg.bias !== false};
  g.inPerGroup = g.inChannels / g.groups;
  g.outPerGroup = g.outChannels / g.groups;
  if (g.transposed) {
    if (mode !== "zeros") fail("transposed convolutions support only padding_mode 'zeros'");
    g.outputPadding = cfg.outputPadding.slice();
    g.outSizes = g.inSizes.map((i, d) => convTransposeOutputSize(i, g.kernel[d], g.stride[d], g.padding[d][0],
                                                                 g.padding[d][1], g.dilation[d], g.outputPadding[d]));
    g.expandedSizes = g.inSizes.map((i, d) => (i - 1) * g.stride[d] + 1);
    g.expandedPadding = g.kernel.map((k, d) => [g.dilation[d] * (k - 1) - g.padding[d][0],
                                                g.dilation[d] * (k - 1) - g.padding[d][1] + g.outputPadding[d]]);
  } else {
    g.outputPadding = g.inSizes.map(() => 0);
    g.inSizes.forEach((i, d) => {
      const [lo, hi] = g.padding[d];
      if (mode === "reflect" && (lo >= i || hi >= i)) fail(`reflect padding (${lo}, ${hi}) must be smaller than the input size ${i}`);
      if (mode === "circular" && (lo > i || hi > i)) fail(`circular padding (${lo}, ${hi}) must be no larger than the input size ${i}`);
    });
    g.outSizes = g.inSizes.map((i, d) => convOutputSize(i, g.kernel[d], g.stride[d], g.padding[d][0], g.padding[d][1],
                                                        g.dilation[d]));
  }
  const cells = v => v.reduce((a, b) => a * b, 1);
  if (cells(g.inSizes) > 4096 || cells(g.outSizes) > 4096) fail("too many cells to draw; use a smaller input");
  if (g.inChannels > 16 || g.outChannels > 16) fail("at most 16 channels on this page");
  return g;
}

function groupOf(c, channels, groups) { return Math.floor(c / (channels / groups)); }

// which input cell a padded-input cell holds (Python pads a grid of flat indices with convforge's pad)
function sourceOf(idx, g) {
  const out = [];
  for (let d = 0; d < g.n; d++) {
    const v = idx[d], n = g.inSizes[d];
    if (v >= 0 && v < n) { out.push(v); continue; }
    if (g.paddingMode === "zeros") return null;
    if (g.paddingMode === "replicate") out.push(Math.min(Math.max(v, 0), n - 1));
    else if (g.paddingMode === "circular") out.push(mod(v, n));
    else if (g.paddingMode === "reflect") out.push(v < 0 ? -v : 2 * (n - 1) - v);
    else fail(`unknown padding_mode ${g.paddingMode}`);
  }
  return out;
}

// _indexing.conv_window: [tap, input index, inside] for each kernel tap of output pos
function convWindow(pos, kernel, stride, padding, dilation, sizes) {
  return product(box(kernel)).map(tap => {
    const idx = tap.map((t, d) => pos[d] * stride[d] - padding[d][0] + t * dilation[d]);
    return [tap, idx, idx.every((v, d) => v >= 0 && v < sizes[d])];
  });
}
// _indexing.transpose_scatter
function transposeScatter(j, kernel, stride, padding, dilation, outSizes) {
  return product(box(kernel)).map(tap => {
    const idx = tap.map((t, d) => j[d] * stride[d] - padding[d][0] + t * dilation[d]);
    return [tap, idx, idx.every((v, d) => v >= 0 && v < outSizes[d])];
  });
}

function chosenChannels(g, channels) {
  if (channels === "all") return [...Array(g.outChannels).keys()];
  if (Array.isArray(channels)) return channels.slice();
  return [...Array(g.groups).keys()].map(k => k * g.outPerGroup);
}

function range(a, b) { const r = []; for (let v = a; v < b; v++) r.push(v); return r; }

// Python: draw._frames.frames (cells in (input channel, tap) order; see _frames.Cell for the fields)
function frames(g, view, channels) {
  view = view || "conv";
  if (view === "scatter" && !g.transposed) fail("the scatter view is for transposed convolutions");
  const out = [];
  for (const oc of chosenChannels(g, channels)) {
    const grp = groupOf(oc, g.outChannels, g.groups);
    const ics = range(grp * g.inPerGroup, (grp + 1) * g.inPerGroup);
    if (view === "scatter") {
      for (const ic of ics) for (const j of product(box(g.inSizes))) {
        const cells = transposeScatter(j, g.kernel, g.stride, g.padding, g.dilation, g.outSizes).map(([tap, idx, inside]) => (
          {inChannel: ic, tap, weightIndex: [ic, oc - grp * g.outPerGroup, ...tap], position: idx, inside,
           kind: inside ? "output" : "cropped", source: j}));
        out.push({view, outChannel: oc, group: grp, position: j, inChannel: ic, cells});
      }
      continue;
    }
    for (const pos of product(box(g.outSizes))) {
      const cells = [];
      for (const ic of ics) {
        if (g.transposed) {
          const ones = g.kernel.map(() => 1);
          for (const [flipped, m, inside] of convWindow(pos, g.kernel, ones, g.expandedPadding, g.dilation, g.expandedSizes)) {
            const tap = flipped.map((t, d) => g.kernel[d] - 1 - t);
            const real = inside && m.every((v, d) => mod(v, g.stride[d]) === 0);
            cells.push({inChannel: ic, tap, weightIndex: [ic, oc - grp * g.outPerGroup, ...tap], position: m, inside: real,
                        kind: real ? "input" : (inside ? "zero" : "padding"),
                        source: real ? m.map((v, d) => v / g.stride[d]) : null});
          }
        } else {
          for (const [tap, idx, inside] of convWindow(pos, g.kernel, g.stride, g.padding, g.dilation, g.inSizes)) {
            cells.push({inChannel: ic, tap, weightIndex: [oc, ic - grp * g.inPerGroup, ...tap], position: idx, inside,
                        kind: inside ? "input" : "padding", source: inside ? idx : sourceOf(idx, g)});
          }
        }
      }
      out.push({view, outChannel: oc, group: grp, position: pos, inChannel: null, cells});
    }
  }
  out.forEach((f, k) => { f.index = k; });
  return out;
}

// the page's numbers (Python: draw._page.page_values): x = (7f+3) mod 10, w = (3f+1) mod 5 - 2, b = oc mod 3 - 1
function flatIndex(idx, shape) { let f = 0; for (let d = 0; d < shape.length; d++) f = f * shape[d] + idx[d]; return f; }
function weightShape(g) {
  return g.transposed ? [g.inChannels, g.outPerGroup, ...g.kernel] : [g.outChannels, g.inPerGroup, ...g.kernel];
}
function xValue(g, ic, pos) { return (7 * flatIndex([ic, ...pos], [g.inChannels, ...g.inSizes]) + 3) % 10; }
function wValue(g, widx) { return (3 * flatIndex(widx, weightShape(g)) + 1) % 5 - 2; }
function bValue(g, oc) { return g.bias ? (oc % 3) - 1 : null; }

// products and their sum for a 'conv' frame: what the highlighted output cell computes
function arithmetic(g, f) {
  const terms = f.cells.map(c => {
    const x = c.source === null || c.source === undefined || (g.transposed && !c.inside) ? 0 : xValue(g, c.inChannel, c.source);
    const w = wValue(g, c.weightIndex);
    return {x, w, p: x * w};
  });
  const b = bValue(g, f.outChannel);
  const sum = terms.reduce((a, t) => a + t.p, 0) + (b === null ? 0 : b);
  return {terms, bias: b, sum};
}

const api = {product, convOutputSize, convTransposeOutputSize, geometry, groupOf, sourceOf, convWindow,
             transposeScatter, frames, xValue, wValue, bValue, arithmetic, weightShape, fail};
if (typeof module !== "undefined" && module.exports) module.exports = api;
else root.CF = api;
})(typeof window !== "undefined" ? window : this);

// convforge draw: the interactive page itself (controls, slider, grids, formulas); uses window.CF from index.js.
// Shipped as package data and inlined into the page by draw/_page.py.
(function () {
"use strict";
const CF = window.CF;
const $ = id => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const color = g => PALETTE[g % PALETTE.length];
const initial = JSON.parse($("cf-initial").textContent);
let geo = null, frs = [], view = "conv", timer = null;

function num(v) { return Number.isInteger(v) ? String(v) : v.toPrecision(4); }
function paren(v) { const s = num(v); return v < 0 ? `(${s})` : s; }
function ix(a) { return a.join(","); }

function parseList(text, n, name) {
  const parts = String(text).split(",").map(s => s.trim()).filter(s => s.length);
  const vals = parts.map(s => { const v = Number(s); if (!Number.isInteger(v)) CF.fail(`${name}: '${s}' is not an integer`); return v; });
  if (vals.length === 1) return Array(n).fill(vals[0]);
  if (vals.length !== n) CF.fail(`${name} needs 1 or ${n} comma-separated values`);
  return vals;
}
function parsePadding(text, n) {
  const parts = String(text).split(",").map(s => s.trim()).filter(s => s.length);
  const pairs = parts.map(s => {
    const lh = s.split(":").map(Number);
    if (!lh.every(Number.isInteger) || lh.length > 2) CF.fail(`padding: '${s}' is not an int or lo:hi`);
    return lh.length === 1 ? [lh[0], lh[0]] : lh;
  });
  if (pairs.length === 1) return Array(n).fill(0).map(() => pairs[0].slice());
  if (pairs.length !== n) CF.fail(`padding needs 1 or ${n} values`);
  return pairs;
}

function readConfig() {
  const sizes = $("cf-input").value.split(",").map(s => Number(s.trim())).filter(v => !Number.isNaN(v));
  const n = sizes.length;
  return {
    transposed: $("cf-transposed").checked,
    inChannels: Number($("cf-in-channels").value), outChannels: Number($("cf-out-channels").value),
    groups: Number($("cf-groups").value), inSizes: sizes,
    kernel: parseList($("cf-kernel").value, n, "kernel"), stride: parseList($("cf-stride").value, n, "stride"),
    padding: parsePadding($("cf-padding").value, n), dilation: parseList($("cf-dilation").value, n, "dilation"),
    outputPadding: parseList($("cf-output-padding").value, n, "output_padding"),
    paddingMode: $("cf-padding-mode").value, bias: $("cf-bias").checked,
  };
}

function layerName(g) {
  const n = g.n, cls = (g.transposed ? "ConvTranspose" : "Conv") + n + "d";
  const t = v => n === 1 ? `(${v[0]},)` : `(${v.join(", ")})`;
  let s = `${cls}(${g.inChannels}, ${g.outChannels}, kernel_size=${t(g.kernel)}, stride=${t(g.stride)}`;
  if (g.padding.some(p => p[0] || p[1])) s += g.padding.every(p => p[0] === p[1]) ? `, padding=${t(g.padding.map(p => p[0]))}` :
    `, padding=(${g.padding.map(p => `(${p[0]}, ${p[1]})`).join(", ")})`;
  if (g.dilation.some(d => d !== 1)) s += `, dilation=${t(g.dilation)}`;
  if (g.transposed && g.outputPadding.some(v => v)) s += `, output_padding=${t(g.outputPadding)}`;
  if (g.groups !== 1) s += `, groups=${g.groups}`;
  if (!g.bias) s += ", bias=False";
  if (g.paddingMode !== "zeros") s += `, padding_mode=${g.paddingMode}`;
  return s + ")";
}

function sizeFormula(g) {
  const names = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}[g.n];
  return g.inSizes.map((i, d) => {
    const [k, s, [lo, hi], dl, op, o] = [g.kernel[d], g.stride[d], g.padding[d], g.dilation[d], g.outputPadding[d], g.outSizes[d]];
    return g.transposed ? `${names[d]}_out = (${i}-1)*${s} - ${lo} - ${hi} + ${dl}*(${k}-1) + ${op} + 1 = ${o}`
                        : `${names[d]}_out = floor((${i} + ${lo} + ${hi} - ${dl}*(${k}-1) - 1) / ${s}) + 1 = ${o}`;
  }).join("\n");
}

// a grid of n-d cells: 1-D one row, 2-D rows x cols, 3-D a row of depth slices
function grid(kind, channel, ranges, style) {
  const wrap = document.createElement("div");
  wrap.className = "cf-slices";
  const n = ranges.length;
  const slices = n === 3 ? CF.product([ranges[0]]).map(v => v[0]) : [null];
  const rows = n === 1 ? [0, 1] : ranges[n - 2], cols = ranges[n - 1];
  for (const sl of slices) {
    const sdiv = document.createElement("div");
    sdiv.className = "cf-slice";
    if (sl !== null) { const lab = document.createElement("div"); lab.className = "cf-slice-label"; lab.textContent = `d=${sl}`; sdiv.appendChild(lab); }
    const table = document.createElement("div");
    table.className = "cf-grid";
    table.style.gridTemplateColumns = `16px repeat(${cols[1] - cols[0]}, var(--cell))`;
    table.appendChild(document.createElement("span"));
    for (let c = cols[0]; c < cols[1]; c++) { const h = document.createElement("span"); h.className = "cf-axis"; h.textContent = c; table.appendChild(h); }
    for (let r = rows[0]; r < rows[1]; r++) {
      const h = document.createElement("span"); h.className = "cf-axis"; h.textContent = n === 1 ? "" : r; table.appendChild(h);
      for (let c = cols[0]; c < cols[1]; c++) {
        const pos = n === 1 ? [c] : n === 2 ? [r, c] : [sl, r, c];
        const st = style(pos);
        const cell = document.createElement("div");
        cell.className = "cf-cell" + (st.hl ? " hl" : "") + (st.cls ? " " + st.cls : "");
        cell.dataset.grid = kind; cell.dataset.c = channel; cell.dataset.pos = ix(pos);
        cell.dataset.hl = st.hl ? "1" : "0"; cell.dataset.kind = st.kind || "";
        cell.style.background = st.fill || "";
        if (st.hl) cell.style.borderColor = st.stroke;
        cell.textContent = st.text === undefined ? "" : st.text;
        table.appendChild(cell);
      }
    }
    sdiv.appendChild(table);
    wrap.appendChild(sdiv);
  }
  return wrap;
}

function tint(hex, a) {
  const v = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  return `rgb(${v.map(x => Math.round(a * x + (1 - a) * 255)).join(",")})`;
}

function panel(title, blocks) {
  const p = document.createElement("div");
  p.className = "cf-panel";
  const h = document.createElement("h3"); h.textContent = title; p.appendChild(h);
  for (const [label, col, node] of blocks) {
    const row = document.createElement("div"); row.className = "cf-block";
    const lab = document.createElement("div"); lab.className = "cf-label"; lab.style.color = col; lab.textContent = label;
    row.appendChild(lab); row.appendChild(node); p.appendChild(row);
  }
  return p;
}

function render() {
  const k = Number($("cf-slider").value);
  const f = frs[k], g = geo;
  const showValues = $("cf-values").checked;
  $("cf-frame-label").textContent = `frame ${k + 1} / ${frs.length}`;
  const hl = new Set(f.cells.map(c => `${c.inChannel}|${ix(c.position)}`));
  const panels = $("cf-panels");
  panels.innerHTML = "";
  const ranges = g.transposed ? g.expandedSizes.map((e, d) => [Math.min(0, -g.expandedPadding[d][0]), Math.max(e, e + g.expandedPadding[d][1])])
                              : g.inSizes.map((i, d) => [-g.padding[d][0], i + g.padding[d][1]]);
  const inBlocks = [];
  for (let ic = 0; ic < g.inChannels; ic++) {
    const grp = CF.groupOf(ic, g.inChannels, g.groups), col = color(grp), active = grp === f.group;
    let style;
    if (f.view === "scatter") {
      style = pos => {
        const on = ic === f.inChannel && ix(pos) === ix(f.position);
        return {hl: on, kind: "input", fill: tint(col, on ? 0.6 : active ? 0.22 : 0.1), stroke: col,
                text: showValues ? num(CF.xValue(g, ic, pos)) : ""};
      };
    } else if (g.transposed) {
      style = pos => {
        const on = hl.has(`${ic}|${ix(pos)}`);
        const span = pos.every((v, d) => v >= 0 && v < g.expandedSizes[d]);
        const inWin = pos.every((v, d) => v >= -g.expandedPadding[d][0] && v < g.expandedSizes[d] + g.expandedPadding[d][1]);
        const isIn = span && pos.every((v, d) => v % g.stride[d] === 0);
        const st = {hl: on, stroke: col};
        if (isIn && !inWin) Object.assign(st, {kind: "cropped", cls: "crop", text: "×"});
        else if (isIn) { const src = pos.map((v, d) => v / g.stride[d]);
          Object.assign(st, {kind: "input", fill: tint(col, on ? 0.6 : active ? 0.22 : 0.1), text: showValues ? num(CF.xValue(g, ic, src)) : ix(src)}); }
        else Object.assign(st, {kind: span ? "zero" : "padding", cls: span ? "zero" : "pad", text: "0", fill: on ? tint(col, 0.3) : ""});
        return st;
      };
    } else {
      style = pos => {
        const on = hl.has(`${ic}|${ix(pos)}`);
        const inside = pos.every((v, d) => v >= 0 && v < g.inSizes[d]);
        const src = inside ? pos : CF.sourceOf(pos, g);
        const st = {hl: on, stroke: col, kind: inside ? "input" : "padding", cls: inside ? "" : "pad"};
        if (inside) st.fill = tint(col, on ? 0.6 : active ? 0.22 : 0.1);
        else if (on) st.fill = tint(col, 0.3);
        st.text = src === null ? "0" : showValues ? num(CF.xValue(g, ic, src)) : (inside ? "" : ix(src));
        return st;
      };
    }
    const rr = f.view === "scatter" ? g.inSizes.map(s => [0, s]) : ranges;
    inBlocks.push([`x[${ic}]`, active ? col : tint(col, 0.5), grid("input", ic, rr, style)]);
  }
  panels.appendChild(panel(f.view === "scatter" ? "input (each cell scatters the kernel)" :
                           g.transposed ? "input, stride-expanded (transposed as conv)" : "input, padded (" + g.paddingMode + ")", inBlocks));
  // kernel
  const col = color(f.group), flipped = g.transposed && f.view === "conv";
  const used = new Set(f.cells.filter(c => c.inside || c.source !== null || !g.transposed).map(c => `${c.inChannel}|${ix(c.tap)}`));
  const ics = f.view === "scatter" ? [f.inChannel] : CF.product([[f.group * g.inPerGroup, (f.group + 1) * g.inPerGroup]]).map(v => v[0]);
  const kBlocks = ics.map(ic => {
    const lead = g.transposed ? [ic, f.outChannel - f.group * g.outPerGroup] : [f.outChannel, ic - f.group * g.inPerGroup];
    return [`w[${ix(lead)}]`, col, grid("kernel", ic, g.kernel.map(k => [0, k]), pos => {
      const tap = flipped ? pos.map((p, d) => g.kernel[d] - 1 - p) : pos;
      const on = used.has(`${ic}|${ix(tap)}`);
      return {hl: on, kind: "tap", stroke: col, fill: tint(col, on ? 0.55 : 0.15),
              text: showValues ? num(CF.wValue(g, [...lead, ...tap])) : ix(tap)};
    })];
  });
  panels.appendChild(panel(flipped ? "kernel, flipped" : "kernel", kBlocks));
  // output
  const chosen = [...new Set(frs.map(fr => fr.outChannel))];
  const order = new Map(frs.filter(fr => fr.view === "conv").map(fr => [`${fr.outChannel}|${ix(fr.position)}`, fr.index]));
  const oBlocks = chosen.map(oc => {
    const grp = CF.groupOf(oc, g.outChannels, g.groups), c = color(grp);
    if (f.view === "scatter") {
      const full = g.inSizes.map((i, d) => [Math.min(0, -g.padding[d][0]),
        Math.max(g.outSizes[d], (i - 1) * g.stride[d] - g.padding[d][0] + g.dilation[d] * (g.kernel[d] - 1) + 1)]);
      const targets = new Set(oc === f.outChannel ? f.cells.map(cl => ix(cl.position)) : []);
      return [`y[${oc}]`, c, grid("output", oc, full, pos => {
        const inside = pos.every((v, d) => v >= 0 && v < g.outSizes[d]);
        const on = targets.has(ix(pos));
        return {hl: on, kind: inside ? "output" : "cropped", cls: inside ? "" : "crop", stroke: inside ? c : "#c0392b",
                fill: inside ? tint(c, on ? 0.6 : 0.12) : "", text: on && !inside ? "×" : ""};
      })];
    }
    return [`y[${oc}]`, c, grid("output", oc, g.outSizes.map(o => [0, o]), pos => {
      const kk = order.get(`${oc}|${ix(pos)}`);
      const on = kk === f.index, done = kk !== undefined && kk < f.index;
      const st = {hl: on, kind: "output", stroke: c, fill: tint(c, on ? 0.6 : done ? 0.25 : 0.06)};
      if (showValues && (on || done)) st.text = num(CF.arithmetic(g, frs[kk]).sum);
      return st;
    })];
  });
  panels.appendChild(panel(f.view === "scatter" ? "output (cropped by padding outside)" : "output", oBlocks));
  // formulas
  $("cf-size").textContent = sizeFormula(g);
  let text, state = {frame: k, frames: frs.length, view: f.view, outChannel: f.outChannel, inChannel: f.inChannel,
                     position: f.position, outSizes: g.outSizes, layer: layerName(g),
                     cells: f.cells.map(c => ({c: c.inChannel, tap: c.tap, pos: c.position, kind: c.kind, inside: c.inside, source: c.source}))};
  if (f.view === "scatter") {
    const x = CF.xValue(g, f.inChannel, f.position);
    text = f.cells.map(c => `y[${f.outChannel},${ix(c.position)}] += x[${f.inChannel},${ix(f.position)}]·w[${ix(c.weightIndex)}]` +
                            (showValues ? ` = ${paren(x)}×${paren(CF.wValue(g, c.weightIndex))}` : "") + (c.inside ? "" : "  (cropped)")).join("\n");
  } else {
    const a = CF.arithmetic(g, f);
    const lhs = `y[${f.outChannel},${ix(f.position)}]`;
    const sym = f.cells.map(c => `${c.source === null || (g.transposed && !c.inside) ? "0" : `x[${c.inChannel},${ix(c.source)}]`}·w[${ix(c.weightIndex)}]`);
    if (a.bias !== null) sym.push(`b[${f.outChannel}]`);
    const nums = a.terms.map(t => `${paren(t.x)}×${paren(t.w)}`);
    if (a.bias !== null) nums.push(paren(a.bias));
    text = `${lhs} = ${sym.join(" + ")}\n   = ${nums.join(" + ")}\n   = ${num(a.sum)}`;
    state.sum = a.sum;
  }
  $("cf-formula").textContent = text;
  $("cf-state").textContent = JSON.stringify(state);
  $("cf-title").textContent = layerName(g) + `   input (1, ${g.inChannels}, ${g.inSizes.join(", ")}) -> output (1, ${g.outChannels}, ${g.outSizes.join(", ")})`;
}

function rebuild() {
  const err = $("cf-error");
  try {
    const cfg = readConfig();
    view = $("cf-transposed").checked ? $("cf-view").value : "conv";
    $("cf-view").disabled = !$("cf-transposed").checked;
    $("cf-output-padding").disabled = !$("cf-transposed").checked;
    geo = CF.geometry(cfg);
    frs = CF.frames(geo, view, "groups");
    err.textContent = "";
    err.style.display = "none";
    const slider = $("cf-slider");
    slider.max = String(frs.length - 1);
    if (Number(slider.value) > frs.length - 1) slider.value = "0";
    render();
  } catch (e) {
    err.textContent = e.message;
    err.style.display = "block";
    $("cf-state").textContent = JSON.stringify({error: e.message});
  }
}

function step(d) {
  if (!frs.length) return;
  const s = $("cf-slider");
  s.value = String((Number(s.value) + d + frs.length) % frs.length);
  render();
}

// the Python frames embedded for the initial layer must equal this script's own: shown as a badge
function selfCheck() {
  const py = JSON.parse($("cf-python").textContent);
  const g = CF.geometry(initial.config);
  const js = CF.frames(g, initial.view, "groups");
  const key = f => JSON.stringify([f.outChannel, f.inChannel, f.position, f.cells.map(c => [c.inChannel, c.tap, c.position, c.kind, c.source])]);
  let ok = js.length === py.frames.length && js.every((f, k) => key(f) === JSON.stringify(py.frames[k]));
  if (ok && py.values) ok = js.every((f, k) => f.view !== "conv" || Math.abs(CF.arithmetic(g, f).sum - py.values[k]) < 1e-9);
  const b = $("cf-check");
  b.textContent = ok ? `indices and sums match convforge (${py.frames.length} frames of the initial layer)` : "MISMATCH with convforge's indices";
  b.className = ok ? "ok" : "bad";
  b.dataset.ok = ok ? "1" : "0";
}

function init() {
  const c = initial.config, n = c.inSizes.length;
  $("cf-input").value = c.inSizes.join(",");
  $("cf-kernel").value = c.kernel.join(",");
  $("cf-stride").value = c.stride.join(",");
  $("cf-padding").value = c.padding.map(p => p[0] === p[1] ? String(p[0]) : `${p[0]}:${p[1]}`).join(",");
  $("cf-dilation").value = c.dilation.join(",");
  $("cf-output-padding").value = c.outputPadding.join(",");
  $("cf-in-channels").value = c.inChannels; $("cf-out-channels").value = c.outChannels; $("cf-groups").value = c.groups;
  $("cf-transposed").checked = c.transposed; $("cf-padding-mode").value = c.paddingMode; $("cf-bias").checked = c.bias;
  $("cf-view").value = initial.view; $("cf-values").checked = initial.values;
  for (const el of document.querySelectorAll(".cf-controls input, .cf-controls select"))
    if (el.id !== "cf-values") el.addEventListener("change", rebuild);
  $("cf-values").addEventListener("change", render);
  $("cf-slider").addEventListener("input", render);
  $("cf-prev").addEventListener("click", () => step(-1));
  $("cf-next").addEventListener("click", () => step(1));
  $("cf-play").addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; $("cf-play").textContent = "play"; }
    else { timer = setInterval(() => step(1), 700); $("cf-play").textContent = "pause"; }
  });
  document.addEventListener("keydown", e => { if (e.key === "ArrowRight") step(1); if (e.key === "ArrowLeft") step(-1); });
  try { selfCheck(); } catch (e) { $("cf-check").textContent = "self-check failed: " + e.message; $("cf-check").className = "bad"; }
  rebuild();
}
init();
})();

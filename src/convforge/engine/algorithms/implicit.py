"""Implicit GEMM: stride-1 convolution as a register-blocked matrix product that reads its columns straight from
the padded input, with no im2col buffer.

With the input zero-padded and flattened per channel, output position ``j`` (in the padded plane's flat
coordinates) and kernel tap ``t`` read ``xp[c, j + offs[t]]``, ``offs[t] = sum_d t_d * dilation_d *
stride_of_dim_d``: the column matrix of im2col is a set of shifted views of the padded planes.  The kernels
(:mod:`convforge._kernels.implicit_kernels`) keep a block of output channels x a few vectors of positions in
vector registers and stream the shifted input vectors through them, one broadcast weight per fused
multiply-add.  Positions that fall in the padding columns are computed and dropped (``Wo / Wp`` of the work is
useful: 14/16 on a padded 14x14 plane).

Measured on the benchmark machine (AVX-512, where NumPy's OpenBLAS runs AVX2 kernels): about 2x the
single-core rate of the BLAS product, and no column buffer to build; ResNeXt's 16-channel groups run at the
dense rate because the micro-kernel does not care how thin a group is (docs/PERFORMANCE.md).

Memory: the padded copy of a batch tile (tiled under the workspace bound); the kernels read the weight in place
and write the output directly.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _config
from ..._algos import kernel_module
from ..._algos.threads import even_parts, run_parts, thread_count
from ..arrays import all_finite, batch_tiles, crop_negative, pad_zeros
from ..parallel import worth_splitting
from . import Algorithm, Role, Threading, im2col

# A band of positions whose input (all the group's channels, plus the kernel's reach) fits in this many bytes
# is computed for every output-channel block before the next band, so the input is read from cache.
BAND_BYTES = 384 * 2 ** 10


def kernels(dtype):
    """The implicit-GEMM kernel module (:mod:`convforge._kernels.implicit_kernels`) when Numba is usable for
    ``dtype``, else None."""
    return kernel_module("implicit_kernels", dtype)


def _simd(dtype):
    """:mod:`convforge._kernels.simd` (the vector width) when Numba is usable for ``dtype``, else None."""
    return kernel_module("simd", dtype)


def fast_here() -> bool:
    """True when the kernels can run and the CPU has 64-byte vectors (AVX-512), where they beat NumPy's BLAS."""
    simd = _simd(None)
    return simd is not None and simd.VECTOR_BYTES >= 64


def unfit(dtype):
    """Why the implicit-GEMM kernels cannot compute this convolution, or None."""
    if kernels(dtype) is None:
        return (f"the implicit-GEMM kernels need Numba (installed and not switched off) and float32 or float64, "
                f"got {np.dtype(dtype)}")
    return None


def phase_split(x, w, stride, padding, dilation, groups, out_sizes):
    """A strided convolution rewritten as a stride-1 one (space to depth): with ``t*d = q*s + p``, output ``o``
    reads ``xp[(o + q)*s + p]``, i.e. tap ``(p, q)`` of the stride-1 convolution of phase ``p`` of the padded
    input, ``xp[p::s]``.  Phases become channels (only phases some tap reads), taps ``q`` the kernel:

        x' (N, G*Cg*P, *S')   w' (O, Cg*P, *Q)   with zeros where no tap maps, dilation 1, no padding

    Returns ``(x', w', dilation', padding')``; the stride-1 convolution of these has ``out_sizes``."""
    per_dim = _phases(w.shape[2:], stride, dilation)
    return (_phase_input(x, stride, padding, out_sizes, per_dim), _phase_weight(w, per_dim),
            (1,) * len(stride), ((0, 0),) * len(stride))


def _phases(kernel, stride, dilation):
    """Per dim: the phases some tap reads, the number of shifts, and each tap's ``(phase, shift)``."""
    per_dim = []
    for k, s, d in zip(kernel, stride, dilation):
        taps = [divmod(t * d, s)[::-1] for t in range(k)]
        per_dim.append((sorted({p for p, _ in taps}), max(q for _, q in taps) + 1, taps))
    return per_dim


def _phase_combos(per_dim):
    return list(itertools.product(*(phases for phases, _, _ in per_dim)))


def _phase_input(x, stride, padding, out_sizes, per_dim):
    """``x'`` of :func:`phase_split`."""
    n, c = x.shape[:2]
    xp = pad_zeros(x, padding)
    combos = _phase_combos(per_dim)
    sizes = tuple(o + q - 1 for o, (_, q, _) in zip(out_sizes, per_dim))
    xs = np.zeros((n, c, len(combos)) + sizes, dtype=x.dtype)
    for i, combo in enumerate(combos):
        src = xp[(slice(None), slice(None)) + tuple(slice(p, None, s) for p, s in zip(combo, stride))]
        src = src[(slice(None), slice(None)) + tuple(slice(0, m) for m in sizes)]
        xs[(slice(None), slice(None), i) + tuple(slice(0, m) for m in src.shape[2:])] = src
    return xs.reshape((n, c * len(combos)) + sizes)


def _phase_weight(w, per_dim):
    """``w'`` of :func:`phase_split`."""
    o_ch, cg = w.shape[:2]
    index = {combo: i for i, combo in enumerate(_phase_combos(per_dim))}
    ws = np.zeros((o_ch, cg, len(index)) + tuple(q for _, q, _ in per_dim), dtype=w.dtype)
    for tap in itertools.product(*(range(k) for k in w.shape[2:])):
        pq = [per_dim[dim][2][t] for dim, t in enumerate(tap)]
        ws[(slice(None), slice(None), index[tuple(p for p, _ in pq)]) + tuple(q for _, q in pq)] = \
            w[(slice(None), slice(None)) + tap]
    return ws.reshape((o_ch, cg * len(index)) + ws.shape[3:])


def _plane_elements(in_sizes, padding):
    """Elements of one channel's zero-padded plane."""
    return math.prod(i + max(lo, 0) + max(hi, 0) for i, (lo, hi) in zip(in_sizes, padding))


class _Geometry:
    """The flat padded plane of a call: padded sizes, plane, per-dim flat strides, tap offsets, ``j_end`` (the
    positions computed, a multiple of ``span``) and ``slack`` (zeros needed after the last plane: the last
    vectors' tails)."""

    def __init__(self, x, kernel, padding, dilation, out_sizes, span):
        self.lanes = _simd(x.dtype).lanes(x.itemsize)
        self.padding = padding
        self.padded = tuple(i + lo + hi for i, (lo, hi) in zip(x.shape[2:], padding))
        self.plane = math.prod(self.padded)
        self.flat = [math.prod(self.padded[d + 1:]) for d in range(len(kernel))]
        self.offs = np.array([sum(t * dl * f for t, dl, f in zip(tap, dilation, self.flat))
                              for tap in itertools.product(*(range(k) for k in kernel))], dtype=np.int64)
        positions = sum((o - 1) * f for o, f in zip(out_sizes, self.flat)) + 1
        self.j_end = -(-positions // span) * span
        self.slack = self.j_end - positions


class _Plan(_Geometry):
    """Everything about a forward call that does not depend on the batch: geometry, row map, blocking."""

    def __init__(self, x, w, padding, dilation, groups, out_sizes):
        self.kernels = kernels(x.dtype)
        o_ch, cg = w.shape[:2]
        self.og, self.cg, self.groups, self.c = o_ch // groups, cg, groups, x.shape[1]
        self.rows_per_block, vectors = (4, 4) if self.og <= 4 else (8, 2)
        self.fn = self.kernels.conv_4x4 if self.rows_per_block == 4 else self.kernels.conv_8x2
        self.span = vectors * _simd(x.dtype).lanes(x.itemsize)
        super().__init__(x, w.shape[2:], padding, dilation, out_sizes, self.span)
        self.rowmap = _row_map(self.padded, out_sizes)
        self.out_sizes = out_sizes
        self.blocks = -(-self.og // self.rows_per_block)
        self.wf = np.ascontiguousarray(w).reshape(-1)
        spill = -self.og % self.rows_per_block     # the last group's last block reads this many rows past O
        if spill:
            self.wf = np.concatenate([self.wf, np.zeros(spill * cg * len(self.offs), dtype=w.dtype)])
        reach = int(self.offs[-1])
        fit = (BAND_BYTES // max(cg * x.itemsize, 1) - reach) // self.span * self.span
        self.band = int(min(self.j_end, max(self.span, fit)))

    def run(self, xf, y_flat, samples, groups=None, blocks=None, positions=None):
        b0, b1 = samples
        g0, g1 = groups or (0, self.groups)
        ob0, ob1 = blocks or (0, self.blocks)
        j0, j1 = positions or (0, self.j_end)
        out = math.prod(self.out_sizes)
        self.fn(xf, self.c * self.plane, self.plane, self.cg, self.wf, self.offs,
                y_flat, self.groups * self.og * out, out, self.og, self.rowmap, self.padded[-1],
                self.out_sizes[-1], b0, b1, g0, g1, ob0, ob1, j0, j1, self.band, self.lanes)


def weight_grad(x, gy, kernel, padding, dilation, groups):
    """Gradient of a stride-1 convolution w.r.t. its weight, ``(O, C/groups, *kernel)``: the kernels correlate
    the padded input with the output gradient laid out on the padded plane (zeros where no output is), blocks
    of 4 output channels x 4 taps at a time, batch-tiled under the workspace bound; threads over groups or
    output-channel blocks."""
    x, padding = crop_negative(x, padding)
    kernel = tuple(kernel)
    n, c = x.shape[:2]
    o_ch = gy.shape[1]
    out_sizes = tuple(gy.shape[2:])
    cg, og = c // groups, o_ch // groups
    geo = _Geometry(x, kernel, padding, dilation, out_sizes, _simd(x.dtype).lanes(x.itemsize))
    k = len(geo.offs)
    dw = np.zeros(o_ch * cg * k, dtype=x.dtype)
    blocks = -(-og // 4)
    row = max(geo.j_end, out_sizes[0] * geo.flat[0])      # a channel's gradient on the plane
    per_sample = (c * geo.plane + o_ch * row) * x.itemsize
    limit = _config.workspace_limit(dw.nbytes)
    macs = gy.size * cg * k
    t = thread_count() if worth_splitting(macs) else 1
    if groups >= t:
        jobs = [((g0, g1), (0, blocks)) for g0, g1 in even_parts(groups, t)]
    else:
        jobs = [((0, groups), r) for r in even_parts(blocks, min(t, blocks))]
    fn = kernels(x.dtype).weight_grad_4x4
    for s0, s1 in batch_tiles(n, per_sample, limit):
        xf = _padded_flat(x[s0:s1], geo)
        gf = _gradient_on_plane(gy[s0:s1], geo, out_sizes, row)
        run_parts([lambda gr=gr, br=br: fn(xf, c * geo.plane, geo.plane, cg, gf, o_ch * row, row, og, geo.offs,
                                           s1 - s0, geo.j_end, geo.lanes, *gr, *br, dw)
                   for gr, br in jobs])
        del xf, gf
    return dw.reshape((o_ch, cg) + kernel)


def weight_grad_sample_bytes(x, o_ch, padding):
    """An upper bound of :func:`weight_grad`'s workspace per sample (the padded input and the gradient on the
    plane); the caller uses im2col's row bands when one sample is over the bound."""
    return (x.shape[1] + o_ch) * (_plane_elements(x.shape[2:], padding) * x.itemsize + _simd(x.dtype).VECTOR_BYTES)


def _gradient_on_plane(gy, geo, out_sizes, row):
    """``gy (n, O, *out)`` on the padded plane's flat positions, ``(n, O, row)`` flattened, zeros where no
    output is, plus 4 zero rows (blocks of 4 output channels may read past the last)."""
    n, o_ch = gy.shape[:2]
    gf = np.zeros((n * o_ch + 4) * row, dtype=gy.dtype)
    span = out_sizes[0] * geo.flat[0]                  # whole padded rows of the first dim's outputs
    grid = gf[:n * o_ch * row].reshape(n, o_ch, row)[:, :, :span].reshape((n, o_ch, out_sizes[0]) + geo.padded[1:])
    grid[(slice(None),) * 3 + tuple(slice(0, o) for o in out_sizes[1:])] = gy
    return gf


def _row_map(padded, out_sizes):
    """Output offset of the first output of each padded row (all dims but the last), or -1 for rows that hold
    no outputs."""
    rows = padded[:-1]
    if not rows:
        return np.zeros(1, dtype=np.int64)
    idx = np.indices(rows).reshape(len(rows), -1)
    valid = np.all(idx < np.array(out_sizes[:-1])[:, None], axis=0)
    clipped = np.minimum(idx, np.array(out_sizes[:-1])[:, None] - 1)
    offsets = np.ravel_multi_index(tuple(clipped), tuple(out_sizes[:-1])) * out_sizes[-1]
    return np.where(valid, offsets, -1).astype(np.int64)


def _padded_flat(x, plan):
    """The zero-padded tile as one flat buffer, with ``plan.slack`` zeros after the last plane."""
    n, c = x.shape[:2]
    xf = np.zeros(n * c * plan.plane + plan.slack, dtype=x.dtype)
    inner = tuple(slice(lo, lo + i) for i, (lo, _) in zip(x.shape[2:], plan.padding))
    xf[:n * c * plan.plane].reshape((n, c) + plan.padded)[(slice(None), slice(None)) + inner] = x
    return xf


def implicit(x, w, p):
    """Convolution of problem ``p`` by the implicit-GEMM kernels (threads over samples, else channels or
    positions); strided convolutions through :func:`phase_split`, a batch tile at a time."""
    stride, padding, dilation, groups, out_sizes = p.stride, p.padding, p.dilation, p.groups, p.out_sizes
    n, o_ch = x.shape[0], w.shape[0]
    y = np.empty((n, o_ch) + tuple(out_sizes), dtype=x.dtype)
    limit = _config.workspace_limit(y.nbytes)
    if all(s == 1 for s in stride):
        _stride1(x, w, padding, dilation, groups, out_sizes, y, limit)
        return y
    per_dim = _phases(w.shape[2:], stride, dilation)
    ws = _phase_weight(w, per_dim)
    ones, zeros = (1,) * len(stride), ((0, 0),) * len(stride)
    for a, z in batch_tiles(n, sample_workspace(p), limit):
        xs = _phase_input(x[a:z], stride, padding, out_sizes, per_dim)
        _stride1(xs, ws, zeros, ones, groups, out_sizes, y[a:z], limit - xs.nbytes)
        del xs
    return y


def sample_workspace(p):
    """Bytes of workspace per sample of problem ``p``: the padded copy, or for a strided call the phase-split
    input and its flat copy."""
    if all(s == 1 for s in p.stride):
        return p.in_channels * _plane_elements(p.in_sizes, p.padding) * p.itemsize
    per_dim = _phases(p.kernel, p.stride, p.dilation)
    phases = math.prod(len(ph) for ph, _, _ in per_dim)
    return 2 * p.in_channels * phases * math.prod(o + q - 1 for o, (_, q, _) in zip(p.out_sizes, per_dim)) * \
        p.itemsize


def _stride1(x, w, padding, dilation, groups, out_sizes, y, limit):
    x, padding = crop_negative(x, padding)
    n = x.shape[0]
    plan = _Plan(x, w, padding, dilation, groups, out_sizes)
    per_sample = plan.c * plan.plane * x.itemsize
    macs = n * w.shape[0] * math.prod(out_sizes) * plan.cg * len(plan.offs)
    t = thread_count() if worth_splitting(macs) else 1

    def samples(a, z, budget):
        for s0, s1 in batch_tiles(z - a, per_sample, budget):
            xf = _padded_flat(x[a + s0:a + s1], plan)
            plan.run(xf, y[a + s0:a + s1].reshape(-1), (0, s1 - s0))
            del xf

    if t == 1 or n >= t:
        parts = even_parts(n, min(t, n))
        run_parts([lambda a=a, z=z: samples(a, z, limit // len(parts)) for a, z in parts])
        return
    for s0, s1 in batch_tiles(n, per_sample, limit):             # fewer samples than threads: split the work
        xf = _padded_flat(x[s0:s1], plan)
        yt = y[s0:s1].reshape(-1)
        whole = (0, s1 - s0)
        if groups >= t:
            jobs = [dict(groups=r) for r in even_parts(groups, t)]
        elif plan.blocks >= t:
            jobs = [dict(blocks=r) for r in even_parts(plan.blocks, t)]
        else:
            jobs = [dict(positions=r) for r in even_parts(plan.j_end, t, plan.span)]
        run_parts([lambda kw=kw: plan.run(xf, yt, whole, **kw) for kw in jobs])
        del xf


def _unfit(p):
    return unfit(p.dtype)


def _forward_pays(p):
    """Kernels larger than 1x1 with at least 2 output channels per group (strided ones split into phases), on
    a CPU with AVX-512, when one sample's workspace fits the bound: register-blocked products read straight from
    the padded input run at about twice the BLAS's rate there (NumPy's OpenBLAS uses AVX2 kernels) and thin
    groups run at the dense rate; without AVX-512 the kernels are correct but not faster."""
    if p.out_per_group < 2 or not fast_here():
        return False
    return sample_workspace(p) <= _config.workspace_limit(p.output_bytes)


def _weight_grad_unfit(p):
    if any(s != 1 for s in p.stride):
        return f"the implicit-GEMM weight gradient needs stride 1, got stride {p.stride}"
    return unfit(p.dtype)


def _weight_grad_pays(p):
    """Stride-1 grouped, dilated, 1-D and 3-D layers; dense 2-D layers stay on im2col, which measured as fast
    there (ResNet 3x3 b8: 8.7 vs 9.1 ms at 14x14, 10.1 vs 11.6 at 7x7) while the kernels win elsewhere (V-Net
    52.6 -> 11.5 ms, ResNeXt 512@14 3.1 -> 1.8, C3D 18.5 -> 7.3, DeepLab 14.2 -> 11.7)."""
    return fast_here() and not p.is_pointwise and \
        (p.groups > 1 or p.n_spatial != 2 or any(d > 1 for d in p.dilation))


def _weight_grad(x, gy, p):
    """The kernels multiply the whole padded plane with a zero-extended gradient, so a non-finite input (inf * 0)
    and a sample over the workspace bound take im2col's path."""
    if not p.is_empty and p.in_channels > 0 and all_finite(x) and weight_grad_sample_bytes(
            x, p.out_channels, p.padding) <= _config.workspace_limit(math.prod(p.weight_shape) * p.itemsize):
        return weight_grad(x, gy, p.kernel, p.padding, p.dilation, p.groups)
    return im2col.weight_grad(x, gy, p.kernel, p.stride, p.padding, p.dilation, p.groups)


ALGORITHM = Algorithm("implicit", {
    "forward": Role(implicit, rank=20, unfit=_unfit, pays=_forward_pays),
    "weight_grad": Role(_weight_grad, rank=30, unfit=_weight_grad_unfit, pays=_weight_grad_pays),
}, Threading(own_threads=True))

"""Numba kernels for the backward pass of depthwise (and thin grouped) convolutions: the transposed convolution
that is the input gradient, and the weight gradient.  Two layouts:

* *Same-size, stride 1* (``*_same``; MobileNet's stride-1 layers): input and output planes have the same shape,
  so a kernel tap is one constant offset in the flat plane, ``out[j] += w * in[j + off[t]]``, with a per-tap
  mask of the positions whose source lies inside the plane.  Masked positions are never loaded (a masked load:
  positions that wrap to the next row cannot bring a non-finite value from elsewhere in); the weight gradient
  multiplies ``gy`` there by zero, as zero padding does (a non-finite ``gy`` next to the padding gives NaN, as in
  torch), the transposed convolution has no padding and skips them.  No copies, no padding buffer.  Small planes
  (7x7) are processed ``B`` channels at a time as one flat run -- loops of ~49 elements are mostly loop overhead
  -- which is possible when channels map one to one (``Cg == Og == 1``); the mask then repeats every plane and
  the weights are expanded per position (``wexp``).
* *Phase layout* (``*_phase``; any stride, dilation and padding): along a dim with stride ``s``, position ``p``
  is stored at ``(p % s, p // s)``: the ``s`` phases one after the other, each a dense run.  Position
  ``i*s + t*d`` then is phase ``(t*d) % s``, index ``i + (t*d) // s``, so for every tap consecutive ``i`` are
  consecutive memory and each tap is one long contiguous multiply-add (a strided scatter or gather does not
  vectorise).  A batch tile of ``nb`` samples is stacked in one buffer (``[phase][sample][qd][qh][qw]``); pitch
  gaps hold zeros (and the weight gradient masks them out, so that ``0 * inf`` cannot appear), which makes
  reading past a row harmless.

Conventions as in ``numba_kernels``: :func:`convforge._kernels.jit.kernel`'s options (serial, ``nogil``, cached,
``fastmath=False`` so every sum has a fixed order), outputs passed in, only per-job buffers allocated. Weight
gradients are accumulated elementwise per position (over the batch), then summed pairwise (:func:`_fold_sum`) or by
the caller: float32 error stays near 1e-6 relative. Hot loops index with ``np.uint64``: with signed indices LLVM
could not prove the index does not wrap and left them scalar (measured 3-7x slower: weight expansion, folds,
zeroing).

Import only through :func:`convforge._algos.kernel_module`; raises ImportError without Numba.
"""
from __future__ import annotations

import numpy as np

from .jit import kernel

# Lanes of the phase weight-gradient accumulator: ``acc[tap, j]`` sums the products at positions
# ``== j (mod LANES)``, elementwise (vectorised, fixed order), then is folded once per weight.
LANES = 128


@kernel
def _fold_sum(a, start, length):
    """Sum of ``a[start:start + length]`` by pairwise folding in place (vectorised halves; destroys the run)."""
    while length > 1:
        half = length // 2
        keep = length - half
        for i in range(half):
            a[np.uint64(start + i)] += a[np.uint64(start + keep + i)]
        length = keep
    return a[start]


@kernel
def same_masks(dsz, hsz, wsz, kd, kh, kw, dd, dh, dw, pd, ph, pw, sign, blocks):
    """Taps of a stride-1 same-size plane ``(dsz, hsz, wsz)``: tap ``t`` reads position ``pos + sign*(t*d - p)``
    per dim.  Returns ``off (K,)``, its flat offsets, and ``mask (K, blocks*P)``: whether that source lies in
    the plane, repeated for ``blocks`` consecutive planes."""
    plane = dsz * hsz * wsz
    k_prod = kd * kh * kw
    mask = np.zeros((k_prod, blocks * plane), dtype=np.bool_)
    off = np.empty(k_prod, dtype=np.int64)
    t = 0
    for td in range(kd):
        ad = sign * (td * dd - pd)
        for th in range(kh):
            ah = sign * (th * dh - ph)
            for tw in range(kw):
                aw = sign * (tw * dw - pw)
                off[t] = (ad * hsz + ah) * wsz + aw
                for a in range(max(0, -ad), min(dsz, dsz - ad)):
                    for b in range(max(0, -ah), min(hsz, hsz - ah)):
                        for c in range(max(0, -aw), min(wsz, wsz - aw)):
                            j = (a * hsz + b) * wsz + c
                            for blk in range(blocks):
                                mask[t, blk * plane + j] = True
                t += 1
    return off, mask


@kernel
def transpose_same(x, w, groups, off, mask, blocks, y):
    """Transposed convolution at stride 1 with equal input and output planes, on flat planes:
    ``y[b, o, j] = sum_{c in o's group, t} w[c, o % Og, t] * x[b, c, j + off[t]]`` (masked), for
    ``x (N, C, P)``, ``w (C, Og, K)``, ``y (N, O, P)`` (overwritten).

    One job per output channel, the samples inside, one masked multiply-add per input channel and tap.  With
    ``blocks > 1`` (only when ``Cg == Og == 1``: a block's input planes are then as consecutive as its output
    planes) a job is a block of channels: weights expanded per position once per job, then per pair of samples
    and tap one masked multiply-add over the whole block."""
    n, c, plane = x.shape
    og, k_prod = w.shape[1], w.shape[2]
    cg = c // groups
    o_ch = y.shape[1]
    zero = np.zeros(1, dtype=y.dtype)[0]
    run = blocks * plane
    wexp = np.empty(k_prod * run if blocks > 1 else 1, dtype=y.dtype)
    xf = x.reshape(n, c * plane)
    yf = y.reshape(n, o_ch * plane)
    for o0 in range(0, o_ch, blocks):
        o1 = min(o0 + blocks, o_ch)
        length = (o1 - o0) * plane
        if blocks > 1:                  # Cg == Og == 1: input channel oc, weight w[oc, 0, t]
            for t in range(k_prod):
                for oc in range(o0, o1):
                    wv = w[oc, 0, t]
                    start = t * run + (oc - o0) * plane
                    for j in range(plane):
                        wexp[np.uint64(start + j)] = wv
            for b in range(0, n, 2):
                _same_block_pair(xf, yf, b, min(b + 2, n), o0 * plane, length, wexp, run, off, mask)
            continue
        for b in range(n):
            ys = yf[b, o0 * plane:o1 * plane]
            for j in range(length):
                ys[np.uint64(j)] = zero
            for ci in range(cg):
                ch = o0 // og * cg + ci
                src = xf[b, ch * plane:]
                for t in range(k_prod):
                    f = off[t]
                    mk = mask[t]
                    wv = w[ch, o0 % og, t]
                    for j in range(max(0, -f), min(length, length - f)):
                        v = src[np.uint64(j + f)]
                        ys[np.uint64(j)] += (wv * v) if mk[np.uint64(j)] else zero


@kernel
def _same_block_pair(xf, yf, b0, b1, base, length, wexp, run, off, mask):
    """One block of a depthwise ``transpose_same`` for samples ``b0`` and (if ``b1 > b0 + 1``) ``b0 + 1``: both
    share the loads of the expanded weights and the mask."""
    zero = np.zeros(1, dtype=yf.dtype)[0]
    y0, x0 = yf[b0, base:base + length], xf[b0, base:base + length]
    for j in range(length):
        y0[np.uint64(j)] = zero
    if b1 == b0 + 1:
        for t in range(off.shape[0]):
            f = off[t]
            mk = mask[t]
            a = t * run
            for j in range(max(0, -f), min(length, length - f)):
                v = x0[np.uint64(j + f)]
                y0[np.uint64(j)] += (wexp[np.uint64(a + j)] * v) if mk[np.uint64(j)] else zero
        return
    y1, x1 = yf[b0 + 1, base:base + length], xf[b0 + 1, base:base + length]
    for j in range(length):
        y1[np.uint64(j)] = zero
    for t in range(off.shape[0]):
        f = off[t]
        mk = mask[t]
        a = t * run
        for j in range(max(0, -f), min(length, length - f)):
            u = np.uint64(j)
            wv = wexp[np.uint64(a + j)]
            v0, v1 = x0[np.uint64(j + f)], x1[np.uint64(j + f)]
            if mk[u]:
                y0[u] += wv * v0
                y1[u] += wv * v1


@kernel
def _same_products(acc, base, span, xf, gf, xbase, gbase, length, s0, s1, off, mask):
    """``acc[base + t*span + j - s0] += sum_b gf[b, gbase + j] * xp_t[b, j]`` for ``s0 <= j < s1``, where
    ``xp_t[b, j]`` is ``xf[b, xbase + j + off[t]]`` where tap ``t`` reads inside the plane (``mask``) and 0 where it
    reads the zero padding -- a product with the padding is computed, so a non-finite ``gy`` there gives NaN as
    with explicit zero padding (and torch); positions whose source lies outside ``[0, length)`` are padding too.
    Two samples per pass (half the accumulator traffic)."""
    n = xf.shape[0]
    zero = np.zeros(1, dtype=acc.dtype)[0]
    k_prod = off.shape[0]
    for b in range(0, n - 1, 2):
        x0, x1 = xf[b, xbase:xbase + length], xf[b + 1, xbase:xbase + length]
        g0, g1 = gf[b, gbase:gbase + length], gf[b + 1, gbase:gbase + length]
        for t in range(k_prod):
            f = off[t]
            a = base + t * span - s0
            mk = mask[t]
            lo, hi = max(s0, -f), min(s1, length - f)
            for j in range(lo, hi):
                u = np.uint64(j)
                v0 = x0[np.uint64(j + f)] if mk[u] else zero
                v1 = x1[np.uint64(j + f)] if mk[u] else zero
                acc[np.uint64(a + j)] += g0[u] * v0 + g1[u] * v1
            for j in range(s0, max(s0, min(lo, s1))):
                acc[a + j] += g0[j] * zero + g1[j] * zero
            for j in range(max(s0, hi), s1):
                acc[a + j] += g0[j] * zero + g1[j] * zero
    if n % 2:
        xs, g = xf[n - 1, xbase:xbase + length], gf[n - 1, gbase:gbase + length]
        for t in range(k_prod):
            f = off[t]
            a = base + t * span - s0
            mk = mask[t]
            lo, hi = max(s0, -f), min(s1, length - f)
            for j in range(lo, hi):
                v = xs[np.uint64(j + f)] if mk[np.uint64(j)] else zero
                acc[np.uint64(a + j)] += g[np.uint64(j)] * v
            for j in range(s0, max(s0, min(lo, s1))):
                acc[a + j] += g[j] * zero
            for j in range(max(s0, hi), s1):
                acc[a + j] += g[j] * zero


@kernel
def weight_grad_same(x, gy, groups, off, mask, strip, o_lo, o_hi, gw):
    """Weight gradient at stride 1 with equal input and output planes, on flat planes:
    ``gw[o, ci, t] = sum_{b, j} gy[b, o, j] * x[b, g(o)*Cg + ci, j + off[t]]`` (masked) for ``o_lo <= o < o_hi``
    (the rest of ``gw (O, Cg, K)`` is not touched); ``x (N, C, P)``, ``gy (N, O, P)``.

    One job per (output channel, input channel, strip of ``strip`` positions): products accumulated per position
    over the batch, each strip's accumulator folded pairwise into ``gw``."""
    n, c, plane = x.shape
    o_ch = gy.shape[1]
    cg, k_prod = gw.shape[1], gw.shape[2]
    og = o_ch // groups
    span = min(strip, plane)
    acc = np.empty(k_prod * span, dtype=gw.dtype)
    xf = x.reshape(n, c * plane)
    gf = gy.reshape(n, o_ch * plane)
    for o in range(o_lo, o_hi):
        for ci in range(cg):
            ch = (o // og) * cg + ci
            for s0 in range(0, plane, span):
                s1 = min(s0 + span, plane)
                acc[:] = 0
                _same_products(acc, 0, span, xf, gf, ch * plane, o * plane, plane, s0, s1, off, mask)
                for t in range(k_prod):
                    part = _fold_sum(acc, t * span, s1 - s0)
                    gw[o, ci, t] = part if s0 == 0 else gw[o, ci, t] + part


@kernel
def weight_grad_same_blocks(x, gy, off, mask, blocks, o_lo, o_hi, part):
    """Per-position partial weight gradients of a depthwise layer (``Cg == Og == 1``, stride 1, equal planes):
    ``part[t, (o - o_lo)*P + j] = sum_b gy[b, o, j] * x[b, o, j + off[t]]`` (masked) for ``o_lo <= o < o_hi``;
    ``part (K, (o_hi - o_lo)*P)`` is overwritten.  The caller sums each plane's run (a matrix-vector product):
    summing many short runs here would cost more than all the products (7x7 planes).

    Jobs are blocks of ``blocks`` consecutive channels, run as one flat stretch per sample and tap (``mask``
    repeats every plane)."""
    n, c, plane = x.shape
    span = part.shape[1]
    xf = x.reshape(n, c * plane)
    gf = gy.reshape(n, gy.shape[1] * plane)
    acc = part.reshape(part.size)
    acc[:] = 0
    for o0 in range(o_lo, o_hi, blocks):
        length = (min(o0 + blocks, o_hi) - o0) * plane
        _same_products(acc, (o0 - o_lo) * plane, span, xf, gf, o0 * plane, o0 * plane, length, 0, length, off,
                       mask)


@kernel
def _phase_offsets(size, shift, s, phase_pitch, pitch):
    """Buffer offset of positions ``shift .. shift + size - 1`` along one dim of the phase layout."""
    off = np.empty(size, dtype=np.int64)
    for i in range(size):
        p = i + shift
        off[i] = (p % s) * phase_pitch + (p // s) * pitch
    return off


@kernel(inline="always")
def _crop_row(buf, start, blk, sw, pw, offw, y, b, o, od, oh):
    """``y[b, o, od, oh, ow] = buf[start + offw[ow]]``: one output row gathered from the ``sw`` phases of the
    width.  Stride 1 is a contiguous copy and stride 2 an interleave of two runs (both vectorise, ~4x faster than
    the gather)."""
    wo = y.shape[4]
    if sw == 1:
        for ow in range(wo):
            y[b, o, od, oh, ow] = buf[np.uint64(start + pw + ow)]
    elif sw == 2:
        first = start + (pw % 2) * blk + pw // 2                # ow = 0, 2, 4, ...: phase pw % 2
        second = start + ((pw + 1) % 2) * blk + (pw + 1) // 2   # ow = 1, 3, 5, ...
        for i in range(wo // 2):
            y[b, o, od, oh, 2 * i] = buf[np.uint64(first + i)]
            y[b, o, od, oh, 2 * i + 1] = buf[np.uint64(second + i)]
        if wo % 2:
            y[b, o, od, oh, wo - 1] = buf[start + offw[wo - 1]]
    else:
        for ow in range(wo):
            y[b, o, od, oh, ow] = buf[start + offw[ow]]


@kernel
def transpose_phase(x, w, groups, sd, sh, sw, dd, dh, dw, pd, ph, pw, fd, fh, fw, nb, y):
    """Transposed convolution ``y[b, g*Og + o, m] = sum_{c in g, t, i: i*s + t*d = m + p} w[c, o, t] x[b, c, i]``
    for ``x (N, C, Di, Hi, Wi)``, ``w (C, Og, kd, kh, kw)``, ``y (N, G*Og, Do, Ho, Wo)`` (overwritten); ``(pd, ph,
    pw)`` is the low padding cropped off the full output ``(fd, fh, fw)`` (``>= p + out``, ``>= (i-1)*s +
    d*(k-1) + 1``).

    One job per (batch tile, output channel): every input plane of the group is laid out once (pitch of one
    phase of the full output), then each tap scatter-adds it, scaled, at a constant offset of a zeroed full-output
    buffer in phase layout; the valid window is copied out."""
    n, c, di, hi, wi = x.shape
    og, kd, kh, kw = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    cg = c // groups
    o_ch, do_, ho, wo = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    dq, hq, wq = -(-fd // sd), -(-fh // sh), -(-fw // sw)
    v = dq * hq * wq                      # one phase of one sample
    blk = nb * v                          # one phase of the tile
    buf = np.empty(sd * sh * sw * blk, dtype=y.dtype)
    xb = np.zeros(blk, dtype=y.dtype)     # gaps stay zero: only the data positions are ever written
    offd = _phase_offsets(do_, pd, sd, sh * sw * blk, hq * wq)
    offh = _phase_offsets(ho, ph, sh, sw * blk, wq)
    offw = _phase_offsets(wo, pw, sw, blk, 1)
    tiles = -(-n // nb)
    for job in range(tiles * o_ch):
        b0 = (job // o_ch) * nb
        o = job % o_ch
        b1 = min(b0 + nb, n)
        g = o // og
        oo = o % og
        length = (b1 - b0 - 1) * v + (di - 1) * hq * wq + (hi - 1) * wq + wi
        buf[:] = 0
        for ci in range(cg):
            ch = g * cg + ci
            for b in range(b0, b1):
                for id_ in range(di):
                    for ih in range(hi):
                        row = (b - b0) * v + id_ * hq * wq + ih * wq
                        for iw in range(wi):
                            xb[np.uint64(row + iw)] = x[b, ch, id_, ih, iw]
            for td in range(kd):
                ad = td * dd
                for th in range(kh):
                    ah = th * dh
                    for tw in range(kw):
                        aw = tw * dw
                        wv = w[ch, oo, td, th, tw]
                        base = (((ad % sd) * sh + ah % sh) * sw + aw % sw) * blk \
                            + (ad // sd) * hq * wq + (ah // sh) * wq + aw // sw
                        for i in range(length):
                            buf[np.uint64(base + i)] += wv * xb[np.uint64(i)]
        for b in range(b0, b1):
            for od in range(do_):
                for oh in range(ho):
                    _crop_row(buf, (b - b0) * v + offd[od] + offh[oh], blk, sw, pw, offw, y, b, o, od, oh)


@kernel
def weight_grad_phase(x, gy, groups, pd, ph, pw, ed, eh, ew, sd, sh, sw, dd, dh, dw, nb, j0, j1, gw):
    """Weight gradient ``gw[o, ci, t] = sum_{b, j} gy[b, o, j] * xp[b, g(o)*Cg + ci, j*s + t*d]`` for jobs
    ``j0 <= o*Cg + ci < j1`` (the rest of ``gw (O, Cg, kd, kh, kw)`` is not touched); ``x (N, C, Di, Hi, Wi)`` is
    unpadded, ``xp`` it padded to ``(ed, eh, ew)`` with leading pads ``(pd, ph, pw)``; ``gy (N, O, Do, Ho, Wo)``.

    Per job and batch tile: the input planes go into a phase-layout buffer (zero borders = the padding), the
    ``gy`` planes into a buffer of the same pitch (zero gaps), and every tap is a contiguous product of the two
    at a constant offset, accumulated per lane over strips of ``LANES`` (see ``LANES``)."""
    n, di, hi, wi = x.shape[0], x.shape[2], x.shape[3], x.shape[4]
    o_ch, do_, ho, wo = gy.shape[1], gy.shape[2], gy.shape[3], gy.shape[4]
    cg, kd, kh, kw = gw.shape[1], gw.shape[2], gw.shape[3], gw.shape[4]
    og = o_ch // groups
    k_prod = kd * kh * kw
    dq, hq, wq = -(-ed // sd), -(-eh // sh), -(-ew // sw)
    v = dq * hq * wq
    blk = nb * v
    xb = np.zeros(sd * sh * sw * blk, dtype=gw.dtype)     # borders and gaps stay zero
    gb = np.zeros(blk, dtype=gw.dtype)
    valid = np.zeros(blk, dtype=np.bool_)     # gy's data positions: gaps must not multiply real inputs (0*inf)
    for b in range(nb):
        for od in range(do_):
            for oh in range(ho):
                for ow in range(wo):
                    valid[b * v + od * hq * wq + oh * wq + ow] = True
    zero = np.zeros(1, dtype=gw.dtype)[0]
    acc = np.empty(k_prod * LANES, dtype=gw.dtype)
    taps = np.empty(k_prod, dtype=np.int64)
    t = 0
    for td in range(kd):
        ad = td * dd
        for th in range(kh):
            ah = th * dh
            for tw in range(kw):
                aw = tw * dw
                taps[t] = (((ad % sd) * sh + ah % sh) * sw + aw % sw) * blk \
                    + (ad // sd) * hq * wq + (ah // sh) * wq + aw // sw
                t += 1
    offd = _phase_offsets(di, pd, sd, sh * sw * blk, hq * wq)
    offh = _phase_offsets(hi, ph, sh, sw * blk, wq)
    offw = _phase_offsets(wi, pw, sw, blk, 1)
    for job in range(j0, j1):
        o = job // cg
        ci = job % cg
        ch = (o // og) * cg + ci
        acc[:] = 0
        for b0 in range(0, n, nb):
            b1 = min(b0 + nb, n)
            for b in range(b0, b1):
                for id_ in range(di):
                    for ih in range(hi):
                        row = (b - b0) * v + offd[id_] + offh[ih]
                        for iw in range(wi):
                            xb[row + offw[iw]] = x[b, ch, id_, ih, iw]
                for od in range(do_):
                    for oh in range(ho):
                        row = (b - b0) * v + od * hq * wq + oh * wq
                        for ow in range(wo):
                            gb[np.uint64(row + ow)] = gy[b, o, od, oh, ow]
            length = (b1 - b0 - 1) * v + (do_ - 1) * hq * wq + (ho - 1) * wq + wo
            for s0 in range(0, length, LANES):
                m = min(LANES, length - s0)
                for t in range(k_prod):
                    a = t * LANES
                    xs = taps[t] + s0
                    for j in range(m):
                        u = np.uint64(s0 + j)
                        p = gb[u] * xb[np.uint64(xs + j)]
                        acc[np.uint64(a + j)] += p if valid[u] else zero
        for t in range(k_prod):
            gw[o, ci, t // (kh * kw), (t // kw) % kh, t % kw] = _fold_sum(acc, t * LANES, LANES)

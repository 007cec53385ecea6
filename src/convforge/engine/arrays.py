"""Array helpers of the engine: compute dtype, finiteness, zero padding and cropping, strided window views, batch
tiles and padded row bands, the stride-1 dual of a transposed convolution.  No policy, no selection: the
algorithms and the gradients build on these.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided



def compute_dtype(dtype) -> np.dtype:
    """float16 is accumulated in float32 (as PyTorch does on CPU); everything else in its own dtype."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def all_finite(*arrays) -> bool:
    """Whether every value is finite, in one pass without a temporary (a sum is finite exactly when its terms
    are, unless finite values overflow: then this says False and the caller merely takes its exact path)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(np.sum(a)) for a in arrays)


def crop_negative(x, padding):
    """Apply the negative parts of per-side ``padding`` (crops, as views) to ``x (N, C, *S)``; returns the
    cropped ``x`` and the padding left, all non-negative."""
    if all(lo >= 0 and hi >= 0 for lo, hi in padding):
        return x, padding
    crop = (slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding))
    return x[crop], tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)


def pad_zeros(x, padding):
    """Zero-pad the spatial dims of ``x (N, C, *S)`` by per-side pairs; negative values crop."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    x, padding = crop_negative(x, padding)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(padding))


def window_view(xp, kernel, stride, dilation, out_sizes):
    """Strided view ``(N, C, *K, *O)`` of a padded input: element ``[n, c, t, o] = xp[n, c, o*s + t*d]``."""
    n_sp = len(kernel)
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sizes)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n_sp)) + \
        tuple(st[2 + i] * stride[i] for i in range(n_sp))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def stride1_dual(weight, padding, dilation, groups):
    """At stride 1, a transposed convolution with ``weight (O, C/g, *K)`` and per-side ``padding`` equals the
    plain convolution with the flipped, transposed weight ``W' (C, O/g, *K)`` (``W'[g*Cg + c, o] =
    W[g*Og + o, c]`` reversed along every kernel dim) and padding ``d*(k-1) - pad`` per side -- and the other way
    round.  Returns ``(W', dual padding)``; a negative dual padding means the original padding exceeds the
    kernel span."""
    o_ch, cg = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    og = o_ch // groups
    w = weight.reshape((groups, og, cg) + kernel).swapaxes(1, 2)
    w = w[(slice(None),) * 3 + (slice(None, None, -1),) * len(kernel)]
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, d, (lo, hi) in zip(kernel, dilation, padding))
    return np.ascontiguousarray(w).reshape((groups * cg, og) + kernel), pads


def batch_tiles(n, per_sample_bytes, limit):
    """Split ``range(n)`` into chunks whose workspace stays under ``limit``."""
    per = max(1, int(limit // max(per_sample_bytes, 1)))
    return [(i, min(i + per, n)) for i in range(0, n, per)]


def padded_band(x, first, last, padding_rest):
    """Rows ``[first, last)`` of ``x`` zero-padded along the first spatial dim (rows outside ``[0, H)`` are
    zeros) and by ``padding_rest`` along the others: ``(N, C, last - first, *padded rest)``, built in one buffer
    (no intermediate padded copy: bands exist to save memory)."""
    if any(lo < 0 or hi < 0 for lo, hi in padding_rest):       # cropping: crop the other dims first
        x = pad_zeros(x, ((0, 0),) + tuple(padding_rest))
        padding_rest = ((0, 0),) * len(padding_rest)
    sizes = tuple(i + lo + hi for i, (lo, hi) in zip(x.shape[3:], padding_rest))
    band = np.zeros(x.shape[:2] + (last - first,) + sizes, dtype=x.dtype)
    a, z = max(first, 0), max(min(last, x.shape[2]), 0)
    if z > a:
        inner = tuple(slice(lo, lo + i) for i, (lo, _) in zip(x.shape[3:], padding_rest))
        band[(slice(None), slice(None), slice(a - first, z - first)) + inner] = x[:, :, a:z]
    return band


def band_of_rows(x, r0, r1, kernel, stride, padding, dilation):
    """The input rows that output rows ``[r0, r1)`` (first spatial dim) of a convolution read, zero-padded
    (:func:`padded_band`): ``(N, C, (r1 - r0 - 1)*s + d*(k - 1) + 1, *padded rest)``."""
    lo0, reach = padding[0][0], dilation[0] * (kernel[0] - 1) + 1
    return padded_band(x, r0 * stride[0] - lo0, (r1 - 1) * stride[0] + reach - lo0, padding[1:])


def ceil_div(a, b):
    return -(-a // b)


def tap_window(tap, other_sizes, moving_sizes, stride, dilation, lo):
    """For one kernel ``tap``: the positions ``j`` (slices of the moving side) whose cell
    ``j*stride + tap*dilation - lo`` lies inside the other side, and those cells (strided slices of the other
    side); None when there are none."""
    moving, other = [], []
    for t, n, m, s, d, p in zip(tap, other_sizes, moving_sizes, stride, dilation, lo):
        offset = t * d - p
        ja, jb = max(0, ceil_div(-offset, s)), min(m, (n - 1 - offset) // s + 1)
        if ja >= jb:
            return None
        moving.append(slice(ja, jb))
        other.append(slice(ja * s + offset, (jb - 1) * s + offset + 1, s))
    return tuple(moving), tuple(other)

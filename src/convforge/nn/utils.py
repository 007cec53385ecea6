"""Re-parameterisation: fold BatchNorm into convolutions, merge parallel branches into one conv (RepVGG).

An eval-mode BatchNorm is a per-channel affine map ``y = a * x + c`` with ``a = gamma / sqrt(running_var + eps)``
and ``c = beta - a * running_mean``.  After a convolution ``x -> W * x + b`` it gives ``(a W) * x + (a b + c)``:
one convolution (:func:`fuse_conv_bn`).

RepVGG trains a block of parallel branches ``BN(conv_kxk(x)) + BN(conv_1x1(x)) + BN(x)`` and deploys it as one
``k x k`` convolution (:func:`merge_repvgg_branches`): convolution is linear in its kernel, so after fusing each BN,
the ``1x1`` kernel is zero-padded to ``k x k`` (its tap at the centre), the identity becomes the ``k x k`` kernel
with a 1 at the centre tap of each channel's own input, and the kernels and biases add up.  The centre tap of a
``k x k`` kernel with padding ``dilation * (k // 2)`` reads exactly the pixel a ``1x1`` kernel with no padding
reads, for every padding mode.
"""
from __future__ import annotations

import copy

import numpy as np

from .batchnorm import _BatchNorm
from .conv import _ConvForwardNd, _ConvNd
from .parameter import Parameter

__all__ = ["fuse_conv_bn", "fuse_conv_bn_weights", "merge_repvgg_branches"]


def _bn_affine(bn, dtype):
    """Per-channel ``(scale, shift)`` of an eval-mode BatchNorm."""
    if not isinstance(bn, _BatchNorm):
        raise TypeError(f"expected a BatchNorm module, got {type(bn).__name__}")
    if not bn.track_running_stats:
        raise ValueError(f"{type(bn).__name__} has track_running_stats=False: it always normalises with batch "
                         f"statistics, so it is not a fixed affine map and cannot be fused")
    var = np.asarray(bn.running_var, dtype=np.float64)
    scale = 1 / np.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * np.asarray(bn.weight, dtype=np.float64)
    shift = -np.asarray(bn.running_mean, dtype=np.float64) * scale
    if bn.bias is not None:
        shift = shift + np.asarray(bn.bias, dtype=np.float64)
    return scale.astype(dtype), shift.astype(dtype)


def fuse_conv_bn_weights(weight, bias, bn, transposed: bool = False, groups: int = 1):
    """``(weight, bias)`` of the convolution equal to ``conv(weight, bias)`` followed by eval-mode ``bn``.

    Args:
        weight: ``(out, in/groups, *k)`` (transposed: ``(in, out/groups, *k)``).
        bias: ``(out,)`` or None (treated as zeros).
        bn: a BatchNorm module with running statistics, ``num_features == out``.
        transposed: the weight is a transposed-convolution weight.
        groups: groups of the transposed convolution (needed to find the output channel of each weight slice).

    Returns:
        ``(fused_weight, fused_bias)`` as arrays of the weight's dtype.
    """
    w = np.asarray(weight)
    scale, shift = _bn_affine(bn, w.dtype)
    if transposed:
        c_in, og = w.shape[:2]
        # output channel of w[i, j] is (i // (c_in/groups)) * og + j
        s = scale.reshape(groups, 1, og, *(1,) * (w.ndim - 2))
        fused = (w.reshape((groups, c_in // groups) + w.shape[1:]) * s).reshape(w.shape)
    else:
        fused = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    b = np.zeros_like(scale) if bias is None else np.asarray(bias)
    return fused.astype(w.dtype, copy=False), (b * scale + shift).astype(w.dtype, copy=False)


def fuse_conv_bn(conv, bn):
    """A new convolution equal to ``conv`` followed by ``bn`` in eval mode (the deploy-time fusion).

    Works for every ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` option (groups, dilation, padding modes); the
    result always has a bias.  ``conv`` and ``bn`` are left unchanged.

    Args:
        conv: the convolution module.
        bn: a BatchNorm with ``num_features == conv.out_channels`` and running statistics.

    Example:
        >>> import numpy as np, convforge
        >>> from convforge.nn import Conv2d, BatchNorm2d
        >>> conv, bn = Conv2d(3, 4, 3, bias=False).double(), BatchNorm2d(4).double().eval()
        >>> x = np.random.default_rng(0).normal(size=(1, 3, 6, 6))
        >>> bool(np.allclose(fuse_conv_bn(conv, bn)(x), bn(conv(x)), rtol=1e-12, atol=1e-12))
        True
    """
    if not isinstance(conv, _ConvNd):
        raise TypeError(f"fuse_conv_bn: expected a convolution module, got {type(conv).__name__}")
    if not isinstance(bn, _BatchNorm) or bn.num_features != conv.out_channels:
        got = bn.num_features if isinstance(bn, _BatchNorm) else type(bn).__name__
        raise ValueError(f"fuse_conv_bn: the BatchNorm must have num_features == conv.out_channels "
                         f"({conv.out_channels}), got {got}")
    w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn, conv.transposed, conv.groups)
    fused = copy.deepcopy(conv)
    fused.weight = Parameter(w)
    fused.bias = Parameter(b)
    return fused


def _branch(branch, what):
    conv, bn = branch if isinstance(branch, (tuple, list)) else (branch, None)
    if not isinstance(conv, _ConvForwardNd):
        raise TypeError(f"merge_repvgg_branches: {what} must be a Conv1d/2d/3d (optionally paired with its "
                        f"BatchNorm as (conv, bn)), got {type(conv).__name__}")
    if bn is None:
        b = np.zeros(conv.out_channels, conv.weight.dtype) if conv.bias is None else np.asarray(conv.bias)
        return conv, np.asarray(conv.weight), b
    w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn)
    return conv, w, b


def merge_repvgg_branches(dense, one_by_one=None, identity=None):
    """Merge RepVGG's parallel branches into one ``k x k`` convolution (``k`` odd, any number of spatial dims).

    The block ``bn_k(conv_k(x)) + bn_1(conv_1(x)) + bn_id(x)`` equals ``merged(x)`` (in eval mode).

    Args:
        dense: ``(conv_kxk, bn)`` — or a bare conv — the main branch. Its padding must centre the kernel:
            ``padding == dilation * (k // 2)`` per dimension (e.g. 3x3 with padding 1); any padding mode.
        one_by_one: ``(conv_1x1, bn)``, a bare 1x1 conv, or None. Same channels, stride and groups as
            ``dense``, padding 0.
        identity: a BatchNorm over the input channels (the identity branch with its BN), True for a plain
            identity branch, or None. Needs ``in_channels == out_channels`` and stride 1.

    Returns:
        a new convolution of ``dense``'s configuration with the merged weight and a bias.

    Example:
        >>> import numpy as np
        >>> from convforge.nn import Conv2d, BatchNorm2d
        >>> c3, b3 = Conv2d(4, 4, 3, padding=1, bias=False).double(), BatchNorm2d(4).double().eval()
        >>> c1, b1 = Conv2d(4, 4, 1, bias=False).double(), BatchNorm2d(4).double().eval()
        >>> bid = BatchNorm2d(4).double().eval()
        >>> merged = merge_repvgg_branches((c3, b3), (c1, b1), bid)
        >>> x = np.random.default_rng(0).normal(size=(2, 4, 5, 5))
        >>> bool(np.allclose(merged(x), b3(c3(x)) + b1(c1(x)) + bid(x), rtol=1e-12, atol=1e-12))
        True
    """
    conv, w, b = _branch(dense, "dense")
    kernel, n = conv.kernel_size, conv._n
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"merge_repvgg_branches: the dense kernel must be odd in every dimension, got {kernel}")
    centre_pad = tuple(d * (k // 2) for d, k in zip(conv.dilation, kernel))
    same_ok = conv.padding == "same" and conv.stride == (1,) * n
    if not same_ok and conv._padding_spec != tuple((p, p) for p in centre_pad):
        raise ValueError(f"merge_repvgg_branches: the dense conv must be padded by dilation*(k//2) = {centre_pad} "
                         f"so that its centre tap lines up with a 1x1 conv / the identity, got padding="
                         f"{conv.padding}")
    w = np.array(w, copy=True)
    b = np.array(b, copy=True)
    centre = (slice(None), slice(None)) + tuple(k // 2 for k in kernel)
    if one_by_one is not None:
        c1, w1, b1 = _branch(one_by_one, "one_by_one")
        mismatch = [f"{name} {getattr(c1, name)} vs {getattr(conv, name)}"
                    for name in ("in_channels", "out_channels", "stride", "groups")
                    if getattr(c1, name) != getattr(conv, name)]
        if c1.kernel_size != (1,) * n or c1._padding_spec != ((0, 0),) * n or c1._n != n or mismatch:
            raise ValueError(f"merge_repvgg_branches: one_by_one must be a 1x1 conv with padding 0 and the same "
                             f"channels, stride and groups as dense; got kernel {c1.kernel_size}, padding "
                             f"{c1.padding}{', ' if mismatch else ''}{', '.join(mismatch)}")
        w[centre] += w1[(slice(None), slice(None)) + (0,) * n]
        b += b1
    if identity is not None and identity is not False:
        c = conv.in_channels
        if conv.out_channels != c or conv.stride != (1,) * n:
            raise ValueError(f"merge_repvgg_branches: an identity branch needs in_channels == out_channels and "
                             f"stride 1, got {c} -> {conv.out_channels} channels, stride {conv.stride}")
        cg = c // conv.groups
        # channel i reads only itself: its own input is local index i % cg within its group
        eye = np.zeros((c, cg), dtype=w.dtype)
        eye[np.arange(c), np.arange(c) % cg] = 1
        if identity is True:
            scale, shift = np.ones(c, w.dtype), np.zeros(c, w.dtype)
        else:
            if identity.num_features != c:
                raise ValueError(f"merge_repvgg_branches: identity BatchNorm must have num_features == {c}, got "
                                 f"{identity.num_features}")
            scale, shift = _bn_affine(identity, w.dtype)
        w[centre] += eye * scale[:, None]
        b += shift
    merged = copy.deepcopy(conv)
    merged.weight = Parameter(w.astype(conv.weight.dtype, copy=False))
    merged.bias = Parameter(b.astype(conv.weight.dtype, copy=False))
    return merged

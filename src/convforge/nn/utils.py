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

:func:`optimize_for_inference` applies the folding to a whole network, wherever the data flow allows it.
"""
from __future__ import annotations

import copy
import warnings
from typing import NamedTuple

import numpy as np

from ..autograd import Tensor, tensor
from ..autograd.graph import UnrecordedOperation
from .batchnorm import _BatchNorm
from .containers_more import Identity
from .conv import _ConvForwardNd, _ConvNd, _ConvTransposeNd
from .dropout import Dropout, StochasticDepth
from .fused import EPILOGUE_ACTIVATIONS, fused_conv
from .linear import Linear
from .module import Module
from .parameter import Parameter

__all__ = ["fuse_conv_bn", "fuse_conv_bn_weights", "merge_repvgg_branches", "optimize_for_inference"]


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


# -- optimize_for_inference ------------------------------------------------------------------------------------
# The data flow is read off one recorded forward pass, never off module names: a convolution absorbs its
# BatchNorm only when the graph shows the BatchNorm as the single consumer of the convolution's output, and an
# activation only when it is the single consumer of what it would be fused after.  A module object called at
# several sites becomes Identity only if every one of its sites was absorbed.

_EVAL_IDENTITIES = (Dropout, StochasticDepth)     # exactly the identity in eval mode
_CHECK_TOLERANCE = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-3}


class _Call(NamedTuple):
    module: Module
    args: tuple
    output: object


def _own_forward(module, base) -> bool:
    """``module`` computes what ``base`` does: neither its class nor the instance overrides ``forward`` or the
    convolution."""
    cls = type(module)
    same_conv = getattr(cls, "_conv_forward", None) is getattr(base, "_conv_forward", None)
    return "forward" not in module.__dict__ and cls.forward is base.forward and same_conv


def _is_plain_conv(m) -> bool:
    return (isinstance(m, _ConvForwardNd) and _own_forward(m, _ConvForwardNd)) or \
        (isinstance(m, _ConvTransposeNd) and _own_forward(m, _ConvTransposeNd))


def _is_plain_bn(m) -> bool:
    return isinstance(m, _BatchNorm) and _own_forward(m, _BatchNorm) and m.track_running_stats and \
        m.running_mean is not None and m.running_var is not None


def _unique_modules(model):
    seen = {}
    for m in model.modules():
        seen.setdefault(id(m), m)
    return list(seen.values())


def _trace(model, example):
    """Run ``model`` once on ``example`` as a tensor that requires grad, recording every module call.

    Returns ``(calls, output)``; the graph hangs off the output's ``grad_fn``."""
    calls = []
    modules = _unique_modules(model)
    for p in model.parameters():       # every use of every weight shows in the graph (our copy; frozen after)
        p.requires_grad = True

    def recorder(m):
        forward = m.forward

        def record(*args, **kwargs):
            out = forward(*args, **kwargs)
            calls.append(_Call(m, args if not kwargs else (), out))
            return out
        return record

    own = {id(m): m.__dict__["forward"] for m in modules if "forward" in m.__dict__}   # set on the instance
    for m in modules:
        m.__dict__["forward"] = recorder(m)
    try:
        out = model(tensor(example, requires_grad=True))
    finally:
        for m in modules:
            if id(m) in own:
                m.__dict__["forward"] = own[id(m)]
            else:
                m.__dict__.pop("forward", None)
    return calls, out


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _leaves(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _leaves(o)]
    return [out]


def _consumer_counts(out):
    """``{(node, output_index): uses}`` over the graph reachable from the model's outputs (a returned tensor
    counts as one use; a parameter ``p`` is the key ``(id(p), -1)``), and whether that graph holds an operation
    autograd did not record (unknown data flow)."""
    counts = {}
    stack, seen = [], set()

    def use(node, index):
        key = (node, index)
        counts[key] = counts.get(key, 0) + 1
        if id(node) not in seen:
            seen.add(id(node))
            stack.append(node)

    for t in _leaves(out):
        if isinstance(t, Tensor) and t.grad_fn is not None:
            use(t.grad_fn, t._output_nr)
    unknown = False
    while stack:
        node = stack.pop()
        unknown |= node.fn is UnrecordedOperation
        for edge in node.edges:
            if edge is not None and edge[1] >= 0:
                use(edge[0], edge[1])
            elif edge is not None:
                counts[(id(edge[0]), -1)] = counts.get((id(edge[0]), -1), 0) + 1
    return counts, unknown


class _Fusion(NamedTuple):
    conv: Module
    bn: object            # the BatchNorm module absorbed, or None
    act: object           # the activation module absorbed, or None


def _plan_fusions(calls, counts):
    """One ``_Fusion`` per convolution called once; BatchNorms and activations only where all their sites fuse."""
    def single_use(t):
        return isinstance(t, Tensor) and t.grad_fn is not None and counts.get((t.grad_fn, t._output_nr), 0) == 1

    def own_weights(m):
        """Each parameter of ``m`` is used once per call of ``m``: no weight tying, no use outside ``m``."""
        return all(counts.get((id(p), -1), 0) == len(sites[id(m)]) for p in m.parameters())

    def sole_call_on(t, accept):
        """The call that took ``t`` as its only argument, if ``t`` has no other use and the call is ``accept``ed."""
        if not single_use(t):
            return None
        found = [c for c in calls if len(c.args) == 1 and c.args[0] is t and accept(c.module)]
        return found[0] if len(found) == 1 else None

    sites = {}
    for c in calls:
        sites.setdefault(id(c.module), []).append(c)
    chains = []
    for c in calls:
        conv = c.module
        if not _is_plain_conv(conv) or len(sites[id(conv)]) != 1 or not own_weights(conv):
            continue
        bn = sole_call_on(c.output, lambda m: _is_plain_bn(m) and m.num_features == conv.out_channels and
                          own_weights(m))
        act = None
        if isinstance(conv, _ConvForwardNd):
            act = sole_call_on(c.output if bn is None else bn.output, lambda m: type(m) in EPILOGUE_ACTIVATIONS)
        chains.append((conv, bn, act))

    def all_sites_in(found):
        ok = {}
        for call in found:
            ok[id(call.module)] = all(any(s is f for f in found) for s in sites[id(call.module)])
        return ok

    bn_ok = all_sites_in([bn for _, bn, _ in chains if bn is not None])
    for i, (conv, bn, act) in enumerate(chains):
        if bn is not None and not bn_ok[id(bn.module)]:
            chains[i] = (conv, None, None)       # the BatchNorm stays, so nothing after it joins the conv
    act_ok = all_sites_in([act for _, _, act in chains if act is not None])
    return [_Fusion(conv, None if bn is None else bn.module,
                    act.module if act is not None and act_ok[id(act.module)] else None) for conv, bn, act in chains]


def _replace(root, old, new):
    """Put ``new`` wherever ``old`` is registered (a module shared by several parents everywhere)."""
    if root is old:
        return new
    for m in _unique_modules(root):
        for name, child in m._modules.items():
            if child is old:
                m._modules[name] = new
    return root


def _fused_module(f: _Fusion):
    conv = f.conv
    if isinstance(conv, _ConvTransposeNd):
        return fuse_conv_bn(conv, f.bn)
    w, b = (conv.weight, conv.bias) if f.bn is None else fuse_conv_bn_weights(conv.weight, conv.bias, f.bn)
    return fused_conv(conv, np.asarray(w), None if b is None else np.asarray(b), f.act)


def _freeze(model) -> None:
    """Parameters become plain (contiguous) buffers: nothing is recorded, state_dict keeps every key."""
    for m in _unique_modules(model):
        for name, p in list(m._parameters.items()):
            if p is not None:
                del m._parameters[name]
                m._buffers[name] = np.ascontiguousarray(np.ndarray.view(p, np.ndarray))


def _example_input(model):
    """A small random input for the trace, from the first convolution (or Linear) the model registers."""
    for m in model.modules():
        if isinstance(m, _ConvNd):
            size = 16 if m._n >= 3 else 64
            shape = (1, m.in_channels) + (size,) * m._n
            return np.random.default_rng(0).standard_normal(shape).astype(m.weight.dtype)
        if isinstance(m, Linear):
            return np.random.default_rng(0).standard_normal((1, m.in_features)).astype(m.weight.dtype)
    raise ValueError(f"optimize_for_inference: cannot guess an input for {type(model).__name__} (no convolution or "
                     f"Linear layer to read the channels from); pass example_input=an array of the input's shape")


def _plain(out):
    return [np.asarray(np.ndarray.view(t, np.ndarray) if isinstance(t, Tensor) else t) for t in _leaves(out)]


def _same_outputs(expected, actual) -> bool:
    exp, act = _plain(expected), _plain(actual)
    if len(exp) != len(act):
        return False
    for e, a in zip(exp, act):
        if e.shape != a.shape or e.dtype != a.dtype:
            return False
        tol = _CHECK_TOLERANCE.get(e.dtype)
        if tol is not None and e.size:
            scale = max(float(np.max(np.abs(e))), 1.0)
            if not np.allclose(a, e, rtol=tol, atol=tol * scale, equal_nan=True):
                return False
    return True


def optimize_for_inference(model: Module, example_input=None) -> Module:
    """A new, eval-mode copy of ``model`` made for fast inference; ``model`` itself is left unchanged.

    - Every convolution followed by an eval-mode BatchNorm gets the BatchNorm folded into its weight and bias
      (:func:`fuse_conv_bn_weights`).
    - A convolution's activation (ReLU, ReLU6, LeakyReLU, SiLU, Hardswish, Hardsigmoid, GELU, Sigmoid) is applied
      in place on the convolution's fresh output (``FusedConvNd``, :mod:`convforge.nn.fused`), which also plans
      each input shape once and then calls the engine directly.
    - Dropout and StochasticDepth (identities in eval mode) become ``Identity``.
    - Parameters become plain buffers: nothing is recorded for autograd, outputs are plain arrays for plain
      inputs (``parameters()`` of the result is empty; ``state_dict()`` keeps the remaining keys).

    What may be fused is read off the data flow of one recorded forward pass on ``example_input`` (by default a
    small random input shaped from the first layer): a BatchNorm is folded only where it is the single consumer of
    the convolution's output, an activation only where it is the single consumer of the BatchNorm's (or the
    convolution's) output, and a module called at several sites (torchvision's BasicBlock calls one ReLU twice)
    is removed only when all of its sites were fused.  The result is then checked against the original on that
    input; a mismatch (a forward whose data flow depends on the values) gives a warning and the unfused copy.
    A ``forward`` whose structure depends on the input's shape should be given a representative
    ``example_input``.

    Args:
        model: any convforge module, including ones with their own ``forward``.
        example_input: an input the model accepts (default: guessed from the first convolution or Linear layer).

    Returns:
        the optimised model; outputs equal ``model.eval()``'s within rounding (float64: ~1e-12 relative).

    Example:
        >>> import numpy as np, convforge
        >>> from convforge import nn
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU()).double()
        >>> fast = optimize_for_inference(model)
        >>> fast
        Sequential(
          (0): FusedConv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), activation=ReLU())
          (1): Identity()
          (2): Identity()
        )
        >>> x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
        >>> y = fast(x)
        >>> type(y).__name__, bool(np.allclose(y, model.eval()(x), rtol=1e-12, atol=1e-12))
        ('ndarray', True)
    """
    if not isinstance(model, Module):
        raise TypeError(f"optimize_for_inference: expected a convforge Module, got {type(model).__name__}")
    example = _example_input(model) if example_input is None else np.asarray(example_input)
    optimized = copy.deepcopy(model).eval()
    try:
        calls, expected = _trace(optimized, example)
    except Exception as err:
        raise ValueError(f"optimize_for_inference: running {type(model).__name__} on "
                         f"{'the example input' if example_input is not None else 'a guessed input'} of shape "
                         f"{tuple(example.shape)} failed ({type(err).__name__}: {err}); pass "
                         f"example_input=an array the model accepts") from err
    counts, unknown = _consumer_counts(expected)
    fusions = [] if unknown else _plan_fusions(calls, counts)
    absorbed = [m for f in fusions for m in (f.bn, f.act) if m is not None]
    for f in fusions:
        optimized = _replace(optimized, f.conv, _fused_module(f))
    identities = [m for m in _unique_modules(optimized) if type(m) in _EVAL_IDENTITIES and "forward" not in m.__dict__]
    for m in absorbed + identities:
        optimized = _replace(optimized, m, Identity())
    _freeze(optimized)
    if not _same_outputs(expected, optimized(example)):
        warnings.warn(f"optimize_for_inference: the fused {type(model).__name__} does not reproduce the original on "
                      f"the example input (its forward's data flow seems to depend on the values); returning the "
                      f"unfused eval-mode copy", RuntimeWarning, stacklevel=2)
        optimized = copy.deepcopy(model).eval()
        _freeze(optimized)
    return optimized

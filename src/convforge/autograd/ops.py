"""The operations autograd records on tensors: arithmetic and ufuncs, reductions, shape ops, indexing, joins.

Each is a :class:`Function`; they are registered with :class:`Tensor`'s NumPy protocols here.  Gradients of
broadcast operands come back full-size and the engine sums them to the operand's shape (as torch does).

Recorded ufuncs: ``add subtract multiply true_divide power matmul negative positive exp log sqrt square tanh
absolute maximum minimum clip``, plus ``add.reduce`` / ``maximum.reduce`` / ``minimum.reduce``.  Never
differentiable (outputs carry no gradient): comparisons, logical ops, ``sign floor ceil trunc rint isnan isinf
isfinite``.  Functions: ``np.sum mean amax max amin min reshape transpose squeeze expand_dims ravel concatenate
stack where clip matmul``; value-independent ones (``zeros_like``, ``shape``, ``argmax``, ...) run unrecorded.
``max``/``amax`` (and ``min``) split the gradient evenly between tied maxima, as torch's ``amax``.
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._grad_mode import is_grad_enabled as _grad_enabled
from .function import Function
from .tensor import FUNCTION_RULES, UFUNC_RULES, UNTRACKED_FUNCTIONS, UNTRACKED_UFUNCS, Tensor, unrecorded_result


def _conj(a):
    """Complex gradients follow torch's convention (conjugate Wirtinger): ``grad_x = grad_out * conj(d out/d x)``."""
    return np.conj(a) if np.iscomplexobj(a) else a


def _sgn(x):
    """torch's ``sgn``: ``x / |x|`` (0 at 0); ``sign`` for real values."""
    if not np.iscomplexobj(x):
        return np.sign(x)
    size = np.abs(x)
    return np.where(size == 0, 0, x / np.where(size == 0, 1, size))


# -- elementwise --------------------------------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b if ctx.needs_input_grad[0] else None)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g * _conj(b) if b is not None else None), (g * _conj(a) if a is not None else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = np.true_divide(a, b)
        ctx.save_for_backward(b, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.saved_tensors
        ga = g / _conj(b) if ctx.needs_input_grad[0] else None
        return ga, (-g * _conj(out / b) if out is not None else None)


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        ga = g * _conj(b * np.power(a, np.subtract(b, 1))) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:   # torch: 0 where a == 0 and b >= 0
            gb = g * _conj(np.where((a == 0) & (np.real(b) >= 0), 0, out * np.log(np.where(a == 0, 1, a))))
        return ga, gb


class _Extremum(Function):
    """maximum / minimum: the gradient goes to the chosen operand; ties split it in half (torch's rule)."""
    ufunc = None

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return cls.ufunc(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_tensors
        share = np.where(a == b, g * 0.5, g)
        a_wins = cls.ufunc(a, b) == a
        return np.where(a_wins, share, 0), np.where((a == b) | ~a_wins, share, 0)


class Maximum(_Extremum):
    ufunc = np.maximum


class Minimum(_Extremum):
    ufunc = np.minimum


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = np.matmul(g2, _conj(np.swapaxes(b2, -1, -2)))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if ctx.needs_input_grad[1]:
            gb = np.matmul(_conj(np.swapaxes(a2, -1, -2)), g2)
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb


class _Unary(Function):
    """``out = ufunc(x)``; ``grad(g, x, out)`` gives the input gradient."""
    ufunc = None

    @classmethod
    def forward(cls, ctx, x):
        out = cls.ufunc(x)
        ctx.save_for_backward(x, out)
        return out

    @classmethod
    def backward(cls, ctx, g):
        x, out = ctx.saved_tensors
        return cls.grad(g, x, out)


class Neg(_Unary):
    ufunc = np.negative
    grad = staticmethod(lambda g, x, out: -g)


class Pos(_Unary):
    ufunc = np.positive
    grad = staticmethod(lambda g, x, out: g)


class Exp(_Unary):
    ufunc = np.exp
    grad = staticmethod(lambda g, x, out: g * _conj(out))


class Log(_Unary):
    ufunc = np.log
    grad = staticmethod(lambda g, x, out: g / _conj(x))


class Sqrt(_Unary):
    ufunc = np.sqrt
    grad = staticmethod(lambda g, x, out: g / (2 * _conj(out)))


class Reciprocal(_Unary):
    ufunc = np.reciprocal
    grad = staticmethod(lambda g, x, out: -g * _conj(out * out))


class Square(_Unary):
    ufunc = np.square
    grad = staticmethod(lambda g, x, out: 2 * _conj(x) * g)


class Tanh(_Unary):
    ufunc = np.tanh
    grad = staticmethod(lambda g, x, out: g * _conj(1 - out * out))


class Abs(_Unary):
    ufunc = np.absolute
    grad = staticmethod(lambda g, x, out: g * _sgn(x))


class Clip(Function):
    """``clip(x, lo, hi)``: the gradient passes where ``lo <= x <= hi``, else goes to the bound (torch's clamp)."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo, hi)
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.saved_tensors
        below = (x < lo) if lo is not None else False
        above = (x > hi) if hi is not None else False
        inside = ~(below | above)
        return (np.where(inside, g, 0), np.where(below & ~above, g, 0) if lo is not None else None,
                np.where(above, g, 0) if hi is not None else None)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        return None, np.where(cond, g, 0), np.where(cond, 0, g)


# -- reductions ---------------------------------------------------------------------------------------------------
def _keep_shape(shape, axis):
    """The shape of a reduction with keepdims=True."""
    axes = range(len(shape)) if axis is None else [a % len(shape) for a in np.atleast_1d(axis)]
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, scale=None, dtype=None):
        ctx.shape, ctx.axis, ctx.scale = x.shape, axis, scale
        out = np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)
        return out if scale is None else np.multiply(out, scale, dtype=out.dtype)

    @staticmethod
    def backward(ctx, g):
        g = g.reshape(_keep_shape(ctx.shape, ctx.axis))
        if ctx.scale is not None:
            g = g * ctx.scale
        return np.broadcast_to(g, ctx.shape)


class Amax(Function):
    """amax / amin over axes; tied extrema share the gradient evenly (torch's amax)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, minimum=False):
        out = (np.amin if minimum else np.amax)(x, axis=axis, keepdims=True)
        ctx.save_for_backward(x, out)
        ctx.axis = axis
        return out if keepdims else out.reshape(np.squeeze(out, axis=axis).shape if axis is not None else ())

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        hit = x == out
        count = np.sum(hit, axis=ctx.axis, keepdims=True)
        return np.where(hit, g.reshape(out.shape) / count, 0)


def _sum(x, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("sum", out, kw)
    return Sum.apply(x, axis=_axis(axis), keepdims=keepdims, dtype=dtype)


def _mean(x, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("mean", out, kw)
    axis = _axis(axis)
    count = np.prod([x.shape[a] for a in np.atleast_1d(axis)]) if axis is not None else x.size
    if dtype is None and x.dtype.kind in "iub":
        dtype = np.float64
    return Sum.apply(x, axis=axis, keepdims=keepdims, scale=1.0 / count if count else np.nan, dtype=dtype)


def _amax(x, axis=None, out=None, keepdims=False, **kw):
    _no_out("max", out, kw)
    return Amax.apply(x, axis=_axis(axis), keepdims=keepdims)


def _amin(x, axis=None, out=None, keepdims=False, **kw):
    _no_out("min", out, kw)
    return Amax.apply(x, axis=_axis(axis), keepdims=keepdims, minimum=True)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _no_out(name, out, kw):
    extra = {k: v for k, v in kw.items() if v is not np._NoValue and not (k == "initial" and v is None)}
    if out is not None or extra:
        raise RuntimeError(f"{name}() with out=/{'/'.join(extra) or 'out'}= on a tensor that requires grad is not "
                           f"recorded; use the plain form")


def _reduce_rule(fn):
    def rule(x, axis=0, dtype=None, out=None, keepdims=False, **kw):   # ufunc.reduce's signature
        kwargs = {"dtype": dtype} if fn is _sum else {}
        return fn(x, axis=axis, out=out[0] if out else None, keepdims=keepdims, **kwargs, **kw)
    return rule


# -- shape ops and indexing ---------------------------------------------------------------------------------------
class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return np.reshape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, np.argsort(ctx.axes) if ctx.axes is not None else None), None


class Cast(Function):
    """``astype`` / ``copy``: the gradient is cast back by the engine."""

    @staticmethod
    def forward(ctx, x, dtype=None):
        return np.array(x, dtype=dtype, copy=True)

    @staticmethod
    def backward(ctx, g):
        return g


def _is_basic(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in keys)


class Index(Function):
    """``x[key]`` for any NumPy key; repeated advanced indices accumulate (``np.add.at``)."""

    @staticmethod
    def forward(ctx, x, key):
        ctx.shape, ctx.dtype, ctx.key = x.shape, x.dtype, key
        return x[key]

    @staticmethod
    def backward(ctx, g):
        gx = np.zeros(ctx.shape, ctx.dtype.newbyteorder("="))
        if _is_basic(ctx.key):
            gx[ctx.key] = g
        else:
            np.add.at(gx, ctx.key, g)
        return gx, None


def _plain_key(key):
    if isinstance(key, Tensor):
        return np.ndarray.view(key, np.ndarray)
    if isinstance(key, tuple):
        return tuple(_plain_key(k) for k in key)
    return key


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.sizes = [a.shape[axis] for a in arrays]
        ctx.axis = axis
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, np.cumsum(ctx.sizes)[:-1], axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.axis, 0))


def cat(tensors, dim: int = 0):
    """Join tensors along an existing dimension (``torch.cat``); recorded.

    >>> import numpy as np, convforge
    >>> convforge.cat([convforge.tensor(np.ones((1, 2))), np.zeros((2, 2))], dim=0).shape
    (3, 2)
    """
    return _as_tensor(Cat.apply(*_nonempty("cat", tensors), axis=dim))


def stack(tensors, dim: int = 0):
    """Join tensors along a new dimension (``torch.stack``); recorded.

    >>> import numpy as np, convforge
    >>> convforge.stack([convforge.tensor(np.ones(2)), np.zeros(2)], dim=1).shape
    (2, 2)
    """
    return _as_tensor(Stack.apply(*_nonempty("stack", tensors), axis=dim))


def _nonempty(name, tensors):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}() expected a non-empty list of tensors")
    return tensors


def _as_tensor(a):
    if isinstance(a, Tensor) or _backend.backend_for((a,)):     # another backend's array (Dask) stays lazy
        return a
    return np.ndarray.view(np.asarray(a), Tensor)


# -- Tensor methods -----------------------------------------------------------------------------------------------
def _shape_args(args):
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` both mean shape (2, 3)."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _reshape(self, *shape, order="C"):
    if order != "C" and not (order in ("K", "A") and self.flags.c_contiguous):   # 'K'/'A' mean 'C' here
        raise ValueError(f"Tensor.reshape supports order='C' only, got {order!r}")
    return Reshape.apply(self, _shape_args(shape))


def _view(self, *args, **kwargs):
    """``t.view(2, 3)`` reshapes (torch); ``t.view(dtype_or_type)`` is NumPy's view, refused when it would
    reinterpret a tensor that requires grad."""
    shape = _shape_args(args)
    if shape and all(isinstance(n, (int, np.integer)) for n in shape) and not kwargs:
        return Reshape.apply(self, shape)
    if self.requires_grad and _grad_enabled():
        target = kwargs.get("type", args[0] if args else None)
        if not (isinstance(target, type) and issubclass(target, np.ndarray)) or kwargs.get("dtype") is not None:
            raise RuntimeError("Tensor.view(dtype) reinterprets the bytes of a tensor that requires grad; it is not "
                               "differentiable: detach() first")
        return self.detach() if issubclass(target, Tensor) else np.ndarray.view(self, target)
    return np.ndarray.view(self, *args, **kwargs)


def _transpose(self, *axes):
    axes = _shape_args(axes)
    return Permute.apply(self, tuple(axes) if axes else None)


def _permute(self, *dims):
    return Permute.apply(self, tuple(d % self.ndim for d in _shape_args(dims)))


def _swapaxes(self, axis1, axis2):
    axes = list(range(self.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Permute.apply(self, tuple(axes))


def _flatten(self, start_dim=0, end_dim=-1):
    """torch's ``flatten(start_dim=0, end_dim=-1)``; NumPy's ``flatten(order)`` when given an order string."""
    if isinstance(start_dim, str):
        return Cast.apply(_reshape(self, -1, order=start_dim))
    if self.ndim == 0:
        return Reshape.apply(self, (1,))
    start, end = start_dim % self.ndim, end_dim % self.ndim
    if start > end:
        raise ValueError(f"flatten() has invalid args: start_dim {start_dim} cannot come after end_dim {end_dim}")
    shape = self.shape[:start] + (int(np.prod(self.shape[start:end + 1])),) + self.shape[end + 1:]
    return Reshape.apply(self, shape)


def _squeeze(self, axis=None):
    return Reshape.apply(self, np.squeeze(np.empty(self.shape, np.bool_), axis=axis).shape)


def _unsqueeze(self, dim):
    return Reshape.apply(self, np.expand_dims(np.empty(self.shape, np.bool_), dim).shape)


def _ravel(self, order="C"):
    return _reshape(self, -1, order=order)


def _astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
    if not copy and np.dtype(dtype) == self.dtype:
        return self
    return Cast.apply(self, dtype=dtype)


def _copy(self, order="C"):
    return Cast.apply(self)


def _dot(self, other):
    if self.ndim > 2 or np.ndim(other) > 2:
        raise RuntimeError("Tensor.dot on arrays of more than 2 dims is not recorded; use the @ operator (matmul)")
    return MatMul.apply(self, other) if self.ndim and np.ndim(other) else Mul.apply(self, other)


def _getitem(self, key):
    return Index.apply(self, _plain_key(key))


def _setitem(self, key, value):
    if _grad_enabled() and (self.grad_fn is not None or getattr(value, "requires_grad", False)):
        raise RuntimeError("in-place assignment into a recorded result (or of a value that requires grad) is not "
                           "recorded by autograd; build the result out of place (e.g. convforge.cat, np.where) or "
                           "assign under convforge.no_grad()")
    np.ndarray.__setitem__(self, _plain_key(key), value.view(np.ndarray) if isinstance(value, Tensor) else value)


def _round(self, decimals=0, out=None):
    """Rounding has a zero gradient almost everywhere: the result is computed on the values, untracked."""
    return _as_tensor(np.round(np.ndarray.view(self, np.ndarray), decimals, out))


def _clone(self):
    return Cast.apply(self)


def _guard(name):
    """An ndarray method autograd does not record: refused on a tensor that requires grad."""
    base = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        if self.requires_grad and _grad_enabled():
            return unrecorded_result(base(np.ndarray.view(self, np.ndarray), *args, **kwargs), f"Tensor.{name}()")
        return base(self, *args, **kwargs)
    method.__name__ = name
    return method


_METHODS = {
    "reshape": _reshape, "view": _view, "transpose": _transpose, "permute": _permute, "swapaxes": _swapaxes,
    "flatten": _flatten, "squeeze": _squeeze, "unsqueeze": _unsqueeze, "ravel": _ravel, "astype": _astype,
    "copy": _copy, "clone": _clone, "round": _round, "dot": _dot, "__getitem__": _getitem, "__setitem__": _setitem,
    "sum": _sum, "mean": _mean, "max": _amax, "amax": _amax, "min": _amin, "amin": _amin,
    "T": property(lambda self: Permute.apply(self, None)),
    "mT": property(lambda self: _swapaxes(self, -1, -2)),
}
_GUARDED = ("take", "repeat", "diagonal", "trace", "sort", "partition", "compress", "choose", "cumsum", "cumprod",
            "prod", "var", "std", "ptp", "put", "fill", "resize", "itemset", "byteswap", "conj", "conjugate",
            "getfield", "setfield")
for _name, _impl in _METHODS.items():
    setattr(Tensor, _name, _impl)
for _name in _GUARDED:
    if hasattr(np.ndarray, _name):
        setattr(Tensor, _name, _guard(_name))


# -- NumPy protocol tables ----------------------------------------------------------------------------------------
def _binary(fn):
    def rule(a, b, **kw):
        _no_out(fn.__name__.lower(), kw.pop("out", None), kw)
        return fn.apply(a, b)
    return rule


def _unary(fn):
    def rule(x, **kw):
        _no_out(fn.__name__.lower(), kw.pop("out", None), kw)
        return fn.apply(x)
    return rule


def _clip_rule(x, a_min=None, a_max=None, out=None, *, min=None, max=None, **kw):
    _no_out("clip", out, kw)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    return Clip.apply(x, lo, hi)


def _unsupported(name):
    raise RuntimeError(f"np.{name} with these keyword arguments is not recorded by autograd; use the plain form")


def _where_rule(cond, *values):
    if not values:
        return np.nonzero(np.asarray(cond).view(np.ndarray))
    return Where.apply(_plain_key(cond), *values)


for _ufunc, _fn in ((np.add, Add), (np.subtract, Sub), (np.multiply, Mul), (np.true_divide, Div),
                    (np.power, Pow), (np.maximum, Maximum), (np.minimum, Minimum), (np.matmul, MatMul)):
    UFUNC_RULES[(_ufunc, "__call__")] = _binary(_fn)
for _ufunc, _fn in ((np.negative, Neg), (np.positive, Pos), (np.exp, Exp), (np.log, Log), (np.sqrt, Sqrt),
                    (np.square, Square), (np.tanh, Tanh), (np.absolute, Abs), (np.reciprocal, Reciprocal)):
    UFUNC_RULES[(_ufunc, "__call__")] = _unary(_fn)
UFUNC_RULES[(np._core.umath.clip, "__call__")] = lambda x, lo, hi, **kw: _clip_rule(x, lo, hi, **kw)
UFUNC_RULES[(np.add, "reduce")] = _reduce_rule(_sum)
UFUNC_RULES[(np.maximum, "reduce")] = _reduce_rule(_amax)
UFUNC_RULES[(np.minimum, "reduce")] = _reduce_rule(_amin)
UNTRACKED_UFUNCS.update((np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
                         np.logical_and, np.logical_or, np.logical_not, np.logical_xor, np.sign, np.signbit,
                         np.floor, np.ceil, np.trunc, np.rint, np.isnan, np.isinf, np.isfinite))

FUNCTION_RULES.update({
    np.sum: _sum, np.mean: _mean, np.amax: _amax, np.max: _amax, np.amin: _amin, np.min: _amin,
    np.reshape: lambda a, shape=None, order="C", **kw: _reshape(a, kw.get("newshape", shape), order=order),
    np.transpose: lambda a, axes=None: _transpose(a, *(() if axes is None else (tuple(axes),))),
    np.squeeze: lambda a, axis=None: _squeeze(a, axis), np.expand_dims: lambda a, axis: _unsqueeze(a, axis),
    np.ravel: lambda a, order="C": _ravel(a, order), np.swapaxes: _swapaxes,
    np.concatenate: lambda arrays, axis=0, **kw: cat(arrays, dim=axis) if not kw else _unsupported("concatenate"),
    np.stack: lambda arrays, axis=0, **kw: stack(arrays, dim=axis) if not kw else _unsupported("stack"),
    np.where: _where_rule, np.clip: _clip_rule, np.matmul: _binary(MatMul),
})
UNTRACKED_FUNCTIONS.update((np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.shape, np.ndim, np.size,
                            np.result_type, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero,
                            np.flatnonzero, np.count_nonzero, np.array_equal, np.array_equiv, np.allclose,
                            np.isclose, np.all, np.any, np.may_share_memory, np.shares_memory, np.searchsorted,
                            np.round, np.around, np.iscomplexobj, np.isrealobj, np.copyto))

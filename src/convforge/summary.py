"""``convforge.summary(model, input_size)``: shapes, parameters, MACs, FLOPs and receptive fields, exactly,
without running the model.

Shapes are propagated through :mod:`convforge.shapes` (the functions the engine uses), layer by layer; a
convolution is read through :func:`convforge.layer_view.layer_view`, which also gives its counts.  Counts follow
PyTorch's ``FlopCounterMode``: a multiply-add is one MAC, FLOPs = 2 x MACs, bias additions are not counted, and
pointwise layers (activations, normalisation, pooling, dropout, upsampling) count 0.  Convolutions count as
:mod:`convforge.layer_view` says (padding taps included); Linear: ``MACs = prod(leading dims) * in_features *
out_features``.  ``effective_macs`` additionally counts only the products that touch a real input cell and land
on a real output cell -- exactly the multiply-adds the plain-loop reference performs.

Which modules are understood: the convolution family, ``Sequential`` (and any container: its children are
walked in registration order), the activations, ``Dropout``/``StochasticDepth``/``Identity``, ``BatchNorm*``,
``LayerNorm``, ``MaxPool*``/``AvgPool*``, ``AdaptiveAvgPool*``/``AdaptiveMaxPool*``, ``Flatten``, ``Linear``,
``Upsample``.  Each has one shape rule, found by its class (the exact class name along its MRO, so subclasses
and torch modules of the same names work too).  A module that writes its own ``forward`` (skip connections, a
layer used twice, reshapes, slicing) is traced: its forward runs on zeros with every leaf layer replaced by its
shape rule (the leaves are never computed), so each call of a layer is one row, in call order.  Limitations:
products the forward computes itself (``F.conv2d`` on its own arrays) are not counted, and the receptive field is
not followed through such a module.  A module may instead define ``output_shape(input_shape) -> tuple`` to
describe itself (its children are then listed but not chained).

Example
-------
>>> import convforge.nn as nn
>>> s = summary(nn.Conv2d(8, 14, (3, 2), stride=(2, 1)), (5, 8, 10, 5))
>>> s.layers[0].output_shape, s.total_params, s.total_macs, s.total_flops
((5, 14, 4, 4), 686, 53760, 107520)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import shapes
from ._grad_mode import no_grad
from .layer_view import layer_view
from .receptive import START, ReceptiveField, RFStep, field_of, rf_step, upsample_step

__all__ = ["summary", "ModelSummary", "LayerSummary"]

Shape = Tuple[int, ...]
# layers that keep the shape (torch's names included, so torch models summarise too)
_POINTWISE = ("ReLU", "ReLU6", "LeakyReLU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "GELU", "ELU",
              "Mish", "Softplus", "PReLU", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Identity",
              "Softmax", "LogSoftmax", "LayerNorm", "StochasticDepth")


@dataclass
class LayerSummary:
    """One row: a leaf layer with its input/output shapes and exact counts.

    ``receptive_field`` is a :class:`convforge.receptive.ReceptiveField` measured on the model input (None once the
    spatial structure is gone, e.g. after Flatten).
    """

    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    effective_macs: int = 0
    receptive_field: Optional[ReceptiveField] = None
    activation_bytes: int = 0
    depth: int = 0

    @property
    def flops(self) -> int:
        """2 x MACs, as PyTorch's FlopCounterMode (bias not counted)."""
        return 2 * self.macs

    def to_dict(self) -> Dict[str, Any]:
        rf = self.receptive_field
        return {"name": self.name, "type": self.type, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "params": self.params,
                "trainable_params": self.trainable_params, "macs": self.macs, "flops": self.flops,
                "effective_macs": self.effective_macs, "activation_bytes": self.activation_bytes,
                "receptive_field": None if rf is None else {k: _json_num(v) for k, v in rf._asdict().items()}}


def _json_num(v):
    if isinstance(v, tuple):
        return [_json_num(u) for u in v]
    return v if isinstance(v, int) else float(v)


@dataclass
class ModelSummary:
    """The result of :func:`summary`: ``.layers`` (one :class:`LayerSummary` per leaf layer) and totals."""

    input_shape: Shape
    output_shape: Shape
    layers: List[LayerSummary]
    total_params: int
    trainable_params: int
    itemsize: int = 4
    model_name: str = ""

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    @property
    def total_effective_macs(self) -> int:
        return sum(row.effective_macs for row in self.layers)

    @property
    def total_activation_bytes(self) -> int:
        return sum(row.activation_bytes for row in self.layers)

    @property
    def param_bytes(self) -> int:
        return self.total_params * self.itemsize

    def to_dict(self) -> Dict[str, Any]:
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "layers": [row.to_dict() for row in self.layers],
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "non_trainable_params": self.total_params - self.trainable_params,
                "total_macs": self.total_macs, "total_flops": self.total_flops,
                "total_effective_macs": self.total_effective_macs,
                "total_activation_bytes": self.total_activation_bytes, "param_bytes": self.param_bytes}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kwargs))

    def __str__(self) -> str:
        head = ("Layer (type)", "Output shape", "Params", "MACs", "FLOPs", "RF (size / jump)", "Activations")
        rows = [("  " * row.depth + f"{row.name} ({row.type})" if row.name else row.type,
                 str(list(row.output_shape)), f"{row.params:,}", f"{row.macs:,}", f"{row.flops:,}",
                 _rf_text(row.receptive_field), _bytes(row.activation_bytes)) for row in self.layers]
        widths = [max(len(r[c]) for r in [head] + rows) for c in range(len(head))]
        line = lambda r: "  ".join(v.ljust(w) if c in (0, 1, 5) else v.rjust(w)
                                   for c, (v, w) in enumerate(zip(r, widths))).rstrip()
        rule = "=" * len(line(head))
        out = [rule, line(head), rule] + [line(r) for r in rows] + [rule]
        out += [f"Input shape: {list(self.input_shape)}    Output shape: {list(self.output_shape)}",
                f"Total params: {self.total_params:,}  (trainable {self.trainable_params:,}, non-trainable "
                f"{self.total_params - self.trainable_params:,}; {_bytes(self.param_bytes)})",
                f"Total MACs: {self.total_macs:,}    Total FLOPs: {self.total_flops:,}  (FLOPs = 2 x MACs, bias "
                f"not counted)",
                f"Activation memory (outputs of all layers): {_bytes(self.total_activation_bytes)}", rule]
        return "\n".join(out)

    __repr__ = __str__


def _rf_text(rf) -> str:
    if rf is None:
        return "-"
    size, jump = rf.size, rf.jump
    fmt = lambda v: str(v)
    if isinstance(size, tuple):
        return "x".join(map(fmt, size)) + " / " + "x".join(map(fmt, jump))
    return f"{fmt(size)} / {fmt(jump)}"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


# -- shape propagation ------------------------------------------------------------------------------------------
@dataclass
class _State:
    shape: Shape
    rf: Optional[List[Tuple[Fraction, Fraction, Fraction]]]   # per spatial dim (size, jump, start) or None
    rows: List[LayerSummary] = field(default_factory=list)
    itemsize: int = 4


class _Result:
    def __init__(self, shape, macs=0, effective=None, steps=None, rf_lost=False):
        self.shape, self.macs = tuple(int(v) for v in shape), int(macs)
        self.effective = self.macs if effective is None else int(effective)
        self.steps, self.rf_lost = steps, rf_lost


def _name(module) -> str:
    return type(module).__name__


def _counts(params) -> Tuple[int, int]:
    """(all, trainable) elements of ``params``, each distinct parameter once (None entries skipped)."""
    distinct = {id(p): p for p in params if p is not None}.values()
    return (sum(int(np.size(p)) for p in distinct),
            sum(int(np.size(p)) for p in distinct if getattr(p, "requires_grad", True)))


def _param_counts(module) -> Tuple[int, int]:
    """The module's own parameters (not its children's)."""
    return _counts(module._parameters.values() if hasattr(module, "_parameters") else ())


def _batched(shape: Shape, n: int, what: str) -> Tuple[int, Shape, bool]:
    """``(N, C, *S)`` or unbatched ``(C, *S)`` -> (N, spatial, unbatched)."""
    if len(shape) == n + 2:
        return shape[0], shape[2:], False
    if len(shape) == n + 1:
        return 1, shape[1:], True
    raise ValueError(f"{what} expects a {n + 1}D (unbatched) or {n + 2}D (batched) input, got shape {list(shape)}")


def _tuple(value, n, default=None):
    if value is None:
        value = default
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _conv(module, shape):
    view = layer_view(module, shape)
    return _Result(view.output_shape, view.macs, view.effective_macs, list(view.rf_steps))


def _pool(n, module, shape):
    name = _name(module)
    batch, sizes, unbatched = _batched(shape, n, name)
    kernel = _tuple(module.kernel_size, n)
    stride = _tuple(module.stride, n, default=module.kernel_size)
    if not stride:   # torch allows stride=[] meaning kernel_size
        stride = kernel
    padding = _tuple(getattr(module, "padding", 0), n)
    dilation = _tuple(getattr(module, "dilation", 1), n)
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    try:
        out = tuple(shapes.pool_output_size(i, k, s, p, d, ceil_mode)
                    for i, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    except ValueError as e:
        raise ValueError(f"{name} on input {list(shape)}: {e}") from None
    steps = [RFStep("conv", k, s, p, d) for k, s, p, d in zip(kernel, stride, padding, dilation)]
    return _Result(shape[:len(shape) - n] + out, steps=steps)


def _adaptive_pool(n, module, shape):
    batch, sizes, unbatched = _batched(shape, n, _name(module))
    target = tuple(i if o is None else o for i, o in zip(sizes, _tuple(module.output_size, n)))
    steps = []
    for i, o in zip(sizes, target):
        if i % o:
            steps = None   # uneven windows: no single (kernel, stride) describes them
            break
        steps.append(RFStep("conv", i // o, i // o, 0, 1))
    return _Result(shape[:len(shape) - n] + target, steps=steps, rf_lost=steps is None)


def _upsample(module, shape):
    n = len(shape) - 2
    if n < 1:
        raise ValueError(f"{_name(module)} expects an input (N, C, *spatial), got shape {list(shape)}")
    sizes = shape[2:]
    if getattr(module, "size", None) is not None:
        out = _tuple(module.size, n)
        factors = [Fraction(o, i) if i else Fraction(1) for o, i in zip(out, sizes)]
    else:
        factors = [Fraction(f).limit_denominator(1 << 20) for f in _tuple(module.scale_factor, n)]
        out = tuple(math.floor(i * f) for i, f in zip(sizes, factors))
    if not all(v > 0 for v in tuple(sizes) + tuple(out)):
        raise ValueError(f"{_name(module)}: input and output sizes should be greater than 0, but got input "
                         f"{list(sizes)} and output {list(out)} (shape {list(shape)})")
    mode, corners = getattr(module, "mode", "nearest"), getattr(module, "align_corners", False)
    steps = [upsample_step(mode, corners, f) for f in factors]
    steps = None if None in steps else steps
    return _Result(shape[:2] + tuple(out), steps=steps, rf_lost=steps is None)


def _batchnorm(module, shape):
    c = shape[1] if len(shape) >= 2 else None
    if c != module.num_features:
        raise ValueError(f"{_name(module)} expects {module.num_features} channels, but the input of shape "
                         f"{list(shape)} has {c} in dimension 1")
    return _Result(shape)


def _flatten(module, shape):
    nd = max(len(shape), 1)
    for what, dim in (("start_dim", module.start_dim), ("end_dim", module.end_dim)):
        if not -nd <= dim < nd:
            raise ValueError(f"Flatten: {what}={dim} is out of range for an input of shape {list(shape)} "
                             f"(expected to be in range of [{-nd}, {nd - 1}])")
    start, end = module.start_dim % nd, module.end_dim % nd
    if start > end:
        raise ValueError(f"Flatten: start_dim {module.start_dim} comes after end_dim {module.end_dim} for shape "
                         f"{list(shape)}")
    return _Result(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:], rf_lost=True)


def _linear(module, shape):
    if not shape or shape[-1] != module.in_features:
        raise ValueError(f"Linear expects the last dimension to be in_features={module.in_features}, but the input "
                         f"has shape {list(shape)}" + ("; add a Flatten() before it" if len(shape) > 2 else ""))
    macs = math.prod(shape[:-1]) * module.in_features * module.out_features
    return _Result(shape[:-1] + (module.out_features,), macs, rf_lost=True)


def _pointwise(module, shape):
    return _Result(shape)


def _self_described(module, shape):
    return _Result(tuple(module.output_shape(tuple(shape))), rf_lost=True)


# The shape rule of each layer class, by class name so that torch modules of the same name work too; a subclass
# (FusedConv2d, a user's Conv2d) finds its base's rule through its MRO.
_RULES = {
    **{f"Conv{n}d": _conv for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": _conv for n in (1, 2, 3)},
    **{f"{kind}Pool{n}d": partial(_pool, n) for kind in ("Max", "Avg") for n in (1, 2, 3)},
    **{f"Adaptive{kind}Pool{n}d": partial(_adaptive_pool, n) for kind in ("Max", "Avg") for n in (1, 2, 3)},
    **{name: _upsample for name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")},
    **{f"{kind}Norm{n}d": _batchnorm for kind in ("Batch", "Instance") for n in (1, 2, 3)},
    "Flatten": _flatten,
    "Linear": _linear,
    **{name: _pointwise for name in _POINTWISE},
}


def _rule(module):
    if _describes_itself(module):
        return _self_described
    for cls in type(module).__mro__:
        rule = _RULES.get(cls.__name__)
        if rule is not None:
            return rule
    raise ValueError(f"summary does not know how {_name(module)} changes shapes; give it a method "
                     f"output_shape(input_shape) -> tuple, or summarise its children")


def _leaf(module, shape) -> _Result:
    return _rule(module)(module, shape)


def _walk(module, state: _State, prefix: str, depth: int, model_name: str) -> None:
    children = list(module.named_children()) if hasattr(module, "named_children") else []
    if children and not _describes_itself(module):
        if _has_own_forward(module):
            _trace(module, state, prefix, depth)
            return
        for name, child in children:
            _walk(child, state, f"{prefix}.{name}" if prefix else name, depth + 1, model_name)
        return
    result = _leaf(module, state.shape)
    if state.rf is not None:
        if result.rf_lost or (result.steps is None and len(result.shape) != len(state.shape)):
            state.rf = None
        elif result.steps is not None:
            state.rf = [rf_step(st, step) for st, step in zip(state.rf, result.steps)]
    rf = None if state.rf is None else field_of(state.rf)
    state.rows.append(_row(prefix or model_name, module, state.shape, result, rf, depth, state.itemsize))
    state.shape = result.shape


def _row(name, module, in_shape, result, rf, depth, itemsize) -> LayerSummary:
    params, trainable = _param_counts(module)
    return LayerSummary(name, _name(module), tuple(in_shape), result.shape, params, trainable, result.macs,
                        result.effective, rf, math.prod(result.shape) * itemsize, max(depth - 1, 0))


def _describes_itself(module) -> bool:
    return hasattr(module, "output_shape") and callable(module.output_shape)


def _has_own_forward(module) -> bool:
    """A container whose class writes its own ``forward`` (skip connections, reuse, reshapes) rather than
    inheriting one that calls the children in order (``Sequential``) or none at all (``Module``)."""
    owner = next((c for c in type(module).__mro__ if "forward" in vars(c)), None)
    return owner is not None and owner.__name__ not in _CHAIN_FORWARDS


_CHAIN_FORWARDS = {"Module", "Sequential", "ModuleList", "ModuleDict", "object"}


class _LayerError(ValueError):
    """A traced leaf refused its input (told apart from errors of the forward's own code)."""


def _trace(module, state: _State, prefix: str, depth: int) -> None:
    """Run ``module``'s own forward on zeros with every leaf layer replaced by its shape rule.

    The leaves are not computed: each call records a row (shapes and counts from the formulas, in call order, so
    a layer used twice is counted twice) and returns zeros of its output shape, so the cost is that of the
    forward's own glue (additions, slicing, reshapes).  The receptive field is not followed through such a
    module (its branches have no single one).
    """
    dtype = np.float64 if state.itemsize == 8 else np.float32
    names = {id(m): n for n, m in module.named_modules()}
    leaves = [m for m in module.modules() if m is not module
              and (_describes_itself(m) or not list(m.named_children()))]

    def recorder(leaf):
        relative = names[id(leaf)]
        full, leaf_depth = f"{prefix}.{relative}" if prefix else relative, depth + 1 + relative.count(".")

        def forward(x, *args, **kwargs):
            shape = tuple(int(v) for v in np.shape(x))
            try:
                result = _leaf(leaf, shape)
            except ValueError as e:
                raise _LayerError(str(e)) from None
            state.rows.append(_row(full, leaf, shape, result, None, leaf_depth, state.itemsize))
            return np.zeros(result.shape, getattr(x, "dtype", dtype))
        return forward

    for leaf in leaves:
        leaf.__dict__["forward"] = recorder(leaf)
    try:
        with no_grad():
            out = module(np.zeros(state.shape, dtype))
    except _LayerError as e:   # a layer refused its input: its own message names it
        raise ValueError(str(e)) from None
    except Exception as e:
        raise ValueError(f"summary runs {_name(module)}.forward on zeros of shape {list(state.shape)} to trace "
                         f"its layers, and it failed: {type(e).__name__}: {e}") from None
    finally:
        for leaf in leaves:
            leaf.__dict__.pop("forward", None)
    state.shape, state.rf = tuple(int(v) for v in np.shape(out)), None


def _itemsize(model, dtype) -> int:
    if dtype is not None:
        return np.dtype(dtype).itemsize
    for p in (model.parameters() if hasattr(model, "parameters") else ()):
        return np.dtype(p.dtype).itemsize
    return 4


def summary(model, input_size, *, dtype=None) -> ModelSummary:
    """Per-layer output shapes, parameters, MACs, FLOPs, receptive field and activation memory of ``model``.

    No layer is computed: shapes flow through :mod:`convforge.shapes`, counts are closed formulas (a module with
    its own ``forward`` runs that forward's glue on zeros, see the module docstring).

    Args:
        model: a :class:`convforge.nn.Module` (a single layer, a ``Sequential``, or a container whose children
            run in registration order).
        input_size: the full input shape including the batch, e.g. ``(1, 3, 224, 224)``.
        dtype: element type for the memory columns (default: the model's parameter dtype, else float32).

    Returns:
        :class:`ModelSummary`; print it for a table, or use ``.to_dict()`` / ``.to_json()``.

    Shape:
        Conv: ``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1``; transposed:
        ``o = (i-1)*s - p_lo - p_hi + d*(k-1) + op + 1`` per spatial dimension.

    Raises:
        ValueError: an input that does not fit a layer (wrong channels, a kernel larger than the padded input),
        naming the layer and the shapes involved.

    >>> import convforge.nn as nn
    >>> summary(nn.Conv2d(256, 256, 3), (1, 256, 8, 8)).total_params
    590080
    >>> summary(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4), (2, 4, 8, 8)).total_macs
    4608
    """
    if isinstance(input_size, int):
        input_size = (input_size,)
    input_shape = tuple(input_size)
    if len(input_shape) == 1 and isinstance(input_shape[0], (tuple, list)):
        input_shape = tuple(input_shape[0])
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in input_shape):
        raise ValueError(f"input_size must be a tuple of non-negative ints like (1, 3, 32, 32), got {input_size!r}")
    spatial = max(len(input_shape) - 2, 0)
    rf = [START] * spatial if spatial else None
    state = _State(input_shape, rf, itemsize=_itemsize(model, dtype))
    _walk(model, state, "", 0, _name(model))
    total, trainable = _counts(model.parameters() if hasattr(model, "parameters") else ())
    return ModelSummary(input_shape, state.shape, state.rows, total, trainable, state.itemsize, _name(model))

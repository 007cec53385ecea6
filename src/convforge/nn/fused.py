"""Fused convolutions for inference: ``FusedConv1d/2d/3d`` compute ``activation(conv(x) + bias)`` in one module.

:func:`convforge.nn.utils.optimize_for_inference` puts them where a convolution, its BatchNorm (folded into the
weight and bias) and its activation were.  The activation is applied in place on the convolution's fresh output
(the epilogue), so no intermediate array is made.  The first call for an input shape and dtype goes through the
validated path (every check of ``Conv2d``) and stores the problem's plan: the per-side padding and the output
sizes.  Later calls with a plain ``np.ndarray`` of that shape and dtype go straight to the engine.

A tensor that requires grad (with gradients enabled) takes the recorded path: the same values, and
``loss.backward()`` reaches the input exactly as through the unfused layers.
"""
from __future__ import annotations

import copy
from typing import NamedTuple, Optional

import numpy as np

from .. import _canon, _grad_mode, _padding, engine, shapes
from ..autograd import Tensor
from .activation import GELU, Hardsigmoid, Hardswish, LeakyReLU, ReLU, ReLU6, Sigmoid, SiLU
from .conv import _ConvForwardNd
from . import functional as F

__all__ = ["FusedConv1d", "FusedConv2d", "FusedConv3d", "EPILOGUE_ACTIVATIONS", "fused_conv"]

_MAX_PLANS = 64

# activation type -> its result on a fresh array it may overwrite (F's kernels; in place where F has it)
EPILOGUE_ACTIVATIONS = {
    ReLU: lambda m, y: F.relu(y, inplace=True),
    ReLU6: lambda m, y: F.relu6(y, inplace=True),
    LeakyReLU: lambda m, y: F.leaky_relu(y, m.negative_slope, inplace=True),
    SiLU: lambda m, y: F.silu(y, inplace=True),
    Hardswish: lambda m, y: F.hardswish(y, inplace=True),
    Hardsigmoid: lambda m, y: F.hardsigmoid(y, inplace=True),
    GELU: lambda m, y: F.gelu(y, m.approximate),
    Sigmoid: lambda m, y: F.sigmoid(y),
}


def _raw(a: np.ndarray) -> np.ndarray:
    """The plain ndarray behind a parameter (a view): the engine's arithmetic on it records nothing."""
    return a if type(a) is np.ndarray else np.ndarray.view(a, np.ndarray)


class _Plan(NamedTuple):
    """What one input shape needs besides the weights: found and validated once, then reused."""
    mode_pad: Optional[tuple]     # F.pad's argument for a non-zeros padding mode, else None
    padding: tuple                # the engine's ((lo, hi), ...) after that
    out_sizes: tuple
    unbatched: bool


class _FusedConvNd(_ConvForwardNd):
    """``activation(conv(x))`` with a fast path for plain arrays; ``activation`` None: the convolution alone."""

    def __init__(self, *args, activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_activation(activation)

    def _set_activation(self, activation) -> None:
        if activation is not None and type(activation) not in EPILOGUE_ACTIVATIONS:
            names = ", ".join(sorted(t.__name__ for t in EPILOGUE_ACTIVATIONS))
            raise TypeError(f"{type(self).__name__}: activation must be None or one of {names}, got "
                            f"{type(activation).__name__}")
        self.activation = activation
        object.__setattr__(self, "_plans", {})

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.activation is None else f", activation={self.activation!r}")

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def forward(self, input):
        """``activation(conv(input))``; recorded when ``input`` is a tensor that requires grad.

        Example:
            >>> import numpy as np
            >>> from convforge.nn import ReLU
            >>> m = FusedConv2d(2, 3, 3, padding=1, activation=ReLU())
            >>> y = m(np.ones((1, 2, 5, 5), np.float32))
            >>> y.shape, bool((y >= 0).all())
            ((1, 3, 5, 5), True)
        """
        x = input
        if isinstance(x, Tensor) and not (x.requires_grad and _grad_mode.is_grad_enabled()):
            x = np.ndarray.view(x, np.ndarray)
        if type(x) is np.ndarray:
            plan = self._plans.get((x.shape, x.dtype))
            if plan is not None and x.dtype == self.weight.dtype:
                return self._run(x, plan)
            y = self._recorded(x)          # validates every argument; the same engine computes it
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()        # a server seeing ever new sizes keeps a bounded cache
            self._plans[(x.shape, x.dtype)] = self._plan(x.shape)
            return np.ndarray.view(y, np.ndarray) if isinstance(y, Tensor) else y
        return self._recorded(x)

    def _recorded(self, x):
        y = self._conv_forward(self._check_input(x), self.weight, self.bias)
        return y if self.activation is None else self.activation(y)

    def _plan(self, shape) -> _Plan:
        n = self._n
        sizes = shape[-n:]
        pads = self.padding_pairs(sizes)
        mode_pad = None
        if self.padding_mode != "zeros":
            mode_pad = _canon.torch_pad_order(pads)
            sizes = tuple(i + lo + hi for i, (lo, hi) in zip(sizes, pads))
            pads = ((0, 0),) * n
        out = tuple(shapes.conv_output_size(i, k, s, p, d)
                    for i, k, s, p, d in zip(sizes, self.kernel_size, self.stride, pads, self.dilation))
        return _Plan(mode_pad, tuple(pads), out, len(shape) == n + 1)

    def _run(self, x, plan: _Plan):
        if plan.mode_pad is not None:
            x = _padding.pad(x, plan.mode_pad, mode=self.padding_mode)
        if plan.unbatched:
            x = x[None]
        w, b = _raw(self.weight), None if self.bias is None else _raw(self.bias)
        problem = engine.ConvProblem.conv(x.shape, w.shape, x.dtype, self.stride, plan.padding, self.dilation,
                                          self.groups, plan.out_sizes)
        y = engine.forward(x, w, b, problem)
        if self.activation is not None:
            y = EPILOGUE_ACTIVATIONS[type(self.activation)](self.activation, y)
        return y[0] if plan.unbatched else y


class FusedConv1d(_FusedConvNd):
    """``Conv1d`` followed by an activation, applied to the fresh output (see the module docstring)."""
    _n = 1


class FusedConv2d(_FusedConvNd):
    """``Conv2d`` followed by an activation, applied to the fresh output (see the module docstring).

    Args:
        activation: one of ``EPILOGUE_ACTIVATIONS`` (ReLU, ReLU6, LeakyReLU, SiLU, Hardswish, Hardsigmoid, GELU,
            Sigmoid) or None; the other arguments are ``Conv2d``'s.

    Shape:
        as ``Conv2d``.
    """
    _n = 2


class FusedConv3d(_FusedConvNd):
    """``Conv3d`` followed by an activation, applied to the fresh output (see the module docstring)."""
    _n = 3


_FUSED = {1: FusedConv1d, 2: FusedConv2d, 3: FusedConv3d}


def fused_conv(conv: _ConvForwardNd, weight, bias, activation=None) -> _FusedConvNd:
    """A ``FusedConvNd`` with ``conv``'s configuration, the given weight and bias (plain arrays or None) and
    ``activation`` (copied).  ``conv`` is left unchanged; no random numbers are drawn."""
    fused = copy.deepcopy(conv)
    fused.__class__ = _FUSED[conv._n]
    fused.weight = np.ascontiguousarray(weight)
    fused.bias = None if bias is None else np.ascontiguousarray(bias)
    fused._set_activation(copy.deepcopy(activation))
    return fused

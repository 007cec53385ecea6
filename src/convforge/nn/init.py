"""Weight initialisation, as ``torch.nn.init``: in-place fills of an array (a Parameter or any writable
``np.ndarray``) that return it, with PyTorch's formulas.

Fans (``calculate_fan_in_and_fan_out``): for a weight of shape ``(out, in, *k)``, ``fan_in = in * prod(k)`` and
``fan_out = out * prod(k)`` (a transposed convolution's ``(in, out/g, *k)`` weight is read the same way, as
PyTorch does).  Gains (``calculate_gain``): 1 for linear/conv/sigmoid, 5/3 tanh, sqrt(2) relu,
``sqrt(2 / (1 + a^2))`` leaky_relu (``a`` default 0.01), 3/4 selu.

- ``kaiming_uniform_``: U(-b, b), ``b = gain * sqrt(3 / fan)``;  ``kaiming_normal_``: N(0, gain / sqrt(fan)).
- ``xavier_uniform_``: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``; ``xavier_normal_``:
  N(0, gain * sqrt(2 / (fan_in + fan_out))).
- ``trunc_normal_``: N(mean, std) conditioned on ``[a, b]`` (drawn by rejection, so every value is inside).

Values come from convforge's generator (:func:`convforge.manual_seed`) or the ``generator`` given (an
``np.random.Generator``); they are not PyTorch's random stream.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import _random
from ._ops.special import normal_cdf

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "uniform_", "normal_", "trunc_normal_", "constant_",
           "ones_", "zeros_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]

_UNIT_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    Example:
        >>> calculate_gain("relu"), calculate_gain("leaky_relu", 0.2) == (2 / 1.04) ** 0.5
        (1.4142135623730951, True)
    """
    if nonlinearity in _UNIT_GAIN:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight ``(out, in, *k)``: ``(in * prod(k), out * prod(k))``.

    Example:
        >>> import numpy as np
        >>> calculate_fan_in_and_fan_out(np.empty((16, 3, 3, 3)))
        (27, 144)
    """
    shape = np.shape(tensor)
    if len(shape) < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (got "
                         f"shape {shape})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    tensor[...] = values
    return tensor


def _rng(generator):
    return _random.generator() if generator is None else generator


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b).

    Example:
        >>> import numpy as np
        >>> w = uniform_(np.empty(1000), -2, 2)
        >>> bool(w.min() >= -2 and w.max() < 2)
        True
    """
    return _fill(tensor, _rng(generator).uniform(a, b, np.shape(tensor)))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2).

    Example:
        >>> import numpy as np
        >>> normal_(np.empty((2, 3)), std=0.01).shape
        (2, 3)
    """
    return _fill(tensor, _rng(generator).normal(mean, std, np.shape(tensor)))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """Fill with N(mean, std^2) restricted to ``[a, b]`` (rejection sampling: every value is inside).

    Example:
        >>> import numpy as np
        >>> w = trunc_normal_(np.empty(10000), std=0.02, a=-0.04, b=0.04)
        >>> bool(np.abs(w).max() <= 0.04)
        True
    """
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may "
                      "be incorrect.", stacklevel=2)
    if not a < b:
        raise ValueError(f"trunc_normal_: the interval [a, b] must be non-empty, got a={a}, b={b}")
    rng = _rng(generator)
    lo, hi = (a - mean) / std, (b - mean) / std
    accept = float(normal_cdf(hi) - normal_cdf(lo))
    if accept < 1e-6:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds a probability of only {accept:.2g} of "
                         f"N({mean}, {std}^2); choose an interval nearer the mean")
    size = math.prod(np.shape(tensor))
    out = np.empty(0)
    while out.size < size:
        draw = rng.normal(mean, std, int((size - out.size) / accept * 1.1) + 16)
        out = np.concatenate([out, draw[(draw >= a) & (draw <= b)]])
    return _fill(tensor, out[:size].reshape(np.shape(tensor)))


def constant_(tensor, val: float):
    """Fill with ``val``."""
    return _fill(tensor, val)


def ones_(tensor):
    """Fill with 1."""
    return _fill(tensor, 1)


def zeros_(tensor):
    """Fill with 0."""
    return _fill(tensor, 0)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Example:
        >>> import numpy as np
        >>> bool(np.abs(xavier_uniform_(np.empty((30, 20)))).max() <= (6 / 50) ** 0.5)
        True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def _empty(tensor) -> bool:
    if 0 in np.shape(tensor):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """He uniform: U(-b, b), ``b = gain * sqrt(3 / fan)`` (``gain = calculate_gain(nonlinearity, a)``).

    PyTorch's default conv/linear weight init is ``kaiming_uniform_(w, a=math.sqrt(5))``: U(-1/sqrt(fan_in),
    1/sqrt(fan_in)).

    Example:
        >>> import numpy as np
        >>> w = kaiming_uniform_(np.empty((64, 3, 7, 7)), a=5 ** 0.5)
        >>> bool(np.abs(w).max() <= 1 / 147 ** 0.5)
        True
    """
    if _empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """He normal: N(0, std^2), ``std = gain / sqrt(fan)`` (torchvision's ResNets use
    ``mode='fan_out', nonlinearity='relu'``)."""
    if _empty(tensor):
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)

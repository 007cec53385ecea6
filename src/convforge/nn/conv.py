"""Convolution modules: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``, one shared base for all six.

Parameters follow PyTorch: ``weight (out, in/groups, *k)`` (transposed: ``(in, out/groups, *k)``), ``bias (out,)``,
both initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with ``fan_in = weight.shape[1] * prod(k)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _api, _canon, _random
from ..autograd import Tensor
from . import functional as F
from .module import Module
from .parameter import Parameter, native_byte_order

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive_int(name, value):
    if not _canon.is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


class _ConvNd(Module):
    """Shared base: validation, weight layout, 'same' resolution and padding modes for every conv module."""

    _n: int = 0
    transposed: bool = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, dtype=None):
        super().__init__()
        n = self._n
        name = type(self).__name__
        in_channels = _positive_int("in_channels", in_channels)
        out_channels = _positive_int("out_channels", out_channels)
        groups = _positive_int("groups", groups)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        kernel_size = _canon.ntuple(kernel_size, n, "kernel_size", minimum=1)
        stride = _canon.ntuple(stride, n, "stride", minimum=1)
        dilation = _canon.ntuple(dilation, n, "dilation", minimum=1)
        output_padding = _canon.ntuple(output_padding, n, "output_padding", minimum=0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, but got padding_mode={padding_mode!r}")
        if transposed and padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for {name}, got {padding_mode!r}")
        spec = _canon.canonical_padding(padding, n, allow_strings=not transposed)
        for s, d, op in zip(stride, dilation, output_padding):
            if op >= max(s, d):
                raise ValueError(f"{name}: output_padding must be smaller than either stride or dilation, got "
                                 f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
        if isinstance(padding, str):
            self.padding = padding
        elif all(lo == hi for lo, hi in spec):
            self.padding = tuple(lo for lo, _ in spec)
        else:
            self.padding = spec
        self._padding_spec = spec
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.transposed, self.output_padding = transposed, output_padding
        self.groups, self.padding_mode = groups, padding_mode
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if dtype.kind not in "fc":
            raise TypeError(f"{name}: dtype must be a float or complex dtype, got {dtype}")
        if transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)) for weight, same bound for bias."""
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        rng = _random.generator()
        self.weight.data[...] = _uniform(rng, bound, self.weight.shape, self.weight.dtype)
        if self.bias is not None:
            self.bias.data[...] = _uniform(rng, bound, self.bias.shape, self.bias.dtype)

    def extra_repr(self) -> str:
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _check_input(self, x):
        values = _api.as_array(x, "input")            # validates; a tensor stays a tensor (recorded)
        x = native_byte_order(x if isinstance(x, Tensor) else values)
        op = type(self).__name__
        if x.ndim not in (self._n + 1, self._n + 2):
            raise ValueError(f"Expected {self._n + 1}D (unbatched) or {self._n + 2}D (batched) input to {op}, "
                             f"but got input of size: {list(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"{op}: input dtype ({x.dtype}) and weight dtype ({self.weight.dtype}) should be the "
                            f"same; use x.astype(np.{self.weight.dtype}) or module.to(np.{x.dtype})")
        return x


def _uniform(rng, bound, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.uniform(-bound, bound, shape) + 1j * rng.uniform(-bound, bound, shape)).astype(dtype)
    return rng.uniform(-bound, bound, shape).astype(dtype)


class _ConvForwardNd(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                         (0,) * self._n, groups, bias, padding_mode, dtype)

    def padding_pairs(self, spatial_sizes):
        """Per-side padding for an input of these spatial sizes (resolves 'same')."""
        return _canon.resolve_padding(self._padding_spec, spatial_sizes, self.kernel_size, self.stride,
                                      self.dilation)

    def forward(self, input):
        """Convolve ``input`` (recorded for ``loss.backward()`` when gradients are enabled).

        Example:
            >>> import numpy as np, convforge
            >>> m = Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
            >>> y = m(convforge.tensor(np.ones((1, 2, 5, 5), np.float32)))
            >>> y.sum().backward()
            >>> m.weight.grad.shape, m.bias.grad.tolist()
            ((3, 2, 3, 3), [25.0, 25.0, 25.0])
        """
        return self._conv_forward(self._check_input(input), self.weight, self.bias)

    def _conv_forward(self, x, weight, bias):
        spec = self._padding_spec
        if self.padding_mode != "zeros":     # pad, then convolve with zero padding
            x = F.Pad.apply(x, _canon.torch_pad_order(self.padding_pairs(x.shape[-self._n:])), self.padding_mode)
            spec = 0
        return F.Convolution.apply(x, weight, bias, self.stride, spec, self.dilation, self.groups,
                                   n_spatial=self._n, op=type(self).__name__)


class _ConvTransposeNd(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True,
                         output_padding, groups, bias, padding_mode, dtype)

    def forward(self, input, output_size=None):
        """``output_size`` (spatial sizes, optionally with leading N, C) picks the output padding; any size from
        the minimum to minimum + max(stride, dilation) - 1 is accepted.

        Example:
            >>> import numpy as np, convforge
            >>> m = ConvTranspose1d(2, 3, 3, stride=2, padding=1)
            >>> x = convforge.tensor(np.ones((1, 2, 4), np.float32), requires_grad=True)
            >>> m(x, output_size=(8,)).sum().backward()
            >>> x.grad.shape, m.weight.grad.shape
            ((1, 2, 4), (2, 3, 3))
        """
        x = self._check_input(input)
        out_pad = self.output_padding
        if output_size is not None:
            out_pad = _api.transpose_output_padding(x.shape[-self._n:], self.kernel_size, self.stride,
                                                    self._padding_spec, self.dilation, output_size,
                                                    type(self).__name__)
        return F.ConvolutionTranspose.apply(x, self.weight, self.bias, self.stride, self._padding_spec, out_pad,
                                            self.groups, self.dilation, n_spatial=self._n, op=type(self).__name__)


class Conv1d(_ConvForwardNd):
    """1-D convolution layer, as ``torch.nn.Conv1d``.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)`` -> ``(N, C_out, L_out)``,
        ``L_out = floor((L + p_lo + p_hi - dilation*(k-1) - 1) / stride) + 1``.

    Example:
        >>> import numpy as np
        >>> Conv1d(4, 8, 3, padding="same")(np.zeros((2, 4, 10), np.float32)).shape
        (2, 8, 10)
    """
    _n = 1


class Conv2d(_ConvForwardNd):
    """2-D convolution layer, as ``torch.nn.Conv2d``.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` -> ``(N, C_out, H_out, W_out)``,
        ``H_out = floor((H + p_top + p_bottom - dilation[0]*(kH-1) - 1) / stride[0]) + 1``, likewise W.

    Example:
        >>> import numpy as np
        >>> m = Conv2d(8, 14, (3, 2), (2, 1))
        >>> m
        Conv2d(8, 14, kernel_size=(3, 2), stride=(2, 1))
        >>> m(np.zeros((5, 8, 10, 5), np.float32)).shape
        (5, 14, 4, 4)
    """
    _n = 2


class Conv3d(_ConvForwardNd):
    """3-D convolution layer, as ``torch.nn.Conv3d``.

    Shape:
        input ``(N, C_in, D, H, W)`` -> ``(N, C_out, D_out, H_out, W_out)``, each dim as in Conv1d.

    Example:
        >>> import numpy as np
        >>> Conv3d(2, 4, 3, stride=2)(np.zeros((1, 2, 7, 7, 7), np.float32)).shape
        (1, 4, 3, 3, 3)
    """
    _n = 3


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``.

    Shape:
        ``L_out = (L-1)*stride - p_lo - p_hi + dilation*(k-1) + output_padding + 1``.

    Example:
        >>> import numpy as np
        >>> ConvTranspose1d(2, 3, 4, stride=2, padding=1)(np.zeros((1, 2, 8), np.float32)).shape
        (1, 3, 16)
    """
    _n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    Shape:
        ``H_out = (H-1)*stride[0] - p_top - p_bottom + dilation[0]*(kH-1) + output_padding[0] + 1``, likewise W.

    Example:
        >>> import numpy as np
        >>> m = ConvTranspose2d(4, 4, 3, stride=2, padding=1)
        >>> m(np.zeros((2, 4, 8, 8), np.float32), output_size=(16, 16)).shape
        (2, 4, 16, 16)
    """
    _n = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution layer, as ``torch.nn.ConvTranspose3d``.

    Shape:
        each of D, H, W as in ConvTranspose1d.

    Example:
        >>> import numpy as np
        >>> ConvTranspose3d(2, 2, 2, stride=2)(np.zeros((1, 2, 3, 3, 3), np.float32)).shape
        (1, 2, 6, 6, 6)
    """
    _n = 3

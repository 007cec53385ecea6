"""TensorFlow's ``tf.nn`` convolutions on convforge: same names, arguments, layouts and results.

Every function canonicalises TF's arguments (``data_format``, filter layout, 'SAME' / 'VALID' / explicit
padding, strides and dilations as an int or a list of 1, N or N+2 entries) to convforge's channels-first
per-side form and calls the one engine (``convforge._api``); no TensorFlow is needed.

==================  ===============================  ====================================================
function            filters                          notes
==================  ===============================  ====================================================
conv1d/2d/3d        ``(*K, C_in/g, C_out)``          groups implied when C_in is a multiple of the filter's
convolution                                          in-depth; ``convolution`` infers N from the filters
conv*_transpose     ``(*K, C_out, C_in)``            ``output_shape`` required (N+2 entries or N spatial)
depthwise_conv2d    ``(kh, kw, C_in, m)``            output channels ``C_in*m``, channel ``c*m + j``
separable_conv2d    depthwise + ``(1, 1, C_in*m, O)``  the pointwise step is a VALID 1x1 convolution
==================  ===============================  ====================================================

Shape (per spatial dim, ``k_eff = d*(k-1) + 1``):
    SAME ``out = ceil(in / s)`` (total padding ``max((out-1)*s + k_eff - in, 0)``, the extra at the end);
    VALID ``out = ceil((in - k_eff + 1) / s)``; explicit: PyTorch's formula with the given pairs.

Example:
    >>> import numpy as np
    >>> x = np.ones((1, 8, 9, 3), np.float32)
    >>> conv2d(x, np.ones((3, 3, 3, 4), np.float32), strides=2, padding="SAME").shape
    (1, 4, 5, 4)
    >>> conv2d_transpose(np.ones((1, 4, 5, 4), np.float32), np.ones((3, 3, 3, 4), np.float32),
    ...                  output_shape=(1, 8, 9, 3), strides=2).shape
    (1, 8, 9, 3)
"""
from __future__ import annotations

import numpy as np

from . import _api, _canon
from .convert.layouts import channels_first, depthwise_weight_from_tf, transposed_weight_from_tf, weight_from_tf
from .convert.padding import from_tf_padding, tf_transpose_padding

__all__ = ["conv1d", "conv2d", "conv3d", "convolution", "conv1d_transpose", "conv2d_transpose",
           "conv3d_transpose", "conv_transpose", "depthwise_conv2d", "separable_conv2d"]

_DEFAULT_FORMAT = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def _tf_list(value, n, name, channels_first):
    """int | [v] | N values | N+2 values (data_format order, batch and channel entries 1) -> N ints."""
    if value is None:
        return (1,) * n
    if _canon.is_int(value):
        return _canon.ntuple(value, n, name, minimum=1)
    value = list(np.asarray(value).reshape(-1).tolist()) if not isinstance(value, (list, tuple)) else list(value)
    if len(value) == n + 2:
        outer = (value[0], value[1]) if channels_first else (value[0], value[-1])
        if outer != (1, 1):
            raise ValueError(f"{name} {value}: the batch and channel entries must be 1 (TF does not "
                             f"{name[:-1] if name.endswith('s') else name} across batch or channels)")
        value = value[2:] if channels_first else value[1:-1]
    elif len(value) not in (1, n):
        raise ValueError(f"{name} must be an int or a list of 1, {n} or {n + 2} ints, got {value!r}")
    return _canon.ntuple(list(value), n, name, minimum=1)


def _to_channels_first(x, cf):
    if cf:
        return x
    n = x.ndim - 2
    return np.moveaxis(x, -1, 1) if n >= 1 else x


def _from_channels_first(y, cf):
    return y if cf else np.moveaxis(y, 1, -1)


def _input(x, n, op):
    x = _api.as_array(x, "input")
    if x.ndim != n + 2:
        raise ValueError(f"{op}: input must be {n + 2}-D (batch, {n} spatial dims and channels, in data_format "
                         f"order), got shape {x.shape}")
    return x


def _filters(w, n, op, what="filters"):
    w = _api.as_array(w, what)
    if w.ndim != n + 2:
        raise ValueError(f"{op}: {what} must be {n + 2}-D ({n} kernel dims, then two channel dims), "
                         f"got shape {w.shape}")
    return w


def _format(data_format, n, op):
    fmt = _DEFAULT_FORMAT.get(n) if data_format is None else data_format
    if fmt is None:
        raise ValueError(f"{op}: no default data_format for {n} spatial dims")
    return channels_first(fmt, n)


def _conv(input, filters, strides, padding, data_format, dilations, n, op):
    """The N-d core of conv1d / conv2d / conv3d / convolution."""
    x = _input(input, n, op)
    w = _filters(filters, n, op)
    cf = _format(data_format, n, op)
    s = _tf_list(strides, n, "strides", cf)
    d = _tf_list(dilations, n, "dilations", cf)
    xc = _to_channels_first(x, cf)                                   # (N, C, *S)
    c_in, f_in = xc.shape[1], w.shape[-2]
    if f_in == 0 or c_in % f_in:
        raise ValueError(f"{op}: input depth ({c_in}) must be a multiple of the filter's in-depth ({f_in}, "
                         f"filters of shape {w.shape})")
    groups = c_in // f_in
    if w.shape[-1] % groups:
        raise ValueError(f"{op}: the number of filters ({w.shape[-1]}) must be a multiple of the number of groups "
                         f"({groups} = input depth {c_in} / filter in-depth {f_in})")
    pairs = from_tf_padding(padding, kernel_size=w.shape[:n], strides=s, dilations=d, input_size=xc.shape[2:],
                            data_format=data_format or _DEFAULT_FORMAT[n])
    y = _api.convolution(xc, weight_from_tf(w), None, s, pairs, d, groups, n_spatial=n, op=op)
    return _from_channels_first(y, cf)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, name=None):
    """``tf.nn.conv1d``.

    Args:
        input: ``(N, W, C)`` (NWC) or ``(N, C, W)`` (NCW).
        filters: ``(k, C/g, O)``.
        stride: int or list of 1 or 3 ints.
        padding: 'SAME', 'VALID' or explicit ``[[0, 0], [l, r], [0, 0]]`` (or ``[[l, r]]``).
        dilations: int or list of 1 or 3 ints.

    Example:
        >>> conv1d(np.ones((2, 10, 3)), np.ones((3, 3, 5)), stride=2, padding="SAME").shape
        (2, 5, 5)
    """
    return _conv(input, filters, stride, padding, data_format, dilations, 1, "conv1d")


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, name=None):
    """``tf.nn.conv2d``.

    Args:
        input: ``(N, H, W, C)`` (NHWC) or ``(N, C, H, W)`` (NCHW).
        filters: HWIO ``(kh, kw, C/g, O)``; ``g = C / filters.shape[2]`` groups.
        strides, dilations: int or list of 1, 2 or 4 ints.
        padding: 'SAME', 'VALID' or explicit ``[[0, 0], [t, b], [l, r], [0, 0]]`` (data_format order).

    Example:
        >>> conv2d(np.ones((1, 224, 224, 3)), np.ones((7, 7, 3, 2)), strides=2, padding="SAME").shape
        (1, 112, 112, 2)
    """
    return _conv(input, filters, strides, padding, data_format, dilations, 2, "conv2d")


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None, name=None):
    """``tf.nn.conv3d``: input NDHWC / NCDHW, filters ``(kd, kh, kw, C/g, O)``.

    Example:
        >>> conv3d(np.ones((1, 5, 6, 7, 2)), np.ones((3, 3, 3, 2, 4)), strides=[1, 2, 2, 2, 1],
        ...        padding="VALID").shape
        (1, 2, 2, 3, 4)
    """
    return _conv(input, filters, strides, padding, data_format, dilations, 3, "conv3d")


def convolution(input, filters, strides=None, padding="VALID", data_format=None, dilations=None, name=None):
    """``tf.nn.convolution``: the number of spatial dims comes from ``filters.ndim - 2`` (1, 2, 3 or more).

    Example:
        >>> convolution(np.ones((2, 6, 4)), np.ones((2, 4, 3)), padding="SAME", dilations=2).shape
        (2, 6, 3)
    """
    n = np.ndim(filters) - 2
    if n < 1:
        raise ValueError(f"convolution: filters must have at least 3 dims, got shape {np.shape(filters)}")
    if data_format is None and n not in _DEFAULT_FORMAT:
        data_format = "channels_last"
    return _conv(input, filters, strides, padding, data_format, dilations, n, "convolution")


def _output_spatial(output_shape, x_cf, n, out_ch, cf, op):
    shape = [int(v) for v in np.asarray(output_shape).reshape(-1).tolist()]
    if len(shape) == n + 2:
        batch, ch = shape[0], (shape[1] if cf else shape[-1])
        spatial = shape[2:] if cf else shape[1:-1]
        if batch != x_cf.shape[0]:
            raise ValueError(f"{op}: output_shape {shape} has batch {batch}, the input has {x_cf.shape[0]}")
        if ch != out_ch:
            raise ValueError(f"{op}: output_shape {shape} has {ch} channels, the filters give {out_ch}")
        return tuple(spatial)
    if len(shape) == n:
        return tuple(shape)
    raise ValueError(f"{op}: output_shape must have {n + 2} entries (data_format order) or {n} spatial sizes, got "
                     f"{shape}")


def _conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations, n, op):
    x = _input(input, n, op)
    w = _filters(filters, n, op)
    cf = _format(data_format, n, op)
    s = _tf_list(strides, n, "strides", cf)
    d = _tf_list(dilations, n, "dilations", cf)
    if output_shape is None:
        raise ValueError(f"{op}: output_shape is required (as in TF): several output sizes give the same input")
    xc = _to_channels_first(x, cf)
    if xc.shape[1] != w.shape[-1]:
        raise ValueError(f"{op}: input depth ({xc.shape[1]}) must equal the filters' last dim ({w.shape[-1]}; "
                         f"transposed filters are (*kernel, out_channels, in_channels), got {w.shape})")
    size_out = _output_spatial(output_shape, xc, n, w.shape[-2], cf, op)
    pairs, out_pad = tf_transpose_padding(padding, input_size=xc.shape[2:], output_size=size_out,
                                          kernel_size=w.shape[:n], strides=s, dilations=d,
                                          data_format=data_format or _DEFAULT_FORMAT[n])
    y = _api.convolution_transpose(xc, transposed_weight_from_tf(w), None, s, pairs, out_pad, 1, d,
                                   n_spatial=n, op=op)
    return _from_channels_first(y, cf)


def conv1d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NWC", dilations=None,
                     name=None):
    """``tf.nn.conv1d_transpose``: filters ``(k, O, C)``; ``output_shape`` ``(N, W_out, O)`` or ``(W_out,)``.

    Example:
        >>> conv1d_transpose(np.ones((1, 5, 2)), np.ones((3, 4, 2)), (1, 10, 4), strides=2).shape
        (1, 10, 4)
    """
    return _conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations, 1,
                           "conv1d_transpose")


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NHWC", dilations=None,
                     name=None):
    """``tf.nn.conv2d_transpose``: the gradient of ``conv2d`` with respect to an ``output_shape`` input.

    Args:
        input: ``(N, H, W, C)`` (NHWC) or ``(N, C, H, W)``.
        filters: ``(kh, kw, O, C)``.
        output_shape: ``(N, H_out, W_out, O)`` in data_format order, or ``(H_out, W_out)``; the convolution of
            that size with this padding / strides / dilations must give back the input size.
        padding: 'SAME', 'VALID' or explicit pairs.

    Example:
        >>> conv2d_transpose(np.ones((1, 4, 4, 2)), np.ones((3, 3, 5, 2)), (1, 9, 9, 5), 2, "VALID").shape
        (1, 9, 9, 5)
    """
    return _conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations, 2,
                           "conv2d_transpose")


def conv3d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NDHWC", dilations=None,
                     name=None):
    """``tf.nn.conv3d_transpose``: filters ``(kd, kh, kw, O, C)``.

    Example:
        >>> conv3d_transpose(np.ones((1, 2, 2, 2, 3)), np.ones((2, 2, 2, 1, 3)), (1, 4, 4, 4, 1), 2).shape
        (1, 4, 4, 4, 1)
    """
    return _conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations, 3,
                           "conv3d_transpose")


def conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None, dilations=None,
                   name=None):
    """``tf.nn.conv_transpose``: N from ``filters.ndim - 2``.

    Example:
        >>> conv_transpose(np.ones((1, 3, 2)), np.ones((2, 1, 2)), (1, 6, 1), 2).shape
        (1, 6, 1)
    """
    n = np.ndim(filters) - 2
    return _conv_transpose(input, filters, output_shape, strides, padding, data_format, dilations, n,
                           "conv_transpose")


def _dilations(dilations, rate):
    """``dilations`` or ``rate`` (its TF 1 name), not both."""
    if rate is None:
        return dilations
    if dilations is not None:
        raise ValueError("give either dilations= or rate= (its TF 1 name), not both")
    return rate


def _depthwise(input, filter, strides, padding, data_format, dilations, op):
    x = _input(input, 2, op)
    w = _filters(filter, 2, op, "filter")
    cf = _format(data_format, 2, op)
    s = _tf_list(strides, 2, "strides", cf)
    d = _tf_list(dilations, 2, "dilations", cf)
    xc = _to_channels_first(x, cf)
    if xc.shape[1] != w.shape[2]:
        raise ValueError(f"{op}: input depth ({xc.shape[1]}) must equal the depthwise filter's in-depth "
                         f"({w.shape[2]}; filter (kh, kw, in_channels, multiplier), got {w.shape})")
    pairs = from_tf_padding(padding, kernel_size=w.shape[:2], strides=s, dilations=d, input_size=xc.shape[2:],
                            data_format=data_format or "NHWC")
    y = _api.convolution(xc, depthwise_weight_from_tf(w), None, s, pairs, d, xc.shape[1], n_spatial=2, op=op)
    return y, cf


def depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None, name=None, *, rate=None):
    """``tf.nn.depthwise_conv2d``: each input channel ``c`` convolved with its own ``m`` filters.

    Args:
        input: NHWC (default) or NCHW.
        filter: ``(kh, kw, C, m)``; output channel ``c*m + j``.
        strides: list of 4 (or 1 / 2) ints.
        padding: 'SAME', 'VALID' or explicit pairs.
        dilations: 2 ints (``rate=`` is accepted as TF 1's name for it).

    Example:
        >>> depthwise_conv2d(np.ones((1, 7, 7, 3)), np.ones((3, 3, 3, 2)), [1, 1, 1, 1], "SAME", rate=2).shape
        (1, 7, 7, 6)
    """
    y, cf = _depthwise(input, filter, strides, padding, data_format, _dilations(dilations, rate), "depthwise_conv2d")
    return _from_channels_first(y, cf)


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding, data_format=None,
                     dilations=None, name=None, *, rate=None):
    """``tf.nn.separable_conv2d``: :func:`depthwise_conv2d` then a 1x1 VALID convolution.

    Args:
        depthwise_filter: ``(kh, kw, C, m)``.
        pointwise_filter: ``(1, 1, C*m, O)``.

    Example:
        >>> separable_conv2d(np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 2)), np.ones((1, 1, 4, 5)), [1, 2, 2, 1],
        ...                  "SAME").shape
        (1, 3, 3, 5)
    """
    y, cf = _depthwise(input, depthwise_filter, strides, padding, data_format, _dilations(dilations, rate),
                       "separable_conv2d")
    pw = _filters(pointwise_filter, 2, "separable_conv2d", "pointwise_filter")
    if pw.shape[:2] != (1, 1) or pw.shape[2] != y.shape[1]:
        raise ValueError(f"separable_conv2d: pointwise_filter must have shape (1, 1, {y.shape[1]}, out_channels) "
                         f"(in-depth = C*multiplier), got {pw.shape}")
    y = _api.convolution(y, weight_from_tf(pw), None, 1, 0, 1, 1, n_spatial=2, op="separable_conv2d")
    return _from_channels_first(y, cf)

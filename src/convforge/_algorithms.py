"""Algorithm selection for the engine.  Each algorithm gets canonical arguments in the compute dtype and
returns ``(N, O, *out)``; the engine adds the bias and casts back."""
from __future__ import annotations

from . import _config, _engine


def conv(x, w, stride, padding, dilation, groups, out_sizes):
    algo = _config.forced_algorithm("conv")
    return _engine.conv_im2col(x, w, stride, padding, dilation, groups, out_sizes)


def conv_transpose(x, w, stride, padding, groups, dilation, out_sizes):
    algo = _config.forced_algorithm("conv_transpose")
    return _engine.conv_transpose_col2im(x, w, stride, padding, groups, dilation, out_sizes)

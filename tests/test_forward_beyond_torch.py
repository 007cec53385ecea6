"""What convforge does beyond PyTorch, checked against the plain-loop reference and torch-built equivalents."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import convforge.nn as nn
import convforge.nn.functional as F
from convforge import shapes
from convforge._reference import conv_reference, conv_transpose_reference
from conftest import assert_close, to_torch, torch
from _configs import conv_configs

tF = torch.nn.functional
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.filter_too_much])


@SETTINGS
@given(cfg=conv_configs(nd=4, max_size=4), seed=st.integers(0, 2 ** 32 - 1))
def test_conv_4d_matches_loop_reference(cfg, seed):
    cfg.batch, cfg.cin_per_group, cfg.cout_per_group = 1, 1, min(cfg.cout_per_group, 2)
    x, w, b = cfg.arrays(np.random.default_rng(seed))
    expected = conv_reference(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups)
    assert_close(F.conv(x, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups), expected)


@SETTINGS
@given(cfg=conv_configs(nd=4, max_size=3, transposed=True), seed=st.integers(0, 2 ** 32 - 1))
def test_conv_transpose_4d_and_per_side_match_loop_reference(cfg, seed):
    cfg.batch, cfg.cin_per_group, cfg.cout_per_group = 1, 1, min(cfg.cout_per_group, 2)
    x, w, b = cfg.arrays(np.random.default_rng(seed), transposed=True)
    expected = conv_transpose_reference(x, w, b, cfg.stride, cfg.padding, cfg.output_padding, cfg.groups,
                                        cfg.dilation)
    got = F.conv_transpose(x, w, b, cfg.stride, cfg.padding, cfg.output_padding, cfg.groups, cfg.dilation)
    assert_close(got, expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2 ** 32 - 1))
def test_conv_transpose_per_side_padding_is_crop_of_unpadded(cfg, seed):
    # per-side padding of a transposed conv crops lo at the start and hi at the end of the padding-0 result
    x, w, b = cfg.arrays(np.random.default_rng(seed), transposed=True)
    full = tF.__dict__[f"conv_transpose{cfg.nd}d"](to_torch(x), to_torch(w), to_torch(b), cfg.stride, 0,
                                                    cfg.output_padding, cfg.groups, cfg.dilation).numpy()
    # output_padding extends the end; when it exceeds hi the extra cells hold only the bias
    sl = []
    for ax, (lo, hi) in enumerate(cfg.padding):
        n_full = full.shape[2 + ax]
        sl.append(slice(lo, n_full - hi))
    expected = full[(slice(None), slice(None)) + tuple(sl)]
    got = F.conv_transpose(x, w, b, cfg.stride, cfg.padding, cfg.output_padding, cfg.groups, cfg.dilation)
    assert_close(got, expected)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("size", [7, 8, 9, 224 // 16, 225 // 16])
@pytest.mark.parametrize("k,s,d", [(3, 2, 1), (7, 2, 1), (4, 3, 1), (3, 2, 2), (1, 2, 1), (5, 4, 3)])
def test_same_with_stride_is_same_upper(nd, size, k, s, d):
    rng = np.random.default_rng(size)
    x = rng.standard_normal((1, 2) + (size,) * nd)
    w = rng.standard_normal((3, 2) + (k,) * nd)
    got = F.conv(x, w, None, s, "same", d)
    lo, hi = shapes.same_padding(size, k, s, d)
    assert got.shape[2:] == (-(-size // s),) * nd
    pads = [lo, hi] * nd
    expected = getattr(tF, f"conv{nd}d")(tF.pad(to_torch(x), pads), to_torch(w), None, s, 0, d).numpy()
    assert_close(got, expected)


def test_same_with_stride_in_module_and_padding_modes():
    m = nn.Conv2d(2, 3, 3, stride=2, padding="same", padding_mode="reflect", dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 7))
    y = m(x)
    assert y.shape == (1, 3, 4, 4)
    (lo0, hi0), (lo1, hi1) = shapes.same_padding(8, 3, 2), shapes.same_padding(7, 3, 2)
    xp = tF.pad(to_torch(x), [lo1, hi1, lo0, hi0], mode="reflect")
    expected = tF.conv2d(xp, to_torch(np.asarray(m.weight)), to_torch(np.asarray(m.bias)), 2).numpy()
    assert_close(y, expected)


def test_output_size_reachable_through_dilation_is_accepted():
    # stride 1, dilation 3: PyTorch rejects output_size min+1 and min+2 although output_padding 1, 2 are legal
    x = np.random.default_rng(0).standard_normal((1, 2, 5))
    w = np.random.default_rng(1).standard_normal((2, 3, 3))
    m = nn.ConvTranspose1d(2, 3, 3, dilation=3, dtype=np.float64)
    m.weight[...] = w
    minimum = shapes.conv_transpose_output_size(5, 3, 1, 0, 3)
    for extra in range(3):
        y = m(x, output_size=(minimum + extra,))
        expected = tF.conv_transpose1d(to_torch(x), to_torch(w), to_torch(np.asarray(m.bias)), 1, 0, extra, 1,
                                       3).numpy()
        assert_close(y, expected)
    with pytest.raises(ValueError, match=f"valid sizes range from {minimum} to {minimum + 2}"):
        m(x, output_size=(minimum + 3,))


@pytest.mark.parametrize("padding", [((0, 1), (2, 3)), ((3, 0), (0, 0)), ((1, 2), (2, 1))])
def test_per_side_padding_equals_pad_then_valid(padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    m = nn.Conv2d(3, 4, 3, padding=padding, dtype=np.float64)
    m.weight[...] = w
    (t, bo), (le, r) = padding
    expected = F.conv2d(F.pad(x, (le, r, t, bo)), w, np.asarray(m.bias))
    assert_close(m(x), expected)
    assert_close(F.conv2d(x, w, None, 1, padding), F.conv2d(F.pad(x, (le, r, t, bo)), w))
    assert repr(m) == f"Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding={padding})"


def test_conv_transpose_output_size_round_trip_every_size():
    # a stride-2 conv followed by a transposed conv with output_size recovers every input size
    for size in range(3, 20):
        w = np.ones((1, 1, 3, 3))
        y = F.conv2d(np.ones((1, 1, size, size)), w, stride=2, padding=1)
        m = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, dtype=np.float64)
        assert m(y, output_size=(size, size)).shape == (1, 1, size, size)


def test_workspace_limit_tiling_gives_same_values():
    import convforge
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 20, 20))
    w = rng.standard_normal((5, 3, 3, 3))
    expected = F.conv2d(x, w, padding=1)
    with convforge.config(workspace_bytes=4096):
        assert_close(F.conv2d(x, w, padding=1), expected)
        wt = rng.standard_normal((3, 5, 3, 3))
        assert_close(F.conv_transpose2d(x, wt, stride=2), tF.conv_transpose2d(to_torch(x), to_torch(wt),
                                                                              stride=2).numpy())

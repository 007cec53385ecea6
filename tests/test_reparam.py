"""Re-parameterisation: fuse_conv_bn and RepVGG branch merging give the same outputs before and after
(float64, within 1e-10 relative to the output scale)."""
import numpy as np
import pytest

import convforge
import convforge.nn as nn
from convforge.nn.utils import fuse_conv_bn, merge_repvgg_branches


def assert_same(actual, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10 * scale)


def random_bn(cls, c, seed, **kw):
    rng = np.random.default_rng(seed)
    bn = cls(c, **kw).double()
    bn.running_mean[...] = rng.standard_normal(c)
    bn.running_var[...] = rng.uniform(0.2, 3.0, c)
    if bn.weight is not None:
        bn.weight[...] = rng.uniform(0.5, 2.0, c)
    if bn.bias is not None:
        bn.bias[...] = rng.standard_normal(c)
    return bn.eval()


BN_CLS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}

CONV_CASES = [
    (nn.Conv1d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1)),
    (nn.Conv2d, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2, bias=False)),
    (nn.Conv2d, dict(in_channels=4, out_channels=8, kernel_size=(3, 2), dilation=2, padding="same",
                     padding_mode="reflect")),
    (nn.Conv3d, dict(in_channels=2, out_channels=4, kernel_size=2, groups=2)),
    (nn.ConvTranspose1d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, groups=2)),
    (nn.ConvTranspose2d, dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1,
                              groups=2, bias=False)),
    (nn.ConvTranspose3d, dict(in_channels=2, out_channels=3, kernel_size=2, dilation=2)),
]


@pytest.mark.parametrize("bn_options", [dict(), dict(affine=False), dict(bias=False)], ids=str)
@pytest.mark.parametrize("cls,kw", CONV_CASES, ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_fuse_conv_bn_matches_conv_then_bn(cls, kw, bn_options):
    convforge.manual_seed(0)
    conv = cls(**kw).double()
    n = conv._n
    bn = random_bn(BN_CLS[n], conv.out_channels, 1, **bn_options)
    x = np.random.default_rng(2).standard_normal((2, conv.in_channels) + (7,) * n)
    before_w = np.array(conv.weight)
    fused = fuse_conv_bn(conv, bn)
    assert type(fused) is cls and fused.bias is not None
    assert_same(fused(x), bn(conv(x)))
    np.testing.assert_array_equal(conv.weight, before_w)          # the original is untouched


def test_fuse_conv_bn_errors():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"num_features == conv.out_channels \(4\), got 5"):
        fuse_conv_bn(conv, nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match=r"track_running_stats=False.*cannot be fused"):
        fuse_conv_bn(conv, nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(TypeError, match=r"expected a convolution module, got Linear"):
        fuse_conv_bn(nn.Linear(2, 2), nn.BatchNorm1d(2))


def repvgg_block(n, c_in, c_out, k=3, stride=1, groups=1, dilation=1, padding_mode="zeros", seed=0,
                 identity=True):
    convforge.manual_seed(seed)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]
    dense = conv(c_in, c_out, k, stride=stride, padding=dilation * (k // 2), dilation=dilation, groups=groups,
                 bias=False, padding_mode=padding_mode).double()
    one = conv(c_in, c_out, 1, stride=stride, groups=groups, bias=False).double()
    branches = dict(dense=(dense, random_bn(BN_CLS[n], c_out, seed + 1)),
                    one_by_one=(one, random_bn(BN_CLS[n], c_out, seed + 2)))
    if identity:
        branches["identity"] = random_bn(BN_CLS[n], c_in, seed + 3)
    return branches


def run_branches(branches, x):
    (dense, bn_d), (one, bn_1) = branches["dense"], branches["one_by_one"]
    y = bn_d(dense(x)) + bn_1(one(x))
    if "identity" in branches:
        y = y + branches["identity"](x)
    return y


@pytest.mark.parametrize("n,c_in,c_out,k,stride,groups,dilation,mode,identity", [
    (2, 4, 4, 3, 1, 1, 1, "zeros", True),
    (2, 4, 4, 3, 1, 2, 1, "zeros", True),          # grouped
    (2, 6, 6, 3, 1, 6, 1, "zeros", True),          # depthwise
    (2, 4, 8, 3, 2, 2, 1, "zeros", False),         # stride 2, channel change: no identity branch
    (2, 4, 4, 5, 1, 1, 2, "reflect", True),        # 5x5, dilated, reflect padding
    (1, 3, 3, 3, 1, 1, 1, "circular", True),
    (3, 2, 2, 3, 1, 2, 1, "replicate", True),
])
def test_merge_repvgg_branches_equals_the_branch_sum(n, c_in, c_out, k, stride, groups, dilation, mode, identity):
    branches = repvgg_block(n, c_in, c_out, k, stride, groups, dilation, mode, identity=identity)
    merged = merge_repvgg_branches(**branches)
    assert merged.kernel_size == (k,) * n and merged.groups == groups
    x = np.random.default_rng(5).standard_normal((2, c_in) + (8,) * n)
    assert_same(merged(x), run_branches(branches, x))


def test_merge_bare_convs_and_plain_identity():
    convforge.manual_seed(0)
    dense = nn.Conv2d(3, 3, 3, padding=1).double()
    one = nn.Conv2d(3, 3, 1).double()
    x = np.random.default_rng(6).standard_normal((1, 3, 5, 5))
    assert_same(merge_repvgg_branches(dense, one, True)(x), dense(x) + one(x) + x)
    assert_same(merge_repvgg_branches(dense)(x), dense(x))


def test_merge_errors():
    convforge.manual_seed(0)
    with pytest.raises(ValueError, match=r"must be odd in every dimension, got \(2, 2\)"):
        merge_repvgg_branches(nn.Conv2d(2, 2, 2))
    with pytest.raises(ValueError, match=r"padded by dilation\*\(k//2\) = \(1, 1\).*padding=\(0, 0\)"):
        merge_repvgg_branches(nn.Conv2d(2, 2, 3))
    with pytest.raises(ValueError, match=r"one_by_one must be a 1x1 conv.*stride \(2, 2\) vs \(1, 1\)"):
        merge_repvgg_branches(nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1, stride=2))
    with pytest.raises(ValueError, match=r"identity branch needs in_channels == out_channels and stride 1"):
        merge_repvgg_branches(nn.Conv2d(2, 4, 3, padding=1), identity=nn.BatchNorm2d(2))

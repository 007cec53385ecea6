"""Every bad input PyTorch rejects is a ValueError/TypeError naming the sizes involved (messages pinned)."""
from __future__ import annotations

import numpy as np
import pytest

import convforge.nn as nn
import convforge.nn.functional as F

X4 = np.zeros((1, 3, 8, 8))
W = np.zeros((8, 4, 3, 3))


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.conv2d(X4, W), ValueError,
     r"Given groups=1, weight of size \[8, 4, 3, 3\], expected input\[1, 3, 8, 8\] to have 4 channels, "
     r"but got 3 channels instead"),
    (lambda: F.conv2d(np.zeros((1, 8, 8, 3)), np.zeros((4, 3, 3, 3))), ValueError,
     r"looks channels-last.*x\.transpose\(0, 3, 1, 2\)"),
    (lambda: F.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((8, 4, 10, 10))), ValueError,
     r"padded input size per channel: \(8 x 8\)\. Kernel size: \(10 x 10\)"),
    (lambda: F.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((8, 4, 5, 5)), dilation=2), ValueError,
     r"Kernel size: \(9 x 9\).*dilation \(2, 2\)"),
    (lambda: F.conv2d(np.zeros((8, 8)), W), ValueError,
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: \[8, 8\]"),
    (lambda: F.conv2d(X4, np.zeros((8, 1, 3, 3)), groups=0), ValueError, r"non-positive groups"),
    (lambda: F.conv2d(X4, np.zeros((8, 1, 3, 3)), groups=-1), ValueError, r"non-positive groups"),
    (lambda: F.conv2d(np.zeros((1, 6, 8, 8)), np.zeros((7, 2, 3, 3)), groups=3), ValueError,
     r"out_channels \(7.*divisible by groups \(3\)"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), padding=-1), ValueError, r"negative padding"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), stride=0), ValueError, r"stride must be positive"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), dilation=0), ValueError, r"dilation must be positive"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), stride=(1, 1, 1)), ValueError,
     r"stride must be an int or a sequence of 2 ints.*3 entries"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), padding="full"), ValueError,
     r"Invalid padding string 'full'"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3)), np.zeros(7)), ValueError,
     r"bias must have shape \(8,\).*got \(7,\)"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3, 3), np.float32)), TypeError,
     r"input dtype \(float64\) and weight dtype \(float32\)"),
    (lambda: F.conv2d(X4.astype(bool), np.zeros((8, 3, 3, 3), bool)), TypeError, r"bool"),
    (lambda: F.conv2d(X4, np.zeros((8, 3, 3))), ValueError, r"weight must be 4-D"),
    (lambda: F.conv_transpose2d(X4, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2), ValueError,
     r"output padding must be smaller than either stride or dilation"),
    (lambda: F.conv_transpose2d(X4, np.zeros((3, 2, 3, 3)), padding="same"), ValueError,
     r"not supported for transposed convolution"),
    (lambda: F.conv_transpose2d(np.zeros((1, 3, 2, 2)), np.zeros((3, 2, 3, 3)), padding=3), ValueError,
     r"output size would be -2 in a dimension \(input \(2, 2\)"),
    (lambda: F.conv_transpose2d(X4, np.zeros((4, 2, 3, 3))), ValueError,
     r"weight of size \[4, 2, 3, 3\], expected input\[1, 3, 8, 8\] to have 4 channels"),
    (lambda: F.pad(np.zeros((1, 1, 4)), (4, 0), mode="reflect"), ValueError,
     r"reflect padding \(4, 0\) must be smaller than the input size 4"),
    (lambda: F.pad(np.zeros((1, 1, 4)), (5, 0), mode="circular"), ValueError,
     r"circular padding \(5, 0\) must be no larger than the input size 4"),
    (lambda: F.pad(np.zeros((1, 1, 4)), (1,)), ValueError, r"divisible by 2"),
    (lambda: F.pad(np.zeros((1, 1, 4)), (1, 1), mode="edge"), ValueError, r"Unsupported padding mode 'edge'"),
])
def test_functional_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError, r"in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.Conv2d(3, 8, 3, groups=0), ValueError, r"groups must be a positive integer"),
    (lambda: nn.Conv2d(3, 0, 3), ValueError, r"out_channels must be a positive integer, got 0"),
    (lambda: nn.Conv2d(0, 8, 3), ValueError, r"in_channels must be a positive integer, got 0"),
    (lambda: nn.Conv2d(3, 8, 0), ValueError, r"kernel_size must be positive"),
    (lambda: nn.Conv2d(3, 8, 3, stride=0), ValueError, r"stride must be positive"),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), ValueError, r"negative padding"),
    (lambda: nn.Conv2d(3, 8, 3, padding="full"), ValueError, r"Invalid padding string"),
    (lambda: nn.Conv2d(3, 8, 3, padding_mode="edge"), ValueError, r"padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, padding="same"), ValueError, r"not supported for transposed"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, padding_mode="reflect"), ValueError,
     r"Only 'zeros' padding mode is supported for ConvTranspose2d"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than either stride or dilation"),
    (lambda: nn.Conv2d(3, 8, (3, 3, 3)), ValueError, r"kernel_size must be an int or a sequence of 2 ints"),
    (lambda: nn.Conv2d(3, 8, 2.5), TypeError, r"kernel_size must be an int"),
    (lambda: nn.Conv2d(3, 8, 3, dtype=np.int32), TypeError, r"dtype must be a float or complex dtype"),
])
def test_construction_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_module_call_errors():
    m = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"looks channels-last.*transpose\(0, 3, 1, 2\)"):
        m(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(TypeError, match=r"module.to\(np.float64\)"):
        m(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to Conv2d"):
        m(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Kernel size: \(3 x 3\)"):
        m(np.zeros((1, 3, 2, 2), np.float32))
    t = nn.ConvTranspose2d(3, 3, 3, stride=2)
    with pytest.raises(ValueError, match=r"valid sizes range from 17 to 18"):
        t(np.zeros((1, 3, 8, 8), np.float32), output_size=(20, 20))
    with pytest.raises(ValueError, match=r"output_size must have 2 or 4 ints"):
        t(np.zeros((1, 3, 8, 8), np.float32), output_size=(20,))


def test_state_dict_errors():
    m = nn.Conv2d(3, 8, 3)
    sd = m.state_dict()
    sd["weight"] = np.zeros((8, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"size mismatch for weight: copying a param with shape \(8, 3, 5, 5\)"):
        m.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=r"missing keys \['bias'\]"):
        m.load_state_dict({"weight": np.zeros((8, 3, 3, 3), np.float32)})
    missing, unexpected = m.load_state_dict({"weight": np.zeros((8, 3, 3, 3), np.float32), "x": 1}, strict=False)
    assert missing == ["bias"] and unexpected == ["x"]
    with pytest.raises(ValueError, match=r"cannot assign an array of shape \(2,\) to parameter 'weight'"):
        m.weight = np.zeros(2)

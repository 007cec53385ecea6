"""convforge.tf argument handling and errors (values against real TF are in test_tf_fixtures.py)."""
import numpy as np
import pytest

import convforge.tf as ctf

X = np.ones((2, 7, 8, 4))
W = np.ones((3, 3, 4, 6))


def test_argument_forms_agree():
    base = ctf.conv2d(X, W, strides=2, padding="SAME")
    for strides in ([2], [2, 2], [1, 2, 2, 1]):
        np.testing.assert_array_equal(ctf.conv2d(X, W, strides=strides, padding="SAME"), base)
    nchw = ctf.conv2d(X.transpose(0, 3, 1, 2), W, strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW")
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), base)
    np.testing.assert_array_equal(ctf.convolution(X, W, strides=[2, 2], padding="SAME"), base)
    explicit = ctf.conv2d(X, W, 2, [[0, 0], [1, 1], [0, 1], [0, 0]])   # SAME split for 7 x 8, k 3, s 2
    np.testing.assert_array_equal(explicit, base)
    np.testing.assert_array_equal(ctf.conv2d(X, W, 2, [[1, 1], [0, 1]]), base)
    np.testing.assert_array_equal(ctf.depthwise_conv2d(X, np.ones((3, 3, 4, 1)), [1, 1, 1, 1], "SAME", rate=2),
                                  ctf.depthwise_conv2d(X, np.ones((3, 3, 4, 1)), [1, 1, 1, 1], "SAME",
                                                       dilations=[2, 2]))


def test_grouped_conv_via_input_depth_equals_split_convs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6, 5, 4))
    w = rng.standard_normal((3, 3, 2, 6))          # 4 / 2 = 2 groups, 3 filters each
    y = ctf.conv2d(x, w, 1, "VALID")
    parts = [ctf.conv2d(x[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], 1, "VALID") for g in range(2)]
    np.testing.assert_allclose(y, np.concatenate(parts, -1), rtol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="batch and channel entries must be 1"):
        ctf.conv2d(X, W, strides=[2, 2, 2, 1], padding="SAME")
    with pytest.raises(ValueError, match="strides must be an int or a list of 1, 2 or 4 ints"):
        ctf.conv2d(X, W, strides=[1, 2, 2], padding="SAME")
    with pytest.raises(ValueError, match=r"input depth \(4\) must be a multiple of the filter's in-depth \(3"):
        ctf.conv2d(X, np.ones((3, 3, 3, 6)), 1, "SAME")
    with pytest.raises(ValueError, match=r"number of filters \(5\) must be a multiple of the number of groups \(2"):
        ctf.conv2d(X, np.ones((3, 3, 2, 5)), 1, "SAME")
    with pytest.raises(ValueError, match="data_format must be 'NHWC' or 'NCHW'"):
        ctf.conv2d(X, W, 1, "SAME", data_format="NCW")
    with pytest.raises(ValueError, match="input must be 4-D"):
        ctf.conv2d(X[0], W, 1, "SAME")
    with pytest.raises(ValueError, match="output_shape is required"):
        ctf.conv2d_transpose(X, np.ones((3, 3, 2, 4)), None, 2)
    with pytest.raises(ValueError, match=r"output_shape \(9, 16\) is inconsistent with the input \(7, 8\) in "
                                         r"dimension 0.*gives 5, not 7"):
        ctf.conv2d_transpose(X, np.ones((3, 3, 2, 4)), (2, 9, 16, 2), 2)
    with pytest.raises(ValueError, match=r"output_shape \[2, 14, 16, 3\] has 3 channels, the filters give 2"):
        ctf.conv2d_transpose(X, np.ones((3, 3, 2, 4)), (2, 14, 16, 3), 2)
    with pytest.raises(ValueError, match=r"input depth \(4\) must equal the filters' last dim \(2"):
        ctf.conv2d_transpose(X, np.ones((3, 3, 4, 2)), (2, 14, 16, 4), 2)
    with pytest.raises(ValueError, match="give either dilations= or rate="):
        ctf.depthwise_conv2d(X, np.ones((3, 3, 4, 1)), [1, 1, 1, 1], "SAME", dilations=[2, 2], rate=2)
    with pytest.raises(ValueError, match=r"pointwise_filter must have shape \(1, 1, 8, out_channels\)"):
        ctf.separable_conv2d(X, np.ones((3, 3, 4, 2)), np.ones((1, 1, 4, 3)), [1, 1, 1, 1], "SAME")
    with pytest.raises(ValueError, match="Kernel size can't be greater than actual input size"):
        ctf.conv2d(X, np.ones((9, 3, 4, 6)), 1, "VALID")

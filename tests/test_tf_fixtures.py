"""convforge.tf and convert.from_keras against outputs of real TensorFlow 2.21 / Keras 3 (fixtures written by
scripts/gen_tf_fixtures.py; TensorFlow itself is not needed here)."""
import json
import os

import numpy as np
import pytest

import convforge.tf as ctf
from convforge import convert

HERE = os.path.dirname(__file__)
META = json.load(open(os.path.join(HERE, "fixtures", "tf_fixtures.json")))
ARRAYS = np.load(os.path.join(HERE, "fixtures", "tf_fixtures.npz"))
CASES = META["cases"]
TOL = {"float64": 1e-10, "float32": 1e-5}


def _close(y, ref, dtype):
    tol = TOL[dtype]
    assert y.shape == ref.shape, (y.shape, ref.shape)
    assert y.dtype == ref.dtype
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max(initial=0))))


def _ids(cases):
    return [f"{c['id']}-{c['fn']}-{c['dtype']}" for c in cases]


TF_CASES = [c for c in CASES if not c["fn"].startswith("keras.")]
KERAS_CASES = [c for c in CASES if c["fn"].startswith("keras.")]


def test_fixture_grid_covers_what_it_should():
    fns = {c["fn"] for c in CASES}
    assert {"conv1d", "conv2d", "conv3d", "convolution", "conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
            "depthwise_conv2d", "separable_conv2d", "keras.Conv2D", "keras.Conv2DTranspose",
            "keras.DepthwiseConv2D", "keras.SeparableConv2D"} <= fns
    assert sum(c["dtype"] == "float64" for c in CASES) >= 100
    assert any(c["kwargs"].get("data_format") == "NCHW" for c in TF_CASES)
    assert any(isinstance(c["kwargs"].get("padding"), list) for c in TF_CASES)


@pytest.mark.parametrize("case", TF_CASES, ids=_ids(TF_CASES))
def test_tf_nn_equals_tensorflow(case):
    inputs = {role: ARRAYS[key] for role, key in case["arrays"].items() if role != "y"}
    y = getattr(ctf, case["fn"])(**inputs, **case["kwargs"])
    _close(y, ARRAYS[case["arrays"]["y"]], case["dtype"])


@pytest.mark.parametrize("case", KERAS_CASES, ids=_ids(KERAS_CASES))
def test_from_keras_equals_keras_layer(case):
    cfg = case["kwargs"]
    x = ARRAYS[case["arrays"]["input"]]
    weights = [ARRAYS[case["arrays"][f"w{j}"]] for j in range(case["n_weights"])]
    module = convert.from_keras(cfg, weights, class_name=case["fn"].split(".")[1])
    channels_last = cfg.get("data_format", "channels_last") == "channels_last"
    xc = np.moveaxis(x, -1, 1) if channels_last else x
    y = module(xc)
    if channels_last:
        y = np.moveaxis(y, 1, -1)
    _close(y, ARRAYS[case["arrays"]["y"]], case["dtype"])


def test_keras_same_transposed_with_even_kernel_and_output_padding_0_is_refused_like_tensorflow():
    refused = [r for r in META["refused"] if r["fn"] == "keras.Conv2DTranspose"]
    assert refused   # TF rejects these: Keras's output size does not convolve back to the input size
    for r in refused:
        k = r["kwargs"]
        w = np.zeros(tuple(k["kernel_size"]) + (k["filters"], r["input_shape"][-1]), np.float32)
        with pytest.raises(ValueError, match="inconsistent with the input"):
            convert.from_keras(k, [w, np.zeros(k["filters"], np.float32)], class_name="Conv2DTranspose")


@pytest.mark.parametrize("case", KERAS_CASES, ids=_ids(KERAS_CASES))
def test_keras_shape_rules_equal_keras(case):
    from convforge import shapes
    cfg = case["kwargs"]
    x, y = ARRAYS[case["arrays"]["input"]], ARRAYS[case["arrays"]["y"]]
    last = cfg.get("data_format", "channels_last") == "channels_last"
    n = x.ndim - 2
    sizes_in = x.shape[1:-1] if last else x.shape[2:]
    sizes_out = y.shape[1:-1] if last else y.shape[2:]
    k, s, d = (convert._spatial(cfg.get(a, 1), n, a) for a in ("kernel_size", "strides", "dilation_rate"))
    if "Transpose" in case["fn"]:
        ops = cfg.get("output_padding")
        ops = (None,) * n if ops is None else convert._spatial(ops, n, "output_padding", minimum=0)
        want = tuple(shapes.keras_conv_transpose_output_size(i, kk, ss, cfg["padding"], o, dd)
                     for i, kk, ss, o, dd in zip(sizes_in, k, s, ops, d))
    else:
        want = tuple(shapes.keras_conv_output_size(i, kk, ss, cfg["padding"], dd)
                     for i, kk, ss, dd in zip(sizes_in, k, s, d))
    assert tuple(sizes_out) == want

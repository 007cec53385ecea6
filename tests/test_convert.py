"""convforge.convert: weight layouts, padding conversion and one-call layer conversion, with round trips.

Oracles: onnxruntime for ONNX nodes, convforge.tf (itself checked against real TensorFlow in test_tf_fixtures.py)
for TF arguments, the Keras fixtures for from_keras, and torch for the TF-layout weight conversions."""
import itertools

import numpy as np
import pytest

import convforge
import convforge.nn as nn
import convforge.onnx as con
import convforge.tf as ctf
from conftest import assert_close
from convforge import convert, shapes

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(7)


TIGHT = dict(rtol=1e-10, atol=1e-10)   # float64 against an exact oracle


# ---------------------------------------------------------------------------------------------------------------
# weight layouts
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3])
def test_weight_layout_round_trips(n):
    k = tuple(range(2, 2 + n))
    w = RNG.standard_normal((6, 4) + k)
    assert convert.weight_to_tf(w).shape == k + (4, 6)
    np.testing.assert_array_equal(convert.weight_from_tf(convert.weight_to_tf(w)), w)
    np.testing.assert_array_equal(convert.transposed_weight_from_tf(convert.transposed_weight_to_tf(w)), w)
    dw = RNG.standard_normal((6, 1) + k)
    tf_dw = convert.depthwise_weight_to_tf(dw, in_channels=3)
    assert tf_dw.shape == k + (3, 2)
    np.testing.assert_array_equal(convert.depthwise_weight_from_tf(tf_dw), dw)
    # element mapping: torch channel c*m + j is TF (c, j)
    idx = (0,) * n
    assert tf_dw[idx + (1, 0)] == dw[(2, 0) + idx] and tf_dw[idx + (2, 1)] == dw[(5, 0) + idx]


@pytest.mark.parametrize("n,groups", [(1, 1), (2, 2), (3, 1)])
def test_tf_layout_conv_equals_torch(n, groups):
    x = RNG.standard_normal((2, 4) + (7,) * n)
    w = RNG.standard_normal((6, 4 // groups) + (3,) * n)
    ref = getattr(torch.nn.functional, f"conv{n}d")(torch.tensor(x), torch.tensor(w), stride=2, padding=1,
                                                     groups=groups).numpy()
    x_cl = np.moveaxis(x, 1, -1)
    y = ctf.convolution(x_cl, convert.weight_to_tf(w), strides=2, padding=[[1, 1]] * n)
    assert_close(np.moveaxis(y, -1, 1), ref, **TIGHT)


def test_tf_layout_transposed_and_depthwise_equal_torch():
    x = RNG.standard_normal((2, 3, 5, 4))
    wt = RNG.standard_normal((3, 2, 3, 3))
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(wt), stride=2).numpy()
    y = ctf.conv2d_transpose(np.moveaxis(x, 1, -1), convert.transposed_weight_to_tf(wt), ref.shape[2:], 2, "VALID")
    assert_close(np.moveaxis(y, -1, 1), ref, **TIGHT)
    wd = RNG.standard_normal((6, 1, 3, 2))
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(wd), groups=3, dilation=2).numpy()
    y = ctf.depthwise_conv2d(np.moveaxis(x, 1, -1), convert.depthwise_weight_to_tf(wd, 3), [1, 1, 1, 1], "VALID",
                             dilations=[2, 2])
    assert_close(np.moveaxis(y, -1, 1), ref, **TIGHT)


def test_weight_layout_errors():
    with pytest.raises(ValueError, match="at least 3 dims"):
        convert.weight_to_tf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"second axis must be 1"):
        convert.depthwise_weight_to_tf(np.zeros((6, 2, 3, 3)), 3)
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be a positive divisor of the weight's first axis"):
        convert.depthwise_weight_to_tf(np.zeros((6, 1, 3, 3)), 4)


# ---------------------------------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------------------------------
def test_tf_padding_examples_and_round_trip():
    assert convert.from_tf_padding("SAME", kernel_size=(7,), strides=2, input_size=(224,)) == ((2, 3),)
    assert convert.from_tf_padding("SAME", kernel_size=(7,), strides=2, input_size=(225,)) == ((3, 3),)
    assert convert.from_tf_padding("SAME", kernel_size=(3,), strides=2, input_size=(8,)) == ((0, 1),)
    assert convert.from_tf_padding("same", kernel_size=(4, 3), strides=1) == ((1, 2), (1, 1))
    assert convert.from_tf_padding("SAME", kernel_size=(4, 3), strides=2) == "same"
    assert convert.from_tf_padding("VALID", kernel_size=(4, 3)) == ((0, 0), (0, 0))
    assert convert.from_tf_padding("causal", kernel_size=(3,), dilations=2) == ((4, 0),)
    explicit = [[0, 0], [1, 2], [3, 0], [0, 0]]
    assert convert.from_tf_padding(explicit, kernel_size=(3, 3), data_format="NHWC") == ((1, 2), (3, 0))
    assert convert.from_tf_padding([[0, 0], [0, 0], [1, 2], [3, 0]], kernel_size=(3, 3),
                                   data_format="NCHW") == ((1, 2), (3, 0))
    assert convert.to_tf_padding(((1, 2), (3, 0)), kernel_size=3, data_format="NHWC") == explicit
    for i, k, s, d in itertools.product((7, 8), (1, 2, 3, 4), (1, 2, 3), (1, 2)):
        pairs = convert.from_tf_padding("SAME", kernel_size=(k,), strides=s, dilations=d, input_size=(i,))
        assert pairs == (shapes.same_padding(i, k, s, d),)
        back = convert.to_tf_padding(pairs, kernel_size=(k,), strides=s, dilations=d, input_size=(i,))
        assert back in ("SAME", "VALID")   # SAME's split for this size (VALID when it is all zero)
    assert convert.to_tf_padding("same", kernel_size=(3, 3), strides=2) == "SAME"
    assert convert.to_tf_padding(0, kernel_size=(3, 3)) == "VALID"


def test_onnx_padding_examples_and_round_trip():
    assert convert.from_onnx_padding(pads=[0, 1, 2, 3], kernel_shape=(3, 3)) == ((0, 2), (1, 3))
    assert convert.from_onnx_padding("SAME_LOWER", kernel_shape=(4,), strides=(1,)) == ((2, 1),)
    assert convert.from_onnx_padding("SAME_UPPER", kernel_shape=(4,), strides=(1,)) == ((1, 2),)
    assert convert.from_onnx_padding("SAME_UPPER", kernel_shape=(4,), strides=(2,)) == "same"
    assert convert.from_onnx_padding("SAME_LOWER", kernel_shape=(3,), strides=(2,), input_size=(8,)) == ((1, 0),)
    assert convert.from_onnx_padding("VALID", kernel_shape=(3, 3)) == ((0, 0), (0, 0))
    for pairs in (((0, 2), (1, 3)), ((4, 0),), ((1, 1), (0, 0), (2, 5))):
        attrs = convert.to_onnx_padding(pairs, kernel_shape=(3,) * len(pairs))
        assert convert.from_onnx_padding(**attrs, kernel_shape=(3,) * len(pairs)) == pairs
    assert convert.to_onnx_padding("same", kernel_shape=(3,), strides=(2,)) == {"auto_pad": "SAME_UPPER"}
    assert convert.to_onnx_padding("same", kernel_shape=(4,), strides=(1,), dilations=(2,)) == {
        "auto_pad": "NOTSET", "pads": [3, 3]}


def test_padding_errors_name_what_is_missing():
    with pytest.raises(ValueError, match=r"SAME_LOWER' with strides \(2,\) depends on the input size.*input_size="):
        convert.from_onnx_padding("SAME_LOWER", kernel_shape=(3,), strides=(2,))
    with pytest.raises(ValueError, match="neither TF's 'SAME' nor 'VALID'.*pass input_size="):
        convert.to_tf_padding(((0, 1),), kernel_size=3, strides=2, strings_only=True)
    with pytest.raises(ValueError, match="batch and channel dimensions must be \\[0, 0\\]"):
        convert.from_tf_padding([[1, 0], [1, 2], [0, 0]], kernel_size=(3,), data_format="NWC")
    with pytest.raises(ValueError, match="TF padding must be 'SAME', 'VALID'"):
        convert.from_tf_padding("FULL", kernel_size=(3,))
    with pytest.raises(ValueError, match="cannot be used together with auto_pad"):
        convert.from_onnx_padding("VALID", [1, 0], kernel_shape=(3,))
    with pytest.raises(ValueError, match="data_format must be 'NHWC' or 'NCHW'"):
        convert.from_tf_padding([[0, 0], [1, 1], [1, 1], [0, 0]], kernel_size=(3, 3), data_format="NWC")
    with pytest.raises(ValueError, match=r"output_shape \(8,\) is inconsistent with the input \(5,\)"):
        convert.tf_transpose_padding("SAME", input_size=(5,), output_size=(8,), kernel_size=3, strides=2)


def test_onnx_transpose_pads_follow_the_spec():
    # total = s*(i-1) + op + k_eff - output_shape; SAME_UPPER: total // 2 first; otherwise total - total // 2
    assert convert.onnx_transpose_pads((3,), (3,), strides=(2,), output_shape=(6,), auto_pad="SAME_UPPER") == ((0, 1),)
    assert convert.onnx_transpose_pads((3,), (3,), strides=(2,), output_shape=(6,), auto_pad="SAME_LOWER") == ((1, 0),)
    assert convert.onnx_transpose_pads((3,), (3,), strides=(2,), output_shape=(6,)) == ((1, 0),)
    assert convert.onnx_transpose_pads((3,), (1,), strides=(3,), auto_pad="SAME_UPPER") == ((-1, -1),)
    assert convert.onnx_transpose_pads((3,), (3,), pads=[1, 2]) == ((1, 2),)


# ---------------------------------------------------------------------------------------------------------------
# layers: ONNX
# ---------------------------------------------------------------------------------------------------------------
def _ort(op, attrs, x, w, b):
    names = ["X", "W"] + (["B"] if b is not None else [])
    node = helper.make_node(op, names, ["Y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(a, nm) for nm, a in zip(names[1:], [w, b])
                                           if a is not None])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]


SIZES = [(7, 9), (8, 6)]   # odd and even


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("auto_pad,pads", [("NOTSET", [0, 1, 2, 1]), ("SAME_UPPER", None), ("VALID", None),
                                            ("SAME_LOWER", None)])
def test_from_onnx_conv_node_equals_onnxruntime(stride, auto_pad, pads):
    w = RNG.standard_normal((6, 2, 3, 4)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    attrs = {"auto_pad": auto_pad, "strides": [stride, stride], "group": 2, "kernel_shape": [3, 4]}
    if pads:
        attrs["pads"] = pads
    node = helper.make_node("Conv", ["X", "W", "B"], ["Y"], **attrs)
    inits = {"W": numpy_helper.from_array(w, "W"), "B": b}
    for size in SIZES:
        x = RNG.standard_normal((3, 4) + size).astype(np.float32)
        shape = x.shape if auto_pad == "SAME_LOWER" and stride > 1 else None
        m = convert.from_onnx(node, inits, input_shape=shape)
        assert_close(m(x), _ort("Conv", attrs, x, w, b), rtol=1e-5, atol=1e-5)
        assert m.weight.dtype == np.float32
    if auto_pad == "SAME_LOWER" and stride > 1:
        with pytest.raises(ValueError, match="depends on the input size"):
            convert.from_onnx(node, inits)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("extra", [{"pads": [1, 0, 2, 1]}, {"auto_pad": "SAME_UPPER"}, {"auto_pad": "SAME_LOWER"},
                                   {"auto_pad": "VALID", "output_padding": "max"}, {"output_shape": "fit"}])
def test_from_onnx_conv_transpose_equals_onnxruntime(stride, extra):
    w = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    for size in SIZES:
        attrs = {"strides": [stride, stride], "group": 2, **extra}
        if attrs.get("output_padding") == "max":
            attrs["output_padding"] = [stride - 1, stride - 1]
        x = RNG.standard_normal((2, 4) + size).astype(np.float32)
        if attrs.get("output_shape") == "fit":
            attrs["output_shape"] = [stride * (i - 1) + 3 - 1 for i in size][:1] + [stride * (size[1] - 1) + 2 - 2]
        node = {"op_type": "ConvTranspose", **attrs}
        m = convert.from_onnx(node, {"W": w, "B": b}, input_shape=x.shape)
        assert_close(m(x), _ort("ConvTranspose", attrs, x, w, b), rtol=1e-5, atol=1e-5)


def test_from_onnx_errors():
    w = np.ones((2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="ConvTranspose with output_shape: the padding depends on the input size"):
        convert.from_onnx({"op_type": "ConvTranspose", "output_shape": [9]}, [w])
    with pytest.raises(ValueError, match="not expressible as a convforge module"):
        convert.from_onnx({"op_type": "ConvTranspose", "auto_pad": "SAME_UPPER", "strides": [4]},
                          [np.ones((2, 3, 1), np.float32)])
    with pytest.raises(ValueError, match="op_type must be 'Conv' or 'ConvTranspose'"):
        convert.from_onnx({"op_type": "Gemm"}, [w])
    with pytest.raises(ValueError, match=r"kernel_shape \(2,\) does not match"):
        convert.from_onnx({"op_type": "Conv", "kernel_shape": [2]}, [w])


MODULES = [
    lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding="same", groups=2),
    lambda: nn.Conv2d(4, 6, 3, stride=1, padding="same", dilation=2),
    lambda: nn.Conv2d(4, 6, 3, stride=2, padding=((0, 1), (2, 1))),
    lambda: nn.Conv1d(4, 5, 4, stride=2, padding=1),
    lambda: nn.Conv3d(4, 2, 2, stride=(1, 2, 1)),
    lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
    lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=((0, 1), (1, 0)), groups=2),
    lambda: nn.ConvTranspose1d(4, 3, 3, stride=1, padding=1),
    lambda: nn.ConvTranspose3d(4, 2, 2, stride=2),
]


@pytest.mark.parametrize("make", MODULES, ids=[f"m{i}" for i in range(len(MODULES))])
def test_to_onnx_equals_module_and_round_trips(make):
    convforge.manual_seed(3)
    m = make()
    r = convert.to_onnx(m)
    back = convert.from_onnx({"op_type": r["op_type"], **r["attributes"]}, {"W": r["W"], "B": r["B"]})
    for size in [(7, 8, 5), (8, 9, 6)]:
        x = RNG.standard_normal((2, 4) + size[:m._n]).astype(np.float32)
        y = m(x)
        assert_close(_ort(r["op_type"], r["attributes"], x, r["W"], r["B"]), y, rtol=1e-5, atol=1e-5)
        fn = con.conv if r["op_type"] == "Conv" else con.conv_transpose
        wide = [a.astype(np.float64) for a in (x, r["W"], r["B"])]
        assert_close(fn(*wide, **r["attributes"]), y.astype(np.float64), rtol=1e-5, atol=1e-5)
        assert_close(back(x), y, rtol=1e-6, atol=1e-6)
    assert type(back) is type(m)


@pytest.mark.parametrize("make", MODULES, ids=[f"m{i}" for i in range(len(MODULES))])
def test_to_tf_equals_module(make):
    convforge.manual_seed(4)
    m = make().double()
    for size in [(7, 8, 5), (8, 9, 6)]:
        x = RNG.standard_normal((2, 4) + size[:m._n])
        y = m(x)
        if m.transposed and m.groups > 1:
            with pytest.raises(ValueError, match="tf.nn.conv_transpose has no groups"):
                convert.to_tf(m, input_shape=x.shape)
            return
        for layout in ("channels_last", "channels_first"):
            a = convert.to_tf(m, input_shape=x.shape, data_format=layout)
            bias = a.pop("bias")
            xin = np.moveaxis(x, 1, -1) if layout == "channels_last" else x
            out = ctf.conv_transpose(xin, **a) if m.transposed else ctf.convolution(xin, **a)
            out = out + (bias if layout == "channels_last" else bias.reshape((-1,) + (1,) * m._n))
            assert_close(np.moveaxis(out, -1, 1) if layout == "channels_last" else out, y, **TIGHT)
            filters = a["filters"]
            w_back = convert.transposed_weight_from_tf(filters) if m.transposed else convert.weight_from_tf(filters)
            np.testing.assert_array_equal(w_back, m.weight)


def test_to_tf_and_to_onnx_errors():
    with pytest.raises(ValueError, match="tf.nn.conv_transpose needs output_shape.*pass input_shape="):
        convert.to_tf(nn.ConvTranspose2d(2, 2, 3, stride=2))
    with pytest.raises(ValueError, match="padding_mode='reflect' has no ONNX Conv / tf.nn equivalent"):
        convert.to_onnx(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(TypeError, match="expected a convforge.nn Conv"):
        convert.to_onnx(object())
    with pytest.raises(ValueError, match=r"output_padding \(0, 1\) >= stride \(1, 1\)"):
        convert.to_tf(nn.ConvTranspose2d(2, 2, 3, dilation=2, output_padding=(0, 1)), input_shape=(5, 5))


# ---------------------------------------------------------------------------------------------------------------
# layers: Keras (values against real Keras are in test_tf_fixtures.py; here the mapping itself)
# ---------------------------------------------------------------------------------------------------------------
def test_from_keras_mapping_and_errors():
    k = RNG.standard_normal((3, 3, 2, 4)).astype(np.float32)
    m = convert.from_keras({"class_name": "Conv2D", "config": {"strides": [2, 2], "padding": "same",
                                                               "use_bias": False}}, [k])
    assert (m.stride, m.padding, m.bias) == ((2, 2), "same", None)
    np.testing.assert_array_equal(m.weight, convert.weight_from_tf(k))
    m = convert.from_keras({"strides": 2, "padding": "same"}, [RNG.standard_normal((4, 3, 5, 2)),
                                                               np.zeros(5)], class_name="Conv2DTranspose")
    # 'same', no output_padding: total max(k_eff - s, 0) -> kernel 4: (1, 1), kernel 3: (0, 1); output i*s
    assert m._padding_spec == ((1, 1), (0, 1)) and m.output_padding == (0, 0)
    assert m(np.zeros((1, 2, 7, 6))).shape == (1, 5, 14, 12)
    sep = convert.from_keras({"padding": "valid", "depth_multiplier": 2},
                             [np.ones((3, 3, 2, 2)), np.ones((1, 1, 4, 5)), np.zeros(5)], class_name="SeparableConv2D")
    assert isinstance(sep, convert.SeparableConv) and sep.depthwise.groups == 2 and sep.depthwise.bias is None
    with pytest.raises(ValueError, match="unsupported Keras layer 'Dense'"):
        convert.from_keras({}, [k], class_name="Dense")
    with pytest.raises(ValueError, match="has 2 weight arrays, got 1"):
        convert.from_keras({}, [k], class_name="Conv2D")
    with pytest.raises(ValueError, match="give class_name="):
        convert.from_keras({}, [k])
    with pytest.raises(ValueError, match="Keras padding must be 'valid' or 'same'"):
        convert.from_keras({"padding": "causal", "use_bias": False}, [k], class_name="Conv2D")


def test_keras_transposed_mapping_is_independent_of_the_input_size():
    """from_keras derives fixed padding/output_padding once; the Keras rule must give that size for every i."""
    for padding, s, k, d, op in itertools.product(("same", "valid"), (1, 2, 3), (1, 2, 3, 4), (1, 2), (None, 0, 1, 2)):
        if op is not None and op >= s:
            continue
        w = np.zeros((k, 2, 3))
        try:
            m = convert.from_keras({"strides": s, "padding": padding, "dilation_rate": d, "output_padding": op,
                                    "use_bias": False}, [w], class_name="Conv1DTranspose")
        except ValueError:
            assert padding == "same" and op is not None   # TF rejects these for every size (see the fixtures)
            continue
        for i in range(1, 12):
            expect = shapes.keras_conv_transpose_output_size(i, k, s, padding, op, d)
            got = shapes.conv_transpose_output_size(i, k, s, m._padding_spec[0], d,
                                                    m.output_padding[0])
            assert got == expect, (padding, s, k, d, op, i)


def test_separable_conv_backward_matches_finite_differences():
    convforge.manual_seed(0)
    sep = convert.SeparableConv(nn.Conv2d(2, 4, 3, groups=2, bias=False, dtype=np.float64),
                                nn.Conv2d(4, 3, 1, dtype=np.float64))
    x = RNG.standard_normal((1, 2, 5, 6))
    gy = RNG.standard_normal(sep(x).shape)
    tracked = convforge.tensor(x, requires_grad=True)
    sep(tracked).backward(gy)                    # autograd through both convolutions
    gx = tracked.grad
    v = RNG.standard_normal(x.shape)
    eps = 1e-6
    numeric = (np.sum(sep(x + eps * v) * gy) - np.sum(sep(x - eps * v) * gy)) / (2 * eps)
    assert abs(numeric - np.sum(gx * v)) < 1e-7 * max(1.0, abs(numeric))


def test_import_convforge_does_not_import_onnx_or_tensorflow():
    import subprocess
    import sys
    code = ("import sys, convforge, convforge.onnx, convforge.tf, convforge.convert; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'tensorflow', 'torch', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""convforge.onnx against the onnx package's own node cases, onnxruntime and the onnx reference evaluator."""
import importlib

import numpy as np
import pytest

import convforge.onnx as con

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

OPSET = 22


# ---------------------------------------------------------------------------------------------------------------
# the onnx package's node cases, generated in memory
# ---------------------------------------------------------------------------------------------------------------
def _node_cases(module_name, cls_name):
    """Run every ``export*`` of onnx.backend.test.case.node.<module> with ``expect`` recording (node, in, out)."""
    mod = importlib.import_module(f"onnx.backend.test.case.node.{module_name}")
    found = []

    def record(node, inputs, outputs, name, **kwargs):
        found.append((name, node, inputs, outputs))

    cls = getattr(mod, cls_name)
    saved = mod.expect
    mod.expect = record
    try:
        for attr in sorted(dir(cls)):
            if attr.startswith("export"):
                getattr(cls, attr)()
    finally:
        mod.expect = saved
    return found


def _attrs(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


CONV_CASES = _node_cases("conv", "Conv")
CONVT_CASES = _node_cases("convtranspose", "ConvTranspose")


def test_node_cases_were_found():
    names = {c[0] for c in CONV_CASES + CONVT_CASES}
    assert {"test_basic_conv_with_padding", "test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding",
            "test_convtranspose", "test_convtranspose_output_shape", "test_convtranspose_autopad_same",
            "test_convtranspose_group_2", "test_convtranspose_dilations", "test_convtranspose_pads"} <= names
    assert len(CONV_CASES) >= 6 and len(CONVT_CASES) >= 11


@pytest.mark.parametrize("case", CONV_CASES + CONVT_CASES, ids=[c[0] for c in CONV_CASES + CONVT_CASES])
def test_onnx_node_case(case):
    name, node, inputs, outputs = case
    fn = con.conv if node.op_type == "Conv" else con.conv_transpose
    y = fn(*inputs, **_attrs(node))
    ref = outputs[0]
    assert y.shape == ref.shape and y.dtype == ref.dtype
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))


# ---------------------------------------------------------------------------------------------------------------
# onnxruntime and the reference evaluator on random configs
# ---------------------------------------------------------------------------------------------------------------
def _model(op, x, w, b, attrs, dtype=TensorProto.FLOAT):
    names = ["X", "W"] + (["B"] if b is not None else [])
    node = helper.make_node(op, names, ["Y"], **{k: v for k, v in attrs.items() if v is not None})
    ins = [helper.make_tensor_value_info(nm, dtype, a.shape) for nm, a in zip(names, [x, w, b])]
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("Y", dtype, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    feeds = dict(zip(names, [x, w, b]))
    return model, feeds


def run_ort(op, x, w, b, attrs):
    model, feeds = _model(op, x, w, b, attrs)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def run_reference(op, x, w, b, attrs):
    model, feeds = _model(op, x, w, b, attrs, TensorProto.DOUBLE)
    return ReferenceEvaluator(model).run(None, feeds)[0]


def _close(y, ref, tol):
    assert y.shape == ref.shape, (y.shape, ref.shape)
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max(initial=0))))


def random_conv(rng, dtype, allow_dilated_same=True):
    n = int(rng.integers(1, 4))
    group = int(rng.choice([1, 2, 3]))
    c, m, batch = 2 * group, 3 * group if group > 1 else 5, int(rng.integers(1, 3))
    k = [int(v) for v in rng.integers(1, 4, n)]
    s = [int(v) for v in rng.integers(1, 4, n)]
    d = [int(v) for v in rng.integers(1, 3, n)]
    auto_pad = str(rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if auto_pad.startswith("SAME") and not allow_dilated_same:
        d = [1] * n        # onnxruntime: "Dilation not supported for AutoPadType::SAME_UPPER or SAME_LOWER"
    pads = [int(v) for v in rng.integers(0, 3, 2 * n)] if auto_pad == "NOTSET" else None
    spatial = [int(rng.integers(dd * (kk - 1) + 1, dd * (kk - 1) + 6)) for kk, dd in zip(k, d)]
    x = rng.standard_normal([batch, c] + spatial).astype(dtype)
    w = rng.standard_normal([m, c // group] + k).astype(dtype)
    b = rng.standard_normal(m).astype(dtype) if rng.random() < 0.7 else None
    attrs = {"auto_pad": auto_pad, "dilations": d, "group": group, "kernel_shape": k, "pads": pads, "strides": s}
    if rng.random() < 0.3:
        attrs.pop("kernel_shape")
    return x, w, b, attrs


def random_conv_transpose(rng, dtype, spec_only=False):
    """spec_only=True also draws configs where onnxruntime deviates from the spec (see docs/PORTING.md)."""
    n = int(rng.integers(1, 4))
    # the onnx reference evaluator slices W by output instead of input channels when group > 1 (onnx 1.23):
    # grouped configs go to onnxruntime only
    group = 1 if spec_only else int(rng.choice([1, 2]))
    c, m_g, batch = 3 * group, 2, int(rng.integers(1, 3))
    k = [int(v) for v in rng.integers(1, 4, n)]
    s = [int(v) for v in rng.integers(1, 4, n)]
    d = [int(v) for v in rng.integers(1, 3, n)]
    spatial = [int(v) for v in rng.integers(2, 6, n)]
    op = [int(rng.integers(0, ss)) for ss in s]          # < stride: onnxruntime checks stride only
    mode = str(rng.choice(["pads", "SAME_UPPER", "SAME_LOWER", "VALID", "output_shape"]))
    attrs = {"dilations": d, "group": group, "strides": s, "output_padding": op}
    full = [ss * (i - 1) + o + dd * (kk - 1) + 1 for i, ss, o, dd, kk in zip(spatial, s, op, d, k)]
    if mode == "pads":
        attrs["pads"] = [int(rng.integers(0, max(1, f // 3))) for f in full] * 2
    elif mode == "output_shape":
        attrs["auto_pad"] = str(rng.choice(["NOTSET", "SAME_UPPER", "SAME_LOWER"]))
        # onnxruntime clamps a negative total padding to 0 (spec / reference: negative pads), so for it stay <= full
        extra = 3 if spec_only else 1
        attrs["output_shape"] = [int(rng.integers(max(1, f - 3), f + extra)) for f in full]
    else:
        attrs["auto_pad"] = mode
        if mode.startswith("SAME") and not spec_only:
            # onnxruntime ignores the i*s target when the total padding is negative (k_eff + op < s)
            k = [max(kk, -(-(ss - o) // dd) + 1) for kk, ss, o, dd in zip(k, s, op, d)]
    x = rng.standard_normal([batch, c] + spatial).astype(dtype)
    w = rng.standard_normal([c, m_g] + k).astype(dtype)
    b = rng.standard_normal(m_g * group).astype(dtype) if rng.random() < 0.7 else None
    return x, w, b, attrs


def _call(op, x, w, b, attrs):
    fn = con.conv if op == "Conv" else con.conv_transpose
    return fn(x, w, b, **{k: v for k, v in attrs.items() if v is not None})


@pytest.mark.parametrize("seed", range(40))
def test_conv_equals_onnxruntime(seed):
    rng = np.random.default_rng(seed)
    x, w, b, attrs = random_conv(rng, np.float32, allow_dilated_same=False)
    _close(_call("Conv", x, w, b, attrs), run_ort("Conv", x, w, b, attrs), 1e-5)


@pytest.mark.parametrize("seed", range(60))
def test_conv_transpose_equals_onnxruntime(seed):
    rng = np.random.default_rng(1000 + seed)
    x, w, b, attrs = random_conv_transpose(rng, np.float32)
    _close(_call("ConvTranspose", x, w, b, attrs), run_ort("ConvTranspose", x, w, b, attrs), 1e-5)


@pytest.mark.parametrize("seed", range(25))
def test_conv_equals_reference_evaluator_float64(seed):
    rng = np.random.default_rng(2000 + seed)
    x, w, b, attrs = random_conv(rng, np.float64)      # incl. SAME_* with dilations (onnxruntime refuses those)
    _close(_call("Conv", x, w, b, attrs), run_reference("Conv", x, w, b, attrs), 1e-10)


@pytest.mark.parametrize("seed", range(25))
def test_conv_transpose_equals_reference_evaluator_float64(seed):
    rng = np.random.default_rng(3000 + seed)
    x, w, b, attrs = random_conv_transpose(rng, np.float64, spec_only=True)
    if attrs.get("output_shape") is not None and attrs.get("auto_pad", "NOTSET") == "NOTSET":
        attrs["auto_pad"] = "SAME_LOWER"   # the reference ignores output_shape for NOTSET (spec: SAME_LOWER's split)
    _close(_call("ConvTranspose", x, w, b, attrs), run_reference("ConvTranspose", x, w, b, attrs), 1e-10)


def test_same_upper_and_lower_differ_exactly_by_the_odd_pad():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 7))
    w = rng.standard_normal((4, 3, 4, 3))
    up = con.conv(x, w, auto_pad="SAME_UPPER", strides=[2, 2])
    lo = con.conv(x, w, auto_pad="SAME_LOWER", strides=[2, 2])
    # i=8, k=4, s=2: total 2 -> (1, 1) both; i=7, k=3, s=2: total 2 -> (1, 1); use odd totals instead:
    assert up.shape == lo.shape == (2, 4, 4, 4)
    x2 = rng.standard_normal((1, 1, 8))
    w2 = rng.standard_normal((1, 1, 4))
    up2 = con.conv(x2, w2, auto_pad="SAME_UPPER")          # total 3: (1, 2)
    lo2 = con.conv(x2, w2, auto_pad="SAME_LOWER")          # total 3: (2, 1)
    np.testing.assert_allclose(up2, con.conv(x2, w2, pads=[1, 2]), rtol=1e-12)
    np.testing.assert_allclose(lo2, con.conv(x2, w2, pads=[2, 1]), rtol=1e-12)
    assert not np.allclose(up2, lo2)


# ---------------------------------------------------------------------------------------------------------------
# where onnxruntime 1.31 departs from the spec (documented in docs/PORTING.md); these pin the difference
# ---------------------------------------------------------------------------------------------------------------
def _x_w(rng, k=3):
    return rng.standard_normal((1, 2, 5)).astype(np.float32), rng.standard_normal((2, 3, k)).astype(np.float32)


def test_ort_deviation_same_with_small_kernel_ignores_the_i_times_s_output():
    x, w = _x_w(np.random.default_rng(0), k=1)
    attrs = {"strides": [3], "auto_pad": "SAME_UPPER"}
    ours = _call("ConvTranspose", x, w, None, attrs)
    assert ours.shape == (1, 3, 15)                                     # spec: output_shape = i * s
    np.testing.assert_allclose(ours, run_reference("ConvTranspose", x.astype(float), w.astype(float), None, attrs),
                               rtol=1e-6, atol=1e-6)
    assert run_ort("ConvTranspose", x, w, None, attrs).shape == (1, 3, 13)


def test_ort_deviation_negative_total_padding_from_output_shape():
    x, w = _x_w(np.random.default_rng(1))
    attrs = {"strides": [2], "auto_pad": "SAME_UPPER", "output_shape": [12]}   # full size 11: total -1
    ours = _call("ConvTranspose", x, w, None, attrs)
    ref = run_reference("ConvTranspose", x.astype(float), w.astype(float), None, attrs)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    assert ours[..., 0].any() == False  # noqa: E712  (pads (-1, 0): a leading zero column, as the reference)
    assert not np.allclose(run_ort("ConvTranspose", x, w, None, attrs), ours, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------------
def test_errors():
    x = np.ones((1, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match="auto_pad must be one of"):
        con.conv(x, w, auto_pad="SAME")
    with pytest.raises(ValueError, match=r"pads must have 2\*2 = 4 ints"):
        con.conv(x, w, pads=[1, 1])
    with pytest.raises(ValueError, match="cannot be used together with auto_pad='SAME_UPPER'"):
        con.conv(x, w, auto_pad="SAME_UPPER", pads=[1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"kernel_shape \[2, 2\] does not match W's kernel dims \[3, 3\]"):
        con.conv(x, w, kernel_shape=[2, 2])
    with pytest.raises(ValueError, match="pads must be non-negative"):
        con.conv(x, w, pads=[-1, 0, 0, 0])
    with pytest.raises(ValueError, match="expected input"):
        con.conv(x, np.ones((3, 1, 3, 3)), group=1)
    with pytest.raises(ValueError, match="X must be 4-D"):
        con.conv(x[0], w)
    wt = np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match="output_padding must be less than its stride or dilation"):
        con.conv_transpose(x, wt, strides=[2, 2], output_padding=[2, 0])
    with pytest.raises(ValueError, match="X has 2 channels but W of shape"):
        con.conv_transpose(x, np.ones((3, 3, 3, 3)))
    with pytest.raises(ValueError, match="output size would be"):
        con.conv_transpose(x, wt, pads=[4, 0, 4, 0])
    with pytest.raises(ValueError, match="group must be a positive int"):
        con.conv(x, w, group=0)

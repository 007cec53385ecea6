"""convforge.onnx.load_model against onnxruntime on torch.onnx exports, and against the onnx package's node cases."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import convforge
from convforge.nn.utils import optimize_for_inference
from convforge.onnx import load_model
from conftest import requires_torch, torch

onnx = pytest.importorskip("onnx")
if torch is not None:
    from _torchvision_ref import efficientnet, mobilenetv2, mobilenetv3, resnet as tv_resnet
ort = pytest.importorskip("onnxruntime")
pytestmark = requires_torch()
nn = torch.nn if torch is not None else None


def export(model, *shapes, opset=17, fold=True, dynamic=False):
    torch.manual_seed(0)
    for m in model.modules():                    # non-trivial BatchNorm statistics
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    xs = tuple(torch.randn(*s) for s in shapes)
    buffer = io.BytesIO()
    axes = {f"x{i}": {0: "batch"} for i in range(len(xs))} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, xs, buffer, opset_version=opset, dynamo=False, do_constant_folding=fold,
                          input_names=[f"x{i}" for i in range(len(xs))], dynamic_axes=axes)
    return buffer.getvalue(), [x.numpy() for x in xs]


def assert_matches_onnxruntime(data, xs):
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    expected = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})
    with convforge.no_grad():
        actual = load_model(data)(*xs)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        a = np.asarray(a)
        assert a.shape == e.shape and a.dtype == e.dtype, f"{a.dtype}{a.shape} != {e.dtype}{e.shape}"
        scale = max(float(np.max(np.abs(e))), 1e-30)
        assert float(np.max(np.abs(a - e))) <= 1e-4 * scale, f"max error {np.max(np.abs(a - e))} vs max|y| {scale}"


class BasicBlock(nn.Module if nn else object):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \
            if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.down(x))


def resnet():
    return nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         BasicBlock(8, 8, 1), BasicBlock(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


class SqueezeExcite(nn.Module if nn else object):
    def __init__(self, c):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))


class InvertedResidual(nn.Module if nn else object):
    def __init__(self, c, expand, se, act):
        super().__init__()
        hidden = c * expand
        self.body = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(),
                                  nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                                  nn.BatchNorm2d(hidden), act(), SqueezeExcite(hidden) if se else nn.Identity(),
                                  nn.Conv2d(hidden, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


def mobilenet():
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU6(),
                         InvertedResidual(8, 4, False, nn.ReLU6), InvertedResidual(8, 3, True, nn.Hardswish),
                         nn.Conv2d(8, 16, 1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(16, 5), nn.Softmax(-1))


class UNet(nn.Module if nn else object):
    def __init__(self, mode="nearest", align=None):
        super().__init__()
        self.mode, self.align = mode, align
        self.e1 = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU())
        self.e2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.LeakyReLU(0.1))
        self.e3 = nn.Sequential(nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(16, 16, 3, padding=1), nn.Sigmoid())
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.d2 = nn.Conv2d(32, 16, 3, padding=1)
        self.d1 = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        c = nn.functional.interpolate(c, size=b.shape[2:], mode=self.mode, align_corners=self.align)
        d = torch.relu(self.d2(torch.cat([b, c], 1)))
        return self.d1(torch.cat([a, self.up(d)], 1))


class AudioNet(nn.Module if nn else object):
    """1-D conv stack with GELU (Erf), reflect padding, splits, slices, attention-ish MatMul and Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(1, 16, 10, stride=5), nn.BatchNorm1d(16), nn.GELU(),
                                  nn.Conv1d(16, 16, 3, stride=2, dilation=2), nn.GELU())
        self.pool = nn.AvgPool1d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        y = self.pool(self.conv(nn.functional.pad(x, (4, 3), mode="reflect")))
        a, b = torch.split(y, 8, dim=1)
        query = self.proj(a.transpose(1, 2))                   # (N, L, 8)
        key = b[:, :, 1::2].pow(2).sqrt()                       # (N, 8, L/2)
        scores = (query @ key).unsqueeze(1).squeeze(1)
        return torch.softmax(scores, dim=-1).flatten(1) / 3 - 1


ARCHITECTURES = {
    "resnet": (resnet, [(2, 3, 32, 32)]),
    "mobilenet": (mobilenet, [(2, 3, 24, 24)]),
    "unet-nearest": (UNet, [(1, 2, 20, 20)]),
    "unet-bilinear": (lambda: UNet("bilinear", False), [(1, 2, 20, 20)]),
    "unet-bilinear-corners": (lambda: UNet("bilinear", True), [(1, 2, 20, 20)]),
    "audio": (AudioNet, [(3, 1, 400)]),
}


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("opset, fold", [(17, True), (11, False), (13, True), (20, False)])
def test_exports_of_small_architectures_match_onnxruntime(name, opset, fold):
    build, shapes = ARCHITECTURES[name]
    data, xs = export(build(), *shapes, opset=opset, fold=fold)
    assert_matches_onnxruntime(data, xs)


def test_dynamic_batch_shape_arithmetic_runs_and_is_folded_where_constant():
    data, xs = export(resnet(), (2, 3, 32, 32), fold=False, dynamic=True)
    assert_matches_onnxruntime(data, xs)
    assert_matches_onnxruntime(data, [np.concatenate(xs * 3)])
    model = load_model(data)
    assert not any(type(m).__name__ == "OnnxOp" and m.op_type == "Constant" for m in model.modules())


def test_the_model_prints_as_a_tree_counts_params_and_summarises(tmp_path):
    data, xs = export(resnet(), (2, 3, 32, 32))
    (tmp_path / "resnet.onnx").write_bytes(data)
    model = load_model(tmp_path / "resnet.onnx")
    text = repr(model)
    assert text.startswith("OnnxModel(") and "Conv2d(3, 8, kernel_size=(7, 7), stride=(2, 2)" in text
    assert "Linear(in_features=16, out_features=10, bias=True)" in text and "MaxPool(" in text
    torch_params = sum(p.numel() for n, p in resnet().named_parameters() if ".b" not in n and not n.startswith("1."))
    assert sum(int(np.size(p)) for p in model.parameters()) >= torch_params
    s = convforge.summary(model, (2, 3, 32, 32))
    assert s.output_shape == (2, 10)


def node_model(op_type, inputs, outputs, opset=17, initializers=(), **attrs):
    h = onnx.helper
    node = h.make_node(op_type, [i[0] for i in inputs], outputs, name=f"my_{op_type.lower()}", **attrs)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info(n, 1, s) for n, s in inputs],
                         [h.make_tensor_value_info(o, 1, None) for o in outputs], initializer=list(initializers))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)]).SerializeToString()


def test_an_unsupported_operator_is_one_error_naming_op_node_and_opset():
    with pytest.raises(ValueError, match=r"'LSTM' in node 'my_lstm' \(opset 17\) is not supported.*Supported"):
        load_model(node_model("LSTM", [("x", [1, 2, 3])], ["y"]))
    with pytest.raises(ValueError, match="opset is 9.*11 to 22"):
        load_model(node_model("Relu", [("x", [1])], ["y"], opset=9))


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    h = onnx.helper
    (tmp_path / "model").mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(2, np.float32).tobytes())
    (tmp_path / "model" / "w.bin").write_bytes(np.full(2, 3, np.float32).tobytes())
    (tmp_path / "model" / "link.bin").symlink_to(tmp_path / "secret.bin")
    path = tmp_path / "model" / "m.onnx"
    for location, ok in (("w.bin", True), ("../secret.bin", False), (str(tmp_path / "secret.bin"), False),
                         ("link.bin", False)):
        weight = h.make_tensor("w", onnx.TensorProto.FLOAT, [2, 1, 1, 1], [0.0, 0.0])
        weight.ClearField("float_data")
        weight.data_location = onnx.TensorProto.EXTERNAL
        weight.external_data.add(key="location", value=location)
        graph = h.make_graph([h.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g",
                             [h.make_tensor_value_info("x", 1, [1, 1, 2, 2])], [h.make_tensor_value_info("y", 1, None)],
                             initializer=[weight])
        path.write_bytes(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString())
        if ok:
            y = load_model(path)(np.ones((1, 1, 2, 2), np.float32))
            np.testing.assert_array_equal(np.asarray(y), np.full((1, 2, 2, 2), 3.0, np.float32))
        else:
            with pytest.raises(ValueError, match="refused"):
                load_model(path)
    with pytest.raises(ValueError, match="load the model from a path"):
        load_model(path.read_bytes())


def test_truncated_and_corrupted_models_give_a_clear_error(tmp_path):
    data, _ = export(UNet(), (1, 2, 20, 20))
    for cut in (0, 1, 5, len(data) // 3, len(data) - 1):
        with pytest.raises(ValueError, match="<bytes>: "):
            load_model(data[:cut])
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), 40, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            load_model(bytes(damaged))
        except ValueError as e:
            assert "<bytes>: " in str(e)


# ---- the onnx package's node test cases ---------------------------------------------------------------------------

LISTED = ["Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid",
          "HardSwish", "Mul", "Add", "Sub", "Div", "MatMul", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool",
          "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Pad", "Resize",
          "ReduceMean", "Softmax", "Erf", "Pow", "Sqrt", "Identity", "Dropout", "Constant", "Shape", "Gather",
          "ConstantOfShape"]
REFUSED = {   # case -> the reason it is out of scope; each must be refused with a clear ValueError
    "test_batchnorm_example_training_mode": "training_mode", "test_batchnorm_epsilon_training_mode": "training_mode",
    "test_training_dropout_default": "training_mode", "test_training_dropout_default_mask": "training_mode",
    "test_training_dropout": "training_mode", "test_training_dropout_mask": "training_mode",
    "test_training_dropout_zero_ratio": "training_mode", "test_training_dropout_zero_ratio_mask": "training_mode",
    "test_maxpool_with_argmax_2d_precomputed_pads": "Indices", "test_maxpool_with_argmax_2d_precomputed_strides":
    "Indices", "test_resize_tf_crop_and_resize": "tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_extrapolation_value": "tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_axes_2_3": "tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_axes_3_2": "tf_crop_and_resize",
    "test_resize_downsample_scales_linear_antialias": "antialias",
    "test_resize_downsample_sizes_linear_antialias": "antialias",
    "test_resize_downsample_scales_cubic_antialias": "antialias",
    "test_resize_downsample_sizes_cubic_antialias": "antialias",
}
SEQUENCES = {"test_identity_sequence", "test_identity_opt"}      # sequence / optional values: not tensors


@pytest.fixture(scope="module")
def node_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases
        cases = collect_testcases(None)
    by_op = {}
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in LISTED and case.name not in SEQUENCES:
            by_op.setdefault(nodes[0].op_type, []).append(case)
    return by_op


@pytest.mark.parametrize("op_type", LISTED)
def test_onnx_node_cases(node_cases, op_type):
    cases = node_cases.get(op_type, [])
    assert cases, f"no node cases for {op_type}"
    for case in cases:
        data = case.model.SerializeToString()
        if case.name in REFUSED:
            with pytest.raises(ValueError, match=REFUSED[case.name]):
                for inputs, _ in case.data_sets:
                    load_model(data)(*inputs)
            continue
        model = load_model(data)
        for inputs, expected in case.data_sets:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)      # cases that divide by zero on purpose
                actual = model(*inputs)
            actual = actual if isinstance(actual, tuple) else (actual,)
            for a, e in zip(actual, expected):
                a = np.asarray(a)
                assert a.shape == e.shape and a.dtype == e.dtype, \
                    f"{case.name}: {a.dtype}{a.shape} vs {e.dtype}{e.shape}"
                np.testing.assert_allclose(a, e, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-6),
                                           err_msg=case.name)


def test_fine_tuning_gradients_match_torch():
    torch_model = UNet("bilinear", False)
    data, xs = export(torch_model, (1, 2, 12, 12))
    model = load_model(data)
    assert all(not p.requires_grad for p in model.parameters())          # loaded frozen
    model.requires_grad_(True)
    y = model(xs[0])
    (y * y).sum().backward()
    x = torch.from_numpy(xs[0])
    (torch_model(x) ** 2).sum().backward()
    matched = 0
    for p in model.parameters():
        twins = [q for q in torch_model.parameters() if tuple(q.shape) == p.shape
                 and np.array_equal(q.detach().numpy(), np.asarray(p))]
        assert len(twins) == 1
        expected = twins[0].grad.numpy()
        np.testing.assert_allclose(p.grad, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        matched += 1
    assert matched == len(list(torch_model.parameters()))


def torchvision_model(name):
    return {"resnet18": tv_resnet.resnet18, "resnet50": tv_resnet.resnet50, "mobilenet_v2": mobilenetv2.mobilenet_v2,
            "mobilenet_v3_small": mobilenetv3.mobilenet_v3_small,
            "mobilenet_v3_large": mobilenetv3.mobilenet_v3_large,
            "efficientnet_b0": efficientnet.efficientnet_b0}[name](num_classes=10)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_architectures_match_onnxruntime(name):
    data, xs = export(torchvision_model(name), (1, 3, 64, 64))
    assert_matches_onnxruntime(data, xs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"])
@pytest.mark.parametrize("opset", [13, 18])
def test_torchvision_architectures_match_onnxruntime_slow(name, opset):
    data, xs = export(torchvision_model(name), (2, 3, 96, 96), opset=opset, fold=opset == 13)
    assert_matches_onnxruntime(data, xs)


def test_sizes_written_in_the_file_cannot_exhaust_memory():
    h = onnx.helper
    shape = onnx.numpy_helper.from_array(np.array([10 ** 6, 10 ** 6], np.int64), "s")
    graph = h.make_graph([h.make_node("ConstantOfShape", ["s"], ["y"], name="big")], "g", [],
                         [h.make_tensor_value_info("y", 1, None)], initializer=[shape])
    with pytest.raises(ValueError, match=r"node 'big' \(ConstantOfShape.*1000000000000 elements"):
        load_model(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString())
    sizes = onnx.numpy_helper.from_array(np.array([1, 1, 10 ** 5, 10 ** 5], np.int64), "sizes")
    graph = h.make_graph([h.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up")], "g",
                         [h.make_tensor_value_info("x", 1, [1, 1, 2, 2])], [h.make_tensor_value_info("y", 1, None)],
                         initializer=[sizes])
    model = load_model(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(ValueError, match="Resize would create an array of shape"):
        model(np.zeros((1, 1, 2, 2), np.float32))


@requires_torch()
@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
def test_a_loaded_model_can_be_optimised_for_inference(fold):
    # Unfolded exports keep BatchNormalization nodes, which optimize_for_inference may fold into the convolutions.
    data, (x,) = export(mobilenet(), (2, 3, 16, 16), fold=fold)
    model = load_model(data)
    expected = np.asarray(model(x))
    fast = optimize_for_inference(model, x)
    np.testing.assert_allclose(np.asarray(fast(x)), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())

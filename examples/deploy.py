"""From trained weights to a NumPy-only service: the three ways in (see docs/DEPLOY.md).

Runs with NumPy alone:
1. a state_dict written with ``convforge.save`` (safetensors) and read back with ``convforge.load``;
2. the same weights as a NumPy ``.npz`` (``convforge.load`` reads it too, without pickle);
3. an ONNX graph with ``convforge.onnx.load_model`` (built here only if the ``onnx`` package is installed).

Give it files to inspect instead: ``python examples/deploy.py model.pth weights.safetensors model.onnx``
(PyTorch checkpoints are read without PyTorch, and without running any code from them).
"""
import os
import sys
import tempfile

import numpy as np

import convforge
import convforge.nn as nn


def make_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 3))


def show(path):
    if path.endswith(".onnx"):
        print(convforge.onnx.load_model(path))
        return
    checkpoint = convforge.load(path)
    state = checkpoint.get("state_dict", checkpoint.get("model", checkpoint)) if isinstance(checkpoint, dict) else {}
    for name, value in state.items():
        print(f"  {name}: {getattr(value, 'dtype', type(value).__name__)} {getattr(value, 'shape', '')}")


def main(folder):
    convforge.manual_seed(0)
    trained = make_model().eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with convforge.no_grad():
        expected = np.asarray(trained(x))

    # 1. safetensors: convforge.save writes it, convforge.load (or the safetensors package) reads it
    path = os.path.join(folder, "model.safetensors")
    convforge.save({k: np.asarray(v) for k, v in trained.state_dict().items()}, path)
    served = make_model().eval()
    with convforge.no_grad():
        served.load_state_dict(convforge.load(path))
        print("1. safetensors round trip, same outputs:", np.array_equal(np.asarray(served(x)), expected))

    # 2. NumPy .npz, read with allow_pickle=False
    npz = os.path.join(folder, "model.npz")
    np.savez(npz, **{k: np.asarray(v) for k, v in trained.state_dict().items()})
    print("2. npz keys:", sorted(convforge.load(npz))[:3], "...")

    # 3. ONNX: the graph becomes a convforge module
    try:
        import onnx
    except ImportError:
        print("3. ONNX: pip install onnx to build the demo graph; load_model itself needs only NumPy")
        return
    h = onnx.helper
    weight = onnx.numpy_helper.from_array(np.asarray(trained[0].weight), "w")
    bias = onnx.numpy_helper.from_array(np.asarray(trained[0].bias), "b")
    graph = h.make_graph([h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                          h.make_node("Relu", ["c"], ["y"], name="relu")], "demo",
                         [h.make_tensor_value_info("x", 1, ["N", 3, 8, 8])], [h.make_tensor_value_info("y", 1, None)],
                         initializer=[weight, bias])
    onnx_path = os.path.join(folder, "model.onnx")
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), onnx_path)
    model = convforge.onnx.load_model(onnx_path)
    print("3. ONNX graph as a module:", model)
    with convforge.no_grad():
        same = np.allclose(np.asarray(model(x)), np.maximum(np.asarray(trained[0](x)), 0), atol=1e-6)
    print("   conv + relu outputs match:", same)


if __name__ == "__main__":
    if sys.argv[1:]:
        for name in sys.argv[1:]:
            print(name)
            show(name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)

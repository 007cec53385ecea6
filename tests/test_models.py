"""The model zoo against torchvision (copied definitions in tests/_torchvision_ref; torch is the oracle).

For every network: the parameter count equals the published figure; the state dict of a torchvision model (its
random init perturbed so that BatchNorm statistics, biases and layer scales are not trivial) loads with
``strict=True``; eval-mode outputs agree in float64 (1e-10 relative) and float32 (1e-4 of max|y|); the
initialisation follows torchvision's scheme tensor by tensor (same constants, same spread, same distribution
shape); the printed structure is torchvision's.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import convforge
import convforge.models as models
from conftest import assert_close, requires_torch, to_torch, torch

pytestmark = requires_torch()

if torch is not None:
    from _torchvision_ref import convnext, efficientnet, mobilenetv2, mobilenetv3, resnet, vgg, video_resnet
    TORCHVISION = {
        "resnet18": resnet.resnet18, "resnet34": resnet.resnet34, "resnet50": resnet.resnet50,
        "resnext50_32x4d": resnet.resnext50_32x4d, "vgg16": vgg.vgg16, "mobilenet_v2": mobilenetv2.mobilenet_v2,
        "mobilenet_v3_small": mobilenetv3.mobilenet_v3_small, "mobilenet_v3_large": mobilenetv3.mobilenet_v3_large,
        "efficientnet_b0": efficientnet.efficientnet_b0, "convnext_tiny": convnext.convnext_tiny,
        "r3d_18": video_resnet.r3d_18,
    }

# torchvision's documented parameter counts (ImageNet / Kinetics-400 heads)
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnext50_32x4d": 25_028_904,
    "vgg16": 138_357_544, "mobilenet_v2": 3_504_872, "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032, "efficientnet_b0": 5_288_548, "convnext_tiny": 28_589_128,
    "r3d_18": 33_371_472,
}
SMALL_INPUT = {"r3d_18": (1, 3, 4, 32, 32)}           # images: 64 x 64
FULL_INPUT = {"r3d_18": (1, 3, 16, 112, 112)}         # images: (2, 3, 224, 224)
ZOO = list(PUBLISHED_PARAMS)
HEAVY_FLOAT64 = {"vgg16"}                             # 1.1 GB of float64 weights per copy: slow tier only


def _pair(name, **kwargs):
    """(convforge model, torchvision model), each freshly initialised by its own library, both in eval mode."""
    convforge.manual_seed(0)
    torch.manual_seed(0)
    return getattr(models, name)(**kwargs).eval(), TORCHVISION[name](**kwargs).eval()


def _perturbed_state(tv_model, seed=0):
    """torchvision's state dict with every float entry moved off its init constants (BatchNorm running stats,
    zero biases, unit norm weights, 1e-6 layer scales), so that the comparison exercises all of them."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, t in tv_model.state_dict().items():
        if t.dtype.is_floating_point:
            if key.endswith("running_var"):
                t = torch.rand(t.shape, generator=g, dtype=t.dtype) * 1.5 + 0.5
            elif key.endswith("layer_scale"):
                t = torch.rand(t.shape, generator=g, dtype=t.dtype) * 0.4 + 0.1
            else:
                t = t + torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.1 * (t.abs().mean() + 0.1)
        state[key] = t
    tv_model.load_state_dict(state)
    return {k: v.numpy() for k, v in state.items()}


def _assert_outputs_equal(name, cf, tv, shape, prepare=None):
    """Load torchvision's (perturbed) weights into ``cf`` with strict=True and compare eval-mode outputs (of
    ``prepare(cf)`` when given)."""
    dtype = np.float64 if next(tv.parameters()).dtype == torch.float64 else np.float32
    cf.load_state_dict(_perturbed_state(tv), strict=True)
    if prepare is not None:
        cf = prepare(cf)
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    with convforge.no_grad():
        y = cf(x)
    with torch.no_grad():
        expected = tv(to_torch(x)).numpy()
    assert y.dtype == dtype and y.shape == expected.shape
    if dtype == np.float64:
        assert_close(y, expected, what=name)
    else:
        err, scale = np.max(np.abs(y - expected)), np.max(np.abs(expected))
        assert err <= 1e-4 * scale, f"{name} float32: max error {err:.3g} > 1e-4 * max|y| = {1e-4 * scale:.3g}"


def _assert_float64_outputs_equal(name, shape):
    cf, tv = _pair(name, num_classes=10)
    _assert_outputs_equal(name, cf.double(), tv.double(), shape)


@pytest.mark.parametrize("name", ZOO)
def test_structure_init_and_float32_output_match_torchvision(name):
    """Default heads: published parameter count, torchvision's keys / shapes / dtypes, init and repr; then the
    float32 outputs with torchvision's weights loaded."""
    cf, tv = _pair(name)
    n_params = sum(p.size for p in cf.parameters())
    assert n_params == PUBLISHED_PARAMS[name] == sum(p.numel() for p in tv.parameters())
    tv_state = {k: v.numpy() for k, v in tv.state_dict().items()}
    cf_state = cf.state_dict()
    assert list(cf_state) == list(tv_state)
    assert {k: v.shape for k, v in cf_state.items()} == {k: tuple(v.shape) for k, v in tv_state.items()}
    assert all(v.dtype == (np.int64 if k.endswith("num_batches_tracked") else np.float32)
               for k, v in cf_state.items())
    assert _init_mismatches(cf_state, tv_state) == []
    del cf_state, tv_state
    assert repr(cf) == repr(tv)
    _assert_outputs_equal(name, cf, tv, SMALL_INPUT.get(name, (1, 3, 64, 64)))


@pytest.mark.parametrize("name", [n for n in ZOO if n not in HEAVY_FLOAT64])
def test_float64_output_equals_torchvision(name):
    _assert_float64_outputs_equal(name, SMALL_INPUT.get(name, (2, 3, 64, 64)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_size_output_equals_torchvision(name, dtype):
    cf, tv = _pair(name, num_classes=10)
    if dtype == np.float64:
        cf, tv = cf.double(), tv.double()
    _assert_outputs_equal(name, cf, tv, FULL_INPUT.get(name, (2, 3, 224, 224)))


@pytest.mark.parametrize("name, gmacs", [("resnet18", 1.81), ("resnet50", 4.09), ("resnext50_32x4d", 4.23)])
def test_summary_counts_match_published_figures(name, gmacs):
    """convforge.summary over a zoo model (custom forwards included): torchvision's parameter count and its
    published multiply-adds at 224 x 224 (given to two decimals as "GFLOPS")."""
    report = convforge.summary(getattr(models, name)(), (1, 3, 224, 224))
    assert report.total_params == PUBLISHED_PARAMS[name]
    assert abs(report.total_macs / 1e9 - gmacs) <= 0.005, report.total_macs


def test_zoo_is_reachable_from_the_package():
    assert convforge.models.resnet18 is models.resnet18
    assert sorted(n for n in models.__all__ if n[0].islower()) == sorted(ZOO)


def _init_mismatches(cf_state, tv_state):
    """Tensors whose init differs from torchvision's. Constants must be equal. Random tensors (>= 2000 values)
    must have the same mean and spread (two-sample bounds of about 5 standard errors) and, from 10^4 values, the
    same shape of distribution: mean|w| / std is 0.80 for a normal, 0.87 for a uniform."""
    bad = []
    for key, expected in tv_state.items():
        actual = cf_state[key]
        if expected.dtype.kind != "f":
            continue
        if expected.min() == expected.max():
            if not (actual.min() == actual.max() == expected.min()):
                bad.append(f"{key}: expected the constant {expected.min()}, got values in "
                           f"[{actual.min()}, {actual.max()}]")
            continue
        if expected.size < 2000:
            continue
        # i.i.d. draws: the first 10^5 values of each describe the distribution (and keep VGG's 10^8 cheap)
        a, e = (np.asarray(t).ravel()[:100_000].astype(np.float64) for t in (actual, expected))
        n = e.size
        if abs(a.mean() - e.mean()) > 7 * e.std() / np.sqrt(n) or abs(a.std() / e.std() - 1) > 5 / np.sqrt(n):
            bad.append(f"{key}: mean/std {a.mean():.3g}/{a.std():.4g}, torchvision {e.mean():.3g}/{e.std():.4g}")
        elif n >= 10_000 and abs(np.abs(a).mean() / a.std() - np.abs(e).mean() / e.std()) > 0.035:
            bad.append(f"{key}: mean|w|/std {np.abs(a).mean() / a.std():.3f}, torchvision "
                       f"{np.abs(e).mean() / e.std():.3f} (different distribution)")
    return bad


def test_init_check_catches_a_wrong_scheme():
    """The init comparison above can fail: a uniform init with the right spread, or a scaled one, is caught."""
    rng = np.random.default_rng(0)
    normal = {"w": rng.normal(0, 0.1, (128, 128)), "b": np.zeros(3)}
    assert _init_mismatches({"w": rng.normal(0, 0.1, (128, 128)), "b": np.zeros(3)}, normal) == []
    uniform_same_std = rng.uniform(-0.1 * np.sqrt(3), 0.1 * np.sqrt(3), (128, 128))
    assert "different distribution" in _init_mismatches({"w": uniform_same_std, "b": np.zeros(3)}, normal)[0]
    assert "mean/std" in _init_mismatches({"w": rng.normal(0, 0.11, (128, 128)), "b": np.zeros(3)}, normal)[0]
    assert "constant" in _init_mismatches({"w": normal["w"], "b": np.ones(3)}, normal)[0]


VARIANTS = [  # (network, torchvision keyword arguments, input shape): the builders' options beyond the defaults
    ("resnet50", {"zero_init_residual": True}, (1, 3, 48, 48)),
    ("resnet50", {"replace_stride_with_dilation": [False, True, True]}, (1, 3, 48, 48)),
    ("mobilenet_v2", {"width_mult": 0.5, "dropout": 0.3}, (1, 3, 40, 40)),
    ("mobilenet_v3_large", {"reduced_tail": True, "dilated": True, "width_mult": 0.75}, (1, 3, 48, 48)),
    ("mobilenet_v3_small", {"reduced_tail": True}, (1, 3, 40, 40)),
    ("convnext_tiny", {"layer_scale": 0.5, "stochastic_depth_prob": 0.3}, (1, 3, 32, 32)),
    ("efficientnet_b0", {"stochastic_depth_prob": 0.5, "dropout": 0.1}, (1, 3, 40, 40)),
]


@pytest.mark.parametrize("name, kwargs, shape", VARIANTS, ids=[f"{n}-{'-'.join(k)}" for n, k, _ in VARIANTS])
def test_builder_options_match_torchvision(name, kwargs, shape):
    cf, tv = _pair(name, num_classes=5, **kwargs)
    assert repr(cf) == repr(tv)
    assert _init_mismatches(cf.state_dict(), {k: v.numpy() for k, v in tv.state_dict().items()}) == []
    _assert_outputs_equal(f"{name} {kwargs}", cf.double(), tv.double(), shape)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimized_for_inference_equals_torchvision(name, dtype):
    """optimize_for_inference (BatchNorm folding, fused epilogues) keeps torchvision's outputs."""
    cf, tv = _pair(name, num_classes=10)
    if dtype == np.float64:
        cf, tv = cf.double(), tv.double()
    _assert_outputs_equal(name, cf, tv, (2, 3, 48, 48), prepare=convforge.nn.utils.optimize_for_inference)


@pytest.mark.parametrize("name", ["resnet18"])
def test_training_mode_forward_and_running_statistics_match_torchvision(name):
    """In train mode BatchNorm uses the batch statistics and updates its running ones, as torch's does."""
    cf, tv = _pair(name, num_classes=4)
    cf.double().train()
    tv.double().train()
    cf.load_state_dict(_perturbed_state(tv), strict=True)
    x = np.random.default_rng(3).standard_normal((3, 3, 4, 24, 24) if name == "r3d_18" else (3, 3, 40, 40))
    y = cf(x)
    expected = tv(to_torch(x)).detach().numpy()
    assert_close(np.asarray(y), expected)
    for key, value in tv.state_dict().items():
        if "running" in key:
            assert_close(cf.state_dict()[key], value.numpy(), what=key)


def test_weights_argument_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"resnet18\(weights='IMAGENET1K_V1'\).*downloads no weights.*"
                                         r"load_state_dict"):
        models.resnet18(weights="IMAGENET1K_V1")


def test_state_dict_with_wrong_head_names_the_sizes():
    cf = models.resnet18(num_classes=10)
    state = cf.state_dict()
    state["fc.weight"] = np.zeros((1000, 512), np.float32)
    with pytest.raises(ValueError, match=re.escape("size mismatch for fc.weight: copying a param with shape "
                                                   "(1000, 512), the shape in the current model is (10, 512)")):
        cf.load_state_dict(state)


def test_basic_block_rejects_resnext_arguments():
    with pytest.raises(ValueError, match="BasicBlock only supports groups=1 and base_width=64, got groups=32"):
        models.resnet18(groups=32, width_per_group=4)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                                  "convnext_tiny"])
def test_forward_on_a_tracked_tensor_records_the_graph(name):
    """convforge.tensor input (an ndarray subclass): the same values, and the forward is differentiable."""
    cf, tv = _pair(name, num_classes=3)
    cf.load_state_dict(_perturbed_state(tv), strict=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with convforge.no_grad():
        expected = np.asarray(cf(x))
    y = cf(convforge.tensor(x, requires_grad=True))
    assert isinstance(y, np.ndarray) and type(y) is not np.ndarray
    assert_close(np.asarray(y), expected)
    y.sum().backward()
    assert all(p.grad is not None for p in cf.parameters())


def test_classify_example_matches_torch_with_a_torch_checkpoint(tmp_path):
    """examples/classify.py reads a checkpoint written by torch.save and gives torch's probabilities."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "examples" / "classify.py"
    spec = importlib.util.spec_from_file_location("classify_example", path)
    classify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classify)
    _, tv = _pair("mobilenet_v3_small")
    _perturbed_state(tv)
    torch.save(tv.state_dict(), tmp_path / "m.pth")
    probs = classify.main(["--model", "mobilenet_v3_small", "--weights", str(tmp_path / "m.pth"), "--size", "64",
                           "--runs", "1"])
    image = (classify.generated_image(64) - classify.IMAGENET_MEAN) / classify.IMAGENET_STD
    with torch.no_grad():
        expected = torch.softmax(tv(to_torch(image[None])), 1).numpy()[0]
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    assert np.argsort(probs)[-5:].tolist() == np.argsort(expected)[-5:].tolist()

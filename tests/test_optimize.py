"""optimize_for_inference: the optimised model equals the original (float64, 1e-10 relative) on every zoo network
and on hand-made graphs, folds exactly where the data flow allows it (and nowhere else), leaves its argument
unchanged, and agrees with torchvision's eval output (float32, 1e-4 of max|y|)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import convforge
import convforge.models as models
import convforge.nn as nn
from conftest import assert_close, requires_torch, to_torch, torch
from convforge.nn.fused import EPILOGUE_ACTIVATIONS, FusedConv1d, FusedConv2d, FusedConv3d, _FusedConvNd
from convforge.autograd.graph import UnrecordedOperation
from convforge.nn.utils import optimize_for_inference


def randomise_bn(model, seed=0):
    """Move every BatchNorm off its init constants, so folding is not the identity."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            c = m.num_features
            m.running_mean[...] = rng.standard_normal(c) * 0.3
            m.running_var[...] = rng.uniform(0.3, 2.0, c)
            if m.weight is not None:
                m.weight[...] = rng.uniform(0.5, 1.5, c)
            if m.bias is not None:
                m.bias[...] = rng.standard_normal(c) * 0.3
    return model


def reference(model, x):
    """The original model's eval-mode output; its mode is restored afterwards."""
    was_training = model.training
    try:
        with convforge.no_grad():
            return np.asarray(model.eval()(x))
    finally:
        model.train(was_training)


def assert_same(actual, expected):
    """float64: within 1e-10 relative to the output's scale."""
    assert type(actual) is np.ndarray and actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10 * scale)


def kinds(model):
    """Counts of module types outside fused convolutions, and the fused convolutions' activations."""
    counts = {}
    fused_acts = []
    inner = {id(m.activation) for m in model.modules() if isinstance(m, _FusedConvNd) and m.activation is not None}
    for m in {id(m): m for m in model.modules()}.values():
        if id(m) in inner:
            continue
        counts[type(m).__name__] = counts.get(type(m).__name__, 0) + 1
        if isinstance(m, _FusedConvNd):
            fused_acts.append(None if m.activation is None else type(m.activation).__name__)
    return counts, fused_acts


def rand(shape, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- the zoo -----------------------------------------------------------------------------------------------------
# network -> (input shape, BatchNorms left, activations fused into convolutions); e.g. ResNet's blocks call one
# ReLU at a fused site and after the residual add, so only the stem's ReLU can join its convolution.
ZOO = {
    "resnet18": ((1, 3, 64, 64), 0, 1),
    "resnet34": ((1, 3, 64, 64), 0, 1),
    "resnet50": ((1, 3, 64, 64), 0, 1),
    "resnext50_32x4d": ((1, 3, 64, 64), 0, 1),
    "mobilenet_v2": ((1, 3, 64, 64), 0, 35),
    "mobilenet_v3_small": ((1, 3, 64, 64), 0, 41),
    "mobilenet_v3_large": ((1, 3, 64, 64), 0, 47),
    "efficientnet_b0": ((1, 3, 64, 64), 0, 65),
    "convnext_tiny": ((1, 3, 64, 64), 0, 0),
    "r3d_18": ((1, 3, 4, 32, 32), 0, 9),
}


SLOW_ZOO = {"resnet34", "resnext50_32x4d"}           # the same blocks as resnet18 / resnet50


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_ZOO else n for n in ZOO])
def test_zoo_network_equals_original_float64(name):
    shape, bn_left, acts = ZOO[name]
    convforge.manual_seed(0)
    model = randomise_bn(getattr(models, name)(num_classes=10).double())
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    x = rand(shape)
    fast = optimize_for_inference(model)
    assert_same(fast(x), reference(model, x))
    counts, fused_acts = kinds(fast)
    assert sum(isinstance(m, nn.batchnorm._BatchNorm) for m in fast.modules()) == bn_left
    assert sum(a is not None for a in fused_acts) == acts
    assert not list(fast.parameters()) and not fast.training
    # the argument is untouched: same weights, same modules, still in training mode
    assert model.training and all(np.array_equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(isinstance(m, (_FusedConvNd, nn.Identity)) for m in model.modules())


@pytest.mark.slow
def test_vgg16_equals_original_float32():
    convforge.manual_seed(0)
    model = models.vgg16(num_classes=10)
    x = rand((1, 3, 64, 64), dtype=np.float32)
    fast = optimize_for_inference(model)
    assert_close(fast(x), reference(model, x), rtol=1e-5, atol=1e-6)
    assert kinds(fast)[1] == ["ReLU"] * 13


@requires_torch()
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_zoo_network_equals_torchvision_float32(name):
    from test_models import TORCHVISION, _perturbed_state
    convforge.manual_seed(0)
    torch.manual_seed(0)
    model, tv = getattr(models, name)(), TORCHVISION[name]().eval()
    model.load_state_dict(_perturbed_state(tv), strict=True)
    x = rand((2, 3, 64, 64), dtype=np.float32)
    y = optimize_for_inference(model)(x)
    with torch.no_grad():
        expected = tv(to_torch(x)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-4 * float(np.abs(expected).max()))


# -- hand-made graphs: where folding must and must not happen ------------------------------------------------------
class ConvUsedTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        return self.relu(self.bn(y)) + y


class BnOutputUsedTwice(ConvUsedTwice):
    def forward(self, x):
        z = self.bn(self.conv(x))
        return self.relu(z) * z


class SharedReLU(nn.Module):
    """BasicBlock's pattern: one ReLU after conv -> bn and after the residual add."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


class SharedReLUAllFused(SharedReLU):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class SharedBN(nn.Module):
    """One BatchNorm after two convolutions (both sites foldable) or also on the raw input (not foldable)."""

    def __init__(self, also_on_input=False):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.bn, self.also_on_input = nn.BatchNorm2d(4), also_on_input

    def forward(self, x):
        out = self.bn(self.a(x)) + self.bn(self.b(x))
        return out + self.bn(x) if self.also_on_input else out


class ConvCalledTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn1, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn1(self.conv(x)) - self.bn2(self.conv(x))


class SubclassedBN(nn.BatchNorm2d):
    def forward(self, input):
        return super().forward(input) * 2


class HiddenUse(nn.Module):
    """Reads the conv output through plain NumPy, which autograd cannot see: the built-in check must catch it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        hidden = np.array(np.ndarray.view(y, np.ndarray))
        return self.bn(y) + hidden


class TiedWeights(nn.Module):
    """Two convolutions sharing one weight, and a BatchNorm whose scale is also read elsewhere."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn_a, self.bn_b = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
        self.c, self.bn_c = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

    def double(self):
        super().double()
        self.b.weight = self.a.weight        # tied after the cast (to() makes one new parameter per module)
        return self

    def forward(self, x):
        scale = self.bn_c.weight.reshape(1, 4, 1, 1)
        return self.bn_a(self.a(x)) + self.bn_b(self.b(x)) + self.bn_c(self.c(x)) * scale


class WeightReadElsewhere(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x)) + nn.functional.conv2d(x, self.conv.weight, padding=1)


class UnrecordedDerivation(HiddenUse):
    """A tensor NumPy derived from the conv output without autograd: the graph cannot say where it came from."""

    def forward(self, x):
        y = self.conv(x)
        derived = np.ndarray.view(y, type(y))
        if getattr(derived, "requires_grad", False):          # while traced: the graph's unknown node
            assert derived.grad_fn.fn is UnrecordedOperation
        return self.bn(y) + derived


GRAPHS = {
    "unrecorded_derivation": (UnrecordedDerivation, (2, 3, 8, 8), 1, 0, 0),
    "tied_weights": (TiedWeights, (2, 4, 6, 6), 3, 0, 0),
    "weight_read_elsewhere": (WeightReadElsewhere, (2, 4, 6, 6), 1, 0, 0),
    # model builder -> (input shape, BatchNorms left, activations fused, ReLUs left)
    "conv_used_twice": (ConvUsedTwice, (2, 3, 8, 8), 1, 0, 1),
    "bn_output_used_twice": (BnOutputUsedTwice, (2, 3, 8, 8), 0, 0, 1),
    "bn_before_conv": (lambda: nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3), nn.ReLU()),
                       (2, 3, 8, 8), 1, 1, 0),
    "relu_shared_with_unfused_site": (SharedReLU, (2, 4, 8, 8), 0, 0, 1),
    "relu_shared_all_sites_fused": (SharedReLUAllFused, (2, 4, 8, 8), 0, 2, 0),
    "bn_shared_by_two_convs": (SharedBN, (2, 4, 8, 8), 0, 0, 0),
    "bn_shared_with_input": (lambda: SharedBN(also_on_input=True), (2, 4, 8, 8), 1, 0, 0),
    "conv_called_twice": (ConvCalledTwice, (2, 4, 8, 8), 2, 0, 0),
    "subclassed_bn": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), SubclassedBN(4), nn.ReLU()), (2, 3, 8, 8), 1, 0,
                      1),
    "activation_before_bn": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)),
                             (2, 3, 8, 8), 1, 1, 0),
    "linear_head": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU(), nn.Flatten(),
                                          nn.Dropout(0.5), nn.Linear(36, 5), nn.ReLU()), (2, 3, 5, 5), 0, 1, 1),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_graph_folds_only_where_the_data_flow_allows(case):
    build, shape, bn_left, acts, relus_left = GRAPHS[case]
    convforge.manual_seed(0)
    model = randomise_bn(build().double())
    x = rand(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = optimize_for_inference(model, example_input=x)
    assert_same(fast(x), reference(model, x))
    counts, fused_acts = kinds(fast)
    bns = sum(isinstance(m, nn.batchnorm._BatchNorm) for m in fast.modules())
    assert (bns, sum(a is not None for a in fused_acts), counts.get("ReLU", 0)) == (bn_left, acts, relus_left)
    assert "Dropout" not in counts


class TripledForward:
    """A forward set on one BatchNorm instance (copied along with the model: it holds the module)."""

    def __init__(self, bn):
        self.bn = bn

    def __call__(self, x):
        return nn.BatchNorm2d.forward(self.bn, x) * 3


def test_forward_set_on_an_instance_is_kept_and_not_folded():
    convforge.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).double())
    model[1].forward = TripledForward(model[1])
    x = rand((2, 3, 6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = optimize_for_inference(model, example_input=x)
    assert_same(fast(x), reference(model, x))
    assert "forward" in fast[1].__dict__ and [type(m).__name__ for m in fast] == ["FusedConv2d", "BatchNorm2d",
                                                                                   "ReLU"]


def test_hidden_use_is_caught_by_the_check():
    convforge.manual_seed(0)
    model = randomise_bn(HiddenUse().double())
    x = rand((2, 3, 8, 8))
    with pytest.warns(RuntimeWarning, match="does not reproduce the original"):
        fast = optimize_for_inference(model, example_input=x)
    assert_same(fast(x), reference(model, x))
    assert kinds(fast)[0].get("BatchNorm2d") == 1


CONV_CASES = [
    (nn.Conv1d, nn.BatchNorm1d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1), (2, 4, 11)),
    (nn.Conv2d, nn.BatchNorm2d, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), dilation=2,
                                     padding="same", padding_mode="reflect", groups=2), (2, 4, 9, 8)),
    (nn.Conv2d, nn.BatchNorm2d, dict(in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=((0, 1), (2, 0)),
                                     padding_mode="circular", bias=False), (2, 4, 9, 7)),
    (nn.Conv3d, nn.BatchNorm3d, dict(in_channels=2, out_channels=4, kernel_size=2, padding=1), (1, 2, 5, 4, 6)),
]


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU6(), nn.LeakyReLU(0.2), nn.SiLU(), nn.Hardswish(),
                                 nn.Hardsigmoid(), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid()], ids=repr)
@pytest.mark.parametrize("conv_cls,bn_cls,kw,shape", CONV_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_every_epilogue_activation_and_conv_option(conv_cls, bn_cls, kw, shape, act):
    convforge.manual_seed(0)
    model = randomise_bn(nn.Sequential(conv_cls(**kw), bn_cls(kw["out_channels"]), act).double())
    x = rand(shape)
    fast = optimize_for_inference(model, example_input=x)
    assert kinds(fast)[1] == [type(act).__name__]
    expected = reference(model, x)
    assert_same(fast(x), expected)
    assert_same(fast(x), expected)                     # the planned (fast) path
    assert len(fast[0]._plans) == 1


def test_transposed_conv_folds_its_batchnorm():
    convforge.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), nn.BatchNorm2d(6),
                                       nn.ReLU()).double())
    x = rand((2, 4, 5, 5))
    fast = optimize_for_inference(model)
    assert_same(fast(x), reference(model, x))
    assert [type(m).__name__ for m in fast] == ["ConvTranspose2d", "Identity", "ReLU"]


def test_gradient_through_the_optimised_model_equals_the_original():
    convforge.manual_seed(0)
    model = randomise_bn(SharedReLU().double()).eval()
    fast = optimize_for_inference(model)
    x = rand((2, 4, 6, 6))
    grads = []
    for m in (model, fast):
        t = convforge.tensor(x, requires_grad=True)
        (m(t) ** 2).sum().backward()
        grads.append(t.grad)
    assert_same(grads[1], grads[0])


def test_plans_per_shape_and_checks_after_planning():
    convforge.manual_seed(0)
    model = randomise_bn(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU()).double())
    fast = optimize_for_inference(model)
    conv = fast[0]
    for shape in [(2, 3, 8, 8), (1, 3, 5, 9), (2, 3, 8, 8)]:
        x = rand(shape)
        assert_same(fast(x), reference(model, x))
    assert len(conv._plans) == 3                       # the trace's input, then two new shapes
    unbatched = rand((3, 6, 6))
    assert_same(conv(unbatched), reference(model, unbatched[None])[0])
    assert_same(conv(unbatched), reference(model, unbatched[None])[0])
    with pytest.raises(TypeError, match=r"input dtype \(float32\) and weight dtype \(float64\)"):
        fast(rand((2, 3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="expected input.*to have 3 channels"):
        fast(rand((2, 4, 8, 8)))
    y = fast(convforge.tensor(rand((2, 3, 8, 8))))      # a tensor that needs no gradient: the fast path
    assert type(y) is np.ndarray


def test_fused_conv_module():
    convforge.manual_seed(0)
    m = FusedConv2d(2, 3, 3, padding=1, activation=nn.Hardswish()).double()
    assert repr(m) == "FusedConv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), activation=Hardswish())"
    x = rand((1, 2, 5, 5))
    plain = nn.Conv2d(2, 3, 3, padding=1).double()
    plain.load_state_dict(m.state_dict())
    expected = np.asarray(nn.Hardswish()(plain(x)))
    assert_same(m(x), expected)
    assert_same(m(x), expected)
    assert FusedConv1d._n == 1 and FusedConv3d._n == 3 and nn.Sigmoid in EPILOGUE_ACTIVATIONS
    with pytest.raises(TypeError, match="activation must be None or one of .*ReLU.*got Softmax"):
        FusedConv2d(2, 3, 3, activation=nn.Softmax(1))


def test_errors():
    with pytest.raises(TypeError, match="expected a convforge Module, got function"):
        optimize_for_inference(lambda x: x)
    with pytest.raises(ValueError, match="cannot guess an input for Sequential.*example_input="):
        optimize_for_inference(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match=r"a guessed input of shape \(1, 3, 64, 64\) failed.*example_input="):
        optimize_for_inference(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(7, 2)))

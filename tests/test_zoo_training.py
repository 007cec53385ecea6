"""Every zoo network's full training step against torch (torchvision's definitions in tests/_torchvision_ref).

The same weights (torchvision's init, perturbed so that BatchNorm statistics, biases and layer scales are not
trivial) in both libraries, float64, train mode: ``F.cross_entropy(model(x), target)``, ``loss.backward()`` and an
optimiser step (SGD with momentum and weight decay; Adam), three times on fresh random batches. The loss of every
step and, after the third, every entry of the state dict (parameters, BatchNorm running statistics and
``num_batches_tracked``) equal torch's within 1e-8 (relative to the tensor's largest value, at least 1).

Random layers: ``Dropout`` and ``StochasticDepth`` are built with ``p=0`` in both libraries (the builders'
``dropout=0.0`` / ``stochastic_depth_prob=0.0``), so they run in train mode on their identity path while
BatchNorm trains on the batch statistics and updates its running ones. With ``p > 0`` their masks come from
different generators in the two libraries; the last test checks instead that the gradient through them is the
drawn mask itself (scaled by ``1 / (1 - p)``), for each way the zoo uses them.

Input sizes: every BatchNorm sees at least 8 values per channel (batch 2 at 64 x 64 for the networks that
downsample by 32), 16 in the deepest networks (batch 4). BatchNorm over only 2 values (batch 2 at 32 x 32) is
ill-conditioned: torch's own gradients of resnet18 move by 1e-10 relative when its input moves by 1e-15, and
three SGD steps then drift by 1e-4 in either library, so such sizes would test rounding, not correctness. With 8
values, three steps of resnext50_32x4d still move by 1e-8 in torch alone when its input moves by 1e-13.

Adam runs with a weight decay: the biases of a BatchNorm whose output feeds only convolutions followed by another
BatchNorm (EfficientNet's projection layers) have a gradient that is exactly zero in exact arithmetic and
rounding noise (1e-15) in both libraries; Adam divides that noise by its own square root, so without a decay
term the comparison would measure the noise.

Default tier (~1 min on 2 cores): resnet18 (BatchNorm, residual adds, one ReLU used twice, max pooling),
mobilenet_v3_small (squeeze-excitation, Hardswish / Hardsigmoid, depthwise, Dropout), efficientnet_b0 (SiLU,
sigmoid gating, StochasticDepth) and a two-stage ConvNeXt (LayerNorm2d, GELU, layer scale, permutes, 7 x 7
depthwise); the rest of the zoo, at full width, is in the slow tier.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

import convforge
import convforge.models as models
import convforge.nn.functional as F
from conftest import requires_torch, torch
from test_models import _pair, _perturbed_state

pytestmark = requires_torch()

if torch is not None:
    from _torchvision_ref import convnext as tv_convnext

NUM_CLASSES = 10
STEPS = 3
TOLERANCE = 1e-8
IMAGES = (2, 3, 64, 64)
DEEP_IMAGES = (4, 3, 64, 64)
NO_RANDOM_LAYERS = {"dropout": 0.0}
NO_RANDOM_BLOCKS = {"dropout": 0.0, "stochastic_depth_prob": 0.0}

# network -> (builder keyword arguments, input shape)
DEFAULT_TIER = {
    "resnet18": ({}, IMAGES),
    "mobilenet_v3_small": (NO_RANDOM_LAYERS, IMAGES),
    "efficientnet_b0": (NO_RANDOM_BLOCKS, IMAGES),
    "convnext_mini": ({"stochastic_depth_prob": 0.0, "layer_scale": 0.5}, (2, 3, 32, 32)),
}
SLOW_TIER = {
    "resnet34": ({}, IMAGES),
    "resnet50": ({}, DEEP_IMAGES),
    "resnext50_32x4d": ({}, DEEP_IMAGES),
    "mobilenet_v2": (NO_RANDOM_LAYERS, DEEP_IMAGES),
    "mobilenet_v3_large": (NO_RANDOM_LAYERS, IMAGES),
    "convnext_tiny": ({"stochastic_depth_prob": 0.0}, (2, 3, 32, 32)),   # LayerNorm only: 1 x 1 at the end is fine
    "vgg16": (NO_RANDOM_LAYERS, (2, 3, 32, 32)),                          # no BatchNorm; 1.1 GB of weights per copy
    "r3d_18": ({}, (2, 3, 2, 32, 32)),                                    # (2, 512, 1, 2, 2) before the pooling
}

OPTIMISERS = {
    "SGD": {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-3},
    "Adam": {"lr": 1e-3, "weight_decay": 1e-3},
}


def _convnext_mini(lib_models, config, **kwargs):
    """ConvNeXt with two narrow stages (1 and 2 blocks): every layer type of convnext_tiny at 1/50 of its cost."""
    return lib_models.ConvNeXt([config(16, 32, 1), config(32, None, 2)], **kwargs)


def _build_pair(name, kwargs):
    """(convforge model, torchvision model), float64, the same perturbed weights, both in train mode."""
    if name == "convnext_mini":
        convforge.manual_seed(0)
        torch.manual_seed(0)
        cf = _convnext_mini(models, models.convnext.CNBlockConfig, num_classes=NUM_CLASSES, **kwargs)
        tv = _convnext_mini(tv_convnext, tv_convnext.CNBlockConfig, num_classes=NUM_CLASSES, **kwargs)
    else:
        cf, tv = _pair(name, num_classes=NUM_CLASSES, **kwargs)
    cf, tv = cf.double(), tv.double()
    state = {key: value.copy() for key, value in _perturbed_state(tv).items()}
    return cf, tv, state


@functools.lru_cache(maxsize=1)
def _cached_pair(name):
    """The last pair built: the SGD and Adam tests of one network share it (each reloads the initial state)."""
    kwargs, _ = {**DEFAULT_TIER, **SLOW_TIER}[name]
    return _build_pair(name, kwargs)


def _train_both(name, optimiser, shape):
    """Three training steps in each library from the same state; returns (cf, tv, initial state, losses)."""
    cf, tv, state = _cached_pair(name)
    cf.load_state_dict(state, strict=True)
    tv.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=True)
    cf.train()
    tv.train()
    options = OPTIMISERS[optimiser]
    opt_cf = getattr(convforge.optim, optimiser)(cf.parameters(), **options)
    opt_tv = getattr(torch.optim, optimiser)(tv.parameters(), **options)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(STEPS):
        x = rng.standard_normal(shape)
        target = rng.integers(0, NUM_CLASSES, shape[0])
        opt_cf.zero_grad()
        loss = F.cross_entropy(cf(convforge.tensor(x)), target)
        loss.backward()
        missing = [key for key, p in cf.named_parameters() if p.grad is None]
        assert not missing, f"{name}: no gradient reached {missing[:5]}"
        opt_cf.step()
        opt_tv.zero_grad()
        loss_tv = torch.nn.functional.cross_entropy(tv(torch.from_numpy(x)), torch.from_numpy(target))
        loss_tv.backward()
        opt_tv.step()
        losses.append((loss.item(), loss_tv.item()))
    return cf, tv, state, losses


def _check_training(name, optimiser):
    _, shape = {**DEFAULT_TIER, **SLOW_TIER}[name]
    cf, tv, initial, losses = _train_both(name, optimiser, shape)
    for step, (ours, theirs) in enumerate(losses):
        assert abs(ours - theirs) <= TOLERANCE * max(1.0, abs(theirs)), \
            f"{name} {optimiser} step {step}: loss {ours!r} != torch's {theirs!r}"
    expected = {key: value.numpy() for key, value in tv.state_dict().items()}
    actual = cf.state_dict()
    assert list(actual) == list(expected)
    for key, value in actual.items():
        ref = expected[key]
        if ref.dtype.kind != "f":
            np.testing.assert_array_equal(value, ref, err_msg=key)
            continue
        np.testing.assert_allclose(value, ref, rtol=TOLERANCE, atol=TOLERANCE * max(1.0, float(np.abs(ref).max())),
                                   err_msg=f"{name} {optimiser}: {key} after {STEPS} steps")
    # not vacuous: the classifier moved far beyond the tolerance
    head = [key for key in actual if key.endswith("weight")][-1]
    assert np.max(np.abs(actual[head] - initial[head])) > 1e4 * TOLERANCE, f"{name}: {head} did not move"


@pytest.mark.parametrize("optimiser", list(OPTIMISERS))
@pytest.mark.parametrize("name", list(DEFAULT_TIER))
def test_three_training_steps_equal_torch(name, optimiser):
    _check_training(name, optimiser)


@pytest.mark.slow
@pytest.mark.parametrize("optimiser", list(OPTIMISERS))
@pytest.mark.parametrize("name", list(SLOW_TIER))
def test_three_training_steps_equal_torch_whole_zoo(name, optimiser):
    _check_training(name, optimiser)


def test_zoo_is_covered():
    """Every zoo network is in one of the tiers (a new network cannot be forgotten)."""
    assert {n for n in models.__all__ if n[0].islower()} <= set(DEFAULT_TIER) | set(SLOW_TIER)


@pytest.mark.parametrize("make", [lambda: convforge.nn.Dropout(0.3), lambda: convforge.nn.Dropout(0.3, inplace=True),
                                  lambda: convforge.nn.StochasticDepth(0.3, "row"),
                                  lambda: convforge.nn.StochasticDepth(0.3, "batch")],
                         ids=["dropout", "dropout-inplace", "stochastic-depth-row", "stochastic-depth-batch"])
def test_random_layers_in_train_mode_pass_the_gradient_through_their_mask(make):
    """On a recorded intermediate (as in the zoo: after a Linear, or a residual branch), every output is the input
    times 0 or 1 / (1 - p), both occur, and the input's gradient is the upstream gradient times that factor."""
    convforge.manual_seed(0)
    layer = make().train()
    scale = 1 / (1 - layer.p)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        leaf = convforge.tensor(rng.uniform(0.5, 1.5, (16, 4, 3, 3)), requires_grad=True)
        x = leaf * 1.0                              # not a leaf: the in-place variant may overwrite it
        before = np.array(x)
        y = layer(x)
        upstream = rng.standard_normal(y.shape)
        (y * upstream).sum().backward()
        factor = np.asarray(y) / before
        dropped = np.isclose(factor, 0, atol=1e-15)
        assert np.all(dropped | np.isclose(factor, scale, rtol=1e-14)), f"{layer}: factors {np.unique(factor)}"
        np.testing.assert_allclose(leaf.grad, upstream * factor, rtol=1e-14, atol=1e-15)
        seen |= set(np.unique(dropped).tolist())
        if seen == {False, True}:
            break
    assert seen == {False, True}, f"{layer}: in 20 draws, outputs were only {'dropped' if True in seen else 'kept'}"

"""Losses against PyTorch: value and d loss / d input (torch autograd), float64 1e-10 and float32 1e-5."""
import numpy as np
import pytest
import torch

import convforge
import convforge.nn as nn
from conftest import assert_close_rel as assert_close

TOL = {np.float64: 1e-10, np.float32: 1e-5}



def compare(ours, theirs, x, target, dtype, seed=0):
    rtol = TOL[dtype]
    x = np.asarray(x, dtype=dtype)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target.astype(dtype) if target.dtype.kind == "f" else target)
    xc = convforge.tensor(x, requires_grad=True)
    loss = ours(xc, target)
    loss_t = theirs(xt, tt)
    assert loss.dtype == np.dtype(dtype)
    assert_close(loss, loss_t, rtol, "loss")
    if loss.ndim:
        g = np.random.default_rng(seed).standard_normal(loss.shape).astype(dtype)
        loss_t.backward(torch.from_numpy(g))
        loss.backward(g)
    else:
        loss_t.backward()
        loss.backward()
    assert_close(xc.grad, xt.grad, rtol, "grad_input")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4, 4)])
def test_mse(shape, reduction, dtype):
    rng = np.random.default_rng(1)
    compare(nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), rng.standard_normal(shape),
            rng.standard_normal(shape), dtype)


CE_OPTIONS = [
    dict(), dict(weight=[0.5, 2.0, 1.0, 3.0, 1.5]), dict(ignore_index=2), dict(ignore_index=-1),
    dict(label_smoothing=0.15), dict(weight=[0.5, 2.0, 1.0, 3.0, 1.5], label_smoothing=0.3, ignore_index=0),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", CE_OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3, 4), (5,), (3, 5, 7)])
def test_cross_entropy_class_indices(shape, options, reduction, dtype):
    rng = np.random.default_rng(2)
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, 5, target_shape)
    if options.get("ignore_index") == -1 and target.ndim:
        target.flat[0] = -1
    kw = dict(options)
    weight = kw.pop("weight", None)
    ours = nn.CrossEntropyLoss(weight=None if weight is None else np.array(weight, dtype), reduction=reduction, **kw)
    theirs = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight, dtype=getattr(
        torch, np.dtype(dtype).name)), reduction=reduction, **kw)
    compare(ours, theirs, rng.standard_normal(shape) * 3, target, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.2), dict(weight=[1.0, 0.5, 2.0, 1.0])], ids=str)
def test_cross_entropy_probabilities(options, reduction, dtype):
    rng = np.random.default_rng(3)
    kw = dict(options)
    weight = kw.pop("weight", None)
    ours = nn.CrossEntropyLoss(weight=None if weight is None else np.array(weight, dtype), reduction=reduction, **kw)
    theirs = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight, dtype=getattr(
        torch, np.dtype(dtype).name)), reduction=reduction, **kw)
    compare(ours, theirs, rng.standard_normal((3, 4, 2)), rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1),
            dtype)


def test_cross_entropy_large_logits_are_stable():
    x = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 1.0]])
    compare(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), x, np.array([0, 2]), np.float64)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"target 5 is out of bounds for 3 classes \(valid class indices are 0 to 2"):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\) for input of shape \(2, 3\), got \(3,\)"):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"same shape, got input \(2, 3\) and target \(3, 2\)"):
        nn.MSELoss()(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"weights and input must have the same size"):
        nn.functional.mse_loss(np.zeros((2, 3)), np.zeros((2, 3)), weight=np.ones(3))
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0"):
        nn.CrossEntropyLoss(label_smoothing=1.5)

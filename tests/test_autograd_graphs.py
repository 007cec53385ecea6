"""Autograd against torch autograd on random module graphs, float64: residual adds, UNet-style concatenation, a
layer used twice, shared parameters, branches never used, in-graph detach, strided down/up paths, padding modes.
The same Python forward runs on convforge tensors and on torch tensors (weights copied); every parameter and input
gradient must agree within 1e-10."""
from __future__ import annotations

import types

import numpy as np
import pytest

import convforge
import convforge.nn as nn
from conftest import assert_close, to_torch, torch

OURS = types.SimpleNamespace(nn=nn, cat=convforge.cat, stack=convforge.stack,
                             relu=lambda x: np.maximum(x, 0.0), tanh=np.tanh, exp=np.exp)
THEIRS = types.SimpleNamespace(nn=torch.nn, cat=torch.cat, stack=torch.stack,
                               relu=torch.relu, tanh=torch.tanh, exp=torch.exp) if torch else None


def _layers(lib, plan, ch):
    """One conv per role; the torch twin is built by the same code."""
    L = {}
    for i, (kind, opts) in enumerate(plan):
        pm = opts["padding_mode"]
        L[f"a{i}"] = lib.nn.Conv2d(ch, ch, 3, padding=1, padding_mode=pm, groups=opts["groups"])
        L[f"b{i}"] = lib.nn.Conv2d(ch, ch, 3, padding=opts["dilation"], dilation=opts["dilation"])
        L[f"down{i}"] = lib.nn.Conv2d(ch, ch, 3, stride=2, padding=1, bias=False)
        L[f"up{i}"] = lib.nn.ConvTranspose2d(ch, ch, 3, stride=2, padding=1, groups=opts["groups"])
        L[f"merge{i}"] = lib.nn.Conv2d(2 * ch, ch, 1)
        L[f"unused{i}"] = lib.nn.Conv2d(ch, ch, 1)          # never called: its grads stay None in both
    L["head"] = lib.nn.Conv1d(ch, 2, 3, padding=1)
    return L


def _forward(B, L, plan, x, scale):
    h = L["a0"](x) if plan[0][0] != "detach" else x
    for i, (kind, _) in enumerate(plan):
        a, b = L[f"a{i}"], L[f"b{i}"]
        if kind == "residual":                # torchvision BasicBlock: one activation (and here one conv) twice
            h = h + b(B.relu(b(B.relu(a(h)))))
        elif kind == "concat":                # UNet: down, up to the skip's size, concatenate, merge
            skip = B.relu(a(h))
            up = L[f"up{i}"](B.relu(L[f"down{i}"](skip)), output_size=skip.shape[-2:])
            h = L[f"merge{i}"](B.cat([skip, up], 1))
        elif kind == "shared":                # one parameter used in two places, plus elementwise ops
            h = B.tanh(a(h) * scale) + b(h) / (1.5 + scale * scale) - h ** 2 * 0.1
        elif kind == "detach":                # a detached branch contributes values, not gradients
            h = a(h) + b(h).detach() * B.exp(-(h * h))
        elif kind == "stack":                 # stack, index and reduce over the new axis
            s = B.stack([a(h), b(h), h], 0)
            h = s.amax(0) + s[1:].mean(0) - s[0, :, 1:].sum(1)[:, None]
    n, c = h.shape[:2]
    seq = h.reshape(n, c, -1)                 # flatten the plane into a sequence for a Conv1d head
    y = L["head"](seq).transpose(0, 2, 1) if B is OURS else L["head"](seq).permute(0, 2, 1)
    return (y ** 2).mean() + B.tanh(y).amax(1).sum() + y[:, 1:5, 0].sum() * 0.3


def _plan(rng):
    kinds = ["residual", "concat", "shared", "detach", "stack"]
    return [(str(k), dict(padding_mode=str(rng.choice(["zeros", "reflect", "circular", "replicate"])),
                          groups=int(rng.choice([1, 2])), dilation=int(rng.choice([1, 2]))))
            for k in rng.choice(kinds, size=int(rng.integers(2, 5)))]


@pytest.mark.parametrize("seed", range(12))
def test_random_graph_gradients_match_torch(seed):
    rng = np.random.default_rng(seed)
    plan, ch = _plan(rng), 4
    size = tuple(int(v) for v in rng.integers(5, 9, size=2))
    convforge.manual_seed(seed)
    ours = _layers(OURS, plan, ch)
    theirs = _layers(THEIRS, plan, ch)
    for key, m in ours.items():
        m.double()
        theirs[key].double().load_state_dict({k: to_torch(v) for k, v in m.state_dict().items()})
    x0 = rng.standard_normal((2, ch) + size)
    s0 = np.array([0.7])
    x, scale = convforge.tensor(x0, requires_grad=True), nn.Parameter(s0)
    xt, scale_t = to_torch(x0).requires_grad_(), to_torch(s0).requires_grad_()
    loss = _forward(OURS, ours, plan, x, scale)
    loss_t = _forward(THEIRS, theirs, plan, xt, scale_t)
    assert_close(loss, loss_t.detach().numpy(), what="loss")
    loss.backward()
    loss_t.backward()
    assert_close(x.grad, xt.grad.numpy(), what="input grad")
    if any(kind == "shared" for kind, _ in plan):
        assert_close(scale.grad, scale_t.grad.numpy(), what="shared scale grad")
    for key, m in ours.items():
        for name, p in m.named_parameters():
            pt = dict(theirs[key].named_parameters())[name]
            if pt.grad is None:
                assert p.grad is None, f"{key}.{name} got a gradient torch does not give"
            else:
                assert_close(p.grad, pt.grad.numpy(), what=f"{key}.{name}")
    assert all(p.grad is None for i in range(len(plan)) for p in ours[f"unused{i}"].parameters())


def test_layer_used_twice_basic_block():
    """Issue 12: one ReLU (and one conv) called twice in a forward, as torchvision's BasicBlock: both uses counted."""
    convforge.manual_seed(3)
    conv = nn.Conv2d(3, 3, 3, padding=1).double()
    tconv = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    tconv.load_state_dict({k: to_torch(v) for k, v in conv.state_dict().items()})
    x0 = np.random.default_rng(3).standard_normal((2, 3, 6, 6))
    x, xt = convforge.tensor(x0, requires_grad=True), to_torch(x0).requires_grad_()
    relu = nn.ReLU()
    out = relu(conv(relu(conv(x))) + x)
    out_t = torch.relu(tconv(torch.relu(tconv(xt))) + xt)
    (out * out).sum().backward()
    (out_t * out_t).sum().backward()
    assert_close(x.grad, xt.grad.numpy())
    assert_close(conv.weight.grad, tconv.weight.grad.numpy())
    assert_close(conv.bias.grad, tconv.bias.grad.numpy())


def test_saved_values_are_freed_after_backward_and_retain_graph_keeps_them():
    m = nn.Conv2d(2, 2, 3, padding=1).double()
    x = convforge.tensor(np.ones((1, 2, 5, 5)), requires_grad=True)
    loss = (m(x) * m(x)).sum()
    nodes, stack = [], [loss.grad_fn]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(e[0] for e in node.edges if e is not None and e[1] >= 0)
    loss.backward(retain_graph=True)
    first = m.weight.grad.copy()
    assert not any(n.ctx._freed for n in nodes)
    loss.backward()                                     # second pass through the retained graph: accumulates
    assert_close(m.weight.grad, 2 * first)
    assert all(n.ctx._freed and n.ctx._saved == () for n in nodes)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_no_grad_records_nothing_and_detach_cuts():
    m = nn.Conv2d(2, 2, 3)
    x = convforge.tensor(np.ones((1, 2, 5, 5), np.float32), requires_grad=True)
    with convforge.no_grad():
        y = m(x) * 2 + x[:, :, 1:-1, 1:-1]
    assert y.grad_fn is None and not y.requires_grad
    z = m(x).detach()
    assert z.grad_fn is None and not z.requires_grad and np.shares_memory(z, m(x).detach()) is False
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_tensor_behaves_as_ndarray_and_torch():
    a = np.arange(6.0).reshape(2, 3)
    t = convforge.tensor(a, requires_grad=True)
    assert isinstance(t, np.ndarray) and t.is_leaf and t.grad is None
    assert np.shares_memory(np.asarray(t), t) and not np.shares_memory(t, a)   # tensor() copies, asarray not
    y = (t * 2).sum()
    assert y.item() == 30.0 and y.grad_fn.name() == "SumBackward" and not y.is_leaf
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (t * 2).backward()
    (t * 2).backward(np.ones((2, 3)))
    (t * 3).backward(np.ones((2, 3)))
    assert t.grad.tolist() == [[5.0] * 3] * 2
    with pytest.raises(RuntimeError, match="floating point"):
        convforge.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="Can't call numpy"):
        t.numpy()
    assert repr(convforge.tensor([1.0]) * 1) == "tensor([1.])"


@pytest.mark.parametrize("expr, name", [
    (lambda t: np.sin(t), "np.sin"), (lambda t: np.cumsum(t), "np.cumsum"), (lambda t: t.prod(), "Tensor.prod"),
    (lambda t: np.multiply.reduce(t), "np.multiply.reduce"),
    (lambda t: np.sort(t), "np.sort"), (lambda t: t.diagonal(), "Tensor.diagonal"), (lambda t: t.var(), "var"),
    (lambda t: np.pad(t, 1), "np.pad"),
])
def test_unrecorded_operations_compute_but_refuse_a_gradient_naming_the_operation(expr, name):
    t = convforge.tensor(np.ones((3, 3)), requires_grad=True)
    with convforge.no_grad():           # without gradients they simply run
        expected = np.asarray(expr(t))
    y = expr(t)                          # inference code may use any NumPy operation ...
    np.testing.assert_array_equal(np.asarray(y), expected)
    assert y.requires_grad
    with pytest.raises(RuntimeError, match=name.replace(".", r"\.")):
        (y * 1.0).sum().backward()       # ... but a gradient through one that is not recorded is an error


def test_in_place_on_recorded_results_raises():
    t = convforge.tensor(np.ones(3), requires_grad=True)
    y = t * 2
    with pytest.raises(RuntimeError, match="in-place"):
        y += 1
    with pytest.raises(RuntimeError, match="in-place"):
        y[0] = 5.0
    w = nn.Parameter(np.zeros(3))
    w[...] = 1.0                         # a leaf may be written (initialisation, optimiser steps)
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_views_numpy_makes_behind_autograds_back_refuse_a_gradient():
    t = convforge.tensor(np.ones((2, 3)), requires_grad=True)
    v = np.ndarray.reshape(t, (3, 2))   # the base class's method, behind the recorded one
    loss = (v.T * t).sum()               # forward works ...
    with pytest.raises(RuntimeError, match=r"does not record \(made at .*test_autograd_graphs.py:\d+"):
        loss.backward()                  # ... but no gradient goes through the unrecorded view

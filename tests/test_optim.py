"""convforge.optim.SGD / Adam against torch.optim on the same parameters and gradient sequences."""
import numpy as np
import pytest
import torch

import convforge.nn as nn
from convforge import optim


def _run_both(make_ours, make_theirs, dtype=np.float64, steps=6, seed=0, groups=False):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), (2, 2, 3)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [nn.Parameter(v) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    if groups:   # two groups; the second overrides lr
        opt = make_ours([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05}])
        opt_t = make_theirs([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05}])
    else:
        opt, opt_t = make_ours(ours), make_theirs(theirs)
    for step in range(steps):
        opt.zero_grad()
        opt_t.zero_grad()
        for i, (p, pt) in enumerate(zip(ours, theirs)):
            if step == 2 and i == 1:
                continue                          # a parameter without a gradient this step is skipped
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = g.copy()
            pt.grad = torch.from_numpy(g.copy())
        opt.step()
        opt_t.step()
        rtol = 1e-12 if dtype == np.float64 else 1e-6
        for p, pt in zip(ours, theirs):
            np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=rtol, atol=rtol)
            assert p.dtype == np.dtype(dtype)


SGD_OPTIONS = [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, dampening=0.3), dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05), dict(lr=0.1, weight_decay=0.1, maximize=True),
    dict(lr=0.1, momentum=0.5, maximize=True, nesterov=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_sgd_matches_torch(options, dtype):
    _run_both(lambda p: optim.SGD(p, **options), lambda p: torch.optim.SGD(p, **options), dtype)


ADAM_OPTIONS = [
    dict(), dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True), dict(lr=0.02, amsgrad=True, weight_decay=0.01, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
def test_adam_matches_torch(options, dtype):
    _run_both(lambda p: optim.Adam(p, **options), lambda p: torch.optim.Adam(p, **options), dtype)


def test_param_groups_match_torch():
    _run_both(lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
              groups=True)
    _run_both(lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01), groups=True)


def test_zero_grad_and_module_parameters():
    m = nn.Conv1d(3, 2, 1)
    opt = optim.SGD(m.parameters(), lr=0.1)
    m(np.ones((4, 3, 1), np.float32)).sum().backward()
    assert m.weight.grad is not None
    before = np.array(m.weight)
    opt.step()
    np.testing.assert_allclose(m.weight, before - 0.1 * 4, rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    assert np.all(m.weight.grad == 0)
    opt.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    opt.step()                                   # no gradients: nothing changes
    np.testing.assert_allclose(m.weight, before - 0.4, rtol=1e-6)


def test_optimizer_errors():
    p = [nn.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match=r"Nesterov momentum requires a momentum and zero dampening"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Invalid lr value: -1"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 1: 1.0"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match=r"can only optimize leaf tensors .*, got ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=r"more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD", 20),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "SGD", 30),        # past T_max: the periodic branch
    ("OneCycleLR", dict(max_lr=0.5, total_steps=25), "SGD", 25),
    ("OneCycleLR", dict(max_lr=[0.3, 0.2], epochs=3, steps_per_epoch=5, anneal_strategy="linear",
                        three_phase=True, pct_start=0.25), "Adam", 15),
]


@pytest.mark.parametrize("name,options,opt_name,steps", SCHEDULES, ids=lambda v: str(v))
def test_lr_schedulers_match_torch_exactly(name, options, opt_name, steps):
    ours = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]
    theirs = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    kw = dict(lr=0.1, momentum=0.9) if opt_name == "SGD" else dict(lr=0.1)
    opt = getattr(optim, opt_name)([{"params": ours[:1]}, {"params": ours[1:]}], **kw)
    opt_t = getattr(torch.optim, opt_name)([{"params": theirs[:1]}, {"params": theirs[1:]}], **kw)
    sched = getattr(optim.lr_scheduler, name)(opt, **options)
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **options)
    momentum = "momentum" if opt_name == "SGD" else "betas"
    for _ in range(steps):
        assert sched.get_last_lr() == sched_t.get_last_lr()
        assert [g[momentum] for g in opt.param_groups] == [g[momentum] for g in opt_t.param_groups]
        opt.step()
        opt_t.step()
        sched.step()
        sched_t.step()
    assert sched.get_last_lr() == sched_t.get_last_lr()


def test_optimizer_state_dict_round_trip_continues_like_the_original():
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p, lr=0.01, amsgrad=True)):
        a = [nn.Parameter(v) for v in values]
        opt_a = make(a)
        grads = [[rng.standard_normal(v.shape) for v in values] for _ in range(4)]
        for step in range(2):
            for p, g in zip(a, grads[step]):
                p.grad = g
            opt_a.step()
        saved = opt_a.state_dict()
        assert sorted(saved["state"]) == [0, 1] and saved["param_groups"][0]["params"] == [0, 1]
        b = [nn.Parameter(np.array(p)) for p in a]
        opt_b = make(b)
        opt_b.load_state_dict(saved)
        for step in range(2, 4):
            for pa, pb, g in zip(a, b, grads[step]):
                pa.grad, pb.grad = g, g.copy()
            opt_a.step()
            opt_b.step()
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa, pb)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": [a[0]]}, {"params": [a[1]]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([a[0]], lr=0.1).load_state_dict(saved)


def test_optimizer_state_dict_loads_torch_layout():
    """A torch optimiser's state_dict (tensors converted to arrays) drives the same next step."""
    v = np.random.default_rng(1).standard_normal(5)
    pt = torch.tensor(v, requires_grad=True)
    opt_t = torch.optim.SGD([pt], lr=0.1, momentum=0.9)
    pt.grad = torch.ones(5, dtype=torch.float64)
    opt_t.step()
    state = opt_t.state_dict()
    ours = nn.Parameter(pt.detach().numpy())
    opt = optim.SGD([ours], lr=0.5)
    opt.load_state_dict({"state": {k: {n: t.numpy() for n, t in s.items()} for k, s in state["state"].items()},
                         "param_groups": state["param_groups"]})
    assert opt.param_groups[0]["lr"] == 0.1
    ours.grad = np.full(5, 2.0)
    pt.grad = torch.full((5,), 2.0, dtype=torch.float64)
    opt.step()
    opt_t.step()
    np.testing.assert_allclose(ours, pt.detach().numpy(), rtol=1e-14)

"""Training parity with PyTorch: the same small CNN, weights copied from torch, the same data, 5 optimiser steps
in float64: every parameter and BatchNorm buffer equal within 1e-8 afterwards."""
import numpy as np
import pytest
import torch

import convforge
import convforge.nn as nn


def _cnn(lib):
    return lib.Sequential(
        lib.Conv2d(3, 6, 3, padding=1), lib.BatchNorm2d(6), lib.ReLU(),
        lib.Conv2d(6, 8, 3, padding=1, groups=2), lib.BatchNorm2d(8), lib.ReLU(),
        lib.MaxPool2d(2), lib.Flatten(), lib.Linear(8 * 4 * 4, 5),
    )


OPTIMISERS = [
    ("SGD", dict(lr=0.1, momentum=0.9)), ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=1e-2)), ("Adam", dict(lr=1e-2, weight_decay=1e-2, amsgrad=True)),
]


@pytest.mark.parametrize("name,options", OPTIMISERS, ids=lambda v: v if isinstance(v, str) else str(v))
def test_five_steps_match_torch(name, options):
    torch.manual_seed(0)
    theirs = _cnn(torch.nn).double()
    ours = _cnn(nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    opt = getattr(convforge.optim, name)(ours.parameters(), **options)
    opt_t = getattr(torch.optim, name)(theirs.parameters(), **options)
    crit, crit_t = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for step in range(5):
        x = rng.standard_normal((8, 3, 8, 8))
        y = rng.integers(0, 5, 8)
        opt.zero_grad()
        loss = crit(ours(x), y)
        loss.backward()
        opt.step()
        opt_t.zero_grad()
        loss_t = crit_t(theirs(torch.tensor(x)), torch.tensor(y))
        loss_t.backward()
        opt_t.step()
        assert abs(float(loss) - loss_t.item()) <= 1e-8 * max(1.0, abs(loss_t.item()))
    final_t = theirs.state_dict()
    for key, value in ours.state_dict().items():
        ref = final_t[key].numpy()
        np.testing.assert_allclose(value, ref, rtol=1e-8, atol=1e-8 * max(1.0, float(np.abs(ref).max())),
                                   err_msg=key)
    # parameters actually moved (the comparison is not vacuous)
    torch.manual_seed(0)
    start = _cnn(torch.nn).double()
    assert not np.allclose(ours.state_dict()["0.weight"], start.state_dict()["0.weight"].numpy())
    # and evaluation mode agrees too (running statistics)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((4, 3, 8, 8))
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-8, atol=1e-8)

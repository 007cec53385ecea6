"""Dropout and StochasticDepth (seeded, no torch oracle for their random stream), the containers (Identity,
ModuleList, ModuleDict), no_grad, manual_seed and input validation of the companion layers."""
import numpy as np
import pytest

import convforge
import convforge.nn as nn


def test_dropout_mask_scaling_and_gradient():
    convforge.manual_seed(0)
    d = nn.Dropout(0.25)
    x = np.random.default_rng(0).standard_normal((200, 50))
    y = d(x)
    kept = y != 0
    assert abs(1 - kept.mean() - 0.25) < 0.02                      # about p of the elements dropped
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)  # inverted scaling
    g = np.random.default_rng(1).standard_normal(x.shape)
    convforge.manual_seed(0)
    xc = convforge.tensor(x, requires_grad=True)
    d(xc).backward(g)                                              # same seed: same mask
    np.testing.assert_allclose(xc.grad, np.where(kept, g / 0.75, 0), rtol=1e-15)


def test_dropout_is_seeded_and_identity_in_eval():
    x = np.ones((4, 8), np.float32)
    convforge.manual_seed(7)
    a = nn.Dropout()(x)
    convforge.manual_seed(7)
    b = nn.Dropout()(x)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    d = nn.Dropout().eval()
    assert d(x) is x
    xc = convforge.tensor(x, requires_grad=True)
    d(xc).backward(x)
    np.testing.assert_array_equal(xc.grad, x)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)


def test_dropout_inplace_and_errors():
    convforge.manual_seed(1)
    x = np.ones(100)
    y = nn.Dropout(0.5, inplace=True)(x)
    assert y is x and set(np.unique(x)) <= {0.0, 2.0}
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_stochastic_depth_modes_scaling_and_eval_identity():
    convforge.manual_seed(3)
    x = np.ones((2000, 3, 2))
    row = nn.StochasticDepth(0.3, "row")(x)
    per_sample = row.reshape(2000, -1)
    assert (per_sample == per_sample[:, :1]).all()                  # one draw per sample
    assert set(np.unique(row)) == {0.0, 1 / 0.7}
    assert abs((per_sample[:, 0] == 0).mean() - 0.3) < 0.04
    batch = [nn.StochasticDepth(0.5, "batch")(x) for _ in range(40)]
    assert all(len(np.unique(b)) == 1 for b in batch)               # one draw for the whole batch
    assert {float(b.flat[0]) for b in batch} == {0.0, 2.0}
    m = nn.StochasticDepth(0.9, "row").eval()
    assert m(x) is x and nn.StochasticDepth(0.0, "row")(x) is x
    np.testing.assert_array_equal(nn.StochasticDepth(1.0, "batch")(x), 0)
    convforge.manual_seed(4)
    xc = convforge.tensor(x[:50], requires_grad=True)
    y = nn.StochasticDepth(0.5, "row")(xc)
    y.backward(np.full(y.shape, 3.0))
    np.testing.assert_array_equal(xc.grad, 3.0 * np.asarray(y))    # d(x * mask)/dx = mask = y / x
    with pytest.raises(ValueError, match=r"drop probability has to be between 0 and 1, but got 1.2"):
        nn.StochasticDepth(1.2, "row")
    with pytest.raises(ValueError, match=r"mode has to be either 'batch' or 'row', but got col"):
        nn.StochasticDepth(0.1, "col")
    assert repr(nn.StochasticDepth(0.2, "batch")) == "StochasticDepth(p=0.2, mode=batch)"


def test_identity_and_module_list_dict_protocol():
    convforge.manual_seed(0)
    x = np.arange(3.0)
    assert nn.Identity(3, foo=1)(x) is x
    blocks = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    blocks.append(nn.Linear(2, 3)).extend([nn.Sigmoid()])
    blocks.insert(1, nn.Identity())
    assert [type(m).__name__ for m in blocks] == ["Linear", "Identity", "ReLU", "Linear", "Sigmoid"]
    assert list(blocks.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    del blocks[1]
    assert [type(m).__name__ for m in blocks] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    assert list(blocks.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2 and blocks[-1] is blocks[3]
    blocks[1] = nn.ReLU6()
    assert type(blocks[1]).__name__ == "ReLU6" and len(blocks + nn.ModuleList([nn.ReLU()])) == 5
    with pytest.raises(IndexError, match=r"index 9 is out of range for a ModuleList of length 4"):
        blocks[9]
    with pytest.raises(TypeError, match=r"ModuleList entries must be convforge Modules, got function"):
        blocks.append(lambda v: v)
    heads = nn.ModuleDict({"cls": nn.Linear(2, 5)})
    heads["box"] = nn.Linear(2, 4)
    heads.update([("act", nn.ReLU())])
    assert list(heads) == ["cls", "box", "act"] and "box" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["cls.weight", "cls.bias", "box.weight", "box.bias"]
    assert type(heads.pop("act")).__name__ == "ReLU" and list(heads.keys()) == ["cls", "box"]
    with pytest.raises(KeyError, match=r"no entry 'nope'; its keys are \['cls', 'box'\]"):
        heads["nope"]
    with pytest.raises(TypeError, match=r"ModuleDict keys must be strings"):
        heads[3] = nn.ReLU()


def test_container_parameters_train_through_autograd():
    convforge.manual_seed(1)
    blocks = nn.ModuleList([nn.Linear(3, 3, dtype=np.float64) for _ in range(2)])
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = x
    for block in blocks:
        y = nn.functional.relu(block(y)) + y                           # residual: the owner's forward decides
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in blocks.parameters())


def test_manual_seed_accepts_torch_range_including_negative():
    convforge.manual_seed(-1)                                        # issue 12: torch accepts it
    a = nn.Linear(4, 4).weight.copy()
    convforge.manual_seed(0xFFFF_FFFF_FFFF_FFFF - 1)                 # torch's remapping of -1
    np.testing.assert_array_equal(nn.Linear(4, 4).weight, a)
    convforge.manual_seed(-2 ** 63)
    with pytest.raises(ValueError, match=r"seed must be within \[-2\*\*63, 2\*\*64 - 1\]"):
        convforge.manual_seed(2 ** 64)
    with pytest.raises(TypeError, match=r"manual_seed expects an int, got float"):
        convforge.manual_seed(1.5)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.ReLU(), (2, 3)), (lambda: nn.SiLU(), (2, 3)), (lambda: nn.Sigmoid(), (2, 3)),
    (lambda: nn.LeakyReLU(), (2, 3)), (lambda: nn.Hardswish(), (2, 3)), (lambda: nn.GELU(), (2, 3)),
    (lambda: nn.BatchNorm1d(3), (4, 3)), (lambda: nn.Linear(3, 2), (4, 3)), (lambda: nn.MaxPool1d(2), (1, 2, 4)),
    (lambda: nn.AvgPool1d(2), (1, 2, 4)), (lambda: nn.AdaptiveAvgPool1d(2), (1, 2, 4)), (lambda: nn.Dropout(), (4,)),
    (lambda: nn.LayerNorm(3), (2, 3)), (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU()), (2, 3)),
])
def test_no_grad_records_nothing(make, shape):
    m = make()
    x = convforge.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    with convforge.no_grad():
        y = m(x)
    assert y.grad_fn is None and not y.requires_grad


def test_inplace_on_a_leaf_that_requires_grad_is_refused_like_torch():
    leaf = convforge.tensor(np.ones(3), requires_grad=True)
    for m in (nn.ReLU(inplace=True), nn.Hardswish(inplace=True), nn.Dropout(inplace=True)):
        with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad is being used in an in-place"):
            m(leaf)
    np.testing.assert_array_equal(leaf, 1.0)                          # untouched
    y = nn.ReLU(inplace=True)(leaf * -1.0)                            # a non-leaf is fine
    y.sum().backward()
    np.testing.assert_array_equal(leaf.grad, 0.0)


def test_layer_input_errors():
    with pytest.raises(TypeError, match=r"relu expects a floating-point input, got dtype int64"):
        nn.ReLU()(np.arange(3))
    with pytest.raises(TypeError, match=r"input dtype \(float64\) and weight dtype \(float32\)"):
        nn.Linear(3, 2)(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"Linear: in_features must be a non-negative int, got -1"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match=r"num_features must be a positive int, got 0"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"output_size must be a positive int or 2 positive ints/None"):
        nn.AdaptiveAvgPool2d((2, 0))
    with pytest.raises(ValueError, match=r"divisor_override must be a non-zero int"):
        nn.AvgPool2d(2, divisor_override=0)

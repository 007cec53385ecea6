"""Dropout (seeded, no torch oracle for its random stream), the no_grad protocol and input validation of the
companion layers."""
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
    np.testing.assert_allclose(d.backward(g), np.where(kept, g / 0.75, 0), rtol=1e-15)


def test_dropout_is_seeded_and_identity_in_eval():
    x = np.ones((4, 8), np.float32)
    convforge.manual_seed(7)
    a = nn.Dropout()(x)
    convforge.manual_seed(7)
    b = nn.Dropout()(x)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    d = nn.Dropout().eval()
    assert d(x) is x or np.array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)


def test_dropout_inplace_and_errors():
    convforge.manual_seed(1)
    x = np.ones(100)
    y = nn.Dropout(0.5, inplace=True)(x)
    assert y is x and set(np.unique(x)) <= {0.0, 2.0}
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.ReLU(), (2, 3)), (lambda: nn.SiLU(), (2, 3)), (lambda: nn.Sigmoid(), (2, 3)),
    (lambda: nn.LeakyReLU(), (2, 3)), (lambda: nn.Hardswish(), (2, 3)),
    (lambda: nn.BatchNorm1d(3), (4, 3)), (lambda: nn.Linear(3, 2), (4, 3)), (lambda: nn.MaxPool1d(2), (1, 2, 4)),
    (lambda: nn.AvgPool1d(2), (1, 2, 4)), (lambda: nn.AdaptiveAvgPool1d(2), (1, 2, 4)), (lambda: nn.Dropout(), (4,)),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU()), (2, 3)),
])
def test_no_grad_keeps_nothing_for_backward(make, shape):
    m = make()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with convforge.no_grad():
        y = m(x)
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a forward pass with gradients enabled"):
        m.backward(np.ones_like(y))
    saved = [v for k, v in vars(m).items() if k in ("_saved", "_cache", "_input", "_mask")]
    assert all(v is None for v in saved)


def test_layer_input_errors():
    with pytest.raises(TypeError, match=r"ReLU expects a floating-point input, got dtype int64"):
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

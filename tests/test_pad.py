"""F.pad against torch.nn.functional.pad for every mode, rank and padding (incl. negative = crop)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import convforge.nn.functional as F
from conftest import to_torch, torch


@settings(max_examples=300, deadline=None)
@given(ndim=st.integers(1, 3), mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
       data=st.data())
def test_pad_matches_torch(ndim, mode, data):
    batch_dims = 2 if mode != "constant" else data.draw(st.integers(0, 2))
    sizes = tuple(data.draw(st.integers(1, 5)) for _ in range(ndim))
    x = np.random.default_rng(0).standard_normal((2,) * batch_dims + sizes)
    pads = []
    for n in reversed(sizes):
        limit = {"constant": 3, "reflect": n - 1, "replicate": 3, "circular": n}[mode]
        low = -n + 1 if mode == "constant" else 0
        pads += [data.draw(st.integers(low, limit)), data.draw(st.integers(low, limit))]
    if mode == "constant" and any(s + pads[2 * i] + pads[2 * i + 1] < 0 for i, s in enumerate(reversed(sizes))):
        return
    value = data.draw(st.sampled_from([0.0, 1.5])) if mode == "constant" else 0.0
    expected = torch.nn.functional.pad(to_torch(x), pads, mode=mode, value=value if mode == "constant" else None)
    np.testing.assert_array_equal(F.pad(x, tuple(pads), mode=mode, value=value), expected.numpy())


def test_pad_example():
    assert F.pad(np.arange(4.0), (2, 1), mode="reflect").tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0]
    assert F.pad(np.arange(4.0), (1, 1), mode="circular").tolist() == [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]


@settings(max_examples=200, deadline=None)
@given(ndim=st.integers(1, 3), data=st.data())
def test_replicate_crops_and_pads_as_torch(ndim, data):
    """torch clamps every output index into the input: a crop larger than the input still copies its edge
    (``pad(x (5, 3, 4, 4), (-4, 5, 0, 0))`` is five copies of ``x[..., 3]``); the gradient agrees with autograd."""
    from convforge._padding import pad_backward
    sizes = tuple(data.draw(st.integers(1, 5)) for _ in range(ndim))
    x = np.random.default_rng(0).standard_normal((2, 3) + sizes)
    pads = []
    for n in reversed(sizes):
        lo = data.draw(st.integers(-n - 2, 4))
        pads += [lo, data.draw(st.integers(max(1 - n - lo, -n - 2), 4))]     # output size >= 1
    tx = to_torch(x).requires_grad_()
    expected = torch.nn.functional.pad(tx, pads, mode="replicate")
    y = F.pad(x, tuple(pads), mode="replicate")
    np.testing.assert_array_equal(y, expected.detach().numpy())
    gy = np.random.default_rng(1).standard_normal(y.shape)
    expected.backward(to_torch(gy))
    np.testing.assert_allclose(pad_backward(gy, tuple(pads), mode="replicate"), tx.grad.numpy(), rtol=1e-12,
                               atol=1e-12)


def test_replicate_crop_past_the_input_is_the_edge():
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 4))
    y = F.pad(x, (-4, 5, 0, 0), mode="replicate")
    assert y.shape == (5, 3, 4, 5)
    np.testing.assert_array_equal(y, np.repeat(x[..., 3:], 5, axis=-1))


def test_pad_to_a_negative_size_names_the_sizes():
    with pytest.raises(ValueError, match="negative size"):
        F.pad(np.ones((1, 4)), (-6, 0), mode="replicate")

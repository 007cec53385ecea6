"""Every recorded operation: float64 finite differences along random directions (<g, v> against
(f(x + h v) - f(x - h v)) / 2h), and the same gradient as torch autograd."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import convforge
from conftest import assert_close, to_torch, torch

# (name, convforge/numpy expression, torch expression, input shapes); inputs are positive where a log/sqrt needs it
OPS = [
    ("add-broadcast", lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    ("sub", lambda a, b: a - b * 2, lambda a, b: a - b * 2, [(3, 1), (1, 4)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(2, 3), (2, 3)]),
    ("div", lambda a, b: a / (b + 3), lambda a, b: a / (b + 3), [(2, 3), (3,)]),
    ("rdiv-neg", lambda a: -(1.0 / (a + 3)), lambda a: -(1.0 / (a + 3)), [(4,)]),
    ("pow", lambda a, b: (abs(a) + 1) ** (b * 0.5), lambda a, b: (abs(a) + 1) ** (b * 0.5), [(3,), (3,)]),
    ("square-sqrt", lambda a: np.sqrt(a ** 2 + 1), lambda a: torch.sqrt(a ** 2 + 1), [(5,)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("matvec", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4,)]),
    ("vecmat", lambda a, b: np.matmul(a, b), lambda a, b: a @ b, [(3,), (2, 3, 4)]),
    ("exp-log", lambda a: np.log(np.exp(a) + 1), lambda a: torch.log(torch.exp(a) + 1), [(3, 3)]),
    ("tanh-abs", lambda a: np.tanh(a) * np.abs(a), lambda a: torch.tanh(a) * a.abs(), [(6,)]),
    ("maximum-minimum", lambda a, b: np.maximum(a, b) - np.minimum(a, 0.2),
     lambda a, b: torch.maximum(a, b) - torch.clamp(a, max=0.2), [(4, 3), (3,)]),
    ("clip", lambda a: np.clip(a, -0.5, 0.4) + a.clip(-1, 1), lambda a: a.clamp(-0.5, 0.4) + a.clamp(-1, 1),
     [(10,)]),
    ("where", lambda a, b: np.where(a > 0, a * 2, b), lambda a, b: torch.where(a > 0, a * 2, b), [(3, 4), (4,)]),
    ("sum-mean-axes", lambda a: a.sum(axis=(0, 2)) * a.mean(1).sum() + np.mean(a, axis=-1, keepdims=True).sum(),
     lambda a: a.sum((0, 2)) * a.mean(1).sum() + a.mean(-1, keepdim=True).sum(), [(2, 3, 4)]),
    ("max-amax-min", lambda a: a.max(axis=1) + np.amax(a, axis=0).sum() - a.min(),
     lambda a: a.amax(1) + a.amax(0).sum() - a.amin(), [(3, 4)]),
    ("reshape-view-flatten", lambda a: a.reshape(4, 6)[1:] * a.view(24)[:6].reshape(1, 6) + a.flatten(1).sum(),
     lambda a: a.reshape(4, 6)[1:] * a.view(24)[:6].reshape(1, 6) + a.flatten(1).sum(), [(2, 3, 4)]),
    ("transpose-permute-T", lambda a: a.transpose(2, 0, 1) * 2 + a.permute(2, 0, 1) - np.transpose(a, (2, 0, 1)),
     lambda a: a.permute(2, 0, 1) * 2 + a.permute(2, 0, 1) - a.permute(2, 0, 1), [(2, 3, 4)]),
    ("swapaxes-T-squeeze", lambda a: a.swapaxes(0, 1).T.squeeze(2) + a[:, 0:1, :].squeeze().sum(),
     lambda a: a.transpose(0, 1).permute(2, 1, 0).squeeze(2) + a[:, 0:1, :].squeeze().sum(), [(2, 1, 3)]),
    ("advanced-index", lambda a: a[[0, 2, 0], 1:] * 2 + a[a[:, 0] > -10][:, [1, 1]].sum(),
     lambda a: a[[0, 2, 0], 1:] * 2 + a[a[:, 0] > -10][:, [1, 1]].sum(), [(3, 3)]),
    ("cat-stack", lambda a, b: convforge.cat([a, b, a], 1) + convforge.stack([a, b], 1).sum(2).sum(1)[:, None],
     lambda a, b: torch.cat([a, b, a], 1) + torch.stack([a, b], 1).sum(2).sum(1)[:, None], [(2, 3), (2, 3)]),
    ("np-concatenate-stack", lambda a, b: np.concatenate([a, b]) * np.stack([a, b]).reshape(4, 3),
     lambda a, b: torch.cat([a, b]) * torch.stack([a, b]).reshape(4, 3), [(2, 3), (2, 3)]),
    ("astype-copy-iter", lambda a: a.astype(np.float64).copy() * sum(row.sum() for row in a),
     lambda a: a.clone() * sum(row.sum() for row in a), [(3, 2)]),
    ("unsqueeze-expand-dims", lambda a: a.unsqueeze(0) * np.expand_dims(a, 1).sum(),
     lambda a: a.unsqueeze(0) * a.unsqueeze(1).sum(), [(3,)]),
]


def _scalar(out):
    """A fixed random linear functional of the output, so every output element matters."""
    shape = tuple(out.shape)
    w = np.cos(np.arange(int(np.prod(shape))) * 1.7).reshape(shape)
    return (out * (w if isinstance(out, np.ndarray) else to_torch(w))).sum()


@pytest.mark.parametrize("name, ours, theirs, shapes", OPS, ids=[o[0] for o in OPS])
def test_recorded_op_gradients(name, ours, theirs, shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))   # hash() of a str changes per process
    values = [rng.standard_normal(s) for s in shapes]
    xs = [convforge.tensor(v, requires_grad=True) for v in values]
    out = _scalar(ours(*xs))
    out.backward()
    ts = [to_torch(v).requires_grad_() for v in values]
    out_t = _scalar(theirs(*ts))
    out_t.backward()
    assert_close(out, out_t.detach().numpy(), what="value")
    for x, t in zip(xs, ts):
        assert_close(x.grad, t.grad.numpy(), what="gradient")
    # finite differences along a random direction (tensors that record nothing)
    directions = [rng.standard_normal(s) for s in shapes]
    h = 1e-6
    with convforge.no_grad():
        plus = float(_scalar(ours(*[convforge.tensor(v + h * d) for v, d in zip(values, directions)])))
        minus = float(_scalar(ours(*[convforge.tensor(v - h * d) for v, d in zip(values, directions)])))
    numeric = (plus - minus) / (2 * h)
    analytic = sum(float(np.sum(x.grad * d)) for x, d in zip(xs, directions))
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def test_function_api_as_torch():
    class Cube(convforge.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            assert type(x) is np.ndarray              # authors see plain arrays, never Tensor
            return x ** 3 * k, np.argmax(x)

        @staticmethod
        def backward(ctx, grad, grad_index):
            (x,) = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False)
            return 3 * x ** 2 * ctx.k * grad, None

    x = convforge.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y, idx = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward" and idx.grad_fn is None and not idx.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    plain, _ = Cube.apply(np.array([1.0]), 1.0)
    assert type(plain) is np.ndarray                  # plain arrays in, plain arrays out


def test_function_returning_a_wrong_gradient_shape_is_named():
    class Bad(convforge.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return np.ones(7)

    with pytest.raises(RuntimeError, match=r"Function BadBackward returned an invalid gradient at index 0 - got "
                                           r"shape \[7\] but expected shape compatible with \[2, 3\]"):
        Bad.apply(convforge.tensor(np.ones((2, 3)), requires_grad=True)).sum().backward()

"""``F.interpolate`` against ``torch.nn.functional.interpolate`` over a grid of modes, sizes, scale factors and
``align_corners``: forward and input gradient, float64 within 1e-10 and float32 within 1e-5, and torch's errors."""
import numpy as np
import pytest
import torch

import convforge
import convforge.nn.functional as F
from conftest import assert_close

MODES = [("nearest", 1), ("nearest", 2), ("nearest", 3), ("nearest-exact", 1), ("nearest-exact", 2),
         ("linear", 1), ("bilinear", 2), ("trilinear", 3)]
RESIZES = [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=1.7), dict(scale_factor=0.5),
           dict(scale_factor=0.3), dict(scale_factor=2.5, recompute_scale_factor=True), dict(size=7), dict(size=2),
           dict(size=1), "per-dim"]


def _resize(kw, n):
    return dict(scale_factor=(2.0, 0.75, 1.5)[:n]) if kw == "per-dim" else kw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode,n", MODES)
def test_interpolate_grid_against_torch(mode, n, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, 3) + (5, 4, 6)[:n]).astype(dtype)
    corners = [None] if mode.startswith("nearest") else [False, True]
    for align_corners in corners:
        for resize in RESIZES:
            kw = dict(_resize(resize, n), mode=mode, align_corners=align_corners)
            xc = convforge.tensor(x, requires_grad=True)
            xt = torch.tensor(x, requires_grad=True)
            y = F.interpolate(xc, **kw)
            yt = torch.nn.functional.interpolate(xt, **kw)
            assert_close(np.asarray(y), yt.detach().numpy(), what=f"forward {kw}")
            g = rng.standard_normal(y.shape).astype(dtype)
            y.backward(g)
            yt.backward(torch.tensor(g))
            assert_close(xc.grad, xt.grad.numpy(), what=f"grad {kw}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_nearest_index_rounding_matches_torch(dtype):
    """Nearest source indices computed in the input's precision, as torch does: every size and some scales where
    ``o * scale`` lands next to an integer."""
    for i in range(1, 40):
        for o in (3, 7, 13, 29, 41, 97):
            x = np.arange(i, dtype=dtype).reshape(1, 1, i)
            got = F.interpolate(x, size=o)
            want = torch.nn.functional.interpolate(torch.tensor(x), size=o).numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{i} -> {o}")
        for s in (0.3, 1.1, 2.2, 3.7):
            if int(i * s) == 0:
                continue
            x = np.arange(i, dtype=dtype).reshape(1, 1, i)
            got = F.interpolate(x, scale_factor=s)
            want = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=s).numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{i} * {s}")


def test_interpolate_errors_like_torch():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"only one of size or scale_factor should be defined"):
        F.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match=r"either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match=r"align_corners option can only be set with the interpolating modes"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match=r"output size of \[3\]"):
        F.interpolate(x, size=[3])
    with pytest.raises(ValueError, match=r"sizes should be greater than 0.*output \(0, 0\)"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"mode 'bicubic' is not supported"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"output would have shape \(1, 2, 4000000000, 4000000000\)"):
        F.interpolate(x, scale_factor=1e9)
    with pytest.raises(ValueError, match=r"output would have shape"):
        F.adaptive_avg_pool2d(x, 10 ** 7)
    with pytest.raises(ValueError, match=r"expected a 3D, 4D or 5D input"):
        F.interpolate(np.zeros((2, 2)), scale_factor=2)

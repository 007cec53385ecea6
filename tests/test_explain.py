"""convforge.explain: the traced sums of products equal the engine's output (and torch's), for conv and
transposed conv, grouped, dilated, padded, 1-D to 3-D."""
import random

import numpy as np
import pytest

import convforge
import convforge.nn as nn
from convforge import explain

torch = pytest.importorskip("torch")


def test_issue_example_conv1d():
    e = explain("Conv1d(1, 1, 3, bias=False)", np.arange(16), weight=[0.1, 0.2, 0.3], at=[0])
    assert e.positions[0].equation == "y[0] = 0×0.1 + 1×0.2 + 2×0.3 = 0.8"
    assert "y[0] = 0×0.1 + 1×0.2 + 2×0.3 = 0.8" in e.text
    assert e.positions[0].engine_value == pytest.approx(0.8, rel=1e-15)
    assert "floor((16 + 0 + 0 - 1×(3-1) - 1) / 1) + 1 = 14" in e.text
    assert e.params == 3 and e.weight_shape == (1, 1, 3) and e.bias_shape is None
    ref = torch.nn.functional.conv1d(torch.arange(16.0, dtype=torch.float64).view(1, 1, -1),
                                     torch.tensor([[[0.1, 0.2, 0.3]]], dtype=torch.float64))
    np.testing.assert_allclose(e.output, ref.numpy(), rtol=1e-12)


def _random_case(rng, transposed):
    nd = rng.choice([1, 1, 2, 3])
    g = rng.choice([1, 2])
    cin, cout = g * rng.randint(1, 2), g * rng.randint(1, 2)
    k = tuple(rng.randint(1, 3) for _ in range(nd))
    s = tuple(rng.randint(1, 3) for _ in range(nd))
    d = tuple(rng.randint(1, 2) for _ in range(nd))
    p = tuple(rng.randint(0, 1) for _ in range(nd))
    kw = dict(stride=s, padding=p, dilation=d, groups=g, bias=rng.random() < 0.5, dtype=np.float64)
    if transposed:
        kw["output_padding"] = tuple(rng.randint(0, max(a, b) - 1) for a, b in zip(s, d))
        layer = getattr(nn, f"ConvTranspose{nd}d")(cin, cout, k, **kw)
    else:
        if rng.random() < 0.3:
            kw["padding_mode"] = rng.choice(["reflect", "circular", "replicate"])
        layer = getattr(nn, f"Conv{nd}d")(cin, cout, k, **kw)
    x = np.random.default_rng(rng.randint(0, 1 << 30)).standard_normal((rng.randint(1, 2), cin) +
                                                                       tuple(rng.randint(3, 5) for _ in range(nd)))
    return layer, x


@pytest.mark.parametrize("transposed", [False, True])
def test_explained_values_equal_the_engine_and_torch(transposed):
    rng = random.Random(3 + transposed)
    checked = 0
    for _ in range(40):
        layer, x = _random_case(rng, transposed)
        try:
            y_module = layer(x)
        except ValueError:
            with pytest.raises(ValueError):
                explain(layer, x)
            continue
        checked += 1
        out = explain(layer, x).output
        np.testing.assert_allclose(out, y_module, rtol=1e-12, atol=1e-12)
        # torch, through the same weights
        name = type(layer).__name__
        kw = dict(stride=layer.stride, dilation=layer.dilation, groups=layer.groups, bias=layer.bias is not None)
        if transposed:
            kw.update(padding=layer.padding, output_padding=layer.output_padding)
        else:
            kw.update(padding=layer.padding, padding_mode=layer.padding_mode)
        ref = getattr(torch.nn, name)(layer.in_channels, layer.out_channels, layer.kernel_size, **kw).double()
        ref.weight.data = torch.from_numpy(np.asarray(layer.weight))
        if layer.bias is not None:
            ref.bias.data = torch.from_numpy(np.asarray(layer.bias))
        y_torch = ref(torch.from_numpy(x)).detach().numpy()
        positions = [tuple(rng.randrange(n) for n in out.shape) for _ in range(4)]
        e = explain(layer, x, at=positions)
        for pos, trace in zip(positions, e.positions):
            assert trace.output_index == pos
            assert trace.value == pytest.approx(y_torch[pos], rel=1e-12, abs=1e-12)
            assert trace.engine_value == pytest.approx(trace.value, rel=1e-12, abs=1e-12)
            # the listed products are exactly the real input cells meeting the weights
            assert all(t.x == e_x for t, e_x in zip(trace.terms, [x_val(layer, x, t) for t in trace.terms]))
            if layer.bias is not None:
                assert trace.bias == layer.bias[pos[1]]
    assert checked >= 25


def x_val(layer, x, term):
    if getattr(layer, "padding_mode", "zeros") != "zeros":
        return term.x   # indices refer to the mode-padded input
    return x[term.input_index]


def test_transposed_both_views_and_output_padding():
    e = explain("ConvTranspose1d(1, 1, 3, stride=2, padding=1, output_padding=1)", np.arange(4.0),
                weight=[1, 10, 100], bias=[0.5], at=[0, 7])
    assert e.output_shape == (1, 1, 8)
    assert e.positions[1].equation == "y[7] = 3×100 + 0.5 (bias) = 300.5"
    assert "same value from the expanded-input convolution: 300.5" in e.text
    assert "0 x0 0 x1 0 x2 0 x3 0 0" in e.text
    assert "output_padding=1 adds 1 cell(s) at the end (7 -> 8)" in e.text and "not zeros" in e.text
    assert "input [0] spreads its kernel onto outputs [-1] (cropped), [0], [1]" in e.text
    # without padding on the high side the extra cell gets no product: only the bias
    e = explain("ConvTranspose1d(1, 1, 3, stride=2, output_padding=1)", np.arange(4.0), weight=[1, 1, 1],
                bias=[0.25], at=[-1])
    assert e.positions[0].terms == [] and e.positions[0].value == 0.25 == e.positions[0].engine_value
    assert "they hold only the bias" in e.text


def test_formulas_padding_split_and_groups_in_text():
    e = explain(nn.Conv2d(8, 14, (3, 2), stride=(2, 1)), (5, 8, 10, 5))
    assert e.output_shape == (5, 14, 4, 4) and e.params == 686
    assert "count = out×(in/groups)×prod(kernel) + out = 14×8×3×2 + 14 = 686" in e.text
    assert "floor((10 + 0 + 0 - 1×(3-1) - 1) / 2) + 1 = 4" in e.text
    e = explain("Conv1d(2, 2, 4, padding='same', groups=2)", (1, 2, 9))
    assert e.dims[0].padding == (1, 2) and "3 -> (1, 2)" in e.text and "depthwise" in e.text
    e = explain("ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4)", (2, 4, 8, 8))
    assert e.macs == 4608 and e.params == 4 * 1 * 9 + 4 and "(in, out/groups, *kernel) = (4, 4/4, 3, 3)" in e.text
    assert e.to_dict()["dims"][0]["padding"] == [1, 1]


def test_explain_errors():
    with pytest.raises(ValueError, match=r"at=\.\.\.\) needs an input array"):
        explain("Conv1d(1, 1, 3)", (1, 1, 8), at=[0])
    with pytest.raises(ValueError, match=r"output position \(0, 0, 6\) is outside the output of shape \[1, 1, 6\]"):
        explain("Conv1d(1, 1, 3)", np.zeros(8), at=[6])
    with pytest.raises(ValueError, match=r"weight needs 3 values for shape \[1, 1, 3\], got 2"):
        explain("Conv1d(1, 1, 3)", np.zeros(8), weight=[1, 2])
    with pytest.raises(ValueError, match=r"expects 3 input channels, got input of shape \[1, 4, 8, 8\]"):
        explain("Conv2d(3, 1, 3)", (1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"Conv1d on input \[1, 1, 2\]: padded input size 2"):
        explain("Conv1d(1, 1, 3)", (1, 1, 2))
    with pytest.raises(TypeError, match="explain expects a convolution layer"):
        explain(nn.ReLU(), (1, 1, 2))
    assert convforge.explain is explain


def test_product_list_names_the_channel_of_every_factor():
    e = explain("Conv2d(2, 2, 2, bias=False)", np.arange(18.0).reshape(1, 2, 3, 3), at=[(1, 0, 0)],
                weight=np.arange(16.0))
    line = next(s for s in e.text.splitlines() if "products (" in s)
    assert "products (x[channel, input]·w[out, in/groups, tap])" in line
    listed = line.split("): ", 1)[1].split(", x")
    terms = e.positions[0].terms
    assert len(listed) == len(terms) == 8
    for text, t in zip(listed, terms):   # each factor's full index: channel included, so no two are alike
        assert f"[{', '.join(map(str, t.input_index[1:]))}]·w[{', '.join(map(str, t.weight_index))}]" in text
    assert len(set(listed)) == 8
    one = explain("Conv1d(1, 1, 3, bias=False)", np.arange(6.0), at=[0], weight=[1, 2, 3]).text
    assert "products (spatial indices x[input]·w[tap]): x[0]·w[0], x[1]·w[1], x[2]·w[2]" in one
    tr = explain("ConvTranspose1d(2, 2, 2, groups=2, bias=False)", np.arange(6.0).reshape(1, 2, 3), at=[(1, 1)])
    assert "w[in, out/groups, tap]): x[1, 0]·w[1, 0, 1], x[1, 1]·w[1, 0, 0]" in tr.text

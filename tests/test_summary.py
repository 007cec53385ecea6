"""convforge.summary: known answers, torch's FlopCounterMode and real output shapes, and a brute-force count of
the multiply-adds the plain-loop reference performs."""
import json
import random

import numpy as np
import pytest

import convforge
import convforge.nn as nn
from convforge import _reference, summary
from convforge._indexing import conv_window, transpose_scatter

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


# -- known answers ----------------------------------------------------------------------------------------------
def test_known_answers():
    s = summary(nn.Conv2d(8, 14, (3, 2), stride=(2, 1)), (5, 8, 10, 5))
    assert s.layers[0].output_shape == (5, 14, 4, 4) and s.total_params == 686
    assert s.layers[0].params == 686 and s.layers[0].macs == 5 * 14 * 16 * 8 * 6
    assert summary(nn.Conv2d(256, 256, 3), (1, 256, 5, 5)).total_params == 590_080
    t = summary(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4), (2, 4, 8, 8))
    assert t.total_macs == 4608 and t.total_flops == 9216 and t.layers[0].flops == 9216
    assert t.layers[0].output_shape == (2, 4, 16, 16)


# -- against torch ----------------------------------------------------------------------------------------------
def _random_layer(rng, transposed):
    nd = rng.choice([1, 2, 3])
    g = rng.choice([1, 1, 2, 3])
    cin, cout = g * rng.randint(1, 3), g * rng.randint(1, 3)
    if rng.random() < 0.2:   # depthwise
        cout = cin = g
    k = tuple(rng.randint(1, 3) for _ in range(nd))
    s = tuple(rng.randint(1, 3) for _ in range(nd))
    d = tuple(rng.randint(1, 2) for _ in range(nd))
    p = tuple(rng.randint(0, 1 if transposed else 2) for _ in range(nd))
    kw = dict(stride=s, padding=p, dilation=d, groups=g, bias=rng.random() < 0.5)
    if transposed:
        kw["output_padding"] = tuple(rng.randint(0, max(a, b) - 1) for a, b in zip(s, d))
    elif rng.random() < 0.2:
        kw.update(padding="same", stride=1)
    name = ("ConvTranspose" if transposed else "Conv") + f"{nd}d"
    sizes = tuple(rng.randint(4, 7) for _ in range(nd))
    return name, (cin, cout, k), kw, (rng.randint(1, 2), cin) + sizes


def _torch_flops(module, x):
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    return counter.get_total_flops(), tuple(y.shape)


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("transposed", [False, True])
def test_counts_and_shapes_match_torch_flop_counter(transposed):
    rng = random.Random(11 + transposed)
    for _ in range(60):
        name, args, kw, shape = _random_layer(rng, transposed)
        ours = getattr(nn, name)(*args, **kw)
        ref = getattr(torch.nn, name)(*args, **kw)
        flops, out_shape = _torch_flops(ref, torch.zeros(shape))
        s = summary(ours, shape)
        row = s.layers[0]
        assert row.output_shape == out_shape, (name, args, kw, shape)
        assert row.flops == flops and s.total_flops == flops and row.macs * 2 == flops, (name, args, kw, shape)
        assert s.total_params == sum(p.numel() for p in ref.parameters())


def _counting_reference(module, shape):
    """Run the plain-loop reference on object arrays whose products count themselves."""
    count = [0]

    class Counted:
        __slots__ = ()

        def __mul__(self, other):
            count[0] += 1
            return 0

        __rmul__ = __mul__

    x = np.empty(shape, dtype=object)
    x.fill(Counted())
    w = np.empty(module.weight.shape, dtype=object)
    w.fill(Counted())
    n = len(module.kernel_size)
    pads = tuple((p, p) for p in module.padding) if not isinstance(module.padding, str) else \
        module.padding_pairs(shape[2:])
    if module.transposed:
        _reference.conv_transpose_reference(x, w, None, module.stride, pads, module.output_padding, module.groups,
                                            module.dilation)
    else:
        _reference.conv_reference(x, w, None, module.stride, pads, module.dilation, module.groups)
    # every tap the loops visit (on padding or cropped too): the FlopCounterMode convention
    kernel = module.kernel_size
    visited = 0
    out_sizes = summary(module, shape).layers[0].output_shape[2:]
    if module.transposed:
        per_group = module.out_channels // module.groups
        for pos in np.ndindex(*shape[2:]):
            visited += sum(1 for _ in transpose_scatter(pos, kernel, module.stride, pads, module.dilation,
                                                        out_sizes)) * per_group * shape[1] * shape[0]
    else:
        per_group = shape[1] // module.groups
        for pos in np.ndindex(*out_sizes):
            visited += sum(1 for _ in conv_window(pos, kernel, module.stride, pads, module.dilation,
                                                  shape[2:])) * per_group * module.out_channels * shape[0]
    assert n == len(shape) - 2
    return count[0], visited


@pytest.mark.parametrize("transposed", [False, True])
def test_counts_match_a_brute_force_count_of_the_loop_reference(transposed):
    rng = random.Random(5 + transposed)
    checked = padded = 0
    for _ in range(25):
        name, args, kw, shape = _random_layer(rng, transposed)
        if name.endswith("3d"):
            continue
        checked += 1
        module = getattr(nn, name)(*args, **kw)
        performed, visited = _counting_reference(module, shape)
        row = summary(module, shape).layers[0]
        assert row.effective_macs == performed, (name, args, kw, shape)
        assert row.macs == visited, (name, args, kw, shape)
        assert row.effective_macs <= row.macs
        padded += row.effective_macs < row.macs
    assert checked >= 12 and padded >= 3   # both conventions differ on padded layers, and both are checked


# -- companion layers -------------------------------------------------------------------------------------------
def _pair(layers):
    ours = nn.Sequential(*[getattr(nn, name)(*a, **k) for name, a, k in layers])
    ref = torch.nn.Sequential(*[getattr(torch.nn, name)(*a, **k) for name, a, k in layers])
    return ours, ref


SMALL_CNN = [("Conv2d", (3, 8, 3), dict(padding=1)), ("BatchNorm2d", (8,), {}), ("ReLU", (), {}),
             ("Conv2d", (8, 8, 3), dict(stride=2, groups=8, dilation=2)), ("LeakyReLU", (0.1,), {}),
             ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True)), ("SiLU", (), {}),
             ("Conv2d", (8, 16, 1), dict(bias=False)), ("Hardswish", (), {}),
             ("Upsample", (), dict(scale_factor=2)), ("ConvTranspose2d", (16, 4, 4), dict(stride=2, padding=1)),
             ("AvgPool2d", (2,), {}), ("Sigmoid", (), {}), ("AdaptiveAvgPool2d", ((2, 3),), {}),
             ("Dropout", (0.1,), {}), ("Flatten", (), {}), ("Linear", (24, 10), {})]


def test_companion_layers_against_torch_and_a_real_forward():
    ours, ref = _pair(SMALL_CNN)
    shape = (2, 3, 19, 17)
    s = summary(ours, shape)
    flops, out_shape = _torch_flops(ref.eval(), torch.zeros(shape))
    assert s.output_shape == out_shape and s.total_flops == flops
    assert s.total_params == sum(p.numel() for p in ref.parameters())
    # per-layer shapes: every intermediate output of torch, and our own forward pass
    x, t = np.zeros(shape, np.float32), torch.zeros(shape)
    ours.eval()
    for row, m, r in zip(s.layers, ours, ref.eval()):
        x, t = np.asarray(m(x), np.float32), r(t)   # (AdaptiveAvgPool2d currently returns float64)
        assert row.output_shape == x.shape == tuple(t.shape), row.name
        assert row.activation_bytes == x.size * 4
    assert [row.type for row in s.layers] == [name for name, _, _ in SMALL_CNN]
    assert s.layers[-1].receptive_field is None and s.layers[0].receptive_field.size == (3, 3)


def test_receptive_field_column_matches_shapes_receptive_field():
    layers = [nn.Conv2d(1, 2, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1), nn.Conv2d(2, 2, 3, dilation=2)]
    s = summary(nn.Sequential(*layers), (1, 1, 64, 64))
    assert s.layers[-1].receptive_field == convforge.shapes.receptive_field(layers) == ((27, 27), (4, 4), (-5, -5))


def test_user_module_children_are_walked_in_order_and_output_shape_hook():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = nn.Conv1d(4, 2, 1)

    class Squeeze(nn.Module):
        def output_shape(self, shape):
            return shape[:2] + (shape[2] * shape[3],)

    net = Net()
    net.add_module("head", None)
    s = summary(nn.Sequential(Block(), Squeeze(), nn.Conv1d(4, 2, 1)), (1, 3, 6, 6))
    assert [r.name for r in s.layers] == ["0.conv", "0.act", "1", "2"]
    assert s.output_shape == (1, 2, 16)
    assert s.total_params == 3 * 4 * 9 + 4 + 4 * 2 + 2
    assert summary(net, (1, 3, 6, 6)).output_shape == (1, 4, 4, 4)


def test_unbatched_input_and_trainable_params():
    conv = nn.Conv1d(2, 3, 3)
    conv.bias.requires_grad = False
    s = summary(conv, (2, 10))
    assert s.output_shape == (3, 8) and s.total_macs == 3 * 8 * 2 * 3
    assert (s.total_params, s.trainable_params) == (21, 18)


# -- errors and output formats ----------------------------------------------------------------------------------
def test_errors_name_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2d expects 3 input channels, but the input of shape \[1, 32, 32, 3\] "
                                         r"has 32; the input looks channels-last"):
        summary(nn.Conv2d(3, 8, 3), (1, 32, 32, 3))
    with pytest.raises(ValueError, match=r"Conv2d on input \[1, 3, 2, 2\]: padded input size 2 .* smaller than the "
                                         r"dilated kernel size 3"):
        summary(nn.Conv2d(3, 8, 3), (1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"Conv2d expects a 3D \(unbatched\) or 4D \(batched\) input, got shape "
                                         r"\[3, 8\]"):
        summary(nn.Conv2d(3, 8, 3), (3, 8))
    with pytest.raises(ValueError, match=r"Linear expects the last dimension to be in_features=10.*add a Flatten"):
        summary(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Linear(10, 2)), (1, 3, 4, 4))
    with pytest.raises(ValueError, match="input_size must be a tuple of non-negative ints"):
        summary(nn.Conv2d(3, 8, 3), (1, 3, "a"))

    class Mystery(nn.Module):
        pass
    with pytest.raises(ValueError, match="summary does not know how Mystery changes shapes"):
        summary(Mystery(), (1, 3))


def test_table_dict_and_json():
    s = summary(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2)),
                (1, 3, 32, 32))
    text = str(s)
    assert "Total params: 5,088" in text and "Total MACs: 1,479,168" in text and "0 (Conv2d)" in text
    assert "[1, 32, 15, 15]" in text
    d = json.loads(s.to_json())
    assert d == s.to_dict()
    assert d["total_flops"] == 2 * d["total_macs"] == s.total_flops
    assert d["layers"][2]["output_shape"] == [1, 32, 15, 15]
    assert d["layers"][2]["receptive_field"] == {"size": [5, 5], "jump": [2, 2], "start": [-1, -1]}


# -- issue 12: O(dims) summaries, torch's refusals ----------------------------------------------------------------
def test_summary_of_a_billion_long_input_is_arithmetic():
    import time
    start = time.perf_counter()
    s = summary(nn.Conv1d(1, 1, 3, padding=1), (1, 1, 10**9))
    assert time.perf_counter() - start < 1
    assert s.output_shape == (1, 1, 10**9) and s.total_macs == 3 * 10**9
    assert s.total_effective_macs == 3 * 10**9 - 2      # the two taps on the padding are not real work
    t = summary(nn.ConvTranspose2d(2, 2, 3, stride=10**6, padding=1), (1, 2, 10**6, 10**6))
    assert t.layers[0].effective_macs <= t.total_macs


@pytest.mark.parametrize("start, end, shape", [(5, 1, (1, 1, 4, 4)), (2, 1, (1, 3, 4, 4)), (0, 4, (2, 3, 4, 4)),
                                               (-5, -1, (2, 3, 4, 4)), (1, -1, (2, 3, 4, 4)), (-1, 3, (2, 3, 4, 4))])
def test_flatten_refuses_what_torch_refuses(start, end, shape):
    try:
        expected = tuple(torch.nn.Flatten(start, end)(torch.zeros(shape)).shape)
    except (IndexError, RuntimeError):
        with pytest.raises(ValueError, match=r"Flatten: (start_dim|end_dim)"):
            summary(nn.Flatten(start, end), shape)
    else:
        assert summary(nn.Flatten(start, end), shape).output_shape == expected


@pytest.mark.parametrize("kw", [dict(size=0), dict(size=(3, 0)), dict(scale_factor=0.1), dict(scale_factor=0.5)])
def test_upsample_refuses_empty_outputs_as_torch(kw):
    shape = (1, 1, 4, 4)
    try:
        expected = tuple(torch.nn.Upsample(**kw)(torch.zeros(shape)).shape)
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError, match="sizes should be greater than 0"):
            summary(nn.Upsample(**kw), shape)
    else:
        assert summary(nn.Upsample(**kw), shape).output_shape == expected


# -- modules with their own forward: traced, checked against torch's FlopCounterMode ---------------------------
def _block_layers(self, cin, cout, stride, mod):
    self.conv1 = mod.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
    self.bn1 = mod.BatchNorm2d(cout)
    self.relu = mod.ReLU()
    self.conv2 = mod.Conv2d(cout, cout, 3, padding=1, bias=False)
    self.bn2 = mod.BatchNorm2d(cout)
    self.down = (mod.Sequential(mod.Conv2d(cin, cout, 1, stride=stride, bias=False), mod.BatchNorm2d(cout))
                 if stride != 1 or cin != cout else None)


def _block_forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu(out + (x if self.down is None else self.down(x)))


class _Block(nn.Module):
    """torchvision's BasicBlock shape: one ReLU used twice, a skip connection, an optional strided 1x1 shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        _block_layers(self, cin, cout, stride, nn)

    forward = _block_forward


class _TorchBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        _block_layers(self, cin, cout, stride, torch.nn)

    forward = _block_forward


def _net(mod, block):
    head = mod.Sequential(mod.AdaptiveAvgPool2d(1), mod.Flatten(), mod.Linear(16, 10))
    return mod.Sequential(mod.Conv2d(3, 8, 3, padding=1), block(8, 8, 1), block(8, 16, 2), head)


def test_custom_forward_is_traced_and_counted_as_torch_counts():
    shape = (2, 3, 17, 17)
    s = summary(_net(nn, _Block), shape)
    tnet = _net(torch.nn, _TorchBlock).eval()
    with FlopCounterMode(display=False) as counter:
        out = tnet(torch.zeros(shape))
    assert s.output_shape == tuple(out.shape) == (2, 10)
    assert s.total_flops == counter.get_total_flops() > 0
    assert s.total_params == sum(p.numel() for p in tnet.parameters())
    names = [r.name for r in s.layers]
    assert names.count("1.relu") == 2 and "2.down.0" in names      # reuse counted per call; nested shortcut
    assert [r.macs for r in s.layers if r.name == "2.conv1"] == [2 * 16 * 9 * 9 * 8 * 9]


def test_traced_forward_failures_are_clear():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)[:, :, None] @ np.ones((7, 7))

    with pytest.raises(ValueError, match=r"summary runs Broken.forward on zeros of shape \[1, 3, 8, 8\]"):
        summary(Broken(), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="Conv2d expects 3 input channels"):
        summary(_Block(3, 3, 1), (1, 4, 8, 8))

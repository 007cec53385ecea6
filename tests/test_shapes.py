"""convforge.shapes against torch's real output sizes (meta tensors), TF's SAME splits, Dumoulin & Visin's
relationships, round trips, and receptive fields against torch autograd."""
import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from convforge import shapes

torch = pytest.importorskip("torch")
F = torch.nn.functional


def meta(*shape):
    return torch.empty(*shape, device="meta")


def torch_conv_size(i, k, s, p, d):
    try:
        return F.conv1d(meta(1, 1, i), meta(1, 1, k), stride=s, padding=p, dilation=d).shape[-1]
    except RuntimeError:
        return None


def real(*shape):
    # torch's meta kernels for transposed conv skip the output_padding and output-size checks: use tiny real ones
    return torch.zeros(*shape)


def torch_transpose_size(i, k, s, p, d, op):
    try:
        return F.conv_transpose1d(real(1, 1, i), real(1, 1, k), stride=s, padding=p, dilation=d,
                                  output_padding=op).shape[-1]
    except RuntimeError:
        return None


def ours(fn, *args):
    try:
        return fn(*args)
    except ValueError:
        return None


# -- against torch ----------------------------------------------------------------------------------------------
def test_conv_output_size_matches_torch_on_random_configs():
    rng = random.Random(0)
    errors = 0
    for _ in range(2500):
        i, k, s, p, d = rng.randint(0, 24), rng.randint(1, 7), rng.randint(1, 4), rng.randint(0, 4), rng.randint(1, 3)
        expected = torch_conv_size(i, k, s, p, d)
        errors += expected is None
        assert ours(shapes.conv_output_size, i, k, s, p, d) == expected, (i, k, s, p, d)
    assert errors > 100   # the error conditions are exercised too


def test_asymmetric_padding_equals_torch_on_the_prepadded_input():
    rng = random.Random(1)
    for _ in range(800):
        i, k, s, d = rng.randint(0, 20), rng.randint(1, 6), rng.randint(1, 4), rng.randint(1, 3)
        lo, hi = rng.randint(0, 4), rng.randint(0, 4)
        assert ours(shapes.conv_output_size, i, k, s, (lo, hi), d) == torch_conv_size(i + lo + hi, k, s, 0, d)


def test_conv_transpose_output_size_matches_torch_on_random_configs():
    rng = random.Random(2)
    errors = 0
    for _ in range(2500):
        i, k, s, p = rng.randint(0, 12), rng.randint(1, 6), rng.randint(1, 4), rng.randint(0, 5)
        d, op = rng.randint(1, 3), rng.randint(0, 3)
        expected = torch_transpose_size(i, k, s, p, d, op)
        if i == 0 and op < max(s, d):
            # torch's CPU kernel refuses an empty spatial input; its shape function (meta) gives the formula's size
            try:
                expected = F.conv_transpose1d(meta(1, 1, 0), meta(1, 1, k), stride=s, padding=p, dilation=d,
                                              output_padding=op).shape[-1]
            except RuntimeError:
                expected = None
        errors += expected is None
        assert ours(shapes.conv_transpose_output_size, i, k, s, p, d, op) == expected, (i, k, s, p, d, op)
    assert errors > 100


@pytest.mark.parametrize("nd", [2, 3])
def test_nd_shapes_match_torch(nd):
    rng = random.Random(nd)
    conv = {2: F.conv2d, 3: F.conv3d}[nd]
    convt = {2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    for _ in range(300):
        sizes = tuple(rng.randint(1, 12) for _ in range(nd))
        kernel = tuple(rng.randint(1, 4) for _ in range(nd))
        stride = tuple(rng.randint(1, 3) for _ in range(nd))
        padding = tuple(rng.randint(0, 2) for _ in range(nd))
        dilation = tuple(rng.randint(1, 2) for _ in range(nd))
        cin, groups = rng.choice([(2, 1), (4, 2), (3, 3)])
        x, w = meta(3, cin, *sizes), meta(6, cin // groups, *kernel)
        try:
            expected = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups).shape[2:]
        except RuntimeError:
            expected = None
        assert ours(shapes.conv_output_shape, sizes, kernel, stride, padding, dilation) == \
            (None if expected is None else tuple(expected))
        op = tuple(rng.randint(0, max(s, d) - 1) for s, d in zip(stride, dilation))
        try:
            # groups=1: torch 2.13's grouped (mkldnn) path returns a 0-size output where the plain path raises
            expected = convt(real(1, 1, *sizes), real(1, 1, *kernel), stride=stride, padding=padding,
                             output_padding=op, dilation=dilation).shape[2:]
        except RuntimeError:
            expected = None
        assert ours(shapes.conv_transpose_output_shape, sizes, kernel, stride, padding, dilation, op) == \
            (None if expected is None else tuple(expected))


def test_error_messages_name_the_sizes():
    with pytest.raises(ValueError, match=r"padded input size 4 \(input 2 \+ padding 1\+1\) is smaller than the "
                                         r"dilated kernel size 5 \(kernel 3, dilation 2\)"):
        shapes.conv_output_size(2, 3, padding=1, dilation=2)
    with pytest.raises(ValueError, match=r"output_padding \(2\) must be smaller than either stride \(2\) or "
                                         r"dilation \(1\)"):
        shapes.conv_transpose_output_size(4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output size would be -1 .*reduce the padding"):
        shapes.conv_transpose_output_size(1, 3, padding=2)
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        shapes.conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="dilation must be >= 1, got 0"):
        shapes.conv_output_size(5, 3, dilation=0)
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        shapes.conv_output_size(5, 3, padding=-1)
    with pytest.raises(ValueError, match="kernel size must be >= 1, got 0"):
        shapes.conv_output_size(5, 0)
    with pytest.raises(TypeError, match="stride must be an integer, got 1.5"):
        shapes.conv_output_size(5, 3, stride=1.5)
    with pytest.raises(ValueError, match=r"mode must be 'SAME_UPPER' or 'SAME_LOWER', got 'MIDDLE'"):
        shapes.same_padding(5, 3, mode="MIDDLE")
    with pytest.raises(ValueError, match=r"kernel must have 2 entries"):
        shapes.conv_output_shape((5, 5), (3, 3, 3))


# -- SAME -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i, k, s, expected", [(224, 7, 2, (2, 3)), (225, 7, 2, (3, 3)), (8, 3, 2, (0, 1)),
                                               (5, 4, 1, (1, 2)), (10, 1, 3, (0, 0)), (1, 5, 3, (2, 2))])
def test_same_padding_tf_known_values(i, k, s, expected):
    assert shapes.same_padding(i, k, stride=s) == expected
    assert shapes.same_padding(i, k, stride=s, mode="SAME_LOWER") == expected[::-1]


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_same_padding_properties_and_torch_same():
    for i, k, s, d in itertools.product(range(1, 14), range(1, 6), range(1, 4), range(1, 3)):
        lo, hi = shapes.same_padding(i, k, s, d)
        o = -(-i // s)
        assert hi - lo in (0, 1)
        assert shapes.conv_output_size(i, k, s, (lo, hi), d) == o
        # minimal: one less padding would lose an output (or padding is already zero)
        assert lo + hi == 0 or (i + lo + hi - 1 - d * (k - 1)) // s + 1 == o and \
            (i + lo + hi - 2 - d * (k - 1)) < (o - 1) * s
        if s == 1:  # PyTorch's padding='same' has this size and split (extra on the right)
            assert F.conv1d(meta(1, 1, i), meta(1, 1, k), padding="same", dilation=d).shape[-1] == i
            assert (lo, hi) == ((d * (k - 1)) // 2, d * (k - 1) - (d * (k - 1)) // 2)


def test_same_padding_against_torch_values_with_stride_one():
    # the split is visible in the values: pad explicitly with our (lo, hi) and compare with padding='same'
    x, w = torch.randn(1, 1, 9, dtype=torch.float64), torch.randn(1, 1, 4, dtype=torch.float64)
    lo, hi = shapes.same_padding(9, 4)
    assert torch.equal(F.conv1d(F.pad(x, (lo, hi)), w), F.conv1d(x, w, padding="same"))


# -- output_padding_for -----------------------------------------------------------------------------------------
def test_output_padding_for_round_trips():
    for i, k, s, p, d in itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), range(1, 3)):
        try:
            lo, hi = shapes.conv_transpose_output_range(i, k, s, p, d)
        except ValueError:
            continue
        for target in range(lo, hi + 1):
            op = shapes.output_padding_for(i, target, k, s, p, d)
            assert shapes.conv_transpose_output_size(i, k, s, p, d, op) == target
            assert torch_transpose_size(i, k, s, p, d, op) == target
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ValueError, match=rf"requested output size {bad} is not reachable: .* are {lo} to {hi}"):
                shapes.output_padding_for(i, bad, k, s, p, d)


def test_conv_then_transposed_recovers_every_input_size():
    for i, k, s, p in itertools.product(range(1, 20), range(1, 5), range(1, 4), range(0, 2)):
        o = ours(shapes.conv_output_size, i, k, s, p)
        if o is None or (o - 1) * s - 2 * p + k < 1:
            continue   # no conv output, or a transposed output of size < 1 (both rejected, as in torch)
        op = shapes.output_padding_for(o, i, k, s, p)
        assert shapes.conv_transpose_output_size(o, k, s, p, 1, op) == i


def test_multi_dim_helpers():
    assert shapes.output_paddings_for((4, 5), (8, 10), 3, stride=2, padding=1) == (1, 1)
    assert shapes.effective_kernel_shape((3, 3, 1), (2, 1, 5)) == (5, 3, 1)
    assert shapes.same_paddings((224, 225), 7, stride=2) == ((2, 3), (3, 3))
    assert shapes.conv_output_shape((10, 5), (3, 2), stride=(2, 1), padding=((1, 0), 0)) == (5, 4)
    with pytest.raises(ValueError, match=r"targets must have 2 entries"):
        shapes.output_paddings_for((4, 5), (8,), 3)


# -- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" ------------------------------------
# Each row: relationship number, the configurations it covers, and the guide's closed form.
def _conv(i, k, s=1, p=0, d=1):
    return shapes.conv_output_size(i, k, s, p, d)


GUIDE = [
    (1, "no padding, unit strides", lambda i, k, s, p: s == 1 and p == 0, lambda i, k, s, p: i - k + 1),
    (2, "padding, unit strides", lambda i, k, s, p: s == 1, lambda i, k, s, p: i - k + 2 * p + 1),
    (3, "half padding", lambda i, k, s, p: s == 1 and k % 2 and p == k // 2, lambda i, k, s, p: i),
    (4, "full padding", lambda i, k, s, p: s == 1 and p == k - 1, lambda i, k, s, p: i + k - 1),
    (5, "no padding, strides", lambda i, k, s, p: p == 0, lambda i, k, s, p: (i - k) // s + 1),
    (6, "padding, strides", lambda i, k, s, p: True, lambda i, k, s, p: (i + 2 * p - k) // s + 1),
    (7, "pooling", lambda i, k, s, p: p == 0, lambda i, k, s, p: (i - k) // s + 1),
]
# Transposed relationships 8-14: the transposed conv of a conv (i, k, s, p) maps i' = o back; the guide's o'.
GUIDE_T = [
    (8, "no padding, unit strides", lambda i, k, s, p: s == 1 and p == 0, lambda i2, k, s, p, a: i2 + (k - 1)),
    (9, "padding, unit strides", lambda i, k, s, p: s == 1, lambda i2, k, s, p, a: i2 + (k - 1) - 2 * p),
    (10, "half padding", lambda i, k, s, p: s == 1 and k % 2 and p == k // 2, lambda i2, k, s, p, a: i2),
    (11, "full padding", lambda i, k, s, p: s == 1 and p == k - 1, lambda i2, k, s, p, a: i2 - (k - 1)),
    (12, "no padding, strides, (i-k) % s == 0", lambda i, k, s, p: p == 0 and (i - k) % s == 0,
     lambda i2, k, s, p, a: s * (i2 - 1) + k),
    (13, "padding, strides, (i+2p-k) % s == 0", lambda i, k, s, p: (i + 2 * p - k) % s == 0,
     lambda i2, k, s, p, a: s * (i2 - 1) + k - 2 * p),
    (14, "padding, strides, a = (i+2p-k) % s", lambda i, k, s, p: True,
     lambda i2, k, s, p, a: s * (i2 - 1) + a + k - 2 * p),
]


def _guide_configs():
    for i, k, s, p in itertools.product(range(1, 16), range(1, 6), range(1, 4), range(0, 5)):
        if i + 2 * p >= k and p < k:
            yield i, k, s, p


@pytest.mark.parametrize("number, name, applies, formula", GUIDE, ids=[f"rel{r[0]}" for r in GUIDE])
def test_guide_direct_relationships(number, name, applies, formula):
    cases = [c for c in _guide_configs() if applies(*c)]
    assert len(cases) >= 5, name
    for i, k, s, p in cases:
        if number == 7:
            assert shapes.pool_output_size(i, k, s) == formula(i, k, s, p)
        assert _conv(i, k, s, p) == formula(i, k, s, p), (number, i, k, s, p)


@pytest.mark.parametrize("number, name, applies, formula", GUIDE_T, ids=[f"rel{r[0]}" for r in GUIDE_T])
def test_guide_transposed_relationships(number, name, applies, formula):
    cases = [c for c in _guide_configs() if applies(*c)]
    assert len(cases) >= 5, name
    for i, k, s, p in cases:
        i2 = _conv(i, k, s, p)
        a = (i + 2 * p - k) % s
        expected = formula(i2, k, s, p, a)
        assert expected == i  # the transposed conv recovers the conv's input size
        assert shapes.conv_transpose_output_size(i2, k, s, p, 1, a) == expected
        # ... and is the direct conv (unit stride, padding k-p-1) over the input with s-1 zeros inserted and
        # a extra cells at the end: the guide's equivalent convolution
        stretched = i2 + (i2 - 1) * (s - 1) + a
        assert _conv(stretched, k, 1, (k - p - 1, k - p - 1)) == expected


def test_guide_relationship_15_dilated():
    for i, k, s, p, d in itertools.product(range(1, 20), range(1, 5), range(1, 4), range(0, 3), range(1, 4)):
        if i + 2 * p < k + (k - 1) * (d - 1):
            continue
        assert _conv(i, k, s, p, d) == (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1


# -- receptive field --------------------------------------------------------------------------------------------
def _torch_dependencies(layers, length, out_index):
    """Input cells whose gradient reaches output ``out_index`` through a 1-D stack (positive weights)."""
    x = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
    y = x
    for kind, k, s, p, d in layers:
        if kind == "conv":
            y = F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d)
        else:
            y = F.conv_transpose1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d)
    y[0, 0, out_index].backward()
    return np.nonzero(x.grad[0, 0].numpy())[0]


def _random_stack(rng, transposed):
    layers = []
    for _ in range(rng.randint(1, 4)):
        kind = "transpose" if transposed and rng.random() < 0.5 else "conv"
        k, s, d = rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 2)
        layers.append((kind, k, s, rng.randint(0, d * (k - 1)), d))
    return layers


@pytest.mark.parametrize("transposed", [False, True])
def test_receptive_field_against_torch_autograd(transposed):
    rng = random.Random(7)
    checked = 0
    for _ in range(150):
        layers = _random_stack(rng, transposed)
        rf = shapes.receptive_field([shapes.RFStep(*layer) for layer in layers])
        length = 40
        try:
            out = length
            for kind, k, s, p, d in layers:
                out = (shapes.conv_output_size(out, k, s, p, d) if kind == "conv" else
                       shapes.conv_transpose_output_size(out, k, s, p, d))
        except ValueError:
            continue
        for n in {out // 2, out // 3}:
            first, last = rf.span(n)
            if first < 0 or last >= length:
                continue   # the receptive field reaches into the padding: not observable through gradients
            deps = _torch_dependencies(layers, length, n)
            if not transposed:
                assert (deps.min(), deps.max()) == (first, last), (layers, n)
            elif len(deps):
                assert first <= deps.min() and deps.max() <= last, (layers, n)
            checked += 1
    assert checked > 50


def test_receptive_field_known_values_and_inputs():
    # VGG-style: three 3x3 convs see 7x7; ResNet stem conv7/2 + maxpool3/2
    assert shapes.receptive_field([(3, 1, 1)] * 3) == (7, 1, -3)
    assert shapes.receptive_field([(7, 2, 3), (3, 2, 1)]) == (11, 4, -5)
    assert shapes.receptive_field([(3, 1, 0, 2)]).size == 5
    nd = shapes.receptive_field([{"kernel_size": (3, 5), "stride": (1, 2), "padding": ((1, 0), 2)}])
    assert nd == ((3, 5), (1, 2), (-1, -2))
    assert nd.center == (0, 0) and nd.span((1, 1)) == ((0, 2), (0, 4))
    up = shapes.receptive_field([shapes.RFStep("nearest", 1, 2)])
    assert up.jump == Fraction(1, 2) and up.span(1) == (Fraction(0), Fraction(1, 2))
    same = shapes.receptive_field([{"kernel_size": 4, "padding": "same"}])
    assert same.start == -1   # torch's 'same' split for k=4 is (1, 2)
    with pytest.raises(ValueError, match="padding='same' with stride > 1 depends on the input size"):
        shapes.receptive_field([{"kernel_size": 3, "stride": 2, "padding": "same"}])
    with pytest.raises(ValueError, match="unknown keys"):
        shapes.receptive_field([{"kernal": 3}])


def test_receptive_field_of_modules():
    import convforge.nn as nn
    layers = [nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, (3, 1), stride=2, dilation=(2, 1)),
              nn.ConvTranspose2d(2, 2, 2, stride=2)]
    rf = shapes.receptive_field(layers)
    assert rf == shapes.receptive_field([{"kernel_size": 3, "padding": 1},
                                         {"kernel_size": (3, 1), "stride": 2, "dilation": (2, 1)},
                                         {"kernel_size": 2, "stride": 2, "transposed": True}])
    assert rf.jump == (1, 1)
    if hasattr(nn, "Sequential") and hasattr(nn, "ReLU"):
        assert shapes.receptive_field(nn.Sequential(layers[0], nn.ReLU(), layers[1])) == \
            shapes.receptive_field(layers[:2])
    if hasattr(nn, "Linear"):
        with pytest.raises(ValueError, match="every output depends on the whole input"):
            shapes.receptive_field([nn.Linear(2, 2)])
    assert math.isclose(float(rf.size[0]), 3 + 4 + 1)   # 3, then + (5-1)*1, then + (2-1)*(1/2)*2


# -- real_taps: the per-dimension count behind summary's effective MACs, in O(log) steps ------------------------
def _real_taps_by_enumeration(i, o, k, s, lo, d):
    index = np.arange(o)[:, None] * s - lo + np.arange(k)[None, :] * d
    return int(np.count_nonzero((index >= 0) & (index < i)))


def test_real_taps_equals_enumeration():
    rng = random.Random(12)
    for _ in range(4000):
        i, o, k = rng.randint(0, 14), rng.randint(0, 14), rng.randint(1, 7)
        s, d, lo = rng.randint(1, 5), rng.randint(1, 4), rng.randint(0, 16)
        assert shapes.real_taps(i, o, k, s, (lo, 0), d) == _real_taps_by_enumeration(i, o, k, s, lo, d), \
            (i, o, k, s, lo, d)


def test_real_taps_is_arithmetic_not_enumeration():
    # sizes no enumeration could visit; the closed forms: every tap real, and a padded full-size output
    assert shapes.real_taps(10**15, 10**15 - 2, 3) == 3 * (10**15 - 2)
    assert shapes.real_taps(10**15, 10**15, 3, padding=1) == 3 * 10**15 - 2
    i, k, s, d, p = 10**14 + 7, 5, 3, 2, 4
    o = shapes.conv_output_size(i, k, s, p, d)
    by_tap = sum(len(range(max(0, -((t * d - p) // s)), min(o, (i - 1 - t * d + p) // s + 1))) for t in range(k))
    assert shapes.real_taps(i, o, k, s, p, d) == by_tap

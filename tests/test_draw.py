"""convforge.draw: frames agree with the engine's index machinery and its output values; writers produce valid
SVG / PNG / GIF; the command line works; errors are clear."""
import itertools
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convforge import _indexing, draw, nn
from convforge.draw import frames, geometry

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_SIZE = {1: 7, 2: 5, 3: 3}


@st.composite
def layers(draw_, transposed=None):
    """A random small layer and input shape (any rank, padding pairs, stride, dilation, groups, modes)."""
    n = draw_(st.integers(1, 3))
    tr = draw_(st.booleans()) if transposed is None else transposed
    groups = draw_(st.integers(1, 2))
    cin = groups * draw_(st.integers(1, 2))
    cout = groups * draw_(st.integers(1, 2))
    k = tuple(draw_(st.integers(1, 3)) for _ in range(n))
    s = tuple(draw_(st.integers(1, 3)) for _ in range(n))
    d = tuple(draw_(st.integers(1, 2)) for _ in range(n))
    pad = tuple((draw_(st.integers(0, 2)), draw_(st.integers(0, 2))) for _ in range(n))
    sizes = tuple(draw_(st.integers(1, MAX_SIZE[n])) for _ in range(n))
    bias = draw_(st.booleans())
    if tr:
        op = tuple(draw_(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
        layer = TRANSPOSED[n](cin, cout, k, stride=s, padding=pad, output_padding=op, groups=groups, dilation=d,
                              bias=bias)
    else:
        mode = draw_(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        layer = CONV[n](cin, cout, k, stride=s, padding=pad, dilation=d, groups=groups, bias=bias,
                        padding_mode=mode)
    return layer, (1, cin) + sizes


def _frames_or_refused(layer, shape, **kw):
    """The frames of a case the layer accepts; for a case the layer itself refuses (kernel larger than the padded
    input, reflect padding >= the size, ...) ``frames`` must refuse it too, and None comes back."""
    try:
        layer(np.zeros(shape, np.float32))
    except ValueError:
        with pytest.raises(ValueError):
            frames(layer, shape, channels="all", values=True, **kw)
        return None
    return frames(layer, shape, channels="all", values=True, **kw)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(layers(transposed=False))
def test_conv_frames_match_indexing_and_engine(case):
    layer, shape = case
    fs = _frames_or_refused(layer, shape)
    if fs is None:
        return
    geo = fs.geometry
    seen = set()
    for fr in fs:
        seen.add((fr.out_channel, fr.position))
        g = _indexing.group_of(fr.out_channel, geo.out_channels, geo.groups)
        expected = [(ic, tap, idx, inside)
                    for ic in range(g * geo.in_per_group, (g + 1) * geo.in_per_group)
                    for tap, idx, inside in _indexing.conv_window(fr.position, geo.kernel, geo.stride, geo.padding,
                                                                  geo.dilation, geo.in_sizes)]
        assert [(c.in_channel, c.tap, c.position, c.inside) for c in fr.cells] == expected
        # the window written out by hand: o*s - p_lo + t*d
        for c in fr.cells:
            assert c.position == tuple(o * s - lo + t * dl for o, s, (lo, _), t, dl in
                                       zip(fr.position, geo.stride, geo.padding, c.tap, geo.dilation))
        # the products and their sum are the engine's output value (padding-mode copies included)
        total = sum(c.product for c in fr.cells) + (fr.bias or 0.0)
        assert total == pytest.approx(fr.value, rel=1e-12, abs=1e-12)
        assert fr.value == fs.output[(fr.out_channel,) + fr.position]
    assert seen == {(oc, p) for oc in range(geo.out_channels) for p in itertools.product(*map(range, geo.out_sizes))}


@SETTINGS
@given(layers(transposed=True))
def test_transposed_conv_view_matches_contributions_and_engine(case):
    layer, shape = case
    fs = _frames_or_refused(layer, shape, view="conv")
    if fs is None:
        return
    geo = fs.geometry
    for fr in fs:
        real = {(c.in_channel, c.tap, c.source) for c in fr.cells if c.inside}
        g = fr.group
        expected = {(ic, tap, j) for ic in range(g * geo.in_per_group, (g + 1) * geo.in_per_group)
                    for tap, j in _indexing.transpose_contributions(fr.position, geo.kernel, geo.stride, geo.padding,
                                                                    geo.dilation, geo.in_sizes)}
        assert real == expected
        assert len(fr.cells) == geo.in_per_group * np.prod(geo.kernel)   # full (flipped) window every frame
        total = sum(c.product for c in fr.cells) + (fr.bias or 0.0)
        assert total == pytest.approx(fr.value, rel=1e-12, abs=1e-12)


@SETTINGS
@given(layers(transposed=True))
def test_scatter_view_rebuilds_engine_output(case):
    layer, shape = case
    fs = _frames_or_refused(layer, shape, view="scatter")
    if fs is None:
        return
    geo = fs.geometry
    y = np.zeros((geo.out_channels,) + geo.out_sizes)
    if fs.bias is not None:
        y += fs.bias.reshape((-1,) + (1,) * geo.n)
    for fr in fs:
        expected = list(_indexing.transpose_scatter(fr.position, geo.kernel, geo.stride, geo.padding, geo.dilation,
                                                    geo.out_sizes))
        assert [(c.tap, c.position, c.inside) for c in fr.cells] == expected
        for c in fr.cells:
            if c.inside:
                y[(fr.out_channel,) + c.position] += c.product
    np.testing.assert_allclose(y, fs.output, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode, expected", [
    ("zeros", [None, None, (0,), (1,), (2,), (3,), None, None]),
    ("reflect", [(2,), (1,), (0,), (1,), (2,), (3,), (2,), (1,)]),
    ("replicate", [(0,), (0,), (0,), (1,), (2,), (3,), (3,), (3,)]),
    ("circular", [(2,), (3,), (0,), (1,), (2,), (3,), (0,), (1,)]),
])
def test_padding_cells_show_the_cell_they_copy(mode, expected):
    layer = nn.Conv1d(1, 1, 8, padding=2, padding_mode=mode)
    fs = frames(layer, (1, 1, 4), values=True)
    (fr,) = fs.frames[:1]
    assert [c.source for c in fr.cells] == expected
    assert [c.kind for c in fr.cells] == ["padding"] * 2 + ["input"] * 4 + ["padding"] * 2


def test_transposed_odd_padding_is_at_the_end():
    # ConvTranspose1d(k=3, s=2, p=1, output_padding=1) on 3 cells -> 6: the equivalent conv pads 1 before, 2 after
    layer = nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1, output_padding=1)
    fs = frames(layer, (1, 1, 3), values=True)
    geo = fs.geometry
    assert geo.out_sizes == (6,) and geo.expanded_padding == ((1, 2),)
    last = fs.frames[-1]
    assert [c.position for c in last.cells] == [(4,), (5,), (6,)]   # expanded input has cells 0..4
    assert [c.kind for c in last.cells] == ["input", "padding", "padding"]
    first = fs.frames[0]
    assert [c.position for c in first.cells] == [(-1,), (0,), (1,)]
    assert [c.kind for c in first.cells] == ["padding", "input", "zero"]
    # scatter: the cell added by output_padding (index 5) is inside, index -1 is cropped
    sc = frames(layer, (1, 1, 3), view="scatter")
    assert [(c.position, c.inside) for c in sc.frames[0].cells] == [((-1,), False), ((0,), True), ((1,), True)]
    assert [(c.position, c.inside) for c in sc.frames[2].cells] == [((3,), True), ((4,), True), ((5,), True)]


def test_groups_and_depthwise_read_only_their_group():
    fs = frames(nn.Conv2d(4, 6, 3, groups=2, padding=1), (1, 4, 4, 4), channels="all")
    assert [f.out_channel for f in fs.frames[::16]] == list(range(6))
    for fr in fs:
        assert {c.in_channel for c in fr.cells} == ({0, 1} if fr.out_channel < 3 else {2, 3})
    dw = frames(nn.Conv1d(3, 3, 3, groups=3), (1, 3, 5), channels="all", values=True)
    for fr in dw:
        assert {c.in_channel for c in fr.cells} == {fr.out_channel}
    # default channels: the first output channel of each group
    assert sorted({f.out_channel for f in frames(nn.Conv1d(3, 6, 3, groups=3), (1, 3, 5))}) == [0, 2, 4]


def test_same_padding_resolved_like_the_layer():
    layer = nn.Conv2d(1, 1, 4, padding="same")
    geo = geometry(layer, (1, 1, 5, 5))
    assert geo.padding == ((1, 2), (1, 2)) and geo.out_sizes == (5, 5)
    fs = frames(layer, (1, 1, 5, 5), values=True)
    assert all(sum(c.product for c in f.cells) + f.bias == pytest.approx(f.value) for f in fs)


def test_formula_line_shows_products_and_sum():
    fs = frames(nn.Conv1d(1, 1, 2, bias=False), (1, 1, 3), x=[[1.0, 2.0, 3.0]], weight=[[[10.0, -1.0]]])
    assert fs[0].formula == "y[0,0] = 1×10 + 2×(-1) = 8"
    assert fs[1].formula == "y[0,1] = 2×10 + 3×(-1) = 17"
    sym = frames(nn.Conv1d(1, 1, 2, padding=1), (1, 1, 3))
    assert sym[0].formula == "y[0,0] = 0·w[0,0,0] + x[0,0]·w[0,0,1] + b[0]"


def _svg(tmp_path, layer, shape, **kw):
    path = draw.to_svg(layer, shape, tmp_path / "p.svg", **kw)
    return ET.parse(path).getroot()


@pytest.mark.parametrize("layer, shape, view", [
    (nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5), None),
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", groups=2), (1, 2, 4, 4), None),
    (nn.Conv1d(1, 1, 3, dilation=2), (1, 1, 7), None),
    (nn.Conv3d(1, 1, 2, padding=(1, 0, 0)), (1, 1, 3, 3, 3), None),
    (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 3, 3), "conv"),
    (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 3, 3), "scatter"),
])
def test_svg_is_well_formed_and_marks_the_frame(tmp_path, layer, shape, view):
    fs = frames(layer, shape, view=view, values=True)
    k = len(fs) // 2
    root = _svg(tmp_path, fs, None, frame=k)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    rects = root.iter("{http://www.w3.org/2000/svg}rect")
    hl = {(r.get("data-grid"), r.get("data-c"), r.get("data-pos")) for r in rects if r.get("data-hl") == "1"}
    fr = fs[k]
    grid = "output" if fr.view == "scatter" else "input"
    expected = {(grid, str(c), ",".join(map(str, p))) for c, p in fr.highlighted}
    assert {h for h in hl if h[0] == grid} == expected
    out_hl = {h for h in hl if h[0] == "output"}
    if fr.view == "conv":
        assert out_hl == {("output", str(fr.out_channel), ",".join(map(str, fr.position)))}


def test_animated_svg_has_every_frame(tmp_path):
    fs = frames(nn.Conv1d(1, 1, 3), (1, 1, 6))
    root = _svg(tmp_path, fs, None, frame="all")
    groups = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "frame"]
    assert len(groups) == len(fs) == 4
    assert all(g.find("{http://www.w3.org/2000/svg}animate") is not None for g in groups)


def test_png_and_gif(tmp_path):
    from PIL import Image
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2, groups=2)
    png = draw.draw(layer, (1, 2, 2, 2), tmp_path / "a.png", frame=3, values=True)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 200
        # group colours really appear: the blue of group 0 and the orange of group 1 (tinted) are both present
        colors = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert any(r < 80 and b > 150 for r, g, b in colors) and any(r > 230 and 100 < g < 160 and b < 60
                                                                 for r, g, b in colors)
    gif = draw.draw(layer, (1, 2, 2, 2), tmp_path / "a.gif", view="scatter")
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == len(frames(layer, (1, 2, 2, 2), view="scatter"))


def test_missing_pillow_names_the_extra(tmp_path, monkeypatch):
    from convforge.draw import _raster
    monkeypatch.setitem(sys.modules, "PIL", None)
    _raster._font.cache_clear()
    with pytest.raises(ImportError, match=r"pip install convforge\[viz\]"):
        draw.draw(nn.Conv1d(1, 1, 3), (1, 1, 5), tmp_path / "x.png")
    with pytest.raises(ImportError, match=r"pip install convforge\[viz\]"):
        draw.to_gif(nn.Conv1d(1, 1, 3), (1, 1, 5), tmp_path / "x.gif")
    draw.draw(nn.Conv1d(1, 1, 3), (1, 1, 5), tmp_path / "x.svg")   # SVG needs nothing


def test_import_convforge_does_not_import_pillow():
    code = "import sys, convforge; convforge.draw.frames; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("ext", ["svg", "png", "gif", "html"])
def test_cli_writes_each_format(tmp_path, ext, capsys):
    out = tmp_path / f"conv.{ext}"
    rc = draw.cli(["Conv2d(1, 1, 3, stride=2, padding=1)", "--input", "1,1,5,5", "--out", str(out), "--values"])
    assert rc == 0 and out.stat().st_size > 500
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_options_and_errors(tmp_path, capsys):
    out = tmp_path / "t.svg"
    assert draw.cli(["ConvTranspose1d(1, 1, 3, stride=2)", "--input", "1,1,3", "--out", str(out), "--view",
                     "scatter", "--frame", "2"]) == 0
    assert 'data-frame="0"' in out.read_text()
    assert draw.cli(["Conv2d(1, 1, 3)", "--input", "1,2,5,5", "--out", str(out)]) == 2
    assert "expects in_channels=1" in capsys.readouterr().err
    assert draw.cli(["Conv2d(1, 1, 3)", "--input", "1,1,5,5", "--out", str(tmp_path / "x.jpg")]) == 2
    assert "use .svg, .png, .gif or .html" in capsys.readouterr().err
    assert draw.cli(["Conv2d(1, 1, 3)", "--input", "1,1,5,5", "--out", str(out), "--frame", "99"]) == 2
    assert "frame 99 does not exist: this drawing has 9 frames" in capsys.readouterr().err
    assert draw.cli(["Conv2d(1, 1, 3)", "--input", "1,1,a", "--out", str(out)]) == 2
    assert "--input must be comma-separated integers" in capsys.readouterr().err
    assert draw.cli(["Conv2d(1, 1, os.system)", "--input", "1,1,5,5", "--out", str(out)]) == 2
    assert draw.cli(["Conv2d(1, 1, 3)", "--input", "1,1,2,2", "--out", str(out)]) == 2
    assert "smaller than the dilated kernel size 3" in capsys.readouterr().err


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"input_shape has 3 channels but Conv2d expects in_channels=1"):
        frames(nn.Conv2d(1, 1, 3), (1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C, \*S\) or \(C, \*S\) with 2 spatial dims"):
        frames(nn.Conv2d(1, 1, 3), (5, 5))
    with pytest.raises(ValueError, match="only for transposed convolutions"):
        frames(nn.Conv2d(1, 1, 3), (1, 1, 5, 5), view="scatter")
    with pytest.raises(ValueError, match=r"channels must be 'groups', 'all' or output channel numbers in \[0, 2\)"):
        frames(nn.Conv1d(1, 2, 3), (1, 1, 5), channels=5)
    with pytest.raises(ValueError, match="too large to draw"):
        frames(nn.Conv2d(1, 1, 3), (1, 1, 100, 100))
    with pytest.raises(ValueError, match=r"reflect padding \(3, 3\) must be smaller than the input size 3"):
        frames(nn.Conv1d(1, 1, 3, padding=3, padding_mode="reflect"), (1, 1, 3))
    with pytest.raises(TypeError, match="needs a convolution layer"):
        frames(nn.Linear(2, 3) if hasattr(nn, "Linear") else object(), (1, 2))
    with pytest.raises(ValueError, match=r"a PNG shows one frame \(frame=N\)"):
        draw.draw(nn.Conv1d(1, 1, 3), (1, 1, 5), "x.png", frame="all")
    with pytest.raises(ValueError, match="a GIF shows every frame"):
        draw.draw(nn.Conv1d(1, 1, 3), (1, 1, 5), "x.gif", frame=1)
    with pytest.raises(TypeError, match="not a FrameSet"):
        draw.to_html(frames(nn.Conv1d(1, 1, 3), (1, 1, 5)), None, "x.html")
    with pytest.raises(ValueError, match="input_shape is required"):
        draw.to_svg(nn.Conv1d(1, 1, 3), None, "x.svg")


def test_spec_strings_are_accepted():
    fs = frames("Conv2d(1, 1, 3, stride=2, padding=1)", (1, 1, 5, 5))
    assert len(fs) == 9 and fs.geometry.name.startswith("Conv2d(1, 1, kernel_size=(3, 3)")


def test_gallery_pictures(tmp_path):
    """One PNG per covered case, kept under artifacts/draw for a person to look at."""
    out = os.path.join(os.path.dirname(__file__), "..", "artifacts", "draw")
    os.makedirs(out, exist_ok=True)
    cases = {
        "padded_strided": (nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5), {}),
        "reflect": (nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect"), (1, 1, 4, 4), {}),
        "dilated_1d": (nn.Conv1d(1, 1, 3, dilation=2, padding=1), (1, 1, 7), {}),
        "transposed_conv": (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 3, 3),
                            {"view": "conv"}),
        "transposed_scatter": (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 3, 3),
                               {"view": "scatter"}),
        "grouped": (nn.Conv2d(4, 4, 3, groups=2, padding=1), (1, 4, 3, 3), {"channels": "groups"}),
        "depthwise_3d": (nn.Conv3d(2, 2, 2, groups=2), (1, 2, 3, 3, 3), {}),
    }
    for name, (layer, shape, kw) in cases.items():
        fs = frames(layer, shape, values=True, **kw)
        path = draw.to_png(fs, None, os.path.join(out, f"{name}.png"), frame=len(fs) - 1)
        assert os.path.getsize(path) > 1000


# -- issue 12: clear CLI errors, proportionate GIFs --------------------------------------------------------------
@pytest.mark.parametrize("args, code, message", [
    (["--frame", ""], 2, "--frame must be a frame number (0, 1, ...) or 'all', got ''"),
    (["--frame", "1,2"], 2, "--frame must be a frame number"),
    (["--input", "1,1," + "-" * 3000 + "5"], 2, "--input must be comma-separated integers such as 1,1,5,5, got "
                                                "'1,1,---"),
    (["--out", "/nonexistent-dir/x.svg"], 1, "cannot write '/nonexistent-dir/x.svg': No such file or directory"),
])
def test_cli_bad_options_are_one_line_errors(args, code, message, capsys):
    argv = ["Conv2d(1, 1, 3)", "--input", "1,1,5,5", "--out", "unused.svg"]
    for flag, value in zip(args[::2], args[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert draw.cli(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("convforge draw: error: ") and message in err and len(err) < 300, err


def test_too_many_frames_message_names_the_flags():
    with pytest.raises(ValueError, match=r"--channels 0 on the command line, channels=0 in Python\) or one frame "
                                         r"\(--frame N, frame=N\)"):
        draw.svg_string(nn.Conv2d(2, 2, 3, padding=1), (1, 2, 30, 30), frame="all")


def test_gif_default_is_proportionate(tmp_path, capsys):
    from PIL import Image
    layer = "Conv2d(4, 4, 3, groups=4, padding=1)"    # depthwise: 4 groups x 25 positions = 100 frames
    out = tmp_path / "dw.gif"
    assert draw.cli([layer, "--input", "1,4,5,5", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "makes 100 frames; drawing output channel 0 only (25 frames)" in err and "--channels groups" in err
    with Image.open(out) as im:
        assert im.n_frames == 25
    # asked for explicitly, every group is drawn
    assert draw.cli(["Conv2d(2, 2, 3, groups=2, padding=1)", "--input", "1,2,5,5", "--out", str(out),
                     "--channels", "groups"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 50
        full = im.size
        im.seek(1)
        extent = im.tile[0][1]     # frames after the first store only the rectangle that changed
        assert (extent[2] - extent[0]) * (extent[3] - extent[1]) < full[0] * full[1]
    # one shared palette and frame deltas: ~8.5 KB a frame here (a palette per full frame took ~37 KB)
    assert out.stat().st_size < 15_000 * 50
    # a long GIF asked for explicitly is announced (frames, time, size) before it starts
    from convforge.draw._cli import _gif_channels
    assert _gif_channels(nn.Conv2d(4, 4, 3, groups=4, padding=1), (1, 4, 5, 5), None, "all") == "all"
    assert "note: 100 frames: about 7 s and 1 MB" in capsys.readouterr().err

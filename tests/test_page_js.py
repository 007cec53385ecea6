"""The interactive page's JavaScript index rules equal convforge's (run with node on many random layers)."""
import json
import re
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from convforge import nn
from convforge.draw._page import _frame_key, page_html, python_frames
from convforge.draw._page_js import INDEX_JS, UI_JS

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

NODE = shutil.which("node")
HARNESS = Path(__file__).parent / "js" / "page_index_harness.js"
ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"index.js": INDEX_JS, "ui.js": UI_JS}
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_SIZE = {1: 8, 2: 5, 3: 3}


def random_case(rng: random.Random):
    n = rng.randint(1, 3)
    tr = rng.random() < 0.45
    groups = rng.randint(1, 2)
    cin, cout = groups * rng.randint(1, 2), groups * rng.randint(1, 2)
    k = [rng.randint(1, 3) for _ in range(n)]
    s = [rng.randint(1, 3) for _ in range(n)]
    d = [rng.randint(1, 2) for _ in range(n)]
    pad = [[rng.randint(0, 2), rng.randint(0, 2)] for _ in range(n)]
    sizes = [rng.randint(1, MAX_SIZE[n]) for _ in range(n)]
    bias = rng.random() < 0.5
    op = [rng.randint(0, max(a, b) - 1) for a, b in zip(s, d)] if tr else [0] * n
    mode = "zeros" if tr else rng.choice(["zeros", "reflect", "replicate", "circular"])
    view = rng.choice(["conv", "scatter"]) if tr else "conv"
    config = {"transposed": tr, "inChannels": cin, "outChannels": cout, "groups": groups, "inSizes": sizes,
              "kernel": k, "stride": s, "padding": pad, "dilation": d, "outputPadding": op, "paddingMode": mode,
              "bias": bias}
    if tr:
        layer = TRANSPOSED[n](cin, cout, k, stride=s, padding=[tuple(p) for p in pad], output_padding=op,
                              groups=groups, dilation=d, bias=bias)
    else:
        layer = CONV[n](cin, cout, k, stride=s, padding=[tuple(p) for p in pad], dilation=d, groups=groups,
                        bias=bias, padding_mode=mode)
    return config, view, layer, [1, cin] + sizes


def run_node(tmp_path, cases):
    lib = tmp_path / "cf_index.js"
    lib.write_text(INDEX_JS)
    proc = subprocess.run([NODE, str(HARNESS), str(lib)], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed: the page's JavaScript cannot be run here")
def test_javascript_index_rules_equal_python(tmp_path):
    rng = random.Random(20240607)
    cases, expected = [], []
    while len(cases) < 300:
        config, view, layer, shape = random_case(rng)
        try:
            fs = python_frames(layer, shape, view)
            expected.append(fs)
        except ValueError as exc:
            expected.append(exc)
        cases.append({"config": config, "view": view})
    results = run_node(tmp_path, cases)
    n_ok = n_err = 0
    for case, exp, got in zip(cases, expected, results):
        if isinstance(exp, ValueError):
            assert "error" in got, f"python rejects {case} ({exp}) but the page accepts it"
            n_err += 1
            continue
        assert "error" not in got, f"the page rejects {case}: {got.get('error')}"
        assert tuple(got["outSizes"]) == exp.geometry.out_sizes
        assert got["frames"] == json.loads(json.dumps([_frame_key(f) for f in exp.frames])), case
        for f, total in zip(exp.frames, got["sums"]):
            if f.view == "conv":   # the page's arithmetic equals the layer's own output value
                assert total == pytest.approx(f.value, rel=1e-12, abs=1e-12)
        n_ok += 1
    assert n_ok > 150 and n_err > 10   # both kinds really exercised


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_are_package_files_node_accepts(name):
    """The page's scripts are real .js files of convforge.draw, shipped as package data and valid JavaScript."""
    path = ROOT / "src" / "convforge" / "draw" / name
    assert path.read_text(encoding="utf-8") == SCRIPTS[name] and SCRIPTS[name].strip()
    lowered = SCRIPTS[name].lower()   # inlined into a <script> element: these would end or nest it
    assert "</script" not in lowered and "<script" not in lowered and "<!--" not in lowered
    if tomllib is not None:
        config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        assert "*.js" in config["tool"]["setuptools"]["package-data"]["convforge.draw"]
    if NODE is None:
        pytest.skip("node is not installed: cannot run node --check")
    proc = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_page_is_one_offline_file(tmp_path):
    text = page_html(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, groups=2), (1, 2, 3, 3))
    assert text.startswith("<!DOCTYPE html>")
    for needle in ("http://", "https://", "<link", "src=", "@import", "url("):
        assert needle not in text, needle
    assert 'id="cf-python"' in text and 'id="cf-state"' in text
    for control in ("cf-kernel", "cf-stride", "cf-padding", "cf-dilation", "cf-transposed", "cf-output-padding",
                    "cf-groups", "cf-input", "cf-slider", "cf-prev", "cf-next"):
        assert f'id="{control}"' in text


class _OddlyNamedConv(nn.Conv2d):
    """A user layer whose repr carries HTML and template syntax."""

    def extra_repr(self):
        return (super().extra_repr() + ", note='<!--<script>alert(1)</script> </SCRIPT > %UI_JS% %INITIAL% "
                "%PYTHON% & \u2028'")


def _script_bodies(text):
    """Script elements as an HTML parser splits them; valid when no body enters the 'escaped' states."""
    return re.findall(r"<script([^>]*)>(.*?)</script[\s/>]", text, re.S | re.I)


def test_page_survives_any_layer_name(tmp_path):
    layer = _OddlyNamedConv(1, 1, 3)
    text = page_html(layer, (1, 1, 4, 4))
    scripts = _script_bodies(text)
    assert len(scripts) == 5 == text.lower().count("<script")
    for _, body in scripts:   # "<!--" would make the parser skip the closing tag; "<script" would nest
        assert "<!--" not in body and "<script" not in body.lower() and "</script" not in body.lower()
    by_id = {re.search(r'id="([^"]+)"', attrs).group(1): body for attrs, body in scripts if "id=" in attrs}
    assert json.loads(by_id["cf-initial"])["layer"] == repr(layer)       # filled once: the name is intact
    assert json.loads(by_id["cf-python"])["frames"]
    assert [body for attrs, body in scripts if "id=" not in attrs] == [INDEX_JS, UI_JS]
    assert text.count(UI_JS) == 1 and "%UI_JS%" in by_id["cf-initial"]
    if NODE is not None:   # the inline scripts are valid JavaScript as embedded
        for k, (attrs, body) in enumerate(scripts):
            path = tmp_path / f"s{k}.js"
            path.write_text(f"JSON.parse({json.dumps(body)});" if "json" in attrs else body)
            proc = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr

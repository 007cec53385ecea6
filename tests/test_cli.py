"""The convforge command line: through subprocess (python -m convforge, exit codes, no tracebacks) and, for the
many small cases, in-process through cli.main."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from convforge import cli
from convforge._spec import SpecError, parse_layer, parse_spec, parse_values


def run(*args, cwd=None):
    env = dict(os.environ)
    env.pop("CONVFORGE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "convforge", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def call(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- subprocess -------------------------------------------------------------------------------------------------
def test_shape_and_summary_through_subprocess():
    r = run("shape", "Conv2d(8, 14, (3, 2), stride=(2, 1))", "--input", "5,8,10,5")
    assert r.returncode == 0 and r.stdout.strip() == "[5, 8, 10, 5] -> [5, 14, 4, 4]" and r.stderr == ""
    r = run("summary", "Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), Conv2d(16, 32, 3, stride=2))",
            "--input", "1,3,32,32", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["total_params"] == 5088 and d["output_shape"] == [1, 32, 15, 15]
    assert d["total_flops"] == 2 * d["total_macs"]


def test_injection_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    r = run("shape", f"Conv2d(3, 8, __import__('os').system('touch {marker}'))", "--input", "1,3,8,8")
    assert r.returncode == 2 and not marker.exists()
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "is not a literal" in r.stderr


def test_model_file_and_its_failures(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent("""
        import convforge.nn as nn
        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        net = build()
        def broken():
            raise RuntimeError("no weights here")
    """))
    r = run("summary", f"{model}:build", "--input", "1,3,224,224")
    assert r.returncode == 0 and "Total params: 1,184" in r.stdout and "[1, 8, 56, 56]" in r.stdout
    r = run("shape", f"{model}:net", "--input", "1,3,224,224", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["output_shape"] == [1, 8, 56, 56]
    r = run("summary", f"{model}:broken", "--input", "1,3,8,8")
    assert r.returncode == 1 and r.stderr.strip() == (f"convforge: error: {model}:broken() failed: RuntimeError: no "
                                                      f"weights here")
    bad = tmp_path / "bad.py"
    bad.write_text("import does_not_exist_anywhere\n")
    r = run("summary", f"{bad}:build", "--input", "1,3,8,8")
    assert r.returncode == 1 and "importing" in r.stderr and "Traceback" not in r.stderr


def test_help_has_examples():
    r = run("--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "convforge explain" in r.stdout
    assert "exit codes: 0 success, 1" in r.stdout


# -- in-process -------------------------------------------------------------------------------------------------
def test_explain_issue_example(capsys):
    code, out, err = call(capsys, "explain", "Conv1d(1, 1, 3, bias=False)", "--input", "range(16)", "--weight",
                          "0.1,0.2,0.3", "--at", "0")
    assert code == 0 and "y[0] = 0×0.1 + 1×0.2 + 2×0.3 = 0.8" in out
    code, out, err = call(capsys, "explain", "Conv1d(1, 1, 3, bias=False)", "--input", "range(16)", "--weight",
                          "0.1,0.2,0.3", "--at", "-1", "--json")
    d = json.loads(out)
    assert code == 0 and d["positions"][0]["output_index"] == [0, 0, 13]
    assert d["positions"][0]["value"] == pytest.approx(8.6) and len(d["output"][0][0]) == 14


def test_explain_shape_only_and_2d(capsys):
    code, out, _ = call(capsys, "explain", "Conv2d(3, 8, 3, stride=2)", "--shape", "1,3,7,7")
    assert code == 0 and "floor((7 + 0 + 0 - 1×(3-1) - 1) / 2) + 1 = 3" in out and "Output values" not in out
    code, out, _ = call(capsys, "explain", "ConvTranspose2d(1, 1, 3, stride=2)", "--shape", "1,1,3,3",
                        "--at", "-1,-1", "--weight", "range(9)", "--bias", "0")
    assert code == 0 and "y[6, 6] = 8×8 + 0 (bias) = 64" in out
    code, _, err = call(capsys, "explain", "Conv2d(1, 1, 3)", "--input", "1,2,3")
    assert code == 2 and "needs --shape" in err


@pytest.mark.parametrize("args, code, message", [
    (("shape", "Conv4d(3, 8, 3)", "--input", "1,3,8,8"), 2, "unknown layer 'Conv4d'"),
    (("shape", "conv2d(3, 8, 3)", "--input", "1,3,8,8"), 2, "did you mean Conv2d?"),
    (("shape", "Conv2d(3, 8, 3, strid=2)", "--input", "1,3,8,8"), 2, "unexpected keyword argument 'strid'"),
    (("shape", "Conv2d(3, 8, 0)", "--input", "1,3,8,8"), 2, "kernel_size must be positive"),
    (("shape", "Conv2d(3, 8, 9)", "--input", "1,3,8,8"), 2, "smaller than the dilated kernel size 9"),
    (("shape", "Conv2d(3, 8, 3)", "--input", "1,8,8,3"), 2, "looks channels-last"),
    (("shape", "Conv2d(3, 8, 3", "--input", "1,3,8,8"), 2, "cannot parse layer spec"),
    (("shape", "Conv2d(3, 8, 3)", "--input", "1,a,8"), 2, "--input must be comma-separated integers"),
    (("shape", "Conv2d(3, 8, 3)"), 2, "the following arguments are required: --input"),
    (("frobnicate",), 2, "invalid choice: 'frobnicate'"),
    (("summary", "missing_file.py:build", "--input", "1,3,8,8"), 2, "model file 'missing_file.py' does not exist"),
    (("explain", "ReLU()", "--shape", "1,3"), 2, "explain works on one Conv*/ConvTranspose* layer"),
    (("explain", "Conv1d(1, 1, 3)", "--input", "range(8)", "--at", "9"), 2, "is outside the output"),
    (("explain", "Conv1d(1, 1, 3)", "--input", "os.getcwd()"), 2, "cannot read numbers"),
])
def test_errors_are_one_line_with_meaningful_codes(capsys, args, code, message):
    got, out, err = call(capsys, *args)
    assert got == code and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("convforge: error: ") and message in err, err


def test_draw_is_routed(capsys, monkeypatch):
    import convforge.draw as draw
    seen = {}
    monkeypatch.setattr(draw, "cli", lambda argv: seen.setdefault("argv", argv) and 0, raising=False)
    assert cli.main(["draw", "Conv1d(1, 1, 3)", "--input", "1,1,8"]) == 0
    assert seen["argv"] == ["Conv1d(1, 1, 3)", "--input", "1,1,8"]
    monkeypatch.setitem(sys.modules, "convforge.draw", None)   # import fails
    code, out, err = call(capsys, "draw", "x")
    assert code == 1 and "'convforge draw' is unavailable" in err and len(err.strip().splitlines()) == 1


# -- the spec parser --------------------------------------------------------------------------------------------
def test_parse_layer_builds_the_named_layers():
    m = parse_layer("Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), nn.MaxPool2d(2), torch.nn.Flatten())")
    assert [type(c).__name__ for c in m.children()] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten"]
    assert parse_layer("Conv2d(8, 14, (3, 2), stride=(2, 1))").kernel_size == (3, 2)
    assert parse_layer("Conv1d(2, 2, 3, padding=((1, 0),), bias=False)").bias is None
    assert type(parse_layer("ReLU")).__name__ == "ReLU"
    assert parse_layer("LeakyReLU(negative_slope=-0.5)").negative_slope == -0.5
    assert str(parse_spec("Conv2d(3, 8, 3, padding='same')")) == "Conv2d(3, 8, 3, padding='same')"


@pytest.mark.parametrize("spec, message", [
    ("Conv2d(3, 8, __import__('os').system('true'))", "argument 3 is not a literal"),
    ("Conv2d(3, 8, x)", "is not a literal (it is the name 'x')"),
    ("Conv2d(3, 8, 1 + 2)", "arithmetic"),
    ("Conv2d(*[3, 8, 3])", "uses * unpacking"),
    ("Conv2d(3, 8, 3, **{'stride': 2})", "uses ** unpacking"),
    ("os.system('true')", "must call a layer by name"),
    ("Conv2d(3, 8, 3).weight", "must be a call"),
    ("Conv2d(3, 8, 3)(1)", "must call a layer by name"),
    ("(lambda: 1)()", "must call a layer by name"),
    ("Sequential(open('/etc/passwd'))", "not a literal"),
    ("Module()", "unknown layer 'Module'"),
    ("", "empty layer spec"),
    ("Conv2d(" * 400 + ")" * 400, "cannot parse"),
])
def test_parse_layer_refuses(spec, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_layer(spec)


def test_parse_values():
    assert parse_values("range(2, 8, 2)") == [2, 4, 6]
    assert parse_values("[[1, 2], [3.5, -4]]") == [1, 2, 3.5, -4]
    assert parse_values("7") == [7]
    for bad in ("range(0, 5, 0)", "range(x)", "'a,b'", "__import__('os')"):
        with pytest.raises(SpecError):
            parse_values(bad)


# -- issue 12: nothing a user types breaks it --------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (("shape", "Conv1d(1, 1, 3)", "--input=" + "-" * 3000 + "1"), "--input must be comma-separated integers"),
    (("explain", "Conv1d(1, 1, 3)", "--input=" + "-" * 3000 + "1"), "--input: cannot read numbers from"),
    (("explain", "Conv1d(1, 1, 3)", "--input=" + "[" * 3000 + "1" + "]" * 3000), "cannot read numbers from"),
    (("explain", "Conv1d(1, 1, 3)", "--input", "range(8)", "--weight=" + "-" * 5000 + "1"), "--weight: cannot read"),
    (("explain", "Conv1d(1, 1, 3)", "--input", "range(8)", "--at=" + "-" * 3000 + "1"), "--at must be"),
    (("shape", "Upsample(size=0)", "--input", "1,1,4,4"), "input and output sizes should be greater than 0"),
    (("shape", "Upsample(scale_factor=0.1)", "--input", "1,1,4,4"), "output [0, 0]"),
    (("shape", "Flatten(5, 1)", "--input", "1,1,4,4"), "start_dim=5 is out of range"),
    (("draw", "Conv2d(1, 1, 3)", "--input", "1,1,5,5", "--frame", ""), "--frame must be a frame number"),
    (("draw", "Conv2d(1, 1, 3)", "--input", "1,1,5,5", "--out", "/nonexistent-dir/x.svg"), "cannot write"),
])
def test_hostile_input_gives_a_short_clear_error(capsys, args, message):
    code, out, err = call(capsys, *args)
    assert code in (1, 2) and out == "" and "internal error" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and len(err) < 400 and message in err, err


def test_shape_and_summary_never_allocate_the_input_or_a_float64_weight(capsys):
    import time
    import tracemalloc
    tracemalloc.start()
    try:
        start = time.perf_counter()
        code, out, _ = call(capsys, "summary", "Conv1d(1, 1, 3)", "--input", "1,1,1000000000", "--json")
        seconds = time.perf_counter() - start
        small_peak = tracemalloc.get_traced_memory()[1]
        assert code == 0 and json.loads(out)["total_effective_macs"] == 999_999_998 * 3 and seconds < 2
        assert small_peak < 20 * 2**20     # was 24 GB
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        code, out, _ = call(capsys, "shape", "Conv2d(1500, 1500, 3)", "--input", "1,1500,8,8")
        weight = 1500 * 1500 * 9 * 4
        # the float32 weight and the copy Parameter makes of it at most; never the float64 init temporary (2x)
        assert code == 0 and out.strip().endswith("[1, 1500, 6, 6]")
        assert tracemalloc.get_traced_memory()[1] - base < 2.2 * weight
    finally:
        tracemalloc.stop()


def test_shape_only_layers_keep_repr_type_and_counts():
    built, bare = parse_layer("Conv2d(3, 8, 3, groups=1)"), parse_layer("Conv2d(3, 8, 3, groups=1)", initialise=False)
    assert repr(built) == repr(bare) and type(bare).__name__ == "Conv2d" and isinstance(bare, type(built))
    assert [p.shape for p in bare.parameters()] == [p.shape for p in built.parameters()]
    seq = parse_layer("Sequential(Conv2d(3, 8, 3), ReLU(), Flatten(), Linear(8, 2))", initialise=False)
    assert repr(seq) == repr(parse_layer("Sequential(Conv2d(3, 8, 3), ReLU(), Flatten(), Linear(8, 2))"))


def test_model_files_say_they_run_code_and_call_only_their_own_definitions(tmp_path, capsys):
    r = run("summary", "--help")
    assert "RUNS that" in " ".join(r.stdout.split()) and "only use files you trust" in " ".join(r.stdout.split())
    marker = tmp_path / "called"
    (tmp_path / "helpers.py").write_text(textwrap.dedent(f"""
        import pathlib
        def make():
            pathlib.Path({str(marker)!r}).write_text("called")
    """))
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        import os
        from os.path import join
        from helpers import make
        from convforge.nn import ReLU
        import convforge.nn as nn
        class Net(nn.Sequential):
            def __init__(self):
                super().__init__(nn.Conv2d(1, 2, 3))
    """))
    model = tmp_path / "model.py"
    for name, message in (("make", "is imported from helpers, not defined in"),
                          ("ReLU", "is imported from convforge.nn"), ("join", "is imported from"),
                          ("getcwd", "defines no 'getcwd'"), ("nn", "neither a convforge.nn.Module"),
                          ("os.getcwd", "is not a name")):
        code, _, err = call(capsys, "shape", f"{model}:{name}", "--input", "1,1,5,5")
        assert code == 2 and message in err and len(err.splitlines()) == 1, (name, err)
    sys.modules.pop("helpers", None)   # imported by model.py in this process
    assert not marker.exists()
    code, out, err = call(capsys, "shape", f"{model}:Net", "--input", "1,1,5,5")   # defined in the file: built
    assert code == 0 and out.strip() == "[1, 1, 5, 5] -> [1, 2, 3, 3]", err
    (tmp_path / "model.txt").write_text("print('never run')\n")
    code, out, err = call(capsys, "shape", f"{tmp_path / 'model.txt'}:build", "--input", "1,1,5,5")
    assert code == 2 and "is not a Python source file" in err and "never run" not in out

"""Every code block of README.md and docs/*.md runs as written.

``python`` blocks are executed (fresh namespace, in a temporary directory), ``pycon`` blocks run through doctest,
and the ``convforge ...`` lines of ``bash`` blocks through the command line (other shell lines, such as installs
and benchmark runs, are CI's business: see test_readme.py). A block preceded by ``<!-- skip: reason -->`` is not
run; ``text`` blocks are not code. Every block must say which kind it is, so none escapes by accident.
"""
import doctest
import re
import shlex
from pathlib import Path

import pytest

from convforge import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<skip><!--\s*skip[^>]*-->\s*\n)?^```(?P<lang>[^\n`]*)\n(?P<code>.*?)^```\s*$", re.S | re.M)
KINDS = ("python", "pycon", "bash", "text")


def _blocks():
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start("code")) + 1
            yield path, line, m.group("lang").strip(), m.group("code"), bool(m.group("skip"))


def _commands(code):
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["convforge"]:
            yield words[1:]


def _params(lang):
    return [pytest.param(code, id=f"{path.name}:{line}")
            for path, line, kind, code, skip in _blocks() if kind == lang and not skip]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(ROOT / "examples")   # the docs name example files by relative path
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_block_is_labelled():
    unlabelled = [f"{path.name}:{line} ({kind or 'no language'})" for path, line, kind, _, _ in _blocks()
                  if kind not in KINDS]
    assert not unlabelled, f"label these code blocks as one of {KINDS}: {unlabelled}"
    assert len(_params("python")) >= 4 and len(_params("bash")) >= 3


@pytest.mark.parametrize("code", _params("python"))
def test_python_block_runs(code, in_tmp):
    exec(compile(code, "<doc block>", "exec"), {"__name__": "__doc_block__"})


@pytest.mark.parametrize("code", _params("pycon"))
def test_pycon_block_prints_what_it_says(code, in_tmp):
    test = doctest.DocTestParser().get_doctest(code, {}, "doc block", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


@pytest.mark.parametrize("code", [p for p in _params("bash") if list(_commands(p.values[0]))])
def test_convforge_commands_run(code, in_tmp, capsys):
    for args in _commands(code):
        assert cli.main(args) == 0, f"convforge {shlex.join(args)}: {capsys.readouterr().err}"
        out = capsys.readouterr().out
        if "--out" in args:
            assert (in_tmp / args[args.index("--out") + 1]).stat().st_size > 0
        else:
            assert out.strip()

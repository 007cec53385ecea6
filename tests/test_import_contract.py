"""The layering contract (``[tool.importlinter]`` in pyproject.toml): the engine's modules and the package's
subpackages import only downwards, checked by ``lint-imports`` (import-linter, in the ``test`` extra) on the
package under test; a copy of the package with one upward import must break it.  Also: no imports inside
functions in the engine (the one exception, Numba, is loaded by ``convforge._algos.kernel_module``).
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import convforge

pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e .[test])")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(convforge.__file__).resolve().parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with pyproject.toml's contracts on the ``convforge`` package found under ``src``."""
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, env={"PYTHONPATH": str(src), "PATH": ""}, capture_output=True, text=True,
                          timeout=300)


def test_the_layers_are_kept():
    result = lint_imports(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, upward", [
    ("engine/arrays.py", "from . import select"),                       # a helper reaching up to the selector
    ("engine/algorithms/im2col.py", "from .. import run"),              # an algorithm reaching up to the engine
    ("engine/problem.py", "from .. import _api"),                       # the engine reaching up to the API
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward):
    copy = tmp_path / "convforge"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    text = path.read_text()
    cut = text.index("\nfrom __future__ import annotations\n") + len("\nfrom __future__ import annotations\n")
    path.write_text(text[:cut] + upward + "  # noqa\n" + text[cut:])
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


def test_no_imports_inside_engine_functions():
    inside = []
    for path in sorted((PACKAGE / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside += [f"{path.relative_to(PACKAGE)}:{n.lineno}" for n in ast.walk(node)
                           if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert inside == [], f"imports inside functions: {inside}"

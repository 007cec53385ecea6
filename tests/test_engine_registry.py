"""Adding an algorithm is one new module plus one registration line (docs/ARCHITECTURE.md): done here in a copy of
the package, the new algorithm is forced by name, chosen automatically where it pays, runs every part of a
thread split, and refused with its own reason where it is unfit.  Also: the registry's records are complete."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import convforge
from convforge.engine import ConvProblem, registry, select

PACKAGE = Path(convforge.__file__).resolve().parent

MINE = '''
"""A test algorithm: im2col's computation under another name, fit only for 2-D problems."""
from __future__ import annotations

from . import Algorithm, Role, Threading
from .im2col import im2col


def mine(x, w, p):
    return im2col(x, w, p.stride, p.padding, p.dilation, p.groups, p.out_sizes)


def _unfit(p):
    return None if p.n_spatial == 2 else f"mine needs 2 spatial dims, got {p.n_spatial}"


ALGORITHM = Algorithm("mine", {"forward": Role(mine, rank=25, unfit=_unfit, pays=lambda p: p.groups == 3)},
                      Threading(blas_threaded=True))
'''

CHECK = '''
import numpy as np, pytest, convforge
import convforge.nn.functional as F
from convforge import engine
from convforge.engine import parallel
rng = np.random.default_rng(0)
x, w = rng.standard_normal((4, 6, 9, 9)), rng.standard_normal((6, 2, 3, 3))
with convforge.config(algorithm="im2col"):
    want = F.conv2d(x, w, None, 1, 1, 1, 3)
with convforge.config(algorithm="mine", numba=False):
    got = F.conv2d(x, w, None, 1, 1, 1, 3)
assert engine.last_choice() == "mine" and np.allclose(got, want, rtol=1e-12, atol=0)
with convforge.config(numba=False):                  # automatic: it pays for 3 groups
    F.conv2d(x, w, None, 1, 1, 1, 3)
assert engine.last_choice() == "mine"
parallel.MIN_PARALLEL_MACS = 0
with convforge.config(algorithm="mine", threads=2):  # batch chunks on two threads
    assert np.allclose(F.conv2d(x, w, None, 1, 1, 1, 3), want, rtol=1e-12, atol=0)
with convforge.config(algorithm="mine"):
    with pytest.raises(ValueError, match="cannot run this convolution: mine needs 2 spatial dims, got 1"):
        F.conv1d(x[:, :, 0], w[:, :, 0], None, 1, 1, 1, 3)
print("ok")
'''


def test_a_new_algorithm_is_one_module_and_one_line(tmp_path):
    copy = tmp_path / "convforge"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "engine" / "algorithms" / "mine.py").write_text(MINE)
    reg = copy / "engine" / "registry.py"
    text = reg.read_text()
    text = text.replace("from .algorithms import col2im,", "from .algorithms import mine, col2im,")
    text = text.replace("    col2im.ALGORITHM,\n", "    col2im.ALGORITHM,\n    mine.ALGORITHM,\n")
    reg.write_text(text)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env={"PYTHONPATH": str(tmp_path), "PATH": "",
                                                         "CONVFORGE_NUMBA": "0"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_every_registered_role_is_complete_and_ranked_once():
    for role in ("forward", "transpose", "weight_grad"):
        ranked = registry.with_role(role)
        ranks = [a.roles[role].rank for a in ranked]
        assert len(set(ranks)) == len(ranks), f"{role}: two algorithms share a rank {ranks}"
        assert ranked[-1].roles[role].unfit(None) is None, f"{role}: the last in rank order must run everything"
    assert sorted(registry.BY_NAME) == ["col2im", "direct", "im2col", "implicit", "pointwise", "winograd"]


def test_forcing_is_a_lookup_and_a_gradient_falls_back():
    depthwise = ConvProblem.conv((2, 8, 9, 9), (8, 1, 3, 3), np.float64, (1, 1), ((1, 1),) * 2, (1, 1), 8)
    with convforge.config(algorithm="pointwise"):          # no weight-gradient form: the fallback runs it
        assert select.choose(depthwise, "weight_grad").name == "im2col"
    with convforge.config(algorithm="im2col"):
        assert select.choose(depthwise, "forward") is registry.BY_NAME["im2col"]

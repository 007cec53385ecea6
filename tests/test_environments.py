"""Installs and environments: a NumPy-only install works; any Numba trouble degrades to the NumPy paths with one
warning and identical results; concurrent cold starts of several processes are safe; without Numba the
automatic choice is the fastest NumPy path.

Each environment runs in a fresh subprocess (Numba's settings are read once per process) running
``PROBE``: convolutions that reach every algorithm family (depthwise, 3x3 float32 and float64, strided,
transposed depthwise and dense, weight gradients), twice, then again under ``config(numba=False)``; it prints
what it saw as JSON.  CI also runs the whole suite in a venv without Numba (``.ci/run``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import convforge
from convforge.engine import ConvProblem, select
from convforge.engine.algorithms import winograd
from convforge._algos import numba_kernels
from convforge._algos import threads as _threads
from conftest import assert_close

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(convforge.__file__).resolve().parent
HAVE_NUMBA = numba_kernels() is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="needs a working Numba")

BLOCK_NUMBA = 'import sys; sys.modules["numba"] = None; sys.modules["llvmlite"] = None   # not installed\n'

PROBE = textwrap.dedent('''
    import hashlib, json, sys, warnings
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import convforge
        import convforge.nn as nn
        import convforge.nn.functional as F
        import convforge.nn.grad as G
        from convforge._algos import numba_kernels
        rng = np.random.default_rng(0)
        xd, wd = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((4, 1, 3, 3))
        x, w = rng.standard_normal((1, 16, 24, 24)).astype(np.float32), rng.standard_normal((16, 16, 3, 3))
        wt = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
        convforge.manual_seed(0)
        layer = nn.Conv2d(3, 16, 3, padding=1)
        small = "small" in sys.argv

        def calls():
            todo = [lambda: F.conv2d(xd, wd, None, 1, 1, 1, 4)]
            if not small:
                todo += [lambda: F.conv2d(xd, wd, None, 2, 1, 1, 4),
                         lambda: F.conv_transpose2d(xd, wd, None, 2, 1, 0, 4),
                         lambda: G.conv2d_weight(xd, wd.shape, xd, 1, 1, 1, 4),
                         lambda: F.conv2d(x, w.astype(np.float32), None, 1, 1),
                         lambda: F.conv2d(x, w.astype(np.float32), None, 2, 1),
                         lambda: F.conv2d(x.astype(np.float64), w, None, 1, 1),
                         lambda: F.conv_transpose2d(x, wt, None, 2), lambda: G.conv2d_weight(x, w.shape, x, 1, 1),
                         lambda: G.conv2d_weight(x[:, :4], (16, 2, 3, 3), x, 1, 1, 1, 2),
                         lambda: layer(np.zeros((1, 3, 8, 8), np.float32))]
            if "reverse" in sys.argv:        # another order of first uses (of kernels and their signatures)
                return [f() for f in todo[::-1]][::-1]
            return [f() for f in todo]

        print("compiling", flush=True)
        first, second = calls(), calls()
        with convforge.config(numba=False):
            numpy_only = calls()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in first)).hexdigest()
    print(json.dumps({
        "warnings": [str(w.message) for w in caught if str(w.message).startswith("convforge:")],
        "numba": numba_kernels() is not None, "package": convforge.__file__, "digest": digest,
        "repeatable": all(np.array_equal(a, b) for a, b in zip(first, second)),
        "same_as_numpy": all(np.array_equal(a, b) for a, b in zip(first, numpy_only)),
        "close_to_numpy": all(np.allclose(a, b, rtol=1e-4, atol=1e-4 * max(1, np.abs(b).max()))
                              for a, b in zip(first, numpy_only))}))
''')


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "CONVFORGE_"))}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _probe(prefix="", env=None, args=(), timeout=300):
    """Run ``prefix + PROBE`` in a fresh interpreter; returns the JSON it printed."""
    out = subprocess.run([sys.executable, "-c", prefix + PROBE, *args], capture_output=True, text=True,
                         env=env or _env(), cwd=ROOT, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def _assert_degraded(result, *words):
    """Numba unusable: exactly one warning, naming what happened, and the NumPy paths' exact results."""
    assert not result["numba"]
    assert len(result["warnings"]) == 1, result["warnings"]
    message = result["warnings"][0]
    for word in words + ("pure-NumPy paths instead",):
        assert word in message, message
    assert result["same_as_numpy"] and result["repeatable"]


# ------------------------------------------------------------------------------------------ NumPy-only install

def test_numpy_only_install_runs_every_algorithm_without_warnings():
    """``import numba`` (and llvmlite) failing as in a ``pip install .`` venv: no warning (a documented setup),
    every call uses NumPy.  Before: ``ModuleNotFoundError: No module named 'llvmlite'`` from the automatic
    choice of a 3x3 layer."""
    result = _probe(BLOCK_NUMBA)
    assert result["warnings"] == [] and not result["numba"]
    assert result["same_as_numpy"] and result["repeatable"]


def test_numpy_only_install_forced_algorithms_and_quickstart():
    """Every algorithm's fallback with Numba missing (forced, against the float64 im2col result), the
    Numba-only ones refused clearly, and examples/quickstart.py as README runs it."""
    code = BLOCK_NUMBA + textwrap.dedent('''
        import runpy, numpy as np, pytest, convforge
        import convforge.nn.functional as F
        rng = np.random.default_rng(1)
        x, w = rng.standard_normal((2, 16, 22, 22)), rng.standard_normal((16, 16, 3, 3))
        with convforge.config(algorithm="im2col"):
            ref = F.conv2d(x, w, None, 1, 1)
        for algorithm in ("direct", "winograd", "im2col", "implicit"):
            xx, ww = (x.astype(np.float32), w.astype(np.float32)) if algorithm == "winograd" else (x, w)
            with convforge.config(algorithm=algorithm):
                if algorithm == "implicit":
                    with pytest.raises(ValueError, match="need Numba"):
                        F.conv2d(xx, ww, None, 1, 1)
                    continue
                y = F.conv2d(xx, ww, None, 1, 1)
            assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max(), algorithm
        with convforge.config(algorithm="im2col"):
            ref1 = F.conv2d(x, w[:, :, :1, :1], None, 2)
        with convforge.config(algorithm="pointwise"):
            assert np.abs(F.conv2d(x, w[:, :, :1, :1], None, 2) - ref1).max() <= 1e-12 * np.abs(ref1).max()
        xt, wt = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 1, 3, 3))
        with convforge.config(algorithm="col2im"):
            yt = F.conv_transpose2d(xt, wt, None, 2, 0, 0, 4)
        assert yt.shape == (1, 4, 11, 11)
        with convforge.config(algorithm="direct"), pytest.raises(ValueError, match="need Numba"):
            F.conv_transpose2d(xt, wt, None, 2, 0, 0, 4)
        runpy.run_path("examples/quickstart.py", run_name="__main__")
    ''')
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True,
                         text=True, env=_env(), cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "-> output (5, 14, 4, 4)" in out.stdout and "0.8, 1.4, 2.0" in out.stdout, out.stdout


# ------------------------------------------------------------------------------------------ Numba trouble

def test_numba_import_raising_oserror_degrades(tmp_path):
    """A Numba whose import raises OSError (a shared library that does not load).  Before: the OSError on
    every call."""
    fake = tmp_path / "numba"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise OSError("libllvmlite.so: cannot open shared object file")\n')
    result = _probe(env=_env(PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path)))
    _assert_degraded(result, "cannot be imported", "OSError", "libllvmlite.so")


@needs_numba
@pytest.mark.parametrize("variable, value, words", [
    ("NUMBA_DISABLE_JIT", "1", ("NUMBA_DISABLE_JIT",)),       # before: NotImplementedError from the intrinsics
    ("NUMBA_NUM_THREADS", "0", ("cannot be imported", "ValueError", "threads")),     # before: ValueError
])
def test_numba_environment_variables_degrade(variable, value, words):
    _assert_degraded(_probe(env=_env(**{variable: value})), *words)


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_convforge_num_threads_warns_once_naming_it(monkeypatch, value):
    """Before: ``ValueError: invalid literal for int()`` from every convolution, not naming the variable."""
    monkeypatch.setenv("CONVFORGE_NUM_THREADS", value)
    with pytest.warns(RuntimeWarning, match=rf"CONVFORGE_NUM_THREADS='{value}' is not a positive integer"):
        n = _threads.thread_count()
    assert n == len(os.sched_getaffinity(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)       # warned once: later calls are silent
        y = convforge.nn.functional.conv2d(np.ones((2, 3, 6, 6)), np.ones((4, 3, 3, 3)))
    assert_close(y, np.full((2, 4, 4, 4), 27.0))
    monkeypatch.setenv("CONVFORGE_NUM_THREADS", "3")
    assert _threads.thread_count() == 3


# ------------------------------------------------------------------------------------------ Numba's cache

def _package_without_writable_cache(tmp_path):
    """A copy of the package whose ``_kernels/__pycache__`` cannot be created (a file is in the way: tests may
    run as root, which ignores read-only modes), with HOME and XDG_CACHE_HOME unusable too: Numba finds no
    directory for its cache, as in a read-only install with a read-only HOME."""
    root = tmp_path / "site"
    shutil.copytree(SRC, root / "convforge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "convforge" / "_kernels" / "__pycache__").write_text("not a directory\n")
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = _env(PYTHONPATH=str(root), HOME=str(blocker), XDG_CACHE_HOME=str(blocker), TMPDIR=str(temp))
    return root, temp, env


@needs_numba
def test_unwritable_cache_falls_back_to_a_private_temporary_cache(tmp_path):
    """Before: ``RuntimeError: cannot cache function 'direct_grouped': no locator available`` on every call."""
    root, temp, env = _package_without_writable_cache(tmp_path)
    result = _probe(env=env, args=("small",))
    assert result["package"].startswith(str(root))
    private = temp / f"convforge-numba-{os.getuid()}"
    assert len(result["warnings"]) == 1 and "no locator available" in result["warnings"][0] and \
        f"caching them in {private}" in result["warnings"][0], result["warnings"]
    assert result["numba"] and result["repeatable"] and result["close_to_numpy"]
    assert list(private.rglob("*.nbi")), "nothing was cached in the private directory"
    assert oct(private.stat().st_mode & 0o777) == oct(0o700)
    again = _probe(env=env, args=("small",))          # a second process loads from there, same warning
    assert again["digest"] == result["digest"] and len(again["warnings"]) == 1


@needs_numba
def test_no_usable_cache_directory_compiles_without_cache(tmp_path):
    """The private directory is not usable either (another file in the way): compile in every process."""
    root, temp, env = _package_without_writable_cache(tmp_path)
    (temp / f"convforge-numba-{os.getuid()}").write_text("")
    result = _probe(env=env, args=("small",))
    assert len(result["warnings"]) == 1 and "compiling them in every process" in result["warnings"][0]
    assert result["numba"] and result["repeatable"] and result["close_to_numpy"]


# ------------------------------------------------------------------------------------------ concurrent cold starts

def _start(code, env, args=()):
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@needs_numba
def test_concurrent_cold_processes_all_succeed_identically(tmp_path):
    """4 processes start at once on an empty cache (``NUMBA_CACHE_DIR``), each compiling or loading every kernel
    family; all succeed with identical results (numba issues 4807, 10128: concurrent compilation and cache
    writes could crash a process)."""
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"), CONVFORGE_NUM_THREADS="1")
    procs = [_start(PROBE, env) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.splitlines()[-1]))
    assert len({r["digest"] for r in results}) == 1
    assert all(r["numba"] and r["close_to_numpy"] and r["repeatable"] and not r["warnings"] for r in results)
    assert list((tmp_path / "cache").rglob("convforge-compile.lock"))


@needs_numba
@pytest.mark.slow
def test_many_concurrent_cold_processes_in_different_orders(tmp_path):
    """8 cold processes, half of them making their first calls in the reverse order (so that processes compile
    different kernels and signatures at the same moment), 2 rounds on fresh caches."""
    for round_ in range(2):
        env = _env(NUMBA_CACHE_DIR=str(tmp_path / f"cache{round_}"), CONVFORGE_NUM_THREADS="1")
        procs = [_start(PROBE, env, ("reverse",) if i % 2 else ()) for i in range(8)]
        digests = set()
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0, err[-3000:]
            digests.add(json.loads(out.splitlines()[-1])["digest"])
        assert len(digests) == 1


HOLD_LOCK = textwrap.dedent('''
    import sys
    from convforge._algos import kernel_module
    from convforge._kernels import jit
    kernels = kernel_module("numba_kernels")
    cache_dir = kernels.direct_grouped_flat._cache.cache_path
    with jit.compile_lock(cache_dir):
        print(cache_dir, flush=True)
        sys.stdin.readline()
''')


@needs_numba
def test_compilation_waits_for_another_process_holding_the_lock(tmp_path):
    """While one process holds the compile lock of a cache directory, another process's first call neither
    compiles into nor loads from that cache (it waits); it finishes once the lock is released."""
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    holder = _start(HOLD_LOCK, env)
    cache_dir = Path(holder.stdout.readline().strip())
    assert cache_dir.is_dir(), holder.stderr.read()
    worker = _start(PROBE, env, ("small",))
    try:
        assert worker.stdout.readline().strip() == "compiling"       # about to make its first call
        time.sleep(1.5)
        assert worker.poll() is None, "the first call did not wait for the lock"
        assert not list(cache_dir.glob("*.nbi")), "a cache index was written while another process held the lock"
    finally:
        holder.communicate("\n", timeout=60)
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err[-3000:]
    assert list(cache_dir.glob("*.nbi"))


# ------------------------------------------------------------------------------------------ selection

def test_without_numba_the_choice_is_the_fastest_numpy_path():
    """Without Numba, Winograd's NumPy transforms are slower than im2col (measured: forward up to 3.2x, weight
    gradient up to 13x; ``convforge.engine.algorithms.winograd``), so a float32 3x3 layer it would suit runs
    im2col, forward and weight gradient.  Before: Winograd (80-88 ms against im2col's 23 ms on one machine)."""
    f32 = np.float32
    problem = ConvProblem.conv((1, 16, 24, 24), (16, 16, 3, 3), f32, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    with convforge.config(numba=False):
        assert select.choose(problem, "forward").name == "im2col"
        assert select.choose(problem, "weight_grad").name == "im2col"
    if HAVE_NUMBA:      # with the Numba transforms it still pays (where the implicit kernels do not run)
        assert winograd.winograd_pays(16, 16, (24, 24))

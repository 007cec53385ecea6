"""Concurrent use from several Python threads (``convforge._algos.threads``): calls running while another
thread changes ``convforge.config(threads=...)`` (which grows the shared pool) all succeed and stay exact, and a
part that splits again does not wait on the pool (no deadlock)."""
from __future__ import annotations

import threading
import time

import numpy as np

import convforge
import convforge.nn.functional as F
from convforge._algos import threads as _threads
from conftest import assert_close

RNG = np.random.default_rng(0)
X = RNG.standard_normal((48, 8, 16, 16))          # 48 x 16 x 14 x 14 x 72 = 10.8M multiply-adds: worth splitting
W = RNG.standard_normal((16, 8, 3, 3))


def test_threads_converting_while_another_changes_config_threads():
    """Three threads convolve in a loop while a fourth convolves under ``config(threads=k)`` for a growing
    ``k``: every growth replaces the shared pool.  Before the fix the replaced pool was shut down under the
    others (``RuntimeError: cannot schedule new futures after shutdown``, 3 runs in 10 with a few growths)."""
    with convforge.config(threads=1):
        expected = F.conv2d(X, W)
    errors, results = [], []
    stop = threading.Event()

    def converter():
        try:
            while not stop.is_set():
                with convforge.config(threads=2):
                    results.append(F.conv2d(X, W))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reconfigurer():
        try:
            for k in range(2, 42):
                with convforge.config(threads=k):
                    results.append(F.conv2d(X, W))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    workers = [threading.Thread(target=converter) for _ in range(3)] + [threading.Thread(target=reconfigurer)]
    started = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "a thread hung"
    assert not errors, f"{len(errors)} calls failed, first: {errors[0]!r}"
    assert len(results) >= 40, (len(results), time.monotonic() - started)
    for y in results:
        assert_close(y, expected)


def test_nested_split_does_not_wait_on_the_pool():
    """A part that splits again runs its parts itself: with every pool thread busy in an outer part that splits,
    nothing waits for a pool thread (before, this deadlocked).  80 outer parts: more pool threads than any
    earlier test made, so the pool has no spare thread."""
    def inner():
        return _threads.run_parts([lambda i=i: i for i in range(4)])

    done = []

    def outer():
        done.append(_threads.run_parts([inner for _ in range(80)]))

    t = threading.Thread(target=outer, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "nested run_parts deadlocked"
    assert done == [[[0, 1, 2, 3]] * 80]

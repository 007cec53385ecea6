"""convforge networks on a real dask.distributed LocalCluster (two worker processes, a memory limit each,
started cold: both import convforge and compile its Numba kernels at once) and on the threaded scheduler.

One cluster serves the whole module; the in-memory NumPy result on the same data is the oracle.
"""
from __future__ import annotations

import logging
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import convforge  # noqa: E402
import convforge.nn as nn  # noqa: E402
import convforge.nn.functional as F  # noqa: E402
from convforge.dask import map_network  # noqa: E402

from conftest import assert_close  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Two worker processes with an empty Numba cache: both compile convforge's kernels at the same time."""
    previous = os.environ.get("NUMBA_CACHE_DIR")
    os.environ["NUMBA_CACHE_DIR"] = str(tmp_path_factory.mktemp("numba-cache"))
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                                           dashboard_address=None, silence_logs=logging.ERROR)
    finally:
        if previous is None:
            os.environ.pop("NUMBA_CACHE_DIR")
        else:
            os.environ["NUMBA_CACHE_DIR"] = previous
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _volume_net():
    convforge.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1, padding_mode="replicate"),
                        nn.BatchNorm3d(4), nn.ReLU(), nn.MaxPool3d(2), nn.ConvTranspose3d(4, 1, 2, stride=2))
    net[3].running_var[...] = 2.0
    return net.eval()


def test_network_on_a_local_cluster_equals_in_memory(client):
    net = _volume_net()
    x = np.random.default_rng(0).standard_normal((2, 2, 14, 12, 10)).astype(np.float32)
    xd = da.from_array(x, chunks=(1, 1, 5, 7, 10))
    expected = np.asarray(net(x))
    layered, stacked = client.compute([net(xd), map_network(net, xd)], sync=True)
    assert_close(layered, expected, rtol=1e-5, atol=1e-5)
    assert_close(stacked, expected, rtol=1e-5, atol=1e-5)
    assert len(client.scheduler_info()["workers"]) == 2


def test_float64_functions_on_the_cluster_are_exact(client):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 11, 13))
    w = rng.standard_normal((6, 2, 3, 2))
    xd = da.from_array(x, chunks=(2, 3, 4, 3))
    lazy = F.avg_pool2d(F.conv2d(F.pad(xd, (2, 1, 1, 2), mode="circular"), w, stride=(2, 1), dilation=(1, 2),
                                 groups=2), 2, ceil_mode=True)
    expected = F.avg_pool2d(F.conv2d(F.pad(x, (2, 1, 1, 2), mode="circular"), w, stride=(2, 1), dilation=(1, 2),
                                     groups=2), 2, ceil_mode=True)
    assert_close(client.compute(lazy, sync=True), expected, rtol=1e-12, atol=1e-12)


def test_threaded_scheduler():
    net = _volume_net()
    x = np.random.default_rng(2).standard_normal((1, 2, 9, 9, 9)).astype(np.float32)
    xd = da.from_array(x, chunks=(1, 2, 4, 5, 9))
    assert_close(net(xd).compute(scheduler="threads"), np.asarray(net(x)), rtol=1e-5, atol=1e-5)


def test_modules_and_weights_pickle(client):
    net = _volume_net()
    clone = pickle.loads(pickle.dumps(net))
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6, 6)).astype(np.float32)
    assert np.array_equal(np.asarray(clone(x)), np.asarray(net(x)))
    remote = client.submit(lambda m, v: np.asarray(m(v)), net, x).result()
    assert np.array_equal(remote, np.asarray(net(x)))


def test_large_volume_example_small():
    """examples/large_volume.py --small: its own LocalCluster (2 workers, 1 GiB each), progress bar, block checks."""
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "large_volume.py"
    done = subprocess.run([sys.executable, str(script), "--small"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ok: every checked block equals the in-memory result" in done.stdout
    assert done.stdout.count("max |dask - in-memory|") == 3

"""A 3-D network over a volume larger than any worker's memory, on a dask.distributed LocalCluster.

The volume (default 1024^3 float32 = 4 GiB) is generated lazily block by block from a formula of the voxel
coordinates, so any region can be regenerated exactly for checking.  The network (three 3x3x3 convolutions with
ReLU and a transposed convolution that upsamples by 2, output 8x the input's voxels) runs on it with
``convforge.dask.map_network`` (each output block's task reads its input chunk plus the stack's halo once and runs
all layers) or, with ``--layered``, as plain ``model(x)`` (every layer its own Dask array).  The workers are
limited to 1 GiB each; the output (32 GiB for the default volume) is never stored: its sum and maximum stream out
through Dask reductions, with Dask's progress bar.  Finally a few random output blocks are recomputed and
compared with the in-memory network on their region of the volume (plus halo).

Run: ``python examples/large_volume.py`` (needs the extra ``dask``; the full volume takes a while on a laptop),
``python examples/large_volume.py --small`` (a 48^3 volume: a check in seconds, used by the tests).
"""
import argparse
import logging
import resource
import time

import numpy as np

import convforge
import convforge.nn as nn
from convforge.dask import map_network, network_halo

try:
    import dask.array as da
    import distributed
except ImportError as err:  # pragma: no cover - the message is the point
    raise SystemExit(f"this example needs Dask: pip install 'convforge[dask]' ({err})")


def make_network():
    convforge.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv3d(4, 2, 3, padding=1), nn.ReLU(), nn.ConvTranspose3d(2, 1, 2, stride=2)).eval()


def voxel_values(bounds):
    """The volume's values on the box ``bounds`` = ((z0, z1), (y0, y1), (x0, x1)): smooth waves plus a hashed
    texture, a pure function of the global coordinates (shape ``(1, 1, dz, dy, dx)``, float32)."""
    z, y, x = np.ogrid[tuple(slice(lo, hi) for lo, hi in bounds)]
    texture = ((z * 73856093) ^ (y * 19349663) ^ (x * 83492791)) % 1009 / 1009.0
    values = np.sin(z * 0.031) + np.cos(y * 0.017 + x * 0.023) + 0.5 * texture
    return values.astype(np.float32)[None, None]


def _generate_block(block_info=None):
    return voxel_values(block_info[None]["array-location"][2:])


def make_volume(edge, chunk):
    chunks = ((1,), (1,)) + (da.core.normalize_chunks(chunk, (edge,))[0],) * 3
    return da.map_blocks(_generate_block, chunks=chunks, dtype=np.float32, meta=np.empty((0,) * 5, np.float32))


def peak_rss_mib():
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_block(net, y, index, halo):
    """Output block ``index`` (z, y, x block numbers) against the in-memory network on its input region."""
    out_starts = [np.cumsum((0,) + c) for c in y.chunks[2:]]
    out_box = [(int(s[i]), int(s[i + 1])) for s, i in zip(out_starts, index)]
    edge = y.shape[2] // 2
    in_box = [(max(lo // 2 - h, 0), min(-(-hi // 2) + h, edge)) for (lo, hi), h in zip(out_box, halo)]
    local = np.asarray(net(voxel_values(in_box)))
    crop = tuple(slice(lo - 2 * a, hi - 2 * a) for (lo, hi), (a, _) in zip(out_box, in_box))
    expected = local[(slice(None), slice(None)) + crop]
    got = y.blocks[(0, 0) + tuple(index)].compute()
    err = float(np.max(np.abs(got - expected)))
    scale = max(float(np.max(np.abs(expected))), 1.0)
    return err / scale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="48^3 volume in 16^3 chunks (seconds)")
    parser.add_argument("--edge", type=int, default=1024, help="volume edge in voxels (default 1024: 4 GiB)")
    parser.add_argument("--chunk", type=int, default=128, help="chunk edge in voxels (default 128)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB", help="per worker (default 1GiB)")
    parser.add_argument("--layered", action="store_true", help="model(x) layer by layer instead of map_network")
    parser.add_argument("--check", type=int, default=3, help="random output blocks to verify (default 3)")
    args = parser.parse_args(argv)
    edge, chunk = (48, 16) if args.small else (args.edge, args.chunk)

    net = make_network()
    x = make_volume(edge, chunk)
    halo = tuple(h for h, _ in network_halo(net[:6], (edge,) * 3))
    y = net(x) if args.layered else map_network(net, x)
    print(f"volume {x.shape} float32 = {x.nbytes / 2 ** 30:.2f} GiB in {x.npartitions} chunks of {chunk}^3; "
          f"output {y.shape} = {y.nbytes / 2 ** 30:.2f} GiB in {y.npartitions} blocks; halo {halo[0]} voxels per "
          f"side; {'layer by layer' if args.layered else 'map_network (one halo exchange)'}")
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  memory_limit=args.memory_limit, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        start = time.perf_counter()
        futures = client.compute([y.sum(dtype=np.float64), y.max()])
        distributed.progress(futures)
        total, peak = client.gather(futures)
        seconds = time.perf_counter() - start
        print(f"\nsum {total:.6g}, max {peak:.6g}: {x.size / seconds:.3g} input voxels/s "
              f"({seconds:.1f} s, {args.workers} workers limited to {args.memory_limit})")
        rss = sorted(client.run(peak_rss_mib).values())
        print(f"peak resident memory per worker process: {', '.join(f'{m:.0f} MiB' for m in rss)}")
        rng = np.random.default_rng(0)
        worst = 0.0
        for _ in range(args.check):
            index = tuple(int(rng.integers(len(c))) for c in y.chunks[2:])
            error = check_block(net, y, index, halo)
            worst = max(worst, error)
            print(f"block {index}: max |dask - in-memory| / max|y| = {error:.2e}")
    if worst > 1e-5:
        raise SystemExit(f"mismatch: {worst:.2e} > 1e-5")
    print("ok: every checked block equals the in-memory result of its region")


if __name__ == "__main__":
    main()

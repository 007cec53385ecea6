"""Peak memory of one ResNet-18 training step, convforge against torch, measured the same way for both.

Usage::

    python benchmarks/train_memory.py                  # batch 8 at 224 x 224, float32, 2 threads
    python benchmarks/train_memory.py --size 64        # batch 8 at 64 x 64
    python benchmarks/train_memory.py --batch 16 --json out.json

Each library runs in its own fresh Python process, which imports only that library (torch's ResNet-18 is
torchvision's definition from tests/_torchvision_ref), builds ResNet-18 with SGD (momentum 0.9, weight decay
1e-4), and runs one warm-up step (kernels compiled, momentum buffers allocated), then sets every ``.grad`` to None
(``zero_grad``). Then it releases freed heap pages to the system (``malloc_trim``), reads its
resident memory (VmRSS), resets the high-water mark (``/proc/self/clear_refs``), runs one measured step
(``zero_grad``, forward in train mode, ``cross_entropy``, ``backward``, ``step``) and reads the high-water mark
(VmHWM). The step's peak is VmHWM minus the RSS before it: saved activations, the gradients and temporaries, over
the weights and optimiser state already resident. Both processes run with a fixed glibc mmap threshold
(``MALLOC_MMAP_THRESHOLD_``), so that large blocks go back to the system when freed and RSS follows the memory
in use rather than what the allocator keeps cached.

For convforge, tracemalloc's peak during one more step (NumPy's allocations, new in that step) is reported too,
as a cross-check of the RSS figure. Needs Linux (/proc).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
MMAP_THRESHOLD = 256 * 1024

BUILD = {
    "convforge": """
import convforge, convforge.models
import convforge.nn.functional as F
model = convforge.models.resnet18().train()
opt = convforge.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
inputs = convforge.tensor(X)

def step():
    opt.zero_grad()
    loss = F.cross_entropy(model(inputs), TARGET)
    loss.backward()
    opt.step()
""",
    "torch": """
import torch
from _torchvision_ref.resnet import resnet18
torch.set_num_threads(THREADS)
torch.set_num_interop_threads(1)
model = resnet18().train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
inputs, target = torch.from_numpy(X), torch.from_numpy(TARGET)

def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(inputs), target)
    loss.backward()
    opt.step()
""",
}

MEASURE = """
import ctypes, gc, time

def status_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field + " is not in /proc/self/status")

def release_freed_memory():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass

step()
opt.zero_grad()                        # the measured step allocates its gradients, as a first step does
release_freed_memory()
before = status_mib("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")                      # reset VmHWM to the current RSS
t0 = time.perf_counter()
step()
seconds = time.perf_counter() - t0
result = {"rss_before_mib": before, "hwm_mib": status_mib("VmHWM"), "step_s": seconds}
result["step_peak_mib"] = result["hwm_mib"] - before
if LIBRARY == "convforge":
    import tracemalloc
    opt.zero_grad()
    release_freed_memory()
    tracemalloc.start()
    step()
    result["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
print(json.dumps(result))
"""


def child_source(library, batch, size, threads):
    """A script that builds the model, warms up and prints the measured step's memory as JSON."""
    return "\n".join([
        "import json, sys",
        f"sys.path.insert(0, {TESTS!r})",
        "import numpy as np",
        f"LIBRARY, THREADS = {library!r}, {threads}",
        f"X = np.random.default_rng(0).standard_normal(({batch}, 3, {size}, {size}), dtype=np.float32)",
        f"TARGET = np.random.default_rng(1).integers(0, 1000, {batch})",
        BUILD[library],
        MEASURE,
    ])


def measure(library, batch, size, threads):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "CONVFORGE_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, "-c", child_source(library, batch, size, threads)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{library} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write the results as JSON to this file")
    args = p.parse_args(argv)
    results = {library: measure(library, args.batch, args.size, args.threads) for library in BUILD}
    print(f"ResNet-18 training step, batch {args.batch}, {args.size} x {args.size}, float32, {args.threads} threads")
    print(f"{'library':<10} {'RSS before MiB':>14} {'step peak MiB':>13} {'tracemalloc MiB':>15} {'step s':>7}")
    for library, r in results.items():
        traced = r.get("tracemalloc_peak_mib")
        print(f"{library:<10} {r['rss_before_mib']:14.0f} {r['step_peak_mib']:13.0f} "
              f"{'-' if traced is None else format(traced, '.0f'):>15} {r['step_s']:7.2f}")
    ratio = results["convforge"]["step_peak_mib"] / max(results["torch"]["step_peak_mib"], 1e-9)
    print(f"step peak convforge / torch = {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(vars(args), results=results, ratio=ratio), fh, indent=1)
    return results


if __name__ == "__main__":
    main()

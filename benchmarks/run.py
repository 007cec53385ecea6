"""Benchmark convforge against PyTorch (and onnxruntime) on real network layers, float32, 2 threads.

Usage::

    python benchmarks/run.py                 # full suite, forward
    python benchmarks/run.py --quick         # the quick subset, fewer repeats
    python benchmarks/run.py --backward      # forward and backward (grad input + grad weight)
    python benchmarks/run.py --only resnet   # layers whose name contains a substring
    python benchmarks/run.py --markdown out.md --json out.json
    python benchmarks/run.py --threads 1     # every library on one thread (far less sensitive to a busy machine)

Every library runs in this one process with 2 threads (torch.set_num_threads(2); OpenBLAS, OpenMP and Numba
through their environment variables, set before NumPy is imported). Times are medians over repeated runs; the
runs of the libraries alternate in blocks so that a noisy neighbour hurts all of them alike.
Peak extra memory is tracemalloc's peak during one call minus the output's size (tracemalloc sees NumPy's
allocations; Numba kernels here allocate nothing themselves).
"""
from __future__ import annotations

import os

import sys

# threads must be fixed before NumPy/torch/Numba are imported: read --threads N here
THREADS = os.environ.get("CONVFORGE_BENCH_THREADS", "2")
if "--threads" in sys.argv:
    THREADS = sys.argv[sys.argv.index("--threads") + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "CONVFORGE_NUM_THREADS"):
    os.environ[_var] = THREADS
# The benchmark machine exports OPENBLAS_CORETYPE=Haswell (AVX2 kernels); --blas-autodetect drops it so that
# OpenBLAS picks its own kernels (AVX-512 there: about twice the single-thread sgemm throughput).
BLAS_CORETYPE = os.environ.get("OPENBLAS_CORETYPE")
if "--blas-autodetect" in sys.argv:
    os.environ.pop("OPENBLAS_CORETYPE", None)
    BLAS_CORETYPE = None

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layers import SUITE  # noqa: E402

from convforge import engine  # noqa: E402
from convforge.nn import functional as F  # noqa: E402

try:
    import torch  # noqa: E402
    torch.set_num_threads(int(THREADS))
    torch.set_num_interop_threads(1)
except ImportError:  # pragma: no cover
    torch = None

try:
    import onnx  # noqa: E402,F401  (the ONNX model is built in _ort_forward)
    import onnxruntime as ort  # noqa: E402
except ImportError:  # pragma: no cover
    ort = None


def _cf_forward(layer, x, w, b):
    n = len(layer.size)
    if layer.transposed:
        fn = getattr(F, f"conv_transpose{n}d")
        return lambda: fn(x, w, b, layer.stride, layer.padding, layer.output_padding, layer.groups, layer.dilation)
    fn = getattr(F, f"conv{n}d")
    return lambda: fn(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)


def _torch_forward(layer, x, w, b):
    n = len(layer.size)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    tF = torch.nn.functional
    if layer.transposed:
        fn = getattr(tF, f"conv_transpose{n}d")

        def run():
            with torch.no_grad():
                return fn(tx, tw, tb, layer.stride, layer.padding, layer.output_padding, layer.groups,
                          layer.dilation)
        return run
    fn = getattr(tF, f"conv{n}d")

    def run():
        with torch.no_grad():
            return fn(tx, tw, tb, layer.stride, layer.padding, layer.dilation, layer.groups)
    return run


def _ort_forward(layer, x, w, b):
    if ort is None:
        return None
    from onnx import TensorProto, helper, numpy_helper
    op = "ConvTranspose" if layer.transposed else "Conv"
    attrs = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride), dilations=list(layer.dilation),
                 pads=list(layer.padding) * 2, group=layer.groups)
    if layer.transposed:
        attrs["output_padding"] = list(layer.output_padding)
    node = helper.make_node(op, ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(THREADS)
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # pragma: no cover - depends on the onnxruntime build
        print(f"  onnxruntime cannot run {layer.name}: {exc}", file=sys.stderr)
        return None
    return lambda: sess.run(None, {"x": x})


def _time_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_alternating(fns, min_time, max_runs, blocks=2):
    """Median seconds of each callable; the callables run in alternating blocks."""
    for fn in fns:
        if fn is not None:
            fn()   # warm-up (compilation, first-touch of memory)
    first = [(_time_once(fn) if fn is not None else None) for fn in fns]
    runs = [[t] if t is not None else [] for t in first]
    per_block = [max(1, min(max_runs // blocks, int(min_time / blocks / max(t, 1e-6))))
                 if t is not None else 0 for t in first]
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            for _ in range(per_block[i]):
                runs[i].append(_time_once(fn))
    return [statistics.median(r) if r else None for r in runs]


def peak_extra_bytes(fn):
    """tracemalloc peak during one call, minus the size of what the call returns."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return max(0, peak - sum(getattr(o, "nbytes", 0) for o in outs))


def chosen_algorithm(fn):
    fn()
    return engine.last_choice()


# ------------------------------------------------------------------------------------------ backward

def _cf_backward(layer, x, w, gy):
    from convforge.nn import grad as G
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    if layer.transposed:
        kw.update(transposed=True, output_padding=layer.output_padding)
    return lambda: G.conv_backward(gy, x, w, needs=(True, True, False), **kw)[:2]


def _torch_backward(layer, x, w, b, gy):
    n = len(layer.size)
    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tgy = torch.from_numpy(gy)
    tF = torch.nn.functional
    if layer.transposed:
        y = getattr(tF, f"conv_transpose{n}d")(tx, tw, None, layer.stride, layer.padding, layer.output_padding,
                                              layer.groups, layer.dilation)
    else:
        y = getattr(tF, f"conv{n}d")(tx, tw, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    return lambda: torch.autograd.grad(y, (tx, tw), tgy, retain_graph=True)


# ------------------------------------------------------------------------------------------ main

def run_layer(layer, args, rng):
    x = rng.standard_normal(layer.input_shape, dtype=np.float32)
    w = (rng.standard_normal(layer.weight_shape, dtype=np.float32) /
         np.float32(math.sqrt(layer.weight_shape[1] * math.prod(layer.kernel))))
    b = rng.standard_normal(layer.out_ch, dtype=np.float32)
    cf = _cf_forward(layer, x, w, b)
    t0 = time.perf_counter()
    y = cf()
    first = time.perf_counter() - t0
    row = dict(name=layer.name, gflop=2 * layer.macs / 1e9, first_call_ms=first * 1e3)
    fns = [_torch_forward(layer, x, w, b) if torch else None, cf,
           _ort_forward(layer, x, w, b) if args.onnxruntime else None]
    t_torch, t_cf, t_ort = time_alternating(fns, args.min_time, args.max_runs)
    if torch is not None:
        ref = fns[0]().numpy()
        row["max_rel_err"] = float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-30))
    row.update(torch_ms=t_torch and t_torch * 1e3, cf_ms=t_cf * 1e3, ort_ms=t_ort and t_ort * 1e3,
               ratio=t_torch and t_cf / t_torch, gflops=2 * layer.macs / t_cf / 1e9,
               peak_mib=peak_extra_bytes(cf) / 2 ** 20, algorithm=chosen_algorithm(cf))
    if args.backward:
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        cfb = _cf_backward(layer, x, w, gy)
        fnb = [_torch_backward(layer, x, w, b, gy) if torch else None, cfb]
        tb_torch, tb_cf = time_alternating(fnb, args.min_time, args.max_runs)
        row.update(bwd_torch_ms=tb_torch and tb_torch * 1e3, bwd_cf_ms=tb_cf * 1e3,
                   bwd_ratio=tb_torch and tb_cf / tb_torch, bwd_peak_mib=peak_extra_bytes(cfb) / 2 ** 20)
    return row


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


COLUMNS = [("layer", "name", "<44"), ("GFLOP", "gflop", "6.2f"), ("torch ms", "torch_ms", "9.2f"),
           ("cf ms", "cf_ms", "9.2f"), ("ratio", "ratio", "6.2f"), ("GFLOP/s", "gflops", "7.1f"),
           ("peak MiB", "peak_mib", "8.1f"), ("algorithm", "algorithm", "<16"), ("ort ms", "ort_ms", "8.2f")]
BWD_COLUMNS = [("bwd torch ms", "bwd_torch_ms", "12.2f"), ("bwd cf ms", "bwd_cf_ms", "10.2f"),
               ("bwd ratio", "bwd_ratio", "9.2f"), ("bwd MiB", "bwd_peak_mib", "8.1f")]


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summary(rows, backward):
    lines = []
    fr = [r["ratio"] for r in rows if r.get("ratio")]
    if fr:
        worst = max(rows, key=lambda r: r.get("ratio") or 0)
        lines.append(f"forward  geomean ratio convforge/torch = {geomean(fr):.3f} over {len(fr)} layers; "
                     f"worst {worst['ratio']:.2f} ({worst['name']})")
    ort_r = [r["cf_ms"] / r["ort_ms"] for r in rows if r.get("ort_ms")]
    if ort_r:
        lines.append(f"forward  geomean ratio convforge/onnxruntime = {geomean(ort_r):.3f}")
    if backward:
        br = [r["bwd_ratio"] for r in rows if r.get("bwd_ratio")]
        worst = max(rows, key=lambda r: r.get("bwd_ratio") or 0)
        lines.append(f"backward geomean ratio convforge/torch = {geomean(br):.3f} over {len(br)} layers; "
                     f"worst {worst['bwd_ratio']:.2f} ({worst['name']})")
    return lines


def markdown(rows, backward):
    cols = COLUMNS + (BWD_COLUMNS if backward else [])
    out = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k), s.lstrip("<").replace("44", "").replace("16", "")
                                             if s.startswith("<") else "." + s.split(".")[1])
                                     for _, k, s in cols) + " |")
    return "\n".join(out)


def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__, "threads": THREADS,
            "OPENBLAS_CORETYPE": BLAS_CORETYPE,
            "torch": torch and torch.__version__, "onnxruntime": ort and ort.__version__}
    try:
        import numba
        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    try:
        info["load_avg"] = os.getloadavg()
    except OSError:
        pass
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the quick subset with fewer repeats")
    p.add_argument("--backward", action="store_true", help="also time grad input + grad weight")
    p.add_argument("--only", default=None, help="only layers whose name contains this substring")
    p.add_argument("--no-onnxruntime", dest="onnxruntime", action="store_false")
    p.add_argument("--threads", type=int, default=int(THREADS), help="threads for every library (default 2)")
    p.add_argument("--blas-autodetect", action="store_true",
                   help="unset OPENBLAS_CORETYPE so OpenBLAS chooses its kernels for this CPU")
    p.add_argument("--min-time", type=float, default=None, help="seconds of timed runs per library and layer")
    p.add_argument("--max-runs", type=int, default=None)
    p.add_argument("--markdown", default=None, help="write the table as Markdown to this file")
    p.add_argument("--json", default=None, help="write the rows as JSON to this file")
    args = p.parse_args(argv)
    args.onnxruntime = args.onnxruntime and ort is not None
    args.min_time = args.min_time or (0.3 if args.quick else 1.0)
    args.max_runs = args.max_runs or (6 if args.quick else 20)
    layers = [l for l in SUITE if (l.quick or not args.quick) and (args.only is None or args.only in l.name)]
    rng = np.random.default_rng(0)
    print("machine:", machine())
    cols = COLUMNS + (BWD_COLUMNS if args.backward else [])
    print(" ".join(format(c[0], (">" if not c[2].startswith("<") else "<") + c[2].lstrip("<").split(".")[0])
                   for c in cols))
    rows = []
    for layer in layers:
        row = run_layer(layer, args, rng)
        rows.append(row)
        print(" ".join(_fmt(row.get(k), s) for _, k, s in cols), flush=True)
    for line in summary(rows, args.backward):
        print(line)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(rows, args.backward) + "\n\n" + "\n".join("- " + s for s in summary(rows, args.backward))
                     + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "rows": rows}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()

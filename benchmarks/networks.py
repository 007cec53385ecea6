"""Benchmark whole zoo networks: convforge eager, convforge optimised, torch eager and onnxruntime; float32.

Usage::

    python benchmarks/networks.py                    # every network at batch 1 and 8 (r3d_18: 1 and 4), cold starts
    python benchmarks/networks.py --quick            # resnet18, mobilenet_v3_small, efficientnet_b0 at batch 1
    python benchmarks/networks.py --only resnet      # networks whose name contains a substring
    python benchmarks/networks.py --batch 1          # only batch 1 (repeatable: --batch 1 --batch 8)
    python benchmarks/networks.py --no-cold          # skip the fresh-process cold starts
    python benchmarks/networks.py --markdown out.md --json out.json
    python benchmarks/networks.py --train-only       # only the training rows (--no-train: none)

All four run in this one process with 2 threads (see benchmarks/run.py, whose timing helpers this reuses), with
the same weights: torchvision's definitions (tests/_torchvision_ref) initialised with torch.manual_seed(0), copied
into convforge with ``load_state_dict`` and exported to ONNX in memory. Times are medians of alternating blocks of
runs, in ms; ratios are convforge over the other library (below 1: convforge is faster); "opt" is
``convforge.nn.utils.optimize_for_inference``. "cf MiB" is tracemalloc's peak during one eager convforge call minus
the output.

Cold start: for each library a fresh Python process imports it, builds the network, loads the weights from a file
(.safetensors for convforge, .pt for torch, .onnx for onnxruntime) and computes the first output at batch 1;
reported are that wall time and the process's peak resident memory (VmHWM, MiB).

Training: one step (train mode, ``F.cross_entropy``, ``zero_grad``, ``loss.backward()``, optimiser step) of
ResNet-18 at batch 8 on 64 x 64 inputs (SGD, momentum 0.9, weight decay 1e-4) and of examples/train_shapes.py's
network at its batch of 64 (Adam, as the example trains it; torch's twin is the example's own class source
compiled against ``torch.nn``), float32, same weights, medians of alternating runs. The cost of recording is the
train-mode forward with recording (graph built and freed) over the same forward under ``no_grad``, for both
libraries; "loss rel err" compares the first step's losses.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))     # tests/_torchvision_ref: torch's definitions
from run import THREADS, geomean, machine, peak_extra_bytes, time_alternating  # noqa: E402  (fixes threads first)

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import convforge  # noqa: E402
import convforge.models  # noqa: E402

NETWORKS = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d", "vgg16", "mobilenet_v2", "mobilenet_v3_small",
            "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "r3d_18"]
QUICK = ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]
TORCHVISION_MODULE = {"resnet18": "resnet", "resnet34": "resnet", "resnet50": "resnet", "resnext50_32x4d": "resnet",
                      "vgg16": "vgg", "mobilenet_v2": "mobilenetv2", "mobilenet_v3_small": "mobilenetv3",
                      "mobilenet_v3_large": "mobilenetv3", "efficientnet_b0": "efficientnet",
                      "convnext_tiny": "convnext", "r3d_18": "video_resnet"}


def input_shape(name, batch):
    return (batch, 3, 16, 112, 112) if name == "r3d_18" else (batch, 3, 224, 224)


def batches(name, quick, only=None):
    sizes = (1,) if quick else ((1, 4) if name == "r3d_18" else (1, 8))
    return [b for b in sizes if not only or b in only]


def torch_model(name):
    import importlib
    import torch
    torch.manual_seed(0)
    return getattr(importlib.import_module(f"_torchvision_ref.{TORCHVISION_MODULE[name]}"), name)().eval()


def onnx_bytes(tv_model, x):
    import torch
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tv_model, (torch.from_numpy(x),), buffer, opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return buffer.getvalue()


def ort_session(model_bytes_or_path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(THREADS)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes_or_path, opts, providers=["CPUExecutionProvider"])


class Contenders:
    """One network in every form, sharing torch's random weights."""

    def __init__(self, name, use_ort):
        self.tv = torch_model(name)
        state = {k: v.numpy() for k, v in self.tv.state_dict().items()}
        self.cf = getattr(convforge.models, name)().eval()
        self.cf.load_state_dict(state, strict=True)
        x = np.zeros(input_shape(name, 1), np.float32)
        self.cf_opt = convforge.nn.utils.optimize_for_inference(self.cf, example_input=x)
        self.ort = ort_session(onnx_bytes(self.tv, x)) if use_ort else None

    def callables(self, x):
        import torch
        tx = torch.from_numpy(x)

        def cf(model):
            def run():
                with convforge.no_grad():
                    return model(x)
            return run

        def tv():
            with torch.no_grad():
                return self.tv(tx)
        return [cf(self.cf), cf(self.cf_opt), tv,
                (lambda: self.ort.run(None, {"x": x})[0]) if self.ort is not None else None]


def run_network(name, batch, net, args, rng):
    x = rng.standard_normal(input_shape(name, batch), dtype=np.float32)
    fns = net.callables(x)
    y_cf, y_tv = np.asarray(fns[0]()), fns[2]().numpy()
    t_cf, t_opt, t_tv, t_ort = time_alternating(fns, args.min_time, args.max_runs)
    ms = lambda t: t and t * 1e3  # noqa: E731
    row = dict(name=name, batch=batch, cf_ms=ms(t_cf), opt_ms=ms(t_opt), torch_ms=ms(t_tv), ort_ms=ms(t_ort),
               max_rel_err=float(np.max(np.abs(y_cf - y_tv)) / max(float(np.max(np.abs(y_tv))), 1e-30)),
               cf_peak_mib=peak_extra_bytes(fns[0]) / 2 ** 20)
    row["eager_vs_torch"] = t_cf / t_tv
    row["opt_vs_torch"] = t_opt and t_opt / t_tv
    row["opt_vs_ort"] = t_opt and t_ort and t_opt / t_ort
    row["eager_vs_ort"] = t_ort and t_cf / t_ort
    return row


# ------------------------------------------------------------------------------------------ cold start

COLD_CHILD = {
    "convforge": """
import convforge, convforge.models
model = getattr(convforge.models, NAME)()
model.load_state_dict(convforge.load(WEIGHTS + ".safetensors"), strict=True)
model.eval()
with convforge.no_grad():
    y = model(X)
""",
    "torch": """
import importlib, torch
torch.set_num_threads(THREADS)
model = getattr(importlib.import_module("_torchvision_ref." + MODULE), NAME)()
model.load_state_dict(torch.load(WEIGHTS + ".pt"))
model.eval()
with torch.no_grad():
    y = model(torch.from_numpy(X))
""",
    "onnxruntime": """
import onnxruntime as ort
opts = ort.SessionOptions()
opts.intra_op_num_threads = THREADS
opts.inter_op_num_threads = 1
y = ort.InferenceSession(WEIGHTS + ".onnx", opts, providers=["CPUExecutionProvider"]).run(None, {"x": X})
""",
}


def _child_source(library, name, weights):
    """A script timing import + build + load + first output from a fresh interpreter (the input is made with
    NumPy before the clock starts), printing seconds and peak RSS as JSON."""
    return "\n".join([
        "import json, resource, sys, time",
        f"sys.path.insert(0, {os.path.join(os.path.dirname(HERE), 'tests')!r})",
        "import numpy as np",
        f"NAME, MODULE, WEIGHTS, THREADS = {name!r}, {TORCHVISION_MODULE[name]!r}, {weights!r}, {int(THREADS)}",
        f"X = np.random.default_rng(0).standard_normal({input_shape(name, 1)!r}, dtype=np.float32)",
        "t0 = time.perf_counter()",
        COLD_CHILD[library],
        "seconds = time.perf_counter() - t0",
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec
        "hwm = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')]",
        "rss = int(hwm[0]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024",
        "print(json.dumps({'s': seconds, 'rss_mib': rss}))",
    ])


def cold_starts(name, net, libraries):
    import torch
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, name)
        state = {k: v.numpy() for k, v in net.tv.state_dict().items()}
        convforge.save(state, weights + ".safetensors")
        torch.save(net.tv.state_dict(), weights + ".pt")
        with open(weights + ".onnx", "wb") as fh:
            fh.write(onnx_bytes(net.tv, np.zeros(input_shape(name, 1), np.float32)))
        for library in libraries:
            proc = subprocess.run([sys.executable, "-c", _child_source(library, name, weights)], capture_output=True,
                                  text=True, env=os.environ.copy())
            if proc.returncode != 0:
                print(f"  cold start {library} {name} failed: {proc.stderr.strip().splitlines()[-1:]}",
                      file=sys.stderr)
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            out[f"cold_{library}_s"] = result["s"]
            out[f"cold_{library}_rss_mib"] = result["rss_mib"]
    return out


# ------------------------------------------------------------------------------------------ training

TRAINING = {"resnet18": (8, 3, 64, 64), "train_shapes": (64, 1, 24, 24)}      # network -> input shape


def _example_module():
    """examples/train_shapes.py, imported from its path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "train_shapes", os.path.join(os.path.dirname(HERE), "examples", "train_shapes.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module              # inspect.getsource finds class sources through it
    spec.loader.exec_module(module)
    return module


def _torch_twin(module, class_names):
    """The example's own class definitions compiled against ``torch.nn`` (they use names both libraries have)."""
    import inspect
    import torch
    namespace = {"nn": torch.nn, "CLASSES": module.CLASSES}
    for class_name in class_names:
        exec(inspect.getsource(getattr(module, class_name)), namespace)  # noqa: S102 - this repository's source
    return namespace


def training_pair(name):
    """(convforge model, torch model, optimiser name, its options): the same float32 weights, train mode."""
    import torch
    if name == "train_shapes":
        example = _example_module()
        torch.manual_seed(0)
        tv = _torch_twin(example, ("ResBlock", "ShapesNet"))["ShapesNet"]()
        cf = example.build_model()
        optimiser, options = "Adam", {"lr": 0.01}
    else:
        tv = torch_model(name)
        cf = getattr(convforge.models, name)()
        optimiser, options = "SGD", {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}
    cf.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()}, strict=True)
    return cf.train(), tv.train(), optimiser, options


def _step(model, optimiser, cross_entropy, x, target):
    """One training step of ``model`` in either library; returns the loss as a float."""
    def step():
        optimiser.zero_grad()
        loss = cross_entropy(model(x), target)
        loss.backward()
        optimiser.step()
        return loss.item()
    return step


def _forward(model, x, no_grad=None):
    """``model(x)``, under ``no_grad()`` when given (nothing recorded)."""
    if no_grad is None:
        return lambda: model(x)

    def bare():
        with no_grad():
            return model(x)
    return bare


def training_callables(cf, tv, optimiser, options, x, target):
    """[convforge step, torch step, convforge forward under no_grad, recorded, torch's two forwards]."""
    import torch
    opt_cf = getattr(convforge.optim, optimiser)(cf.parameters(), **options)
    opt_tv = getattr(torch.optim, optimiser)(tv.parameters(), **options)
    cx, tx = convforge.tensor(x), torch.from_numpy(x)
    return [_step(cf, opt_cf, convforge.nn.functional.cross_entropy, cx, target),
            _step(tv, opt_tv, torch.nn.functional.cross_entropy, tx, torch.from_numpy(target)),
            _forward(cf, cx, convforge.no_grad), _forward(cf, cx), _forward(tv, tx, torch.no_grad), _forward(tv, tx)]


def run_training(name, args, rng):
    shape = TRAINING[name]
    cf, tv, optimiser, options = training_pair(name)
    x = rng.standard_normal(shape, dtype=np.float32)
    target = rng.integers(0, cf(x).shape[1], shape[0])
    fns = training_callables(cf, tv, optimiser, options, x, target)
    loss_cf, loss_tv = fns[0](), fns[1]()       # from the same weights: the first step's losses agree
    t_step, t_tv_step, t_bare, t_rec, t_tv_bare, t_tv_rec = time_alternating(fns, args.min_time, args.max_runs)
    return dict(name=name, batch=shape[0], optimiser=optimiser, cf_step_ms=t_step * 1e3,
                torch_step_ms=t_tv_step * 1e3, step_vs_torch=t_step / t_tv_step, cf_bare_ms=t_bare * 1e3,
                cf_rec_ms=t_rec * 1e3, cf_record_overhead=t_rec / t_bare - 1, torch_bare_ms=t_tv_bare * 1e3,
                torch_rec_ms=t_tv_rec * 1e3, torch_record_overhead=t_tv_rec / t_tv_bare - 1,
                loss_rel_err=abs(loss_cf - loss_tv) / max(abs(loss_tv), 1e-30))


# ------------------------------------------------------------------------------------------ report

COLUMNS = [("network", "name", "<18"), ("batch", "batch", "5d"), ("cf ms", "cf_ms", "9.1f"),
           ("cf opt ms", "opt_ms", "9.1f"), ("torch ms", "torch_ms", "9.1f"), ("ort ms", "ort_ms", "8.1f"),
           ("eager/torch", "eager_vs_torch", "11.2f"), ("opt/torch", "opt_vs_torch", "9.2f"),
           ("opt/ort", "opt_vs_ort", "7.2f"), ("cf MiB", "cf_peak_mib", "7.0f"),
           ("max rel err", "max_rel_err", "11.1e")]
TRAIN_COLUMNS = [("training", "name", "<13"), ("batch", "batch", "5d"), ("opt", "optimiser", "<4"),
                 ("cf step ms", "cf_step_ms", "10.1f"), ("torch step ms", "torch_step_ms", "13.1f"),
                 ("step/torch", "step_vs_torch", "10.2f"), ("cf fwd ms", "cf_bare_ms", "9.1f"),
                 ("cf rec ms", "cf_rec_ms", "9.1f"), ("cf rec +", "cf_record_overhead", "8.1%"),
                 ("torch fwd ms", "torch_bare_ms", "12.1f"), ("torch rec ms", "torch_rec_ms", "12.1f"),
                 ("torch rec +", "torch_record_overhead", "11.1%"), ("loss rel err", "loss_rel_err", "12.1e")]
COLD_COLUMNS = [("network", "name", "<18")] + [
    (f"{lib} {what}", f"cold_{lib}_{key}", spec) for lib in ("convforge", "torch", "onnxruntime")
    for what, key, spec in (("s", "s", "6.2f"), ("MiB", "rss_mib", "6.0f"))]


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _header(cols):
    return " ".join(format(c[0], ("<" if c[2].startswith("<") else ">") + c[2].lstrip("<").split(".")[0].rstrip("de"))
                    for c in cols)


def _line(row, cols):
    return " ".join(_fmt(row.get(k), s) for _, k, s in cols)


def summary(rows):
    lines = []
    for key, label in (("opt_vs_torch", "optimize_for_inference / torch eager"), ("eager_vs_torch",
                                                                                  "convforge eager / torch eager"),
                       ("opt_vs_ort", "optimize_for_inference / onnxruntime"), ("eager_vs_ort",
                                                                                "convforge eager / onnxruntime")):
        values = [r[key] for r in rows if r.get(key)]
        if values:
            worst = max((r for r in rows if r.get(key)), key=lambda r: r[key])
            lines.append(f"geomean {label} = {geomean(values):.3f} over {len(values)} runs; worst "
                         f"{worst[key]:.2f} ({worst['name']} batch {worst['batch']})")
    return lines


def markdown(rows, cols):
    head = "| " + " | ".join(c[0] for c in cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n"
    return head + "\n".join("| " + " | ".join(_fmt(r.get(k), s.lstrip("<").lstrip("0123456789") or "")
                                              for _, k, s in cols) + " |" for r in rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} at batch 1, fewer repeats")
    p.add_argument("--only", default=None, help="only networks whose name contains this substring")
    p.add_argument("--no-onnxruntime", dest="onnxruntime", action="store_false")
    p.add_argument("--batch", type=int, action="append", help="only this batch size (repeatable)")
    p.add_argument("--no-cold", dest="cold", action="store_false", help="skip the fresh-process cold starts")
    p.add_argument("--no-train", dest="train", action="store_false", help="skip the training rows")
    p.add_argument("--train-only", action="store_true", help="only the training rows")
    p.add_argument("--threads", type=int, default=int(THREADS), help="threads for every library (default 2)")
    p.add_argument("--min-time", type=float, default=None, help="seconds of timed runs per library and network")
    p.add_argument("--max-runs", type=int, default=None)
    p.add_argument("--markdown", default=None, help="write the tables as Markdown to this file")
    p.add_argument("--json", default=None, help="write the rows as JSON to this file")
    args = p.parse_args(argv)
    args.min_time = args.min_time or (0.5 if args.quick else 2.0)
    args.max_runs = args.max_runs or (3 if args.quick else 15)
    names = [n for n in (QUICK if args.quick else NETWORKS) if args.only is None or args.only in n]
    names = [] if args.train_only else names
    libraries = ["convforge", "torch"] + (["onnxruntime"] if args.onnxruntime else [])
    rng = np.random.default_rng(0)
    print("machine:", machine())
    if names:
        print(_header(COLUMNS))
    rows, cold_rows = [], []
    for name in names:
        sizes = batches(name, args.quick, args.batch)
        if not sizes:
            continue
        net = Contenders(name, args.onnxruntime)
        for batch in sizes:
            rows.append(run_network(name, batch, net, args, rng))
            print(_line(rows[-1], COLUMNS), flush=True)
        if args.cold:
            cold_rows.append(dict(name=name, **cold_starts(name, net, libraries)))
        del net
    for line in summary(rows):
        print(line)
    train_rows = []
    if args.train or args.train_only:
        print("\ntraining step (forward, cross entropy, backward, optimiser step) and the cost of recording")
        print(_header(TRAIN_COLUMNS))
        for name in (n for n in TRAINING if args.only is None or args.only in n):
            train_rows.append(run_training(name, args, rng))
            print(_line(train_rows[-1], TRAIN_COLUMNS), flush=True)
    if cold_rows:
        print("\ncold start at batch 1 (fresh process: import, build, load weights, first output) and peak RSS")
        print(_header(COLD_COLUMNS))
        for row in cold_rows:
            print(_line(row, COLD_COLUMNS))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(rows, COLUMNS) + "\n\n" + "\n".join("- " + s for s in summary(rows)) + "\n")
            if train_rows:
                fh.write("\n" + markdown(train_rows, TRAIN_COLUMNS) + "\n")
            if cold_rows:
                fh.write("\n" + markdown(cold_rows, COLD_COLUMNS) + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "rows": rows, "cold": cold_rows, "training": train_rows}, fh, indent=1)
    return rows, cold_rows


if __name__ == "__main__":
    main()

"""Generate TensorFlow / Keras reference outputs for convforge's tests (TensorFlow is not needed to run them).

Run once with real TensorFlow (kept out of the project's venv):

    python3 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow numpy
    /work/tfvenv/bin/python scripts/gen_tf_fixtures.py

Writes ``tests/fixtures/tf_fixtures.npz`` (arrays, keyed ``<case id>/<role>``) and ``tests/fixtures/tf_fixtures.json``
(one record per case: function, keyword arguments, array roles, dtype, TF version).  The grid is seeded and
covers tf.nn conv1d/2d/3d/convolution (SAME / VALID / explicit, NHWC and NCHW where TF's CPU kernels run them,
strides, dilations, groups via the input depth), conv*_transpose with output_shape, depthwise_conv2d (multiplier,
rate), separable_conv2d, and the Keras layers Conv1D/2D/3D, Conv*Transpose, DepthwiseConv2D, SeparableConv2D with
their configs and weights.  float64 where TF's CPU kernels have it (tested at 1e-10), float32 otherwise (1e-5).
Cases TF refuses on this CPU are listed in the JSON under "refused" with TF's message.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
rng = np.random.default_rng(20261101)
keras.utils.set_random_seed(20261101)   # Keras kernel initialisers: reproducible weights
arrays: dict = {}
cases: list = []
refused: list = []

SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def fmt(n, cf):
    return "NC" + SPATIAL[n] if cf else "N" + SPATIAL[n] + "C"


def rand(shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def record(fn, kwargs, inputs, call, dtype, note=""):
    """Run ``call`` (TF); on success store inputs/output under a new case id."""
    cid = f"c{len(cases) + len(refused):04d}"
    try:
        y = np.asarray(call())
    except Exception as e:  # TF refuses some configs on CPU (NCHW, dilated transposed, ...)
        refused.append({"id": cid, "fn": fn, "kwargs": kwargs, "dtype": dtype, "error": f"{type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200]}"})
        return
    roles = {}
    for role, arr in list(inputs.items()) + [("y", y)]:
        key = f"{cid}/{role}"
        arrays[key] = np.asarray(arr)
        roles[role] = key
    cases.append({"id": cid, "fn": fn, "kwargs": kwargs, "arrays": roles, "dtype": dtype, "note": note})


def same_out(i, s):
    return -(-i // s)


def valid_out(i, k, s, d):
    return -(-(i - d * (k - 1)) // s)


# ---------------------------------------------------------------------------------------------------------------
def tf_conv_grid():
    fn_of = {1: "conv1d", 2: "conv2d", 3: "conv3d"}
    for n in (1, 2, 3):
        sizes_choices = {1: [(9,), (10,)], 2: [(7, 8), (6, 9)], 3: [(5, 4, 6)]}[n]
        for dtype in ("float64", "float32"):
            for cf in (False, True):
                for padding in ("SAME", "VALID", "EXPLICIT"):
                    if n == 3 and padding == "EXPLICIT":
                        continue                       # tf.nn.conv3d takes only SAME / VALID
                    for stride in (1, 2):
                        for dil in (1, 2):
                            if stride > 1 and dil > 1:
                                continue               # TF: strides > 1 not supported together with dilations > 1
                            for groups in (1, 2):
                                if n == 3 and groups > 1:
                                    continue
                                sizes = sizes_choices[int(rng.integers(len(sizes_choices)))]
                                k = tuple(int(v) for v in rng.integers(1, 4, n))
                                cin, cout, batch = 2 * groups, 3 * groups if groups > 1 else 5, 2
                                x_cl = rand((batch,) + sizes + (cin,), dtype)
                                w = rand(k + (cin // groups, cout), dtype)
                                strides = [stride] * n if n != 1 else stride
                                dil_arg = [dil] * n if n != 1 else dil
                                if padding == "EXPLICIT":
                                    pairs = [[int(a), int(b)] for a, b in rng.integers(0, 3, (n, 2))]
                                    pad = [[0, 0]] + pairs + [[0, 0]] if not cf else [[0, 0], [0, 0]] + pairs
                                else:
                                    pad = padding
                                if padding == "VALID" and any(i < dil * (kk - 1) + 1 for i, kk in zip(sizes, k)):
                                    continue
                                x = np.moveaxis(x_cl, -1, 1) if cf else x_cl
                                kw = {"padding": pad, "data_format": fmt(n, cf), "dilations": dil_arg,
                                      ("stride" if n == 1 else "strides"): strides}
                                if n == 3:
                                    kw["strides"] = [1, stride, stride, stride, 1] if not cf else [1, 1] + [stride] * 3
                                    kw["dilations"] = [1, dil, dil, dil, 1] if not cf else [1, 1] + [dil] * 3
                                f = getattr(tf.nn, fn_of[n])
                                record(fn_of[n], kw, {"input": x, "filters": w},
                                       lambda f=f, x=x, w=w, kw=kw: f(x, w, **kw), dtype)
    # tf.nn.convolution, incl. stride lists of length N+2 and a 1-length list
    for dtype in ("float64",):
        x = rand((2, 7, 6, 4), dtype)
        w = rand((3, 2, 2, 6), dtype)                  # input depth 4 = 2 x in-depth 2: two groups
        for kw in ({"strides": [2, 1], "padding": "SAME"}, {"strides": [1, 1], "padding": "VALID",
                                                              "dilations": [2, 1]},
                   {"strides": [1, 2, 3, 1], "padding": "SAME"}, {"strides": 2, "padding": "VALID"}):
            record("convolution", kw, {"input": x, "filters": w}, lambda kw=kw: tf.nn.convolution(x, w, **kw), dtype)
    # TF SAME examples from SEMANTICS.md: i=224,k=7,s=2 -> (2, 3); i=225 -> (3, 3)
    for i in (224, 225):
        x = rand((1, i, 1), "float64")
        w = rand((7, 1, 1), "float64")
        record("conv1d", {"stride": 2, "padding": "SAME"}, {"input": x, "filters": w},
               lambda x=x, w=w: tf.nn.conv1d(x, w, 2, "SAME"), "float64", note=f"SAME split i={i}")


def tf_transpose_grid():
    fn_of = {1: "conv1d_transpose", 2: "conv2d_transpose", 3: "conv3d_transpose"}
    for n in (1, 2, 3):
        for dtype in ("float64", "float32"):
            for cf in (False, True):
                for padding in ("SAME", "VALID", "EXPLICIT"):
                    if padding == "EXPLICIT" and n != 2:
                        continue                       # only conv2d_transpose takes explicit padding
                    for stride in (1, 2, 3):
                        for dil in (1, 2):
                            if stride > 1 and dil > 1:
                                continue
                            k = tuple(int(v) for v in rng.integers(1, 4, n))
                            span = tuple(dil * (kk - 1) + 1 for kk in k)
                            # choose the output size, derive the input size by the forward rule
                            out = tuple(int(v) for v in rng.integers(max(span) + 1, max(span) + 7, n))
                            if padding == "SAME":
                                pairs = None
                                inp = tuple(same_out(o, stride) for o in out)
                            elif padding == "VALID":
                                pairs = None
                                inp = tuple(valid_out(o, kk, stride, dil) for o, kk in zip(out, k))
                            else:
                                pairs = [[int(a), int(b)] for a, b in rng.integers(0, 3, (n, 2))]
                                inp = tuple((o + a + b - sp) // stride + 1 for o, (a, b), sp in zip(out, pairs, span))
                            cin, cout, batch = 3, 2, 2
                            x_cl = rand((batch,) + inp + (cin,), dtype)
                            w = rand(k + (cout, cin), dtype)
                            x = np.moveaxis(x_cl, -1, 1) if cf else x_cl
                            out_shape = [batch] + ([cout] + list(out) if cf else list(out) + [cout])
                            if padding == "EXPLICIT":
                                pad = [[0, 0], [0, 0]] + pairs if cf else [[0, 0]] + pairs + [[0, 0]]
                            else:
                                pad = padding
                            kw = {"output_shape": out_shape, "strides": stride, "padding": pad,
                                  "data_format": fmt(n, cf), "dilations": dil}
                            f = getattr(tf.nn, fn_of[n])
                            record(fn_of[n], kw, {"input": x, "filters": w},
                                   lambda f=f, x=x, w=w, kw=kw: f(x, w, **kw), dtype)


def tf_depthwise_grid():
    for dtype in ("float64", "float32"):
        for cf in (False, True):
            for padding in ("SAME", "VALID", "EXPLICIT"):
                for stride, rate in ((1, 1), (2, 1), (1, 2), (3, 1)):
                    for mult in (1, 2):
                        c = 3
                        k = tuple(int(v) for v in rng.integers(1, 4, 2))
                        x_cl = rand((2, 8, 7, c), dtype)
                        w = rand(k + (c, mult), dtype)
                        x = np.moveaxis(x_cl, -1, 1) if cf else x_cl
                        strides = [1, 1, stride, stride] if cf else [1, stride, stride, 1]
                        if padding == "EXPLICIT":
                            pairs = [[int(a), int(b)] for a, b in rng.integers(0, 3, (2, 2))]
                            pad = [[0, 0], [0, 0]] + pairs if cf else [[0, 0]] + pairs + [[0, 0]]
                        else:
                            pad = padding
                        kw = {"strides": strides, "padding": pad, "data_format": fmt(2, cf),
                              "dilations": [rate, rate]}
                        record("depthwise_conv2d", kw, {"input": x, "filter": w},
                               lambda x=x, w=w, kw=kw: tf.nn.depthwise_conv2d(x, w, **kw), dtype)
                        pw = rand((1, 1, c * mult, 4), dtype)
                        if padding != "EXPLICIT":
                            record("separable_conv2d", kw, {"input": x, "depthwise_filter": w,
                                                            "pointwise_filter": pw},
                                   lambda x=x, w=w, pw=pw, kw=kw: tf.nn.separable_conv2d(x, w, pw, **kw), dtype)


# ---------------------------------------------------------------------------------------------------------------
def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(u) for u in v]
    if isinstance(v, dict):
        return {k: _jsonable(u) for k, u in v.items()}
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, (np.integer,)):
        return int(v)
    return str(v)


def keras_case(cls_name, cfg, input_shape, dtype="float32"):
    layer = getattr(keras.layers, cls_name)(**cfg, dtype=dtype)
    x = rand(input_shape, dtype)
    cid = f"c{len(cases) + len(refused):04d}"
    try:
        y = np.asarray(layer(x))
    except Exception as e:
        refused.append({"id": cid, "fn": "keras." + cls_name, "kwargs": cfg, "input_shape": list(input_shape),
                        "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
        return
    weights = layer.get_weights()
    # random bias too (Keras initialises it to zeros)
    if cfg.get("use_bias", True):
        weights[-1] = rand(weights[-1].shape, dtype)
        layer.set_weights(weights)
        y = np.asarray(layer(x))
    roles = {"input": f"{cid}/input", "y": f"{cid}/y"}
    arrays[roles["input"]] = x
    arrays[roles["y"]] = y
    for j, w in enumerate(weights):
        roles[f"w{j}"] = f"{cid}/w{j}"
        arrays[roles[f"w{j}"]] = w
    config = _jsonable(layer.get_config())
    cases.append({"id": cid, "fn": "keras." + cls_name, "kwargs": config, "arrays": roles, "dtype": dtype,
                  "n_weights": len(weights), "note": ""})


def keras_grid():
    for padding in ("same", "valid"):
        for s in (1, 2):
            for d in (1, 2):
                if s > 1 and d > 1:
                    continue
                for size in ((7, 8), (8, 9)):
                    keras_case("Conv2D", dict(filters=4, kernel_size=(3, 2), strides=s, padding=padding,
                                              dilation_rate=d), (2,) + size + (3,))
                keras_case("Conv2D", dict(filters=4, kernel_size=3, strides=s, padding=padding, dilation_rate=d,
                                          groups=2, use_bias=False), (1, 9, 8, 6))
                keras_case("Conv1D", dict(filters=3, kernel_size=4, strides=s, padding=padding, dilation_rate=d),
                           (2, 11, 2))
                keras_case("Conv3D", dict(filters=2, kernel_size=(2, 3, 2), strides=s, padding=padding,
                                          dilation_rate=d), (1, 5, 6, 5, 2))
                keras_case("DepthwiseConv2D", dict(kernel_size=3, strides=s, padding=padding, depth_multiplier=2,
                                                   dilation_rate=d), (2, 8, 7, 3))
                keras_case("SeparableConv2D", dict(filters=5, kernel_size=(3, 2), strides=s, padding=padding,
                                                   depth_multiplier=2, dilation_rate=d), (1, 7, 9, 2))
        keras_case("Conv2D", dict(filters=3, kernel_size=3, padding=padding, data_format="channels_first"),
                   (2, 4, 6, 7))
    keras_case("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (2, 10, 2))
    for size in (7, 8):   # float64 layers
        keras_case("Conv2D", dict(filters=3, kernel_size=(3, 4), strides=2, padding="same"), (2, size, size + 2, 2),
                   dtype="float64")
        keras_case("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, size, 5, 2),
                   dtype="float64")
        keras_case("DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2),
                   (1, size, 6, 2), dtype="float64")
    for padding in ("same", "valid"):
        for s in (1, 2, 3):
            for k in (2, 3, 4):
                for op in (None,) + tuple(range(s)):
                    keras_case("Conv2DTranspose", dict(filters=2, kernel_size=(k, 3), strides=s, padding=padding,
                                                       output_padding=op), (1, 4, 5, 3))
            keras_case("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=s, padding=padding), (2, 5, 3))
            keras_case("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=s, padding=padding),
                       (1, 3, 2, 3, 2))
        keras_case("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=1, padding=padding, dilation_rate=2),
                   (1, 5, 6, 3))


def main():
    tf_conv_grid()
    tf_transpose_grid()
    tf_depthwise_grid()
    keras_grid()
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(os.path.join(OUT, "tf_fixtures.npz"), **arrays)
    meta = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "cases": cases, "refused": refused}
    with open(os.path.join(OUT, "tf_fixtures.json"), "w") as fh:
        json.dump(_jsonable(meta), fh, indent=0, sort_keys=True)
    size = os.path.getsize(os.path.join(OUT, "tf_fixtures.npz"))
    print(f"{len(cases)} cases, {len(refused)} refused by TF, npz {size / 1e6:.2f} MB", file=sys.stderr)
    for r in refused:
        print("refused:", r["fn"], r.get("dtype"), r["error"][:120], file=sys.stderr)


if __name__ == "__main__":
    main()

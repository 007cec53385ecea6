"""The ``convforge`` command line: shapes, summaries, explanations and drawings of convolution layers.

Layer specs are literal call expressions parsed by :mod:`convforge._spec` (never evaluated).  A model file
(``path/to/model.py:NAME``, ``.py`` only) is imported and run, because the user asked for exactly that; only a
function or class defined in that file (not one it imports) is called, or a Module it defines is used.

Exit codes:
    0  success
    1  the command could not finish: a model file failed to import or build, ``convforge draw`` is unavailable,
       an output could not be written, or an unexpected internal error
    2  usage errors: bad arguments, an invalid layer spec (unknown layer, non-literal or bad argument), or an
       input that does not fit the layer (impossible size, wrong number of channels)

Errors are one line on stderr, without a traceback (set ``CONVFORGE_DEBUG=1`` to see it).
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from typing import List, Optional, Sequence

import numpy as np

from . import __version__, manual_seed
from ._spec import SpecError, parse_layer, parse_values, shorten
from .explain import explain
from .nn import Module
from .summary import summary

EXAMPLES = """\
examples:
  convforge shape "Conv2d(8, 14, (3, 2), stride=(2, 1))" --input 5,8,10,5
  convforge summary "Sequential(Conv2d(3, 16, 3, padding=1), ReLU(), Conv2d(16, 32, 3, stride=2))" --input 1,3,32,32
  convforge summary path/to/model.py:build --input 1,3,224,224 --json   # runs model.py: trusted files only
  convforge explain "Conv1d(1, 1, 3, bias=False)" --input "range(16)" --weight 0.1,0.2,0.3 --at 0
  convforge explain "ConvTranspose2d(1, 1, 3, stride=2)" --shape 1,1,3,3 --at 0,0 --at 2,3
  convforge draw --help

exit codes: 0 success, 1 the command failed (model file, draw, I/O, internal error), 2 usage or spec error
"""


class UsageError(Exception):
    """Bad arguments or spec: exit code 2."""


class Failure(Exception):
    """The command could not finish: exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # one line, exit 2 (argparse's own usage dump is noise for a wrong argument)
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _ints(text: str, what: str) -> tuple:
    parts = [v for v in re.split(r"[,x\s]+", text.strip().strip("()[]")) if v != ""]
    if not parts or not all(re.fullmatch(r"\d{1,18}", v) for v in parts):
        raise UsageError(f"{what} must be comma-separated integers, each >= 0, like 1,3,32,32, got {shorten(text)}")
    return tuple(int(v) for v in parts)


def _position(text: str) -> tuple:
    parts = [v.strip() for v in text.strip().strip("()[]").split(",") if v.strip()]
    if not all(re.fullmatch(r"-?\d{1,18}", v) for v in parts):
        raise UsageError(f"--at must be comma-separated integers like 0 or 1,2 (negative counts from the end), "
                         f"got {shorten(text)}")
    return tuple(int(v) for v in parts)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="convforge", description="Convolution arithmetic you can trust: output shapes, parameter and "
                "MAC/FLOP counts, receptive fields, and step-by-step explanations, computed by convforge's engine.",
                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="{shape,summary,explain,draw}", parser_class=_Parser)

    sp = sub.add_parser("shape", help="output shape of a layer or Sequential for an input shape",
                        description="Print the output shape (and each layer's, for containers).",
                        epilog='example: convforge shape "Conv2d(8, 14, (3, 2), stride=(2, 1))" --input 5,8,10,5',
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("spec", help='layer spec, e.g. "Conv2d(3, 8, 3, padding=1)", or path/to/model.py:NAME '
                    '(RUNS that file: ' + TRUST_NOTE.split("(", 1)[1])
    sp.add_argument("--input", required=True, metavar="N,C,H,W", help="input shape including the batch")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    ss = sub.add_parser("summary", help="per-layer shapes, params, MACs, FLOPs, receptive field, memory",
                        description="A table like torchinfo's, exact and without running the model. FLOPs = 2 x "
                        "MACs (bias not counted), as torch's FlopCounterMode. A layer spec is parsed, never "
                        "evaluated; a model file is different: " + TRUST_NOTE + ".",
                        epilog="examples:\n  convforge summary \"Sequential(Conv2d(3, 16, 3), ReLU())\" "
                        "--input 1,3,32,32"
                        "\n  convforge summary model.py:build --input 1,3,224,224 --json",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ss.add_argument("spec", help="layer spec, or " + TRUST_NOTE)
    ss.add_argument("--input", required=True, metavar="N,C,H,W", help="input shape including the batch")
    ss.add_argument("--json", action="store_true", help="machine-readable output")

    se = sub.add_parser("explain", help="how a conv layer computes: sizes, padding, parameters, sums of products",
                        description="Explain a Conv*/ConvTranspose* layer with the engine's own index rules. "
                        "Without --input and --shape, nothing is computed; with --shape only, values are "
                        "0, 1, 2, ... in that shape.",
                        epilog="examples:\n  convforge explain \"Conv1d(1, 1, 3, bias=False)\" --input \"range(16)\" "
                        "--weight 0.1,0.2,0.3 --at 0\n  convforge explain \"Conv2d(3, 8, 3, stride=2)\" --shape "
                        "1,3,7,7",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    se.add_argument("spec", help='a Conv*/ConvTranspose* spec, e.g. "Conv1d(1, 1, 3, bias=False)"')
    se.add_argument("--input", metavar="VALUES", help='input values: "range(16)", "1,2,3" or "[[1, 2], [3, 4]]" '
                    "(reshaped to --shape when given; a flat list is one channel, one sample)")
    se.add_argument("--shape", metavar="N,C,...", help="input shape (with or without N and C)")
    se.add_argument("--weight", metavar="VALUES", help="weight values (default: the layer's init with --seed)")
    se.add_argument("--bias", metavar="VALUES", help="bias values (default: the layer's init)")
    se.add_argument("--at", action="append", metavar="I[,J...]", default=[],
                    help="output position to trace (spatial, or channel then spatial, or batch, channel, spatial); "
                    "repeatable")
    se.add_argument("--seed", type=int, default=0, help="seed for the layer's default initialisation (default 0)")
    se.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("draw", help="pictures and animations of a layer (see 'convforge draw --help')", add_help=False)
    return p


def _version() -> str:
    return f"convforge {__version__}"


_MODEL_ATTR = re.compile(r"^[A-Za-z_]\w*$")
_PATH_LIKE = re.compile(r"[/\\]|\.py[a-z]?$")
TRUST_NOTE = ("path/to/model.py:NAME imports and RUNS that Python file (only use files you trust); NAME must be a "
              "Module, or a function or class defined in that file (not one it imports), called without arguments")


def _split_model_file(spec: str):
    """``(path, NAME)`` when ``spec`` names a file (``path/model.py[:NAME]``), else None (a layer spec)."""
    text = spec.strip()
    if "(" in text:
        return None
    path, colon, attr = text.rpartition(":")
    if not colon or re.search(r"[/\\]", attr):   # no NAME (a colon of a Windows drive is not one)
        path, attr = text, ""
    if not (_PATH_LIKE.search(path) or os.path.isfile(path)):
        return None
    return path, attr or "build"


def _load_model(spec: str, initialise: bool = True):
    """A layer spec (parsed, never evaluated) or ``path/to/model.py[:NAME]`` (imported and run: user code)."""
    target = _split_model_file(spec)
    if target is None:
        try:
            return parse_layer(spec, initialise=initialise)
        except SpecError as e:
            raise UsageError(str(e)) from None
    path, attr = target
    if not path.endswith(".py"):
        raise UsageError(f"model file {shorten(path)} is not a Python source file: give path/to/model.py:NAME "
                         f"(a .py file, which convforge imports and runs) or a layer spec like Conv2d(3, 8, 3)")
    if not _MODEL_ATTR.match(attr):
        raise UsageError(f"{shorten(attr)} is not a name: give path/to/model.py:NAME with NAME a function, class "
                         f"or Module defined at the top level of that file")
    if not os.path.isfile(path):
        raise UsageError(f"model file {path!r} does not exist")
    module = _import_model_file(path)
    return _model_from(module, path, attr)


def _import_model_file(path: str):
    try:
        module_spec = importlib.util.spec_from_file_location(_USER_MODULE, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
    except Exception as e:
        raise Failure(f"importing {path} failed: {type(e).__name__}: {_one_line(e)}") from e
    return module


_USER_MODULE = "_convforge_user_model"


def _model_from(module, path: str, attr: str):
    """The Module named ``attr`` in the imported file; only functions and classes defined there are called."""
    if attr not in vars(module):
        raise UsageError(f"{path} defines no {attr!r} at its top level")
    obj = vars(module)[attr]
    if isinstance(obj, Module):
        return obj
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        raise UsageError(f"{path}:{attr} is neither a convforge.nn.Module nor a function returning one")
    if getattr(obj, "__module__", None) != _USER_MODULE:
        raise UsageError(f"{path}:{attr} is imported from {obj.__module__}, not defined in {path}; convforge "
                         f"calls only functions and classes defined in the model file itself")
    try:
        obj = obj()
    except Exception as e:
        raise Failure(f"{path}:{attr}() failed: {type(e).__name__}: {_one_line(e)}") from e
    if not isinstance(obj, Module):
        raise Failure(f"{path}:{attr}() returned {type(obj).__name__}, not a convforge.nn.Module")
    return obj


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, complex):
        return [v.real, v.imag]
    return str(v)


def _summary(model, input_shape):
    try:
        return summary(model, input_shape)
    except (ValueError, TypeError) as e:
        raise UsageError(_one_line(e)) from None


def cmd_shape(args) -> int:
    model = _load_model(args.spec, initialise=False)
    s = _summary(model, _ints(args.input, "--input"))
    if args.json:
        _print_json({"input_shape": list(s.input_shape), "output_shape": list(s.output_shape),
                     "layers": [{"name": r.name, "type": r.type, "output_shape": list(r.output_shape)}
                                for r in s.layers]})
        return 0
    if len(s.layers) > 1:
        for r in s.layers:
            print(f"{r.name} ({r.type}): {list(r.input_shape)} -> {list(r.output_shape)}")
    print(f"{list(s.input_shape)} -> {list(s.output_shape)}")
    return 0


def cmd_summary(args) -> int:
    model = _load_model(args.spec, initialise=False)
    s = _summary(model, _ints(args.input, "--input"))
    if args.json:
        print(s.to_json())
    else:
        print(s)
    return 0


def _values(text, what):
    try:
        return parse_values(text)
    except SpecError as e:
        raise UsageError(f"{what}: {e}") from None


def cmd_explain(args) -> int:
    manual_seed(args.seed)
    layer = _load_model(args.spec)
    if not hasattr(layer, "kernel_size") or not hasattr(layer, "in_channels"):
        raise UsageError(f"explain works on one Conv*/ConvTranspose* layer, got {type(layer).__name__}")
    shape = _ints(args.shape, "--shape") if args.shape else None
    if args.input is not None:
        data = np.asarray(_values(args.input, "--input"), dtype=np.float64)
        if shape is not None:
            if data.size != int(np.prod(shape)):
                raise UsageError(f"--input has {data.size} values but --shape {list(shape)} needs "
                                 f"{int(np.prod(shape))}")
            data = data.reshape(shape)
        elif len(layer.kernel_size) > 1:
            raise UsageError(f"--input for a {len(layer.kernel_size)}-D layer needs --shape to arrange the values")
        source = data
    elif shape is not None:
        source = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) if args.at else shape
    else:
        raise UsageError("explain needs --input VALUES or --shape N,C,... (see 'convforge explain --help')")
    at = [_position(a) for a in args.at]
    weight = _values(args.weight, "--weight") if args.weight else None
    bias = _values(args.bias, "--bias") if args.bias else None
    try:
        e = explain(layer, source, at=at or None, weight=weight, bias=bias)
    except (ValueError, TypeError) as err:
        raise UsageError(_one_line(err)) from None
    if args.json:
        d = e.to_dict()
        d["output"] = None if e.output is None else e.output.tolist()
        _print_json(d)
    else:
        if args.input is None and args.at:
            print("(input values: 0, 1, 2, ... in the given shape)")
        print(e.text)
    return 0


def cmd_draw(argv: Sequence[str]) -> int:
    try:   # imported here: a draw package that fails to import must not take the other commands down
        from .draw import cli as draw_cli
    except Exception as e:
        raise Failure(f"'convforge draw' is unavailable: {type(e).__name__}: {_one_line(e)}") from e
    return int(draw_cli(list(argv)) or 0)


_VALUE_OPTIONS = ("--at", "--input", "--weight", "--bias", "--shape")


def _glue_negative_values(argv: List[str]) -> List[str]:
    # "--at -1,-2" would read "-1,-2" as an option; pass it as "--at=-1,-2"
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _VALUE_OPTIONS and i + 1 < len(argv) and re.match(r"^-[\d.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage or spec error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "draw":
            return cmd_draw(argv[1:])
        parser = _parser()
        argv = _glue_negative_values(argv)
        if not argv:
            parser.print_help(sys.stderr)
            return 2
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:   # --help / --version
            return int(e.code or 0) if not isinstance(e.code, str) else 2
        handler = {"shape": cmd_shape, "summary": cmd_summary, "explain": cmd_explain}.get(args.command)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        return handler(args)
    except UsageError as e:
        return _fail(e, 2)
    except Failure as e:
        return _fail(e, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 1)
    except BrokenPipeError:
        return 1
    except Exception as e:
        return _fail(f"internal error: {type(e).__name__}: {_one_line(e)}", 1, e)


def _fail(message, code: int, exc: Optional[BaseException] = None) -> int:
    if os.environ.get("CONVFORGE_DEBUG"):
        traceback.print_exc()
    print(f"convforge: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

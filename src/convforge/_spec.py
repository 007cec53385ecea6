"""Layer specs: ``"Conv2d(8, 14, (3, 2), stride=(2, 1))"`` -> a layer, parsed with :mod:`ast`, never evaluated.

A spec is one call expression.  The callee must be a layer class exported by :mod:`convforge.nn` (looked up by
name when the spec is parsed, so layers added later are accepted automatically), optionally written as
``nn.Conv2d`` or ``torch.nn.Conv2d``.  Arguments must be literals (numbers, strings, tuples, lists, dicts,
``True``/``False``/``None``, negative numbers) or nested layer specs, as in
``"Sequential(Conv2d(3, 16, 3, padding=1), ReLU())"``.  Anything else -- names, attribute access, arithmetic,
``__import__(...)`` -- is refused with a one-line :class:`SpecError` before any layer is built.

Example
-------
>>> parse_layer("Conv2d(8, 14, (3, 2), stride=(2, 1))")
Conv2d(8, 14, kernel_size=(3, 2), stride=(2, 1))
>>> parse_layer("Conv2d(3, 8, __import__('os').system('ls'))")
Traceback (most recent call last):
...
convforge._spec.SpecError: Conv2d argument 3 is not a literal (it is a call to __import__('os').system); a layer spec accepts only numbers, strings, tuples, lists, True/False/None and nested layers
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

__all__ = ["SpecError", "LayerCall", "parse_spec", "parse_layer", "build_layer", "known_layers", "parse_values"]

MAX_SPEC_LENGTH = 20_000
MAX_VALUES_LENGTH = 10_000_000
_PREFIXES = ((), ("nn",), ("torch", "nn"), ("convforge", "nn"))
_NOT_LAYERS = {"Module", "Parameter", "functional"}


class SpecError(ValueError):
    """A layer spec that cannot be parsed or built; the message is one line meant for the user."""


@dataclass(frozen=True)
class LayerCall:
    """A parsed spec before any layer is built: ``name(*args, **kwargs)``; nested layers are LayerCalls too."""

    name: str
    args: Tuple[Any, ...] = ()
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [_show(a) for a in self.args] + [f"{k}={_show(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


def _show(value) -> str:
    return str(value) if isinstance(value, LayerCall) else repr(value)


def known_layers() -> Dict[str, type]:
    """Layer classes a spec may name: every public :class:`convforge.nn.Module` subclass in ``convforge.nn``."""
    from . import nn
    from .nn.module import Module
    out = {}
    for name in dir(nn):
        obj = getattr(nn, name)
        if (not name.startswith("_") and name not in _NOT_LAYERS and not name.endswith("Loss")
                and isinstance(obj, type) and issubclass(obj, Module)):
            out[name] = obj
    return out


def _dotted(node) -> Tuple[str, ...]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def _describe(node) -> str:
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        return f"a call to {name if len(name) <= 40 else name[:37] + '...'}"
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return f"the attribute access {'.'.join(_dotted(node)) or node.attr!r}"
    if isinstance(node, (ast.BinOp, ast.BoolOp, ast.Compare)):
        return "an arithmetic or logical expression"
    return f"a {type(node).__name__} expression"


_LITERAL_RULE = ("a layer spec accepts only numbers, strings, tuples, lists, True/False/None and nested layers")


def _layer_name(func, known) -> str:
    path = _dotted(func)
    if not path or path[:-1] not in _PREFIXES:
        raise SpecError(f"a layer spec must call a layer by name, like Conv2d(...); got a call through "
                        f"{_describe(func)}")
    name = path[-1]
    if name not in known:
        close = [k for k in sorted(known) if k.lower() == name.lower()]
        hint = f"; did you mean {close[0]}?" if close else f"; known layers: {', '.join(sorted(known))}"
        raise SpecError(f"unknown layer {name!r}{hint}")
    return name


def _value(node, where: str, known):
    if isinstance(node, ast.Call):
        path = _dotted(node.func)
        if path and path[:-1] in _PREFIXES and path[-1][:1].isupper():
            return _call(node, known)   # a nested layer, e.g. an entry of Sequential(...)
        raise SpecError(f"{where} is not a literal (it is {_describe(node)}); {_LITERAL_RULE}")
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_value(e, where, known) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise SpecError(f"{where} is not a literal (it uses ** unpacking); {_LITERAL_RULE}")
        return {_value(k, where, known): _value(v, where, known) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name) and node.id in ("True", "False", "None"):  # pragma: no cover (py<3.8 only)
        return {"True": True, "False": False, "None": None}[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise SpecError(f"{where} is not a literal (it is {_describe(node)}); {_LITERAL_RULE}") from None


def _call(node: ast.Call, known) -> LayerCall:
    name = _layer_name(node.func, known)
    args, kwargs = [], {}
    for n, arg in enumerate(node.args, 1):
        if isinstance(arg, ast.Starred):
            raise SpecError(f"{name} argument {n} uses * unpacking; {_LITERAL_RULE}")
        args.append(_value(arg, f"{name} argument {n}", known))
    for kw in node.keywords:
        if kw.arg is None:
            raise SpecError(f"{name} uses ** unpacking; {_LITERAL_RULE}")
        kwargs[kw.arg] = _value(kw.value, f"{name} argument {kw.arg}=", known)
    return LayerCall(name, tuple(args), kwargs)


def parse_spec(spec: str) -> LayerCall:
    """Parse a layer spec into a :class:`LayerCall` tree without building anything.

    Args:
        spec: one call expression such as ``"Conv2d(3, 8, 3, padding=1)"``; a bare layer name (``"ReLU"``) means
            a call without arguments.

    Raises:
        SpecError: syntax errors, unknown layers, non-literal arguments (one line, no traceback needed).

    >>> parse_spec("nn.Conv2d(3, 16, 3, padding=(1, 0))")
    LayerCall(name='Conv2d', args=(3, 16, 3), kwargs={'padding': (1, 0)})
    """
    if not isinstance(spec, str):
        raise SpecError(f"a layer spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise SpecError("empty layer spec; expected something like Conv2d(3, 8, 3)")
    if len(text) > MAX_SPEC_LENGTH:
        raise SpecError(f"layer spec too long ({len(text)} characters, limit {MAX_SPEC_LENGTH})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        col = f" at column {e.offset}" if e.offset else ""
        raise SpecError(f"cannot parse layer spec {text!r}{col}: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError("cannot parse layer spec: nested too deeply or too large") from None
    known = known_layers()
    body = tree.body
    if isinstance(body, (ast.Name, ast.Attribute)) and _dotted(body):
        return LayerCall(_layer_name(body, known))
    if not isinstance(body, ast.Call):
        raise SpecError(f"a layer spec must be a call like Conv2d(3, 8, 3); got {_describe(body)}")
    return _call(body, known)


@functools.lru_cache(maxsize=None)
def _uninitialised(cls: type) -> type:
    """``cls`` with ``reset_parameters`` a no-op: parameters are allocated (``np.empty``, pages never touched)
    but not filled, so a shape-only layer costs no memory however many parameters it has."""
    def reset_parameters(self):
        pass
    return type(cls.__name__, (cls,), {"reset_parameters": reset_parameters, "__qualname__": cls.__qualname__,
                                       "__module__": cls.__module__, "__doc__": cls.__doc__})


def build_layer(call: LayerCall, *, initialise: bool = True):
    """Build the layer (and nested layers) of a parsed spec; constructor errors become one-line SpecErrors.

    ``initialise=False`` leaves the parameters uninitialised (same shapes, repr and counts): for shape
    arithmetic and summaries, which never read them.
    """
    known = known_layers()

    def build(value):
        if isinstance(value, LayerCall):
            return build_layer(value, initialise=initialise)
        if isinstance(value, list):
            return [build(v) for v in value]
        if isinstance(value, tuple):
            return tuple(build(v) for v in value)
        return value

    cls = known.get(call.name)
    if cls is None:
        raise SpecError(f"unknown layer {call.name!r}; known layers: {', '.join(sorted(known))}")
    if not initialise and hasattr(cls, "reset_parameters"):
        cls = _uninitialised(cls)
    args = [build(a) for a in call.args]
    kwargs = {k: build(v) for k, v in call.kwargs.items()}
    try:
        return cls(*args, **kwargs)
    except SpecError:
        raise
    except (TypeError, ValueError) as e:
        msg = re.sub(r"\b[\w.]*__init__\(\)", call.name + "()", " ".join(str(e).split()))
        raise SpecError(f"{call}: {msg}") from None
    except MemoryError:
        raise SpecError(f"{call}: the layer's parameters do not fit in memory") from None


def parse_layer(spec: str, *, initialise: bool = True):
    """Parse a layer spec and build the layer it names.

    Args:
        spec: a literal call expression, e.g. ``"Conv2d(8, 14, (3, 2), stride=(2, 1))"`` or
            ``"Sequential(Conv2d(3, 16, 3, padding=1), ReLU())"``.
        initialise: False leaves the parameters uninitialised (for shapes and summaries only).

    Returns:
        The :class:`convforge.nn.Module`.

    Raises:
        SpecError (a ValueError): unknown layer, non-literal or bad argument; the message is one line.

    >>> parse_layer("ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4)")
    ConvTranspose2d(4, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), groups=4)
    """
    return build_layer(parse_spec(spec), initialise=initialise)


def parse_values(text: str) -> List[float]:
    """Numbers for a command-line array: ``"0.1,0.2,0.3"``, ``"[1, 2, 3]"``, ``"range(16)"``, ``"range(2, 8, 2)"``.

    >>> parse_values("range(4)"), parse_values("1,2.5,-3")
    ([0, 1, 2, 3], [1, 2.5, -3])
    """
    text = str(text).strip()
    if len(text) > MAX_VALUES_LENGTH:
        raise SpecError(f"too many characters of numbers ({len(text)}, limit {MAX_VALUES_LENGTH}); use range(...) "
                        f"or a smaller input")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SpecError(f"cannot read numbers from {shorten(text)}; give them as 1,2,3 or range(16)") from None
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "range" \
            and not tree.keywords and 1 <= len(tree.args) <= 3:
        try:
            bounds = [ast.literal_eval(a) for a in tree.args]
        except ValueError:
            bounds = None
        if bounds and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            if 0 in bounds[2:]:
                raise SpecError("range() step must not be zero")
            values = range(*bounds)
            if len(values) > 10_000_000:
                raise SpecError(f"{text} has too many values ({len(values)})")
            return list(values)
        raise SpecError(f"range() needs integer literals, got {text!r}")
    try:
        value = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise SpecError(f"cannot read numbers from {shorten(text)}; give them as 1,2,3 or range(16)") from None
    try:
        flat = _flatten(value)
    except RecursionError:
        raise SpecError(f"cannot read numbers from {shorten(text)}: nested too deeply") from None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise SpecError(f"cannot read numbers from {shorten(text)}; give them as 1,2,3 or range(16)")
    return flat


def shorten(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut in the middle when long, so that an error message stays one readable line."""
    text = str(text)
    return repr(text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 4:]} ({len(text)} chars)")


def _flatten(value):
    if isinstance(value, (tuple, list)):
        return [u for v in value for u in _flatten(v)]
    return [value]

"""``Module``: the base class of every layer, as in PyTorch.

Submodules and parameters register by attribute assignment; ``parameters()``, ``state_dict()``, ``repr``,
``train()``/``eval()`` and ``zero_grad()`` walk the tree.  Training as in PyTorch: ``loss = criterion(m(x), t)``,
``loss.backward()`` accumulates ``.grad`` on every parameter that took part (``convforge.autograd`` records the
forward, whatever it does: residual adds, concatenations, a layer called twice).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Iterator, Tuple

import numpy as np

from .parameter import Parameter


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class for layers; subclass it and assign parameters / submodules as attributes.

    >>> import numpy as np
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.alpha = Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         return x * self.alpha
    >>> [name for name, _ in Scale().named_parameters()]
    ['alpha']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() call; call super().__init__()")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._discard(name)
            params[name] = value
        elif isinstance(value, Module):
            self._discard(name)
            modules[name] = value
        elif name in params:
            if value is None:
                params[name] = None
            else:
                old = params[name]
                arr = np.asarray(value)
                if old is not None and arr.shape != old.shape:
                    raise ValueError(f"cannot assign an array of shape {arr.shape} to parameter '{name}' of shape "
                                     f"{old.shape}")
                params[name] = Parameter(arr, requires_grad=True if old is None else old.requires_grad)
        elif name in buffers:
            buffers[name] = None if value is None else np.asarray(value)
        elif name in modules and value is None:
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name):
        for d in (self.__dict__, self._parameters, self._modules, self._buffers):
            d.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters or name in self._modules or name in self._buffers:
            self._discard(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, value) -> None:
        """A non-learnable array saved in ``state_dict`` (e.g. BatchNorm running statistics)."""
        self._discard(name)
        self._buffers[name] = None if value is None else np.asarray(value)

    def add_module(self, name: str, module) -> None:
        self._discard(name)
        self._modules[name] = module

    # -- calling ------------------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal ----------------------------------------------------------------------------------------------
    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(prefix + ("." if prefix else "") + name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[Tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield mp + ("." if mp else "") + name, p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = ""):
        for mp, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield mp + ("." if mp else "") + name, b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # -- state --------------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed like PyTorch (``'0.weight'``, ``'bn.running_mean'``)."""
        out = OrderedDict()
        for mp, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, v in store.items():
                    if v is not None:
                        out[mp + ("." if mp else "") + name] = np.array(v, copy=True)
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values in, checking shapes. With ``strict`` the keys must match exactly.

        Returns ``(missing_keys, unexpected_keys)``.

        Raises:
            RuntimeError: with ``strict``, naming the missing and unexpected keys (as torch).
            ValueError: a value's shape differs from the parameter's, naming both.
        """
        own = OrderedDict()
        for mp, m in self.named_modules():
            for kind, store in (("param", m._parameters), ("buffer", m._buffers)):
                for name, v in store.items():
                    if v is not None:
                        own[mp + ("." if mp else "") + name] = (m, kind, name)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: missing keys {missing}, "
                               f"unexpected keys {unexpected}")
        errors = []
        for key, (m, kind, name) in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            current = m._parameters[name] if kind == "param" else m._buffers[name]
            if value.shape != current.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {value.shape}, the shape in "
                              f"the current model is {current.shape}")
        if errors:
            raise ValueError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(errors))
        for key, (m, kind, name) in own.items():
            if key in state_dict:
                current = m._parameters[name] if kind == "param" else m._buffers[name]
                # the values only: a parameter stays the same object (optimisers hold it), nothing is recorded
                np.copyto(np.ndarray.view(current, np.ndarray), np.asarray(state_dict[key]), casting="unsafe")
        return missing, unexpected

    # -- modes and gradients ------------------------------------------------------------------------------------
    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype):
        """Cast every parameter and floating buffer to ``dtype`` (in place, like PyTorch); returns self."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p is not None:
                    m._parameters[name] = Parameter(np.asarray(p).astype(dtype), p.requires_grad)
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind in "fc":
                    m._buffers[name] = b.astype(dtype)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def half(self):
        return self.to(np.float16)

    # -- repr ---------------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        main = type(self).__name__ + "("
        if child_lines or len(lines) > 1:
            body = lines + child_lines
            main += "\n  " + "\n  ".join(body) + "\n"
        elif lines:
            main += lines[0]
        return main + ")"

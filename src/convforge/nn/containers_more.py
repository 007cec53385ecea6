"""``Identity``, ``ModuleList`` and ``ModuleDict``, as in ``torch.nn``: the containers model code is written with.

``ModuleList`` and ``ModuleDict`` only hold and register modules (their parameters appear in ``parameters()`` and
``state_dict()`` under ``'<index>.'`` / ``'<key>.'`` prefixes, as in PyTorch); the owner's ``forward`` decides
how they are called.
"""
from __future__ import annotations

import operator
from collections import OrderedDict

from .module import Module, _addindent

__all__ = ["Identity", "ModuleList", "ModuleDict"]


def _as_module(module, container: str, key):
    if not isinstance(module, Module):
        raise TypeError(f"{container} entries must be convforge Modules, got {type(module).__name__} for entry "
                        f"{key!r}")
    return module


class Identity(Module):
    """Returns its input unchanged, as ``torch.nn.Identity`` (any constructor arguments are ignored).

    Example:
        >>> import numpy as np
        >>> Identity(54, unused="x")(np.arange(3.0)).tolist()
        [0.0, 1.0, 2.0]
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class ModuleList(Module):
    """A list of modules, registered under ``'0'``, ``'1'``, ... , as ``torch.nn.ModuleList``.

    Args:
        modules: an iterable of modules (optional).

    Example:
        >>> from convforge.nn import Linear, ReLU
        >>> blocks = ModuleList([Linear(2, 2) for _ in range(3)])
        >>> blocks.append(ReLU())
        ModuleList(
          (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)
          (3): ReLU()
        )
        >>> len(blocks), list(blocks.state_dict())[:2]
        (4, ['0.weight', '0.bias'])
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx) -> int:
        idx = operator.index(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a ModuleList of length {n}")
        return idx % n

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(self._index(idx))]

    def __setitem__(self, idx, module) -> None:
        key = str(self._index(idx))
        self.add_module(key, _as_module(module, "ModuleList", key))

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        doomed = keys[idx] if isinstance(idx, slice) else [keys[self._index(idx)]]
        kept = [m for k, m in self._modules.items() if k not in doomed]
        self._renumber(kept)

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        return type(self)(list(self) + list(other))

    def append(self, module) -> "ModuleList":
        key = str(len(self))
        self.add_module(key, _as_module(module, "ModuleList", key))
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module) -> None:
        modules = list(self)
        modules.insert(index, _as_module(module, "ModuleList", index))
        self._renumber(modules)

    def __repr__(self) -> str:
        # PyTorch's form: runs of identical entries are shown once, as "(0-2): 3 x Block(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return type(self).__name__ + "()"
        runs = []                                   # [start, end, text]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [_addindent(f"({a}): {t}" if a == b else f"({a}-{b}): {b - a + 1} x {t}", 2) for a, b, t in runs]
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered mapping of names to modules, registered under those names, as ``torch.nn.ModuleDict``.

    Args:
        modules: a mapping or an iterable of ``(name, module)`` pairs (optional).

    Example:
        >>> from convforge.nn import ReLU, Sigmoid
        >>> acts = ModuleDict({"relu": ReLU(), "sigmoid": Sigmoid()})
        >>> list(acts), "relu" in acts, type(acts["sigmoid"]).__name__
        (['relu', 'sigmoid'], True, 'Sigmoid')
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str):
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no entry {key!r}; its keys are {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__} {key!r}")
        self.add_module(key, _as_module(module, "ModuleDict", key))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str):
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        pairs = modules.items() if isinstance(modules, (dict, OrderedDict, ModuleDict)) else modules
        for pair in pairs:
            key, module = pair
            self[key] = module

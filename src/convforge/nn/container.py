"""``Sequential``: modules applied one after another."""
from __future__ import annotations

from collections import OrderedDict

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """A chain of modules, as ``torch.nn.Sequential``.

    Built from positional modules (named ``'0'``, ``'1'``, ...) or from one ``OrderedDict`` of named modules.
    Like any module, it trains through ``loss.backward()`` (autograd records each child's forward).

    Args:
        *args: modules, or a single ``OrderedDict[str, Module]``.

    Example:
        >>> import numpy as np
        >>> from convforge.nn import Linear, ReLU
        >>> net = Sequential(Linear(4, 3), ReLU())
        >>> net
        Sequential(
          (0): Linear(in_features=4, out_features=3, bias=True)
          (1): ReLU()
        )
        >>> net(np.zeros((2, 4), np.float32)).shape, len(net), type(net[-1]).__name__
        ((2, 3), 2, 'ReLU')
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, _check_module(module, name))
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), _check_module(module, str(idx)))

    def _index(self, idx: int) -> int:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a Sequential of length {n}")
        return idx % n

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[self._index(idx)]

    def __setitem__(self, idx, module):
        key = list(self._modules.keys())[self._index(idx)]
        self._modules[key] = _check_module(module, key)

    def __delitem__(self, idx):
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[self._index(idx)]]
        for key in doomed:
            del self._modules[key]
        # keep positional names contiguous, as PyTorch does
        items = list(self._modules.items())
        self._modules.clear()
        for i, (key, m) in enumerate(items):
            self._modules[str(i) if key.isdigit() else key] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module) -> "Sequential":
        self.add_module(str(len(self)), _check_module(module, str(len(self))))
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


def _check_module(module, name):
    if not isinstance(module, Module):
        raise TypeError(f"Sequential entries must be convforge Modules, got {type(module).__name__} for entry "
                        f"{name!r}")
    return module

"""Optimisers, as in ``torch.optim``: ``SGD`` and ``Adam``, with PyTorch's exact update rules.

They update :class:`convforge.nn.Parameter` values in place from their ``.grad`` (set by ``loss.backward()``);
parameters whose ``.grad`` is None are skipped.  Parameters may be given as an iterable of Parameters or as
parameter groups (dicts with a ``'params'`` entry and per-group option overrides), as in PyTorch.

Typical loop::

    opt = convforge.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..autograd import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        self.state = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor) or not p.is_leaf:
                raise TypeError(f"{type(self).__name__} can only optimize leaf tensors (Parameters, or "
                                f"convforge.tensor(..., requires_grad=True)), got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        pass

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear ``.grad`` of every parameter (set to None, or to zeros with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}``, torch's layout: parameters
        are numbered in group order; the arrays are copies."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[key]: copy.deepcopy(value) for key, value in self.state.items() if key in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and per-parameter state saved by :meth:`state_dict` from an optimiser over parameters of
        the same group sizes (arrays are copied and cast to each parameter's dtype).

        Raises:
            ValueError: the group count or a group's size differs (naming both).
        """
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups ({len(saved)}) than "
                             f"the optimizer ({len(self.param_groups)})")
        for i, (old, new) in enumerate(zip(saved, self.param_groups)):
            if len(old["params"]) != len(new["params"]):
                raise ValueError(f"loaded state dict contains a parameter group ({i}) of {len(old['params'])} "
                                 f"parameters that doesn't match the size of optimizer's group ({len(new['params'])})")
        by_index = {i: p for old, new in zip(saved, self.param_groups) for i, p in zip(old["params"], new["params"])}
        self.state = {}
        for i, value in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[id(p)] = {k: (np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray) else copy.deepcopy(v))
                                 for k, v in value.items()}
        for old, new in zip(saved, self.param_groups):
            new.update({k: copy.deepcopy(v) for k, v in old.items() if k != "params"})

    def _state(self, p) -> dict:
        return self.state.setdefault(id(p), {})

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _nonnegative(name, value):
    if value < 0:
        raise ValueError(f"Invalid {name} value: {value} (must be >= 0)")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Per parameter ``p`` with gradient ``g`` (PyTorch's rule, step by step)::

        g = -g                          if maximize
        g = g + weight_decay * p        if weight_decay != 0
        b = g (first step) else momentum * b + (1 - dampening) * g     if momentum != 0
        g = g + momentum * b (nesterov) else b                          if momentum != 0
        p = p - lr * g

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend instead of descend.

    Example:
        >>> import numpy as np
        >>> from convforge.nn import Parameter
        >>> p = Parameter(np.array([1.0])); p.grad = np.array([0.5])
        >>> SGD([p], lr=0.1).step(); p.tolist()
        [0.95]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _check_group(self, group):
        for name in ("lr", "momentum", "weight_decay"):
            _nonnegative(name, group[name])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                value = p.data
                d_p = -p.grad if maximize else p.grad
                if wd != 0:
                    d_p = d_p + wd * value
                if momentum != 0:
                    state = self._state(p)
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(d_p, dtype=value.dtype, copy=True)
                    else:
                        buf = buf * momentum + (1 - dampening) * d_p
                    state["momentum_buffer"] = buf
                    d_p = d_p + momentum * buf if nesterov else buf
                value[...] = value + (-lr) * d_p


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (PyTorch's rule, including its bias-correction arithmetic)::

        t = t + 1
        g = -g if maximize;   g = g + weight_decay * p        if weight_decay != 0 (L2, not decoupled)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)  (amsgrad; then v_max replaces v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: iterable of Parameters or of parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment estimates (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        amsgrad: use the running maximum of the second moment (default False).
        maximize: ascend instead of descend.

    Example:
        >>> import numpy as np
        >>> from convforge.nn import Parameter
        >>> p = Parameter(np.array([1.0])); p.grad = np.array([0.5])
        >>> Adam([p], lr=0.1).step(); p.round(6).tolist()
        [0.9]
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check_group(self, group):
        for name in ("lr", "eps", "weight_decay"):
            _nonnegative(name, group[name])
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta} (must be in [0, 1))")

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                value = p.data
                grad = -p.grad if maximize else p.grad
                state = self._state(p)
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(value)
                    state["exp_avg_sq"] = np.zeros_like(value)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(value)
                state["step"] += 1
                step = state["step"]
                if wd != 0:
                    grad = grad + wd * value
                exp_avg = state["exp_avg"] + (1 - beta1) * (grad - state["exp_avg"])
                exp_avg_sq = state["exp_avg_sq"] * beta2 + (1 - beta2) * grad * grad
                state["exp_avg"], state["exp_avg_sq"] = exp_avg, exp_avg_sq
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
                step_size = lr / bias_correction1
                if amsgrad:
                    state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], exp_avg_sq)
                    second = state["max_exp_avg_sq"]
                else:
                    second = exp_avg_sq
                denom = np.sqrt(second) / bias_correction2_sqrt + eps
                value[...] = value + (-step_size) * (exp_avg / denom)

"""Random convolution configurations for differential tests (hypothesis strategies and a seeded generator)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np
from hypothesis import strategies as st


@dataclass
class ConvConfig:
    nd: int
    batch: int
    groups: int
    cin_per_group: int
    cout_per_group: int
    kernel: Tuple[int, ...]
    stride: Tuple[int, ...]
    dilation: Tuple[int, ...]
    padding: Tuple[Tuple[int, int], ...]
    sizes: Tuple[int, ...]
    output_padding: Tuple[int, ...] = field(default=())

    @property
    def cin(self):
        return self.groups * self.cin_per_group

    @property
    def cout(self):
        return self.groups * self.cout_per_group

    def symmetric(self):
        return all(lo == hi for lo, hi in self.padding)

    def arrays(self, rng, dtype=np.float64, transposed=False, bias=True):
        x = rng.standard_normal((self.batch, self.cin) + self.sizes)
        if transposed:
            w = rng.standard_normal((self.cin, self.cout_per_group) + self.kernel)
        else:
            w = rng.standard_normal((self.cout, self.cin_per_group) + self.kernel)
        b = rng.standard_normal(self.cout) if bias else None
        cast = (lambda a: a.astype(dtype)) if np.dtype(dtype).kind != "i" else (
            lambda a: np.round(a * 3).astype(dtype))
        return cast(x), cast(w), None if b is None else cast(b)


@st.composite
def conv_configs(draw, nd=None, transposed=False, max_size=7, per_side=True):
    nd = draw(st.integers(1, 3)) if nd is None else nd
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = []
    for _ in range(nd):
        lo = draw(st.integers(0, 3))
        hi = draw(st.integers(0, 3)) if per_side and draw(st.booleans()) else lo
        padding.append((lo, hi))
    sizes = []
    for k, d, (lo, hi) in zip(kernel, dilation, padding):
        span = d * (k - 1) + 1
        low = 1 if transposed else max(1, span - lo - hi)
        sizes.append(draw(st.integers(low, max(low, max_size))))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)) if transposed else ()
    cfg = ConvConfig(nd, draw(st.integers(1, 2)), groups, draw(st.integers(1, 3)), draw(st.integers(1, 3)),
                     kernel, stride, dilation, tuple(padding), tuple(sizes), output_padding)
    if transposed:
        # the output must be non-empty
        for i, k, s, d, (lo, hi), op in zip(cfg.sizes, kernel, stride, dilation, cfg.padding, output_padding):
            if (i - 1) * s - lo - hi + d * (k - 1) + op + 1 < 1:
                from hypothesis import assume
                assume(False)
    return cfg

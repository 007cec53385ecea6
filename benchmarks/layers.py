"""The benchmark suite: real network layers, float32.

Each entry is a :class:`Layer`: ``transposed`` layers use the transposed-weight layout ``(in, out/g, *k)``.
``quick`` marks the subset run by ``--quick``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Layer:
    name: str
    batch: int
    in_ch: int
    out_ch: int
    size: Tuple[int, ...]
    kernel: Tuple[int, ...]
    stride: Tuple[int, ...] = None
    padding: Tuple[int, ...] = None
    dilation: Tuple[int, ...] = None
    groups: int = 1
    transposed: bool = False
    output_padding: Tuple[int, ...] = None
    quick: bool = False

    def __post_init__(self):
        n = len(self.size)
        for attr, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("output_padding", 0)):
            v = getattr(self, attr)
            if v is None:
                v = default
            if isinstance(v, int):
                v = (v,) * n
            object.__setattr__(self, attr, tuple(v))

    @property
    def input_shape(self):
        return (self.batch, self.in_ch) + tuple(self.size)

    @property
    def weight_shape(self):
        if self.transposed:
            return (self.in_ch, self.out_ch // self.groups) + tuple(self.kernel)
        return (self.out_ch, self.in_ch // self.groups) + tuple(self.kernel)

    @property
    def out_size(self):
        if self.transposed:
            return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, d, op in
                         zip(self.size, self.kernel, self.stride, self.padding, self.dilation, self.output_padding))
        return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in
                     zip(self.size, self.kernel, self.stride, self.padding, self.dilation))

    @property
    def macs(self):
        k = math.prod(self.kernel)
        if self.transposed:
            return self.batch * self.in_ch * math.prod(self.size) * (self.out_ch // self.groups) * k
        return self.batch * self.out_ch * math.prod(self.out_size) * (self.in_ch // self.groups) * k


def _resnet(batch, quick):
    b = f"b{batch}"
    return [
        Layer(f"resnet50 stem 7x7/2 224 {b}", batch, 3, 64, (224, 224), (7, 7), 2, 3, quick=quick),
        Layer(f"resnet50 3x3 56 {b}", batch, 64, 64, (56, 56), (3, 3), 1, 1, quick=quick),
        Layer(f"resnet50 3x3 28 {b}", batch, 128, 128, (28, 28), (3, 3), 1, 1),
        Layer(f"resnet50 3x3 14 {b}", batch, 256, 256, (14, 14), (3, 3), 1, 1, quick=quick),
        Layer(f"resnet50 3x3 7 {b}", batch, 512, 512, (7, 7), (3, 3), 1, 1),
        Layer(f"resnet50 1x1 reduce 256>64 56 {b}", batch, 256, 64, (56, 56), (1, 1), quick=quick),
        Layer(f"resnet50 1x1 expand 64>256 56 {b}", batch, 64, 256, (56, 56), (1, 1)),
        Layer(f"resnet50 1x1/2 downsample 512>1024 28 {b}", batch, 512, 1024, (28, 28), (1, 1), 2),
    ]


SUITE = (
    _resnet(1, True) + _resnet(8, False) + [
        Layer("mobilenetv2 dw 3x3 s1 144@56 b8", 8, 144, 144, (56, 56), (3, 3), 1, 1, groups=144, quick=True),
        Layer("mobilenetv2 dw 3x3 s2 96@112 b8", 8, 96, 96, (112, 112), (3, 3), 2, 1, groups=96),
        Layer("mobilenetv2 dw 3x3 s1 960@7 b8", 8, 960, 960, (7, 7), (3, 3), 1, 1, groups=960),
        Layer("mobilenetv2 pw 1x1 144>24 56 b8", 8, 144, 24, (56, 56), (1, 1), quick=True),
        Layer("resnext 3x3 g32 128@56 b8", 8, 128, 128, (56, 56), (3, 3), 1, 1, groups=32, quick=True),
        Layer("resnext 3x3 g32 512@14 b8", 8, 512, 512, (14, 14), (3, 3), 1, 1, groups=32),
        Layer("deeplab atrous 3x3 d6 512>256 33 b1", 1, 512, 256, (33, 33), (3, 3), 1, 6, 6, quick=True),
        Layer("vgg 3x3 64@224 b1", 1, 64, 64, (224, 224), (3, 3), 1, 1),
        Layer("unet up 2x2/2 256>128 32 b4", 4, 256, 128, (32, 32), (2, 2), 2, transposed=True, quick=True),
        Layer("dcgan 4x4/2 256>128 16 b16", 16, 256, 128, (16, 16), (4, 4), 2, 1, transposed=True, quick=True),
        Layer("dcgan 4x4/2 128>3 32 b16", 16, 128, 3, (32, 32), (4, 4), 2, 1, transposed=True),
        Layer("wav2vec conv1d k10/5 1>512 16000 b4", 4, 1, 512, (16000,), (10,), 5, quick=True),
        Layer("wav2vec conv1d k3/2 512>512 3199 b4", 4, 512, 512, (3199,), (3,), 2),
        Layer("tcn conv1d k3 d8 64@4096 b8", 8, 64, 64, (4096,), (3,), 1, 8, 8, quick=True),
        Layer("c3d conv3d 3x3x3 64>128 8x28x28 b1", 1, 64, 128, (8, 28, 28), (3, 3, 3), 1, 1, quick=True),
        Layer("vnet conv3d 5x5x5 32@16x32x32 b1", 1, 32, 32, (16, 32, 32), (5, 5, 5), 1, 2, quick=True),
    ]
)

"""convforge in one minute: PyTorch's convolution layers on NumPy.

Reproduces two classics:
- ``Conv2d(8, 14, (3, 2), (2, 1))`` on a ``(5, 8, 10, 5)`` input gives ``(5, 14, 4, 4)``;
- ``conv1d`` of 0..15 with kernel [0.1, 0.2, 0.3] gives 0.8, 1.4, ..., 8.6.
"""
import numpy as np

import convforge
import convforge.nn as nn
import convforge.nn.functional as F
from convforge import shapes

convforge.manual_seed(0)

layer = nn.Conv2d(8, 14, (3, 2), (2, 1))
x = np.random.default_rng(0).standard_normal((5, 8, 10, 5)).astype(np.float32)
y = layer(x)
print(layer)
print("input", x.shape, "-> output", y.shape)
print("parameters:", sum(p.size for p in layer.parameters()))

signal = np.arange(16.0).reshape(1, 1, 16)
kernel = np.array([[[0.1, 0.2, 0.3]]])
out = F.conv1d(signal, kernel)[0, 0]
print("conv1d(0..15, [0.1, 0.2, 0.3]) =", ", ".join(f"{v:.1f}" for v in out))

# beyond PyTorch: TF-style 'same' with stride 2 and the padding split it uses
print("same padding for 224, k=7, s=2:", shapes.same_padding(224, 7, stride=2))
print("Conv2d(3, 64, 7, stride=2, padding='same') on 224x224 ->",
      nn.Conv2d(3, 64, 7, stride=2, padding="same")(np.zeros((1, 3, 224, 224), np.float32)).shape)

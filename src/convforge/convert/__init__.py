"""Conversion between convforge (PyTorch conventions), TensorFlow/Keras and ONNX: weights, padding and layers.

Weight layouts: convolution ``(O, I/g, *K)`` (OIHW) against TF's ``(*K, I/g, O)`` (HWIO), transposed
``(I, O/g, *K)`` against ``(*K, O/g, I)``, depthwise ``(C*m, 1, *K)`` against ``(*K, C, m)`` (the table is in
:mod:`convforge.convert.layouts`).

Padding: convforge takes per-side ``((lo, hi), ...)`` pairs, or ``'same'`` which is TF's SAME / ONNX SAME_UPPER
for every stride.  ``from_tf_padding`` / ``from_onnx_padding`` turn TF and ONNX padding into a convforge padding
argument; ``to_tf_padding`` / ``to_onnx_padding`` go back.  Where a form depends on the input size (ONNX SAME_LOWER
with stride > 1, a Keras ``same`` transposed layer with output_padding, ...) the functions take ``input_size`` and
raise a ValueError naming the missing size otherwise.

The subjects live in submodules: :mod:`~convforge.convert.layouts` (weights, data formats),
:mod:`~convforge.convert.padding` and :mod:`~convforge.convert.layers`; every name is reachable from here.

Layers: :func:`from_keras` (a Keras layer config + weights), :func:`from_onnx` (an ONNX Conv / ConvTranspose
node + initialisers) build an equivalent ``convforge.nn`` module; :func:`to_onnx` and :func:`to_tf` give the ONNX
attributes and the ``tf.nn`` arguments of a module.

Example:
    >>> import numpy as np
    >>> weight_to_tf(np.zeros((8, 3, 5, 7))).shape        # OIHW -> HWIO
    (5, 7, 3, 8)
    >>> from_tf_padding("SAME", kernel_size=3, strides=2, input_size=(8, 9))
    ((0, 1), (1, 1))
    >>> from_onnx_padding("SAME_LOWER", kernel_shape=(4,), strides=(1,))
    ((2, 1),)
"""
from __future__ import annotations

import numpy as np  # noqa: F401  (the examples above use it)

from .layers import SeparableConv, from_keras, from_onnx, to_onnx, to_tf
from .layouts import (depthwise_weight_from_tf, depthwise_weight_to_tf, transposed_weight_from_tf,
                      transposed_weight_to_tf, weight_from_tf, weight_to_tf)
from .padding import (_spatial, from_onnx_padding, from_tf_padding, onnx_transpose_pads, tf_transpose_padding,
                      to_onnx_padding, to_tf_padding)

__all__ = [
    "weight_to_tf", "weight_from_tf", "transposed_weight_to_tf", "transposed_weight_from_tf",
    "depthwise_weight_to_tf", "depthwise_weight_from_tf",
    "from_tf_padding", "to_tf_padding", "from_onnx_padding", "to_onnx_padding",
    "tf_transpose_padding", "onnx_transpose_pads",
    "SeparableConv", "from_keras", "from_onnx", "to_onnx", "to_tf",
]

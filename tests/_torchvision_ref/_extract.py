"""Regenerate tests/_torchvision_ref/ from torchvision's wheel: verbatim top-level definitions, minimal builders.

    pip download torchvision==0.29.1 --no-deps -d /tmp/tv && unzip -q /tmp/tv/*.whl -d /tmp/tv/x
    python tests/_torchvision_ref/_extract.py /tmp/tv/x

Nothing from torchvision is imported or run: its sources are parsed with ``ast`` and sliced by line numbers.
"""
import ast
import pathlib
import shutil
import sys
import textwrap

SRC = pathlib.Path(sys.argv[1]) / "torchvision"
DST = pathlib.Path(__file__).resolve().parent
COMMIT = "1f1a920d685d46dfbe187934b785b7ecb7a182f2"
WEIGHTS = ("the weights enums and their metadata, weight downloading, register_model / handle_legacy_interface, "
           "API-usage logging (a no-op here) and the builders of variants convforge does not ship. The builders "
           "below are torchvision's, minus the weights and progress arguments")


def pick(path, names):
    text = (SRC / path).read_text()
    lines = text.splitlines()
    out, found = [], set()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            name = getattr(targets[0], "id", None)
        else:
            name = getattr(node, "name", None)
        if name in names:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            out.append("\n".join(lines[start - 1:node.end_lineno]))
            found.add(name)
    assert found == set(names), (path, set(names) - found)
    return "\n\n\n".join(out)


def wrap(text):
    return "\n".join(textwrap.wrap(text, 116))


def write(name, sources, removed, imports, picks, builders=""):
    doc = ('"""' + wrap(f"Faithful, minimal copy of torchvision's {', '.join(sources)} (a test oracle; never imported "
                        "by convforge).") + "\n\n"
           + wrap(f"Source: torchvision 0.29.1 (git {COMMIT}, https://github.com/pytorch/vision), Copyright (c) "
                  "Soumith Chintala 2016, BSD 3-Clause License (tests/_torchvision_ref/LICENSE).") + "\n"
           + wrap(f"Definitions are copied verbatim. Removed: {removed}.") + '\n"""\n')
    body = "\n\n\n".join(pick(p, n) for p, n in picks)
    text = doc + imports.strip() + "\n\n\n" + body + "\n" + (("\n\n" + builders.strip() + "\n") if builders else "")
    (DST / name).write_text(text)


write("_misc.py", ["torchvision/ops/misc.py", "torchvision/ops/stochastic_depth.py", "torchvision/models/_utils.py",
                  "torchvision/utils.py"],
      "FrozenBatchNorm2d, MLP, Conv3dNormActivation, the torch.fx wrap, API-usage logging (a no-op here)",
      """
import collections
import warnings
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Callable, Optional, Union

import torch
from torch import nn, Tensor


def _log_api_usage_once(obj: Any) -> None:  # torchvision's logs API usage; a no-op for the oracle
    pass
""", [("utils.py", ["_make_ntuple"]),
      ("ops/misc.py", ["ConvNormActivation", "Conv2dNormActivation", "SqueezeExcitation", "Permute"]),
      ("ops/stochastic_depth.py", ["stochastic_depth", "StochasticDepth"]),
      ("models/_utils.py", ["_make_divisible"])])

write("resnet.py", ["torchvision/models/resnet.py"], WEIGHTS, """
from typing import Any, Callable, Optional, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._misc import _log_api_usage_once
""", [("models/resnet.py", ["conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet"])], """
def resnet18(**kwargs: Any) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs: Any) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnext50_32x4d(**kwargs: Any) -> ResNet:
    kwargs["groups"] = 32
    kwargs["width_per_group"] = 4
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)
""")

write("vgg.py", ["torchvision/models/vgg.py"], WEIGHTS, """
from typing import Any, cast, Optional, Union

import torch
import torch.nn as nn

from ._misc import _log_api_usage_once
""", [("models/vgg.py", ["VGG", "make_layers", "cfgs"])], """
def vgg16(**kwargs: Any) -> VGG:
    return VGG(make_layers(cfgs["D"], batch_norm=False), **kwargs)
""")

write("mobilenetv2.py", ["torchvision/models/mobilenetv2.py"], WEIGHTS, """
from typing import Any, Callable, Optional

import torch
from torch import nn, Tensor

from ._misc import Conv2dNormActivation, _log_api_usage_once, _make_divisible
""", [("models/mobilenetv2.py", ["InvertedResidual", "MobileNetV2"])], """
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    return MobileNetV2(**kwargs)
""")

write("mobilenetv3.py", ["torchvision/models/mobilenetv3.py"], WEIGHTS, """
from collections.abc import Sequence
from functools import partial
from typing import Any, Callable, Optional

import torch
from torch import nn, Tensor

from ._misc import Conv2dNormActivation, SqueezeExcitation as SElayer, _log_api_usage_once, _make_divisible
""", [("models/mobilenetv3.py", ["InvertedResidualConfig", "InvertedResidual", "MobileNetV3", "_mobilenet_v3_conf"])],
"""
def mobilenet_v3_large(**kwargs: Any) -> MobileNetV3:
    inverted_residual_setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large", **kwargs)
    return MobileNetV3(inverted_residual_setting, last_channel, **kwargs)


def mobilenet_v3_small(**kwargs: Any) -> MobileNetV3:
    inverted_residual_setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_small", **kwargs)
    return MobileNetV3(inverted_residual_setting, last_channel, **kwargs)
""")

write("efficientnet.py", ["torchvision/models/efficientnet.py"], WEIGHTS + "; FusedMBConv (EfficientNetV2 only)", """
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Union

import torch
from torch import nn, Tensor

from ._misc import Conv2dNormActivation, SqueezeExcitation, StochasticDepth, _log_api_usage_once, _make_divisible
""", [("models/efficientnet.py", ["_MBConvConfig", "MBConvConfig", "FusedMBConvConfig", "MBConv", "EfficientNet",
                                  "_efficientnet_conf"])], """
def efficientnet_b0(**kwargs: Any) -> EfficientNet:
    inverted_residual_setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
    return EfficientNet(inverted_residual_setting, kwargs.pop("dropout", 0.2), last_channel=last_channel, **kwargs)
""")

write("convnext.py", ["torchvision/models/convnext.py"], WEIGHTS, """
from collections.abc import Sequence
from functools import partial
from typing import Any, Callable, Optional

import torch
from torch import nn, Tensor
from torch.nn import functional as F

from ._misc import Conv2dNormActivation, Permute, StochasticDepth, _log_api_usage_once
""", [("models/convnext.py", ["LayerNorm2d", "CNBlock", "CNBlockConfig", "ConvNeXt"])], """
def convnext_tiny(**kwargs: Any) -> ConvNeXt:
    block_setting = [
        CNBlockConfig(96, 192, 3),
        CNBlockConfig(192, 384, 3),
        CNBlockConfig(384, 768, 9),
        CNBlockConfig(768, None, 3),
    ]
    stochastic_depth_prob = kwargs.pop("stochastic_depth_prob", 0.1)
    return ConvNeXt(block_setting, stochastic_depth_prob=stochastic_depth_prob, **kwargs)
""")

write("video_resnet.py", ["torchvision/models/video/resnet.py"], WEIGHTS, """
from collections.abc import Sequence
from functools import partial
from typing import Any, Callable, Optional, Union

import torch.nn as nn
from torch import Tensor

from ._misc import _log_api_usage_once
""", [("models/video/resnet.py", ["Conv3DSimple", "Conv2Plus1D", "Conv3DNoTemporal", "BasicBlock", "Bottleneck",
                                  "BasicStem", "R2Plus1dStem", "VideoResNet"])], """
def r3d_18(**kwargs: Any) -> VideoResNet:
    return VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, **kwargs)
""")

shutil.copy(SRC.parent / "torchvision-0.29.1.dist-info" / "LICENSE", DST / "LICENSE")
(DST / "__init__.py").write_text('"""torchvision model definitions copied for the test oracle (see each module\'s '
                                 'header;\n_extract.py regenerates them); torch is required."""\n')

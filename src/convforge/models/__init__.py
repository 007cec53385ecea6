"""The model zoo: torchvision's classification networks written with convforge modules.

Each builder takes torchvision's keyword arguments (``num_classes=...``, ``**kwargs``) and gives a model with
torchvision's module names and parameter / buffer shapes, so a torchvision state dict loads with ``strict=True``::

    model = convforge.models.resnet18()
    model.load_state_dict({k: v.numpy() for k, v in torchvision_model.state_dict().items()})

No weights are downloaded. Each family lives in its own short module, readable as a reference implementation.
"""
from .convnext import ConvNeXt, convnext_tiny
from .efficientnet import EfficientNet, efficientnet_b0
from .mobilenetv2 import MobileNetV2, mobilenet_v2
from .mobilenetv3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small
from .resnet import ResNet, resnet18, resnet34, resnet50, resnext50_32x4d
from .vgg import VGG, vgg16
from .video_resnet import VideoResNet, r3d_18

__all__ = ["ResNet", "VGG", "MobileNetV2", "MobileNetV3", "EfficientNet", "ConvNeXt", "VideoResNet",
           "resnet18", "resnet34", "resnet50", "resnext50_32x4d", "vgg16", "mobilenet_v2", "mobilenet_v3_small",
           "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "r3d_18"]

"""Building blocks shared by the zoo, as in ``torchvision.ops.misc`` and ``torchvision.models._utils``.

``Conv2dNormActivation`` (conv -> norm -> activation, the unit of every modern CNN), ``SqueezeExcitation``
(channel attention), ``Permute`` (a layout change inside a ``Sequential``) and ``make_divisible`` (channel
rounding for width multipliers). Module names and argument defaults are torchvision's, so state dicts line up.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .. import nn
from ..nn import init

__all__ = ["Conv2dNormActivation", "SqueezeExcitation", "Permute", "make_divisible", "init_conv_fan_out",
           "reject_weights"]


def make_divisible(v: float, divisor: int, min_value: Optional[int] = None) -> int:
    """Round a channel count ``v`` to the nearest multiple of ``divisor`` (at least ``min_value``), never more than
    10% below ``v``. torchvision's ``_make_divisible``, from TensorFlow's MobileNet.

    >>> make_divisible(32 * 0.75, 8), make_divisible(36, 8), make_divisible(4, 8)
    (24, 40, 8)
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _same_padding(kernel_size, dilation):
    """Padding that keeps the size at stride 1 for odd kernels: ``(k - 1) // 2 * d`` per dimension."""
    if isinstance(kernel_size, int) and isinstance(dilation, int):
        return (kernel_size - 1) // 2 * dilation
    n = len(kernel_size) if isinstance(kernel_size, Sequence) else len(dilation)
    ks = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,) * n
    ds = tuple(dilation) if isinstance(dilation, Sequence) else (dilation,) * n
    return tuple((k - 1) // 2 * d for k, d in zip(ks, ds))


class Conv2dNormActivation(nn.Sequential):
    """Convolution, then normalisation, then activation (``torchvision.ops.Conv2dNormActivation``).

    The children are named ``'0'`` (conv), ``'1'`` (norm, if any) and the next index (activation, if any), as in
    torchvision. The conv has a bias only when there is no norm layer, unless ``bias`` says otherwise.

    Args:
        in_channels, out_channels: channels of the input and the output.
        kernel_size, stride, groups, dilation: of the convolution.
        padding: default ``(kernel_size - 1) // 2 * dilation`` (same size at stride 1).
        norm_layer: called with ``out_channels``; None for no normalisation. Default ``nn.BatchNorm2d``.
        activation_layer: called with ``inplace=inplace`` (or no argument when ``inplace`` is None); None for none.
            Default ``nn.ReLU``.
        inplace: passed to the activation.
        bias: whether the conv has a bias; default: only without a norm layer.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)`` with the conv's output size.

    Example:
        >>> import numpy as np
        >>> block = Conv2dNormActivation(3, 8, stride=2)
        >>> block
        Conv2dNormActivation(
          (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)
          (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
          (2): ReLU(inplace=True)
        )
        >>> block(np.zeros((1, 3, 9, 9), np.float32)).shape
        (1, 8, 5, 5)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=None, groups: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = nn.BatchNorm2d,
                 activation_layer: Optional[Callable[..., nn.Module]] = nn.ReLU, dilation=1,
                 inplace: Optional[bool] = True, bias: Optional[bool] = None,
                 conv_layer: Callable[..., nn.Module] = nn.Conv2d):
        if padding is None:
            padding = _same_padding(kernel_size, dilation)
        if bias is None:
            bias = norm_layer is None
        layers = [conv_layer(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                             groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer() if inplace is None else activation_layer(inplace=inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al., "Squeeze-and-Excitation Networks", 2017; torchvision's
    ``ops.SqueezeExcitation``): the input scaled per channel by
    ``scale_activation(fc2(activation(fc1(avgpool(x)))))``, where ``fc1``/``fc2`` are 1x1 convolutions.

    Args:
        input_channels: channels of the input (and output).
        squeeze_channels: channels of the bottleneck.
        activation: ``delta`` in the paper. Default ``nn.ReLU``.
        scale_activation: ``sigma``. Default ``nn.Sigmoid``.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.

    Example:
        >>> import numpy as np
        >>> se = SqueezeExcitation(16, 4)
        >>> [name for name, _ in se.named_parameters()]
        ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
        >>> se(np.ones((2, 16, 5, 5), np.float32)).shape
        (2, 16, 5, 5)
    """

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Callable[..., nn.Module] = nn.ReLU,
                 scale_activation: Callable[..., nn.Module] = nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input):
        scale = self.avgpool(input)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        return self.scale_activation(scale)

    def forward(self, input):
        return self._scale(input) * input


class Permute(nn.Module):
    """Reorder the dimensions of the input (``torchvision.ops.Permute``), e.g. NCHW -> NHWC inside a Sequential.

    Args:
        dims: the new order, as for ``np.transpose``.

    Example:
        >>> import numpy as np
        >>> Permute([0, 2, 3, 1])(np.zeros((1, 3, 4, 5))).shape
        (1, 4, 5, 3)
    """

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return x.transpose(self.dims)


def init_conv_fan_out(model: nn.Module, nonlinearity: str = "relu", conv_types=(nn.Conv2d,),
                      norm_types=(nn.BatchNorm2d,), linear_std: Optional[float] = None) -> None:
    """torchvision's convolutional init: every conv weight ``kaiming_normal_(mode='fan_out')``, its bias zero;
    every norm layer weight one and bias zero; with ``linear_std``, every Linear weight ``N(0, linear_std)`` and
    its bias zero (otherwise Linear layers keep their default init)."""
    for m in model.modules():
        if isinstance(m, conv_types):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity=nonlinearity)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, norm_types):
            init.ones_(m.weight)
            init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            init.normal_(m.weight, 0, linear_std)
            init.zeros_(m.bias)


def reject_weights(model_name: str, weights) -> None:
    """The zoo builds architectures only: a ``weights=`` argument (torchvision's pretrained enums or strings) is
    refused with the way to load weights instead."""
    if weights is not None:
        raise ValueError(f"{model_name}(weights={weights!r}): convforge downloads no weights; build the model with "
                         f"weights=None and load a state dict, e.g. model.load_state_dict(convforge.load("
                         f"'{model_name}.pth')) for a checkpoint saved with torch.save(torchvision_model.state_dict(), "
                         f"...)")

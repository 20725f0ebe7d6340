"""2D backbones for TSN/TSM: frame batch ``(N*T, 3, H, W)`` -> feature map ``(N*T, C, h, w)``.

Both keep torchvision's parameter names (minus the ImageNet classifier), so a torchvision
ImageNet state dict loads into them by name; see :mod:`k400ray.models.pretrained`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models.mobilenetv2 import MobileNetV2
from torchvision.models.resnet import Bottleneck


class ResNet2d(nn.Module):
    """torchvision's Bottleneck ResNet without ``avgpool``/``fc``, with depths and widths as arguments.

    torchvision's ``ResNet`` hard-codes a 64-channel stem; the toy presets need a narrower one,
    so this rebuilds the same layout from torchvision's ``Bottleneck`` blocks. With
    ``depths=(3, 4, 6, 3), base_width=64`` the parameter names and shapes are exactly those of
    ``torchvision.models.resnet50()`` without ``fc``.

        conv1 7x7/2 -> bn1 -> relu -> maxpool 3x3/2 -> layer1 .. layerK (stride 1, 2, 2, 2)
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 64,  # stem width; stage i has base_width * 2**i planes, x4 expansion
        in_channels: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if not depths or min(depths) < 1 or base_width < 1:
            raise ValueError(f"depths must be non-empty and positive, base_width >= 1; got {depths}, {base_width}")
        self.conv1 = nn.Conv2d(in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = base_width
        for i, depth in enumerate(depths):
            planes = base_width * 2**i
            layer = _bottleneck_stage(inplanes, planes, depth, stride=1 if i == 0 else 2, norm_layer=norm_layer)
            self.add_module(f"layer{i + 1}", layer)
            inplanes = planes * Bottleneck.expansion
        self.num_stages = len(depths)
        self.out_channels = inplanes
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return x


def _bottleneck_stage(
    inplanes: int, planes: int, depth: int, *, stride: int, norm_layer: Callable[[int], nn.Module]
) -> nn.Sequential:
    """torchvision's ``ResNet._make_layer`` for Bottleneck (projection shortcut on the first block)."""
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
            norm_layer(planes * Bottleneck.expansion),
        )
    blocks = [Bottleneck(inplanes, planes, stride, downsample, norm_layer=norm_layer)]
    blocks += [Bottleneck(planes * Bottleneck.expansion, planes, norm_layer=norm_layer) for _ in range(1, depth)]
    return nn.Sequential(*blocks)


def _init_like_torchvision(model: nn.Module) -> None:
    # Same scheme as torchvision's ResNet (zero_init_residual=False), so a model trained from
    # scratch starts where torchvision's would.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


class MobileNetV2Features(nn.Module):
    """torchvision MobileNetV2's ``features`` (no pooling, no classifier).

    Parameter names stay ``features.*`` as in ``torchvision.models.mobilenet_v2()``. Note that
    torchvision keeps the last conv at 1280 channels for any ``width_mult <= 1``.
    """

    def __init__(self, *, width_mult: float = 1.0) -> None:
        super().__init__()
        net = MobileNetV2(width_mult=width_mult)
        self.features = net.features
        self.out_channels = net.last_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

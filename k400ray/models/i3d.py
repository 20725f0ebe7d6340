"""I3D: ResNet-50 inflated to 3D (Carreira & Zisserman 2017; the "i3d_r50" of MMAction2).

Layout of MMAction2's ``ResNet3d`` with the ``i3d_r50_32x2x1`` config (``conv1_stride_t=2``,
``pool1_stride_t=2``, ``with_pool2=True``, inflate style ``3x1x1``, pytorch-style strides)::

    clip (N, 3, 32, 224, 224)
      conv1 5x7x7, stride (2, 2, 2) -> bn1 -> relu            T 32 -> 16
      maxpool 1x3x3, stride (2, 2, 2)                         T 16 -> 8
      layer1 -> pool2 max 2x1x1, stride (2, 1, 1)             T 8 -> 4
      layer2 .. layer4 (spatial stride 2 on the 1x3x3 conv)
      avg pool over (T, H, W) -> dropout -> fc

Parameter names follow torchvision's ResNet (``conv1``, ``bn1``, ``layerX.Y.convZ``,
``layerX.Y.downsample.0/1``) so ImageNet 2D weights inflate into it by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from k400ray.models.recognizers2d import init_classifier


class Bottleneck3d(nn.Module):
    """ResNet bottleneck with an optionally inflated first conv.

    ``inflate=True``: conv1 is 3x1x1 (temporal padding 1), else 1x1x1; conv2 is always 1x3x3 and
    carries the spatial stride ("pytorch" style); conv3 1x1x1 expands x4.
    """

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, *, spatial_stride: int = 1, inflate: bool, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        kt = 3 if inflate else 1
        self.conv1 = nn.Conv3d(inplanes, planes, kernel_size=(kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(
            planes, planes, kernel_size=(1, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1),
            bias=False,
        )
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet3d(nn.Module):
    """3D ResNet backbone: clip ``(N, 3, T, H, W)`` -> feature map ``(N, C, T', H', W')``."""

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 64,
        inflate: Sequence[Sequence[int]] = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        # stem
        conv1_kernel: tuple[int, int, int] = (5, 7, 7),
        conv1_stride_t: int = 2,
        pool1_stride_t: int = 2,
        pool2_after_layer1: bool = True,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(inflate) != len(depths) or any(len(f) != d for f, d in zip(inflate, depths)):
            raise ValueError(f"inflate pattern {inflate} does not match depths {tuple(depths)} (one flag per block)")
        self.conv1 = nn.Conv3d(
            in_channels, base_width, kernel_size=conv1_kernel, stride=(conv1_stride_t, 2, 2),
            padding=tuple((k - 1) // 2 for k in conv1_kernel), bias=False,
        )
        self.bn1 = nn.BatchNorm3d(base_width)
        self.relu = nn.ReLU(inplace=True)
        # Kernel 1 in time with stride pool1_stride_t: MMAction2 subsamples frames here, it does not max over them.
        self.maxpool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(pool1_stride_t, 2, 2), padding=(0, 1, 1))
        self.pool2 = nn.MaxPool3d(kernel_size=(2, 1, 1), stride=(2, 1, 1)) if pool2_after_layer1 else nn.Identity()
        inplanes = base_width
        for i, (depth, flags) in enumerate(zip(depths, inflate)):
            planes = base_width * 2**i
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * Bottleneck3d.expansion:
                downsample = nn.Sequential(
                    nn.Conv3d(inplanes, planes * Bottleneck3d.expansion, kernel_size=1, stride=(1, stride, stride),
                              bias=False),
                    nn.BatchNorm3d(planes * Bottleneck3d.expansion),
                )
            blocks = [Bottleneck3d(inplanes, planes, spatial_stride=stride, inflate=bool(flags[0]), downsample=downsample)]
            inplanes = planes * Bottleneck3d.expansion
            blocks += [Bottleneck3d(inplanes, planes, inflate=bool(f)) for f in flags[1:]]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(depths)
        self.out_channels = inplanes
        for m in self.modules():  # MMAction2: kaiming (fan_out) convs, BN 1/0, zero_init_residual=False in i3d_r50
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.layer1(x))
        for i in range(2, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return x


class I3D(nn.Module):
    """Inflated 3D ResNet classifier: clip ``(N, 3, T, H, W)`` -> logits ``(N, num_classes)``."""

    def __init__(self, backbone: ResNet3d, *, num_classes: int, dropout: float, init_std: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(backbone.out_channels, num_classes)
        init_classifier(self.fc, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"I3D expects clips (N, C, T, H, W), got shape {tuple(x.shape)}")
        return self.fc(self.dropout(self.pool(self.backbone(x)).flatten(1)))

"""``build_model``: :class:`ArchConfig` (plain data) -> ``nn.Module``, by plain dispatch.

Every model takes clips ``(N, C, T, H, W)`` and returns logits ``(N, num_classes)``.
"""

from __future__ import annotations

import logging

from torch import nn

from k400ray.models.arch import ArchConfig
from k400ray.models.backbones2d import MobileNetV2Features, ResNet2d
from k400ray.models.i3d import I3D, ResNet3d
from k400ray.models.pretrained import load_pretrained
from k400ray.models.recognizers2d import TSM, TSN
from k400ray.models.temporal_shift import insert_residual_shift

log = logging.getLogger(__name__)

# Std of the normal init of the class head, as in the reference configs: TSNHead and I3DHead
# use 0.01, TSMHead 0.001 (MMAction2 configs/_base_/models/{tsn_r50,tsm_r50,i3d_r50}.py).
HEAD_INIT_STD = {"tsn": 0.01, "tsm": 0.001, "i3d": 0.01}


def build_backbone_2d(arch: ArchConfig) -> ResNet2d | MobileNetV2Features:
    """The per-frame image backbone of TSN/TSM (no temporal shift yet)."""
    if arch.backbone == "resnet50":
        return ResNet2d(depths=arch.depths, base_width=arch.base_width)
    if arch.backbone == "mobilenetv2":
        return MobileNetV2Features(width_mult=arch.width_mult)
    raise ValueError(f"unknown 2D backbone {arch.backbone!r}; expected 'resnet50' or 'mobilenetv2'")


def build_model(arch: ArchConfig, num_classes: int) -> nn.Module:
    """Build the classifier ``arch`` describes; load ``arch.pretrained`` (a local ImageNet file) if set."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    init_std = HEAD_INIT_STD.get(arch.family)
    if arch.family in ("tsn", "tsm"):
        backbone = build_backbone_2d(arch)
        if arch.family == "tsn":
            model: nn.Module = TSN(
                backbone, feature_dim=backbone.out_channels, num_classes=num_classes, dropout=arch.dropout,
                init_std=init_std, dropout_per_frame=arch.dropout_per_frame,
            )
        else:
            insert_residual_shift(backbone, num_segments=arch.num_segments, shift_div=arch.shift_div)
            model = TSM(
                backbone, feature_dim=backbone.out_channels, num_classes=num_classes,
                num_segments=arch.num_segments, dropout=arch.dropout, init_std=init_std,
            )
    elif arch.family == "i3d":
        if arch.backbone != "resnet50":
            raise ValueError(f"I3D is an inflated ResNet; backbone must be 'resnet50', got {arch.backbone!r}")
        backbone_3d = ResNet3d(
            depths=arch.depths, base_width=arch.base_width, inflate=arch.inflate, conv1_kernel=arch.conv1_kernel,
            conv1_stride_t=arch.conv1_stride_t, pool1_stride_t=arch.pool1_stride_t,
            pool2_after_layer1=arch.pool2_after_layer1,
        )
        model = I3D(backbone_3d, num_classes=num_classes, dropout=arch.dropout, init_std=init_std)
    else:
        raise ValueError(f"unknown model family {arch.family!r}; expected 'tsn', 'tsm' or 'i3d'")
    if arch.pretrained:
        report = load_pretrained(model, arch, arch.pretrained)
        log.info("%s", report.summary())
    return model

"""The architecture half of a preset: plain data that ``build_model`` turns into a module.

Toy-scale variants (used by tests and the demo on 2 CPU cores) differ only in these numbers
(depths, widths), never in code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# I3D-R50 inflate pattern of the reference (1 = 3x1x1 first conv in that bottleneck, 0 = 1x1x1).
I3D_INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))


@dataclass(frozen=True)
class ArchConfig:
    """Model input is float ``(N, C, T, H, W)``; output is logits ``(N, num_classes)``.

    family: ``tsn`` (2D backbone + average consensus over T), ``tsm`` (2D backbone with residual
    temporal shift, consensus over ``num_segments``), ``i3d`` (inflated 3D ResNet).
    """

    family: Literal["tsn", "tsm", "i3d"]
    backbone: Literal["resnet50", "mobilenetv2"] = "resnet50"
    dropout: float = 0.5
    # TSN only: dropout on each frame's feature before the segment average (GluonCV's TSN,
    # ``ActionRecResNetV1b``) instead of on the average (MMAction2's ``TSNHead``).
    dropout_per_frame: bool = False
    # TSM: frames the shift runs across (input T must equal it); TSN accepts any T.
    num_segments: int = 8
    shift_div: int = 8
    # Backbone size. Full scale is torchvision's ResNet-50 / MobileNetV2; toy presets shrink these.
    depths: tuple[int, ...] = (3, 4, 6, 3)
    base_width: int = 64  # ResNet stem width; stage widths are base_width * (1, 2, 4, 8), x4 expansion
    width_mult: float = 1.0  # MobileNetV2 width multiplier
    # I3D only.
    conv1_kernel: tuple[int, int, int] = (5, 7, 7)
    conv1_stride_t: int = 2
    pool1_stride_t: int = 2
    pool2_after_layer1: bool = True  # extra (2,1,1) temporal max-pool after layer1
    inflate: tuple[tuple[int, ...], ...] = I3D_INFLATE
    # Local ImageNet state dict of the matching torchvision 2D backbone (no download, ever).
    pretrained: str | None = None

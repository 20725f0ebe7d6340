"""Temporal shift (TSM, Lin et al. 2019, arXiv:1811.08383): exchange channels between
neighbouring frames at zero FLOPs, placed inside the residual branch ("residual shift").

The shift runs on frame batches ``(N*T, C, H, W)`` as 2D backbones see them, so ``T``
(``num_segments``) must be known: the shift never crosses from one video into the next.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import Bottleneck


def temporal_shift(x: torch.Tensor, num_segments: int, shift_div: int = 8) -> torch.Tensor:
    """Shift ``1/shift_div`` of the channels one frame back and another ``1/shift_div`` one
    frame forward in time; returns a new tensor, ``x`` is left untouched.

    x: ``(N*T, C, H, W)``, any float dtype and memory format (kept). With ``fold = C // shift_div``:
    channels ``[0, fold)`` of frame t take frame t+1's values, channels ``[fold, 2*fold)`` take
    frame t-1's, the rest stay; the frames past either end are zeros (as in the reference
    implementations, so no information wraps around the clip).
    """
    if x.dim() != 4:
        raise ValueError(f"temporal_shift expects (N*T, C, H, W), got shape {tuple(x.shape)}")
    if num_segments < 1 or shift_div < 1:
        raise ValueError(f"num_segments and shift_div must be >= 1, got {num_segments}, {shift_div}")
    nt, c = x.shape[:2]
    if nt % num_segments:
        raise ValueError(f"batch of {nt} frames does not split into clips of {num_segments} segments")
    fold = c // shift_div
    clips = x.unflatten(0, (nt // num_segments, num_segments))  # (N, T, C, H, W)
    # A fresh tensor rather than an in-place edit: x is the residual identity and must stay intact.
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = clips[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = clips[:, :, 2 * fold :]
    return out.flatten(0, 1)


class TemporalShift(nn.Module):
    """Shift the input of a wrapped module: ``x -> net(temporal_shift(x))``.

    The wrapped module lives under ``.net`` (the name the TSM and MMAction2 releases use), so a
    wrapped conv's weight is ``<conv>.net.weight``; :mod:`k400ray.models.pretrained` maps
    ImageNet names onto that.
    """

    def __init__(self, net: nn.Module, *, num_segments: int, shift_div: int = 8) -> None:
        super().__init__()
        self.net = net
        self.num_segments = num_segments
        self.shift_div = shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.num_segments, self.shift_div))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}"


def _has_expansion_conv(block: InvertedResidual) -> bool:
    # torchvision builds [expand 1x1, depthwise 3x3, project 1x1, BN] when expand_ratio != 1 and
    # drops the expand conv otherwise; the references shift only blocks that have it.
    return len(block.conv) == 4


def insert_residual_shift(backbone: nn.Module, *, num_segments: int, shift_div: int = 8) -> int:
    """Wrap, in place, the first conv of every residual branch in a :class:`TemporalShift`.

    ResNet: ``conv1`` of each torchvision ``Bottleneck`` (the identity path stays unshifted).
    MobileNetV2: the expansion 1x1 conv of each ``InvertedResidual`` with ``use_res_connect``
    (blocks without a skip connection would lose the unshifted features, so they are left alone,
    as in the TSM release and MMAction2's ``MobileNetV2TSM``). Returns the number of shifts added.
    """
    count = 0
    for module in list(backbone.modules()):  # a snapshot: the loop rewires children
        if isinstance(module, Bottleneck) and not isinstance(module.conv1, TemporalShift):
            module.conv1 = TemporalShift(module.conv1, num_segments=num_segments, shift_div=shift_div)
            count += 1
        elif isinstance(module, InvertedResidual) and module.use_res_connect and _has_expansion_conv(module):
            expand = module.conv[0]
            if not isinstance(expand[0], TemporalShift):
                expand[0] = TemporalShift(expand[0], num_segments=num_segments, shift_div=shift_div)
                count += 1
    if count == 0:
        raise ValueError(f"no residual block to shift in {type(backbone).__name__}")
    return count

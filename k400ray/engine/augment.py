"""Device-side batch work: uint8 -> normalised float, and MixUp / CutMix with soft targets.

MixUp and CutMix are torchvision's (``transforms.v2``). A clip ``(B, C, T, H, W)`` is seen
by them as an image batch ``(B, C*T, H, W)``, so CutMix cuts the same box out of every frame
and recomputes lambda from the real box area, as the reference does. Neither changes the
batch's memory layout (``engine.layout``: ``channels_last_3d`` for I3D on a GPU).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from k400ray.presets import CUTMIX, MIXUP

# ImageNet mean/std on the 0-255 scale, RGB (the reference pipelines' Normalize).
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@functools.cache
def normalization_constants(device: torch.device, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as float32 tensors on ``device``, shaped to broadcast over ``(..., C, T, H, W)``
    batches of ``ndim`` dimensions. Made once per device: building them from Python numbers is a
    blocking host-to-device copy, which would stall every step's input on a GPU."""
    shape = [1] * ndim
    shape[-4] = 3
    return (torch.tensor(MEAN, dtype=torch.float32, device=device).view(shape),
            torch.tensor(STD, dtype=torch.float32, device=device).view(shape))


def normalize(clips: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., C, T, H, W)`` -> float32 normalised, same shape and memory layout. In place on
    the one float copy: the same values as ``(x - mean) / std`` without two more full-size
    temporaries (an accurate-mode batch of 16 videos is up to 480 views)."""
    mean, std = normalization_constants(clips.device, clips.ndim)
    return clips.to(torch.float32, copy=True).sub_(mean).div_(std)


class BatchMix:
    """MixUp or CutMix on a batch of clips; ``None`` augmentation gives one-hot targets."""

    def __init__(self, kind: str | None, *, alpha: float, num_classes: int) -> None:
        self.num_classes = num_classes
        self.op = {MIXUP: v2.MixUp, CUTMIX: v2.CutMix}[kind](alpha=alpha, num_classes=num_classes) if kind else None

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """int64 ``(B,)`` -> float ``(B, K)`` targets, no mixing."""
        return F.one_hot(labels, self.num_classes).float()

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``clips`` float ``(B, C, T, H, W)``, ``labels`` int64 ``(B,)`` -> mixed clips in the memory
        layout of ``clips``, targets ``(B, K)`` summing to 1."""
        if self.op is None or clips.shape[0] < 2:
            return clips, self.one_hot(labels)
        b, c, t, h, w = clips.shape
        mixed, targets = self.op(clips.reshape(b, c * t, h, w), labels)
        mixed = mixed.reshape(b, c, t, h, w)
        if mixed.stride() != clips.stride():  # a channels_last_3d batch was copied to frames in the default layout
            mixed = torch.empty_like(clips).copy_(mixed)
        return mixed, targets


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets, through log-softmax (float32 for stability)."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()

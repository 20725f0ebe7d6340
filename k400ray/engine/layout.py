"""The memory layout a model and its input use on a device: one policy for training, evaluation
and the benchmark.

On a GPU, cuDNN's fastest bf16 convolutions read channels-last tensors: ``channels_last`` for
the 2D backbones (TSN, TSM: the clip is folded into a batch of frames inside the model) and
``channels_last_3d`` for I3D, whose input is converted too. On a CPU the default layout stays.
"""

from __future__ import annotations

import torch
from torch import nn


def input_memory_format(family: str, device: torch.device):
    """The layout of the clips fed to the model (None: leave as is)."""
    if device.type != "cuda":
        return None
    return torch.channels_last_3d if family == "i3d" else None


def to_device_layout(model: nn.Module, family: str, device: torch.device) -> nn.Module:
    """The whole model on ``device`` in its layout (weights and buffers)."""
    model = model.to(device)
    if device.type != "cuda":
        return model
    return model.to(memory_format=torch.channels_last_3d if family == "i3d" else torch.channels_last)

"""Parameter and GFLOP counts of a model (``k400ray models`` prints them per preset:
:mod:`k400ray.preset_summary`).

GFLOPs here are multiply-adds of conv and matmul ops (``FlopCounterMode`` counts 2 per
multiply-add; we halve it), in units of 1e9, for one view of the efficient mode:
``(1, 3, T, crop, crop)``. Models are built on the ``meta`` device, so counting a full-size
model allocates nothing and takes well under a second.

MMAction2's model-zoo numbers come from mmcv's ``get_model_complexity_info``, which also counts
batch norm (2 per element), activations and pooling (1 per element). ``with_elementwise=True``
adds those terms the same way, which reproduces the reference numbers to the unit; see
``docs/models.md`` for the comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU)
_POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def _elementwise_hook(counter: list[int]):
    """Forward hook adding mmcv's per-element cost of a BN / activation / pooling module."""

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            counter[0] += inputs[0].numel() * (2 if module.affine else 1)
        elif isinstance(module, _ACTIVATIONS):
            counter[0] += output.numel()
        else:  # pooling: one op per input element
            counter[0] += inputs[0].numel()

    return hook


def count_gflops(model: nn.Module, input_shape: Sequence[int], *, with_elementwise: bool = False) -> float:
    """Multiply-adds (1e9) of one forward pass on a zero input of ``input_shape``, in eval mode.

    Only conv and matmul ops are counted unless ``with_elementwise`` (mmcv's convention, see the
    module docstring). The input lives on the model's device and dtype, so a ``meta`` model works.
    """
    param = next(model.parameters())
    x = torch.zeros(tuple(input_shape), device=param.device, dtype=param.dtype)
    extra = [0]
    hooks = []
    if with_elementwise:
        hooks = [
            m.register_forward_hook(_elementwise_hook(extra))
            for m in model.modules()
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, *_ACTIVATIONS, *_POOLS))
        ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return (counter.get_total_flops() / 2 + extra[0]) / 1e9


def arch_gmacs(arch, num_classes: int, input_shape: Sequence[int]) -> float:
    """Forward multiply-adds (1e9) of ``arch`` (a preset's architecture, weights ignored) on one
    input of ``input_shape``, built on the ``meta`` device: no memory, no weights, seconds for a
    full-size model. The one way the dry-run, the benchmarks and ``k400ray models`` count cost."""
    from k400ray.models.build import build_model

    with torch.device("meta"):
        model = build_model(replace(arch, pretrained=None), num_classes)
    return count_gflops(model, input_shape)

"""Parameter and GFLOP counts of the presets (the ``k400ray models`` command).

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
from typing import Any, Literal

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


def preset_summaries(scale: Literal["full", "toy"] = "full", num_classes: int = 400) -> list[dict[str, Any]]:
    """One row per preset of :data:`k400ray.presets.PRESETS`: architecture, sampling, views, size, cost."""
    # Imported here: presets sit one layer above models (see k400ray/__init__.py); only this
    # reporting helper, which the CLI calls, needs them.
    from k400ray.models.build import build_model
    from k400ray.presets import PRESETS, get_preset

    rows = []
    for name in PRESETS:
        preset = get_preset(name, scale=scale)
        arch = replace(preset.arch, pretrained=None)  # counting needs no weights
        with torch.device("meta"):
            model = build_model(arch, num_classes)
        frames = arch.num_segments if arch.family == "tsn" else preset.efficient.sampling.view_frames
        crop = preset.train_crop.crop_size
        params = count_params(model)
        rows.append(
            {
                "name": name,
                "family": arch.family,
                "backbone": arch.backbone,
                "params": params,
                "params_m": round(params / 1e6, 2),
                "gflops": round(count_gflops(model, (1, 3, frames, crop, crop)), 2),
                "view": f"{frames}x{crop}x{crop}",
                "clip_len": preset.train_sampling.clip_len,
                "frame_interval": preset.train_sampling.frame_interval,
                "num_clips": preset.train_sampling.num_clips,
                "efficient": preset.efficient.description,
                "efficient_views": preset.efficient.num_views,
                "accurate": preset.accurate.description,
                "accurate_views": preset.accurate.num_views,
            }
        )
    return rows


_TABLE_COLUMNS = (
    ("name", "preset"), ("family", "family"), ("backbone", "backbone"), ("params_m", "params(M)"),
    ("gflops", "GFLOPs/view"), ("view", "view TxHxW"), ("efficient", "efficient mode"), ("efficient_views", "views"),
    ("accurate", "accurate mode"), ("accurate_views", "views"),
)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain aligned text table; numbers right-aligned, text left-aligned."""
    header = [title for _, title in _TABLE_COLUMNS]
    body = [[_cell(row.get(key, "")) for key, _ in _TABLE_COLUMNS] for row in rows]
    numeric = [all(isinstance(row.get(key), (int, float)) for row in rows) for key, _ in _TABLE_COLUMNS]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])


def _cell(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)

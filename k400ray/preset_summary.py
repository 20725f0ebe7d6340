"""The ``k400ray models`` table: one row per preset with its size, cost per view and views.

In the presets layer (above ``models``): it reads the presets and counts their models with
:mod:`k400ray.models.summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import torch

from k400ray.models.build import build_model
from k400ray.models.summary import count_gflops, count_params
from k400ray.presets import PRESETS, get_preset
from k400ray.text_table import text_table


def preset_summaries(scale: Literal["full", "toy"] = "full", num_classes: int = 400) -> list[dict[str, Any]]:
    """One row per preset of :data:`k400ray.presets.PRESETS`: architecture, sampling, views, size, cost."""
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
    numeric = {i for i, (key, _) in enumerate(_TABLE_COLUMNS)
               if all(isinstance(row.get(key), (int, float)) for row in rows)}
    return "\n".join(text_table(header, body, numeric))


def _cell(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)

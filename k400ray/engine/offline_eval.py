"""Evaluate a saved checkpoint on an index, in this process (no Train workers): ``k400ray eval``."""

from __future__ import annotations

from pathlib import Path

import torch

from k400ray.data.index import load_manifest
from k400ray.data.pipeline import clip_dataset
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.loops import evaluate
from k400ray.engine.metrics import Predictions, summarize
from k400ray.models.build import build_model


def evaluate_checkpoint(
    checkpoint_dir: str | Path, index_dir: str | Path, *, mode: str, split: str = "val",
    data_root: str | None = None, batch_videos: int = 4,
) -> tuple[dict, Predictions]:
    state_path = Path(checkpoint_dir) / ckpt.STATE
    if not state_path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: not a k400ray checkpoint (no {ckpt.STATE})")
    state = ckpt.load_state(Path(checkpoint_dir))
    cfg = TrialConfig(**state["config"])
    preset = cfg.resolved_preset()
    classes = load_manifest(index_dir)["classes"]
    if len(classes) != cfg.num_classes:
        raise ValueError(f"{index_dir}: {len(classes)} classes, but the checkpoint was trained on {cfg.num_classes}")
    model = build_model(preset.arch, cfg.num_classes)
    model.load_state_dict(state["model"])
    ds = clip_dataset(index_dir, split, preset.clip_spec(mode), data_root=data_root, batch_size=batch_videos)
    preds, skipped = evaluate(
        model, ds.iter_batches(batch_size=batch_videos, batch_format="numpy"), device=torch.device("cpu"),
        average=preset.views(mode).average,
    )
    metrics = summarize(preds.sorted(), cfg.num_classes)
    metrics.update(skipped_videos=skipped, epoch=state["epoch"], preset=cfg.preset, mode=mode)
    return metrics, preds.sorted()

"""Evaluate a saved checkpoint on an index, in this process (no Train workers): ``k400ray eval``.

On a GPU (``device="cuda"``) the model runs in bf16 autocast in its GPU layout, as in training;
decoding runs on Ray Data tasks either way. The model and the views come from the recipe saved
in the checkpoint (``recipe.json``), so a checkpoint keeps its meaning when ``presets.py``
changes; checkpoints written before recipes were saved fall back to the preset of their config."""

from __future__ import annotations

from pathlib import Path

import torch

from k400ray.contracts import BEST_EPOCH, EPOCH, SKIPPED_VIDEOS
from k400ray.data.index import load_manifest
from k400ray.data.pipeline import clip_dataset, eval_batch_videos
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.layout import input_memory_format, to_device_layout
from k400ray.engine.loops import evaluate
from k400ray.engine.metrics import Predictions, summarize
from k400ray.models.build import build_model


def evaluate_checkpoint(
    checkpoint_dir: str | Path, index_dir: str | Path, *, mode: str, split: str = "val",
    data_root: str | None = None, batch_videos: int = 4, device: str = "cpu", decode_tasks: int | None = None,
    weights: str = "last",
) -> tuple[dict, Predictions]:
    """``device``: ``cpu``, ``cuda`` or ``cuda:N``; bf16 autocast on CUDA. ``decode_tasks`` caps the
    decode tasks (None: as many as the cluster's CPUs allow). ``weights``: ``last`` (the epoch the
    checkpoint was written at) or ``best`` (the best efficient-mode epoch kept in it)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device visible to this process")
    state_path = Path(checkpoint_dir) / ckpt.STATE
    if not state_path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: not a k400ray checkpoint (no {ckpt.STATE})")
    state = ckpt.load_state(Path(checkpoint_dir))
    cfg, recipe = ckpt.load_trial(state)
    preset = recipe.preset if recipe else cfg.resolved_preset()
    epoch = state["epoch"]
    model_state = state["model"]
    if weights == "best":
        model_state = ckpt.load_best(Path(checkpoint_dir))
        if model_state is None:
            raise ValueError(f"{checkpoint_dir}: no best-epoch weights in this checkpoint (use --weights last)")
        epoch = ckpt.load_metrics(Path(checkpoint_dir)).get(BEST_EPOCH, epoch)
    classes = load_manifest(index_dir)["classes"]
    if len(classes) != cfg.num_classes:
        raise ValueError(f"{index_dir}: {len(classes)} classes, but the checkpoint was trained on {cfg.num_classes}")
    model = build_model(preset.arch, cfg.num_classes)
    model.load_state_dict(model_state)
    family = preset.arch.family
    model = to_device_layout(model, family, dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed clip shapes
    spec = preset.clip_spec(mode)
    batch = eval_batch_videos(spec, batch_videos)
    ds = clip_dataset(index_dir, split, spec, data_root=data_root, batch_size=batch, decode_tasks=decode_tasks)
    preds, skipped = evaluate(
        model, ds.iter_batches(batch_size=batch, batch_format="numpy", prefetch_batches=2), device=dev,
        average=preset.views(mode).average, amp=dev.type == "cuda", memory_format=input_memory_format(family, dev),
    )
    metrics = summarize(preds.sorted(), cfg.num_classes)
    metrics.update({SKIPPED_VIDEOS: skipped, EPOCH: epoch}, preset=cfg.preset, mode=mode, device=str(dev),
                   weights=weights)
    return metrics, preds.sorted()

"""The files a finished trial leaves in its MLflow run: resolved config, per-video predictions
of both modes, per-class accuracy, confusion matrices."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from k400ray.contracts import ACC1, mode_metric
from k400ray.engine.checkpoint import predictions_file
from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions, confusion_matrix, per_class_accuracy
from k400ray.presets import EVAL_MODES

CONFIG = "config.json"
PER_CLASS = "per_class_accuracy.csv"
CONFUSION = "confusion_matrix.png"
MODES = EVAL_MODES
# The same file name as in a trial's checkpoints: one name for a mode's predictions wherever they lie.
predictions_artifact = predictions_file


def write_trial_artifacts(out: Path, cfg: TrialConfig, predictions: dict[str, Predictions],
                          class_names: list[str]) -> list[Path]:
    """Write every artifact of one trial into ``out``; returns the files written."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    written = [out / CONFIG]
    written[0].write_text(json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True))
    for mode in MODES:
        if mode in predictions:
            path = out / predictions_artifact(mode)
            pq.write_table(predictions[mode].to_table(), path)
            written.append(path)
    if predictions:
        written.append(write_per_class(out / PER_CLASS, predictions, class_names))
        written.append(plot_confusion(out / CONFUSION, predictions, class_names))
    return written


def write_per_class(path: Path, predictions: dict[str, Predictions], class_names: list[str]) -> Path:
    k = len(class_names)
    modes = [m for m in MODES if m in predictions]
    accuracy = {m: per_class_accuracy(predictions[m], k) for m in modes}
    videos = np.bincount(next(iter(predictions.values())).label, minlength=k)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_index", "class_name", "val_videos", *(mode_metric(m, ACC1) for m in modes)])
        for c, name in enumerate(class_names):
            writer.writerow([c, name, int(videos[c]), *(_pct(accuracy[m][c]) for m in modes)])
    return path


def _pct(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.2f}"


def plot_confusion(path: Path, predictions: dict[str, Predictions], class_names: list[str]) -> Path:
    """Row-normalised confusion matrix (true class x predicted top-1), one panel per mode."""
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend state

    k = len(class_names)
    modes = [m for m in MODES if m in predictions]
    size = min(4 + 0.25 * k, 14)
    fig = Figure(figsize=(size * len(modes), size), layout="constrained")
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    for ax, mode in zip(axes, modes):
        cm = confusion_matrix(predictions[mode], k).astype(float)
        rows = cm.sum(axis=1, keepdims=True)
        image = ax.imshow(np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0), vmin=0, vmax=1, cmap="Blues")
        ax.set_title(f"{mode} mode ({len(predictions[mode])} videos)")
        ax.set_xlabel("predicted (top-1)")
        ax.set_ylabel("true class")
        if k <= 40:
            ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
            ax.set_yticks(range(k), class_names, fontsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="fraction of the true class")
    fig.savefig(path, dpi=100)
    return path

"""Per-video predictions and the accuracies computed from them.

A prediction row keeps the top-5 classes and scores per video: enough for acc1/acc5, mean
class accuracy and the confusion matrix, and for the report's bootstrap intervals and
paired tests over the same videos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from k400ray.contracts import ACC1, ACC5, MEAN_CLASS_ACC

TOPK = 5


def combine_views(logits: torch.Tensor, average: str) -> torch.Tensor:
    """``(B, V, K)`` view logits -> ``(B, K)`` video scores: mean of raw scores (``score``, TSN's
    consensus) or mean of per-view softmax (``prob``, TSM / I3D)."""
    if average == "score":
        return logits.float().mean(dim=1)
    if average == "prob":
        return logits.float().softmax(dim=-1).mean(dim=1)
    raise ValueError(f"average must be 'score' or 'prob', got {average!r}")


@dataclass
class Predictions:
    video_id: list[str]
    label: np.ndarray  # (N,) int
    topk: np.ndarray  # (N, 5) int, best first
    topk_scores: np.ndarray  # (N, 5) float

    @classmethod
    def empty(cls) -> "Predictions":
        return cls([], np.zeros(0, np.int64), np.zeros((0, TOPK), np.int64), np.zeros((0, TOPK), np.float32))

    @classmethod
    def from_scores(cls, video_ids: list[str], labels: np.ndarray, scores: torch.Tensor) -> "Predictions":
        k = min(TOPK, scores.shape[-1])
        values, classes = scores.topk(k, dim=-1)
        pad = TOPK - k
        classes = np.pad(classes.cpu().numpy(), ((0, 0), (0, pad)), constant_values=-1)
        values = np.pad(values.cpu().float().numpy(), ((0, 0), (0, pad)), constant_values=np.nan)
        return cls(list(video_ids), np.asarray(labels, np.int64), classes, values)

    @classmethod
    def concat(cls, parts: list["Predictions"]) -> "Predictions":
        parts = [p for p in parts if len(p.video_id)] or [cls.empty()]
        return cls(
            [v for p in parts for v in p.video_id], np.concatenate([p.label for p in parts]),
            np.concatenate([p.topk for p in parts]), np.concatenate([p.topk_scores for p in parts]),
        )

    def sorted(self) -> "Predictions":
        order = np.argsort(np.asarray(self.video_id, dtype=object), kind="stable")
        return Predictions([self.video_id[i] for i in order], self.label[order], self.topk[order],
                           self.topk_scores[order])

    def __len__(self) -> int:
        return len(self.video_id)

    def to_table(self):
        import pyarrow as pa

        return pa.table({
            "video_id": pa.array(self.video_id, pa.string()),
            "label": pa.array(self.label, pa.int64()),
            "top5": pa.array(self.topk.tolist(), pa.list_(pa.int64())),
            "top5_scores": pa.array(self.topk_scores.tolist(), pa.list_(pa.float32())),
        })

    @classmethod
    def from_table(cls, table) -> "Predictions":
        d = table.to_pydict()
        return cls(d["video_id"], np.asarray(d["label"], np.int64),
                   np.asarray(d["top5"], np.int64).reshape(-1, TOPK),
                   np.asarray(d["top5_scores"], np.float32).reshape(-1, TOPK))


def correct_at(preds: Predictions, k: int) -> np.ndarray:
    """Per-video bool: label among the top-k."""
    return (preds.topk[:, :k] == preds.label[:, None]).any(axis=1)


def per_class_accuracy(preds: Predictions, num_classes: int) -> np.ndarray:
    """Recall of each class in percent (NaN for a class with no video)."""
    hits = correct_at(preds, 1)
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = preds.label == c
        if mask.any():
            out[c] = 100.0 * hits[mask].mean()
    return out


def summarize(preds: Predictions, num_classes: int) -> dict[str, float]:
    """acc1, acc5 and mean class accuracy, in percent, over every video exactly once."""
    if len(preds) == 0:
        return {ACC1: float("nan"), ACC5: float("nan"), MEAN_CLASS_ACC: float("nan"), "videos": 0}
    return {
        ACC1: 100.0 * float(correct_at(preds, 1).mean()),
        ACC5: 100.0 * float(correct_at(preds, 5).mean()),
        MEAN_CLASS_ACC: float(np.nanmean(per_class_accuracy(preds, num_classes))),
        "videos": len(preds),
    }


def confusion_matrix(preds: Predictions, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (preds.label, preds.topk[:, 0]), 1)
    return cm

"""The two plain functions of the engine: ``train_one_epoch`` and ``evaluate``.

They take explicit objects (model, batch iterator, optimiser...) and know nothing of Ray,
so they run the same in a Ray Train worker, a test, or a notebook. Batches are dicts with
``clips`` uint8 ``(B, V, C, T, S, S)``, ``label``, ``video_id`` and ``valid`` (see
``k400ray.data.pipeline``); rows whose video failed to decode are skipped and counted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from k400ray.engine.augment import BatchMix, normalize, soft_cross_entropy
from k400ray.engine.metrics import Predictions, combine_views


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on the device when enabled (GPU runs), a no-op otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _valid_rows(batch: dict) -> tuple[np.ndarray, int]:
    valid = np.asarray(batch["valid"], dtype=bool)
    return valid, int((~valid).sum())


def _to_device(clips, device: torch.device, memory_format) -> torch.Tensor:
    t = torch.as_tensor(clips).to(device, non_blocking=True)
    x = normalize(t)
    return x.contiguous(memory_format=memory_format) if memory_format is not None else x


@dataclass
class EpochStats:
    loss: float
    clips: int
    skipped_videos: int
    seconds: float
    data_wait_s: float

    @property
    def clips_per_s(self) -> float:
        return self.clips / max(self.seconds, 1e-9)

    @property
    def data_wait_fraction(self) -> float:
        return self.data_wait_s / max(self.seconds, 1e-9)


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[dict],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    mix: BatchMix,
    clip_grad_norm: float | None,
    amp: bool = False,
    memory_format=None,
) -> EpochStats:
    """One pass over ``batches``; returns mean loss, clips seen, and the time spent waiting for data."""
    model.train()
    total_loss, clips, skipped, wait = 0.0, 0, 0, 0.0
    start = tick = time.perf_counter()
    for batch in batches:
        wait += time.perf_counter() - tick
        valid, bad = _valid_rows(batch)
        skipped += bad
        if valid.any():
            x = _to_device(batch["clips"][valid][:, 0], device, memory_format)  # train: one view
            y = torch.as_tensor(np.asarray(batch["label"])[valid], dtype=torch.long, device=device)
            x, targets = mix(x, y)
            with autocast(device, amp):
                logits = model(x)
            loss = soft_cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            total_loss += float(loss.detach()) * len(y)
            clips += len(y)
        tick = time.perf_counter()
    elapsed = time.perf_counter() - start
    return EpochStats(total_loss / max(clips, 1), clips, skipped, elapsed, wait)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[dict],
    *,
    device: torch.device,
    average: str,
    amp: bool = False,
    memory_format=None,
) -> tuple[Predictions, int]:
    """Scores of every valid video (all its views combined by ``average``) and the number skipped."""
    model.eval()
    parts, skipped = [], 0
    for batch in batches:
        valid, bad = _valid_rows(batch)
        skipped += bad
        if not valid.any():
            continue
        clips = batch["clips"][valid]
        b, v = clips.shape[:2]
        x = _to_device(clips, device, None).flatten(0, 1)  # (B*V, C, T, S, S)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with autocast(device, amp):
            logits = model(x)
        scores = combine_views(logits.reshape(b, v, -1), average)
        ids = [str(i) for i in np.asarray(batch["video_id"])[valid]]
        parts.append(Predictions.from_scores(ids, np.asarray(batch["label"])[valid], scores))
    return Predictions.concat(parts), skipped

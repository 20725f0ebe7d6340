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
import torch.distributed as dist
from torch import nn

from k400ray.engine.augment import BatchMix, soft_cross_entropy
from k400ray.engine.compiled import step_begin
from k400ray.engine.input_path import DeviceFeed
from k400ray.engine.metrics import Predictions, combine_views


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on the device when enabled (GPU runs), a no-op otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@dataclass
class EpochStats:
    loss: float
    clips: int
    skipped_videos: int
    seconds: float
    data_wait_s: float
    loss_sum: float = 0.0  # summed over clips, for exact means across ranks

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
    """One pass over ``batches``; returns mean loss, clips seen, and the time spent waiting for data.

    Collectives: under DDP each backward all-reduces gradients, so every rank runs forward,
    backward and step for every batch it receives, and ranks must receive equally many batches
    (Ray Train's equal split does). A batch with no decodable row is run with its loss weighted
    zero: its gradients are zeros that DDP averages with the other ranks'. (Its all-zero clips
    still move BatchNorm's running statistics once; one such batch in an epoch is noise.)
    The loss is summed on the device and read once, at the end: no host sync per step.
    The epoch ends with rank 0's buffers on every rank (:func:`share_rank0_buffers`), so the
    model evaluated and saved after it is one model, whichever rank holds it.
    """
    model.train()
    feed = DeviceFeed(batches, device=device, train=True, memory_format=memory_format)
    total_loss = torch.zeros((), device=device)
    clips, skipped = 0, 0
    start = time.perf_counter()
    for batch in feed:
        skipped += batch.skipped
        if batch.rows:
            x, targets = mix(batch.clips, batch.labels)
        else:
            x, targets = batch.clips, mix.one_hot(batch.labels)
        step_begin(model)
        with autocast(device, amp):
            logits = model(x)
        loss = soft_cross_entropy(logits, targets)
        if not batch.rows:
            loss = loss * 0.0
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        total_loss += loss.detach() * batch.rows
        clips += batch.rows
    share_rank0_buffers(model)
    loss_sum = float(total_loss)  # the epoch's one host sync: every queued step has finished
    elapsed = time.perf_counter() - start
    return EpochStats(loss_sum / max(clips, 1), clips, skipped, elapsed, feed.wait_s, loss_sum)


def share_rank0_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank of a DDP model; a no-op
    for a plain module.

    DDP broadcasts rank 0's buffers at the start of each forward, but the forward itself then
    updates every rank's running statistics with that rank's own batch, so after an epoch's last
    step each rank holds its own (and a rank whose last batch did not decode, the statistics of
    zeros). Evaluated as they are, each val shard would be scored by a different model, and the
    checkpoint (rank 0's) would not reproduce the figures. MMAction2 0.x's distributed eval hook
    broadcasts them the same way before evaluating (``_broadcast_bn_buffer`` in
    ``mmaction/core/evaluation/eval_hooks.py``, open-mmlab/mmaction2 branch 0.x).

    The tensors travel where DDP's own buffer broadcast sends them: on the model's process group,
    on the device (CUDA tensors on NCCL, CPU tensors on gloo). A collective: every rank calls it.
    """
    if not isinstance(model, nn.parallel.DistributedDataParallel) or dist.get_world_size(model.process_group) == 1:
        return
    with torch.no_grad():
        for buffer in model.module.buffers():
            dist.broadcast(buffer, group=model.process_group, group_src=0)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


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
    """Scores of every valid video (all its views combined by ``average``) and the number skipped.

    Runs the plain module even when given a DDP wrapper: DDP's forward may broadcast buffers, a
    collective that a rank with fewer (or no) val batches would never join. Scores stay on the
    device until the end (one host sync per evaluation).
    """
    model = unwrap(model)
    model.eval()
    feed = DeviceFeed(batches, device=device, train=False, memory_format=memory_format)
    scores, ids, labels, skipped = [], [], [], 0
    for batch in feed:
        skipped += batch.skipped
        if not batch.rows:
            continue
        step_begin(model)
        with autocast(device, amp):
            logits = model(batch.clips)
        scores.append(combine_views(logits.reshape(batch.rows, batch.views, -1), average))
        ids += [str(i) for i in batch.video_ids]
        labels.append(batch.label_values)
    if not scores:
        return Predictions.empty(), skipped
    return Predictions.from_scores(ids, np.concatenate(labels), torch.cat(scores)), skipped

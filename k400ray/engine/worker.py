"""The per-worker function Ray Train runs on each DDP worker: the only Ray-aware part of the engine.

It receives the trial's config and its resolved recipe (``engine.recipe``) and reads every
number from the recipe. Per epoch: train on this worker's shard of the streamed train set;
every ``eval_interval`` epochs and after the last, evaluate the efficient mode on this worker's
disjoint part of val, gather predictions on every rank, and keep the best epoch's weights;
report metrics and a checkpoint. After the last epoch: the accurate mode on the best or the
last weights (``accurate_checkpoint``), reported with a final checkpoint (``tested=1``). A
restarted worker group resumes from the latest checkpoint, so at most one epoch is lost; a
group restarted after training finished only redoes the accurate mode.
"""

from __future__ import annotations

import copy
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from k400ray.contracts import (
    ACC1, ACC5, ACCURATE_ACC1, ACCURATE_ACC5, ACCURATE_EPOCH, ACCURATE_MEAN_CLASS_ACC, ACCURATE_TIME_S, CLIPS_PER_S,
    DATA_WAIT_FRACTION, EFFICIENT_ACC1, EFFICIENT_ACC5, EFFICIENT_MEAN_CLASS_ACC, EPOCH, EVAL_TIME_S,
    LOCAL_READ_FRACTION, LR, LR_RESCALED_FROM, MEAN_CLASS_ACC, RESUMED_WORLD_SIZE_FROM, SKIPPED_VIDEOS, START_EPOCH,
    TESTED, TRAIN_LOSS, TRAIN_TIME_S, VAL_VIDEOS,
)
from k400ray.data.pipeline import LocalReads, clip_dataset, eval_batch_videos
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.augment import BatchMix
from k400ray.engine.best import BestEpoch
from k400ray.engine.collectives import Collectives
from k400ray.engine.compiled import compile_model
from k400ray.engine.config import TrialConfig
from k400ray.engine.layout import input_memory_format, to_device_layout
from k400ray.engine.loops import evaluate, train_one_epoch, unwrap
from k400ray.engine.metrics import Predictions, summarize
from k400ray.engine.optim import build_optimizer
from k400ray.engine.recipe import TrialRecipe, for_world
from k400ray.engine.resume import restore
from k400ray.models.build import build_model
from k400ray.presets import BATCH_MIX_CONFIGS, EVAL_MODES, MIXUP


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one rank's epoch (dropout, MixUp/CutMix draws): fixed by the trial's
    seed and the epoch, so a resumed run continues the sequence an uninterrupted one draws."""
    return int(np.random.default_rng([seed, epoch, rank]).integers(2**63 - 1))


def train_loop_per_worker(config: dict) -> None:
    """``config``: ``{"trial": TrialConfig as data, "recipe": TrialRecipe as data}``.

    Collectives: every rank makes the same sequence of them (DDP's gradient all-reduce per
    training batch, metric sums and prediction gathers on ``Collectives``, ``ray.train.report``),
    whatever data it gets: a rank whose batch has no decodable row still steps, and a rank with
    no val video still gathers. Evaluation runs the unwrapped model (no DDP collectives)."""
    import ray.train
    import ray.train.torch

    cfg = TrialConfig(**config["trial"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    recipe = for_world(TrialRecipe(**config["recipe"]), cfg, world)
    preset = recipe.model_preset()
    seed_everything(cfg.seed)  # same init on every rank; DDP also broadcasts rank 0's weights
    device = ray.train.torch.get_device()

    if cfg.use_gpu:
        torch.backends.cudnn.benchmark = True  # clip shapes are fixed: pick the fastest conv kernels once
    family = preset.arch.family
    model = to_device_layout(build_model(preset.arch, cfg.num_classes), family, device)
    # Compiled in place before DDP wraps it (engine/compiled.py): training and eval forward alike.
    model = compile_model(model, cfg.compile_mode, device_type=device.type)
    model = ray.train.torch.prepare_model(model)
    comm = Collectives.for_default_group()  # a collective: here, on every rank
    epochs = recipe.epochs
    optimizer, scheduler = build_optimizer(
        model, preset.recipe, lr=recipe.lr, weight_decay=recipe.weight_decay, milestones=recipe.milestones,
        warmup_epochs=recipe.warmup_epochs, epochs=epochs,
    )

    start_epoch, resumed, best = 0, {}, BestEpoch()
    # The run's own latest checkpoint (a restarted worker group) wins over the one it started from.
    restored = ray.train.get_checkpoint()
    if restored is None and cfg.init_checkpoint:
        restored = ray.train.Checkpoint(cfg.init_checkpoint)
    if restored:
        with restored.as_directory() as directory:
            state = restore(Path(directory), model=unwrap(model), optimizer=optimizer, scheduler=scheduler,
                            base_lr=recipe.lr, total_epochs=epochs, saved_world_size_default=world)
            best = BestEpoch.restored(ckpt.load_metrics(Path(directory)), ckpt.load_best(Path(directory)))
        if state.finished:
            return
        start_epoch = state.epoch
        if state.lr_rescaled_from is not None:
            # Said in the worker's log and in every metrics row of this run.
            print(f"k400ray: resumed on {world} workers (checkpoint written by {state.world_size}): "
                  f"lr rescaled from {state.lr_rescaled_from:g} to {recipe.lr:g}", flush=True)
            resumed = {RESUMED_WORLD_SIZE_FROM: state.world_size, LR_RESCALED_FROM: state.lr_rescaled_from}

    mix = BatchMix(cfg.aug if cfg.aug in BATCH_MIX_CONFIGS else None,
                   alpha=cfg.mixup_alpha if cfg.aug == MIXUP else cfg.cutmix_alpha, num_classes=cfg.num_classes)
    train_spec = preset.clip_spec("train", randaugment=cfg.randaugment)

    def train_batches(epoch: int, reads: LocalReads):
        """This rank's share of the epoch, in the order the seed and the epoch fix."""
        ds = clip_dataset(
            cfg.train_index, cfg.train_split, train_spec, data_root=cfg.data_root, seed=cfg.seed, epoch=epoch,
            shard=(rank, world), decode_cpus=cfg.decode_cpus, decode_tasks=cfg.train_decode_tasks_per_worker,
            batch_size=cfg.batch_size, limit=cfg.limit_videos, local_cache=cfg.local_cache,
            decode_backend=cfg.decode_backend,
        )
        return reads.count(ds.iter_batches(batch_size=cfg.batch_size, batch_format="numpy", prefetch_batches=2))
    eval_batches = {mode: eval_batch_videos(preset.clip_spec(mode), cfg.eval_batch_videos)
                    for mode in EVAL_MODES}
    val_sets = {
        mode: clip_dataset(
            cfg.val_index, cfg.val_split, preset.clip_spec(mode), data_root=cfg.data_root,
            decode_cpus=cfg.decode_cpus, decode_tasks=cfg.eval_decode_tasks_per_worker,
            batch_size=eval_batches[mode], limit=cfg.limit_videos, shard=(rank, world), local_cache=cfg.local_cache,
        )
        for mode in EVAL_MODES
    }
    memory_format = input_memory_format(family, device)

    def run_eval(mode: str, module: torch.nn.Module) -> tuple[Predictions, int]:
        preds, skipped = evaluate(
            module, val_sets[mode].iter_batches(batch_size=eval_batches[mode], batch_format="numpy"),
            device=device, average=preset.views(mode).average, amp=cfg.use_amp, memory_format=memory_format,
        )
        (total_skipped,) = comm.sum([skipped])
        return comm.gather_predictions(preds), int(total_skipped)

    def efficient_metrics(eff: dict) -> dict:
        return {EFFICIENT_ACC1: eff[ACC1], EFFICIENT_ACC5: eff[ACC5],
                EFFICIENT_MEAN_CLASS_ACC: eff[MEAN_CLASS_ACC], VAL_VIDEOS: eff["videos"]}

    def report(metrics: dict, epoch: int, predictions: dict[str, Predictions]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                ckpt.save(Path(tmp), model=unwrap(model), optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                          config=cfg.model_dump(mode="json"), metrics=metrics, predictions=predictions,
                          world_size=world, base_lr=recipe.lr, recipe=recipe.model_dump(mode="json"),
                          best_state=best.state)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)

    skipped_total = 0
    efficient_preds, metrics = None, {}
    for epoch in range(start_epoch, epochs):
        lr_now = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0)
        torch.manual_seed(epoch_seed(cfg.seed, epoch, rank))
        reads = LocalReads()
        stats = train_one_epoch(
            model, train_batches(epoch, reads), optimizer, device=device, mix=mix, clip_grad_norm=recipe.clip_grad_norm,
            amp=cfg.use_amp, memory_format=memory_format,
        )
        scheduler.step()
        loss_sum, clips, train_skipped, clips_per_s, wait, local_rows, rows = comm.sum(
            [stats.loss_sum, stats.clips, stats.skipped_videos, stats.clips_per_s, stats.data_wait_fraction,
             reads.local, reads.rows])
        skipped_total += int(train_skipped)
        metrics = {
            EPOCH: epoch + 1, TRAIN_LOSS: loss_sum / max(clips, 1), LR: lr_now, CLIPS_PER_S: clips_per_s,
            DATA_WAIT_FRACTION: wait / world, LOCAL_READ_FRACTION: local_rows / max(rows, 1),
            START_EPOCH: start_epoch, TRAIN_TIME_S: stats.seconds, TESTED: 0, **resumed,
        }
        predictions = {}
        if (epoch + 1) % recipe.eval_interval == 0 or epoch + 1 == epochs:
            eval_start = time.perf_counter()
            efficient_preds, eval_skipped = run_eval("efficient", unwrap(model))
            skipped_total += eval_skipped
            eff = summarize(efficient_preds, cfg.num_classes)
            metrics.update(efficient_metrics(eff), **{EVAL_TIME_S: time.perf_counter() - eval_start})
            best.offer(epoch + 1, eff, unwrap(model))
            predictions = {"efficient": efficient_preds}
        metrics.update({SKIPPED_VIDEOS: skipped_total, **best.metrics()})
        report(metrics, epoch + 1, predictions)

    if efficient_preds is None:  # resumed after the last training epoch: only the test remains
        efficient_preds, _ = run_eval("efficient", unwrap(model))
        metrics = {EPOCH: epochs, **efficient_metrics(summarize(efficient_preds, cfg.num_classes)),
                   SKIPPED_VIDEOS: skipped_total,
                   **best.metrics(), **resumed}
    # Accurate mode on the best efficient-mode epoch's weights (MMAction2 0.x `--test-best`) or on
    # the last ones; a copy, so the final checkpoint keeps the last weights for any resume.
    use_best = recipe.accurate_checkpoint == "best" and best.state is not None
    eval_model = unwrap(model)
    if use_best:
        eval_model = copy.deepcopy(eval_model)  # a deepcopy is eager: compiled again below
        eval_model.load_state_dict(best.state)
        compile_model(eval_model, cfg.compile_mode, device_type=device.type)
    test_start = time.perf_counter()
    accurate_preds, acc_skipped = run_eval("accurate", eval_model)
    acc = summarize(accurate_preds, cfg.num_classes)
    final = dict(metrics)
    final.update({
        ACCURATE_ACC1: acc[ACC1], ACCURATE_ACC5: acc[ACC5], ACCURATE_MEAN_CLASS_ACC: acc[MEAN_CLASS_ACC],
        ACCURATE_EPOCH: best.epoch if use_best else epochs,
        SKIPPED_VIDEOS: skipped_total + acc_skipped, ACCURATE_TIME_S: time.perf_counter() - test_start, TESTED: 1,
    })
    report(final, epochs, {"efficient": efficient_preds, "accurate": accurate_preds})

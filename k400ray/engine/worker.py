"""The per-worker function Ray Train runs on each DDP worker: the only Ray-aware part of the engine.

It receives the trial's config and its resolved recipe (``engine.recipe``) and reads every
number of the optimisation and the evaluation from the recipe. Four steps, as in torchvision's
``references/video_classification/train.py``:

- :func:`setup`: the model (compiled, DDP-wrapped), its optimizer and schedule, the data;
- :func:`restore_checkpoint`: the run's own latest checkpoint (a restarted worker group) or the
  one it starts from: weights, optimizer, schedule, RNG, best epoch, lr on this world size;
- :func:`run_epoch`: train on this worker's shard of the streamed train set; every
  ``eval_interval`` epochs and after the last, evaluate the efficient mode on this worker's
  disjoint part of val, gather predictions on every rank and keep the best epoch's weights;
  report metrics and a checkpoint;
- :func:`finish`: the accurate mode on the best or the last weights (``accurate_checkpoint``),
  reported with a final checkpoint (``done=1``).

A restarted worker group resumes from the latest checkpoint, so at most one epoch is lost; a
group restarted after training finished only redoes the accurate mode.
"""

from __future__ import annotations

import copy
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from k400ray.contracts import (
    ACC1, ACC5, ACCURATE_ACC1, ACCURATE_ACC5, ACCURATE_EPOCH, ACCURATE_MEAN_CLASS_ACC, ACCURATE_TIME_S, CLIPS_PER_S,
    DATA_WAIT_FRACTION, EFFICIENT_ACC1, EFFICIENT_ACC5, EFFICIENT_MEAN_CLASS_ACC, EPOCH, EVAL_TIME_S,
    LOCAL_READ_FRACTION, LR, LR_FROM_CHECKPOINT, LR_RESCALED_FROM, MEAN_CLASS_ACC, RESTORED_WEIGHTS_DIGEST,
    RESUMED_WORLD_SIZE_FROM, SKIPPED_VIDEOS, START_EPOCH, TESTED, TRAIN_LOSS, TRAIN_TIME_S, VAL_VIDEOS,
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


@dataclass
class WorkerRun:
    """What :func:`setup` builds on one rank, used unchanged by the later steps."""

    cfg: TrialConfig
    recipe: TrialRecipe  # on this run's world size
    rank: int
    world: int
    device: torch.device
    model: torch.nn.Module  # compiled and DDP-wrapped (``unwrap`` gives the module)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    comm: Collectives
    mix: BatchMix
    val_sets: dict  # eval mode -> this rank's share of val (a Ray Dataset)
    eval_batches: dict[str, int]  # eval mode -> videos per batch
    memory_format: torch.memory_format

    def train_batches(self, epoch: int, reads: LocalReads):
        """This rank's share of the epoch, in the order the seed and the epoch fix: numpy batches
        of ``recipe.batch_per_worker`` clips."""
        cfg, batch = self.cfg, self.recipe.batch_per_worker
        ds = clip_dataset(
            cfg.data.train_index, cfg.train_split, self.recipe.preset.clip_spec("train", randaugment=cfg.randaugment),
            data_root=cfg.data.data_root, seed=cfg.seed, epoch=epoch, shard=(self.rank, self.world),
            decode_cpus=cfg.resources.decode_cpus, decode_tasks=cfg.resources.train_decode_tasks_per_worker,
            batch_size=batch, limit=cfg.training.limit_videos, local_cache=cfg.data.local_cache,
            decode_backend=cfg.data.decode_backend,
        )
        return reads.count(ds.iter_batches(batch_size=batch, batch_format="numpy", prefetch_batches=2))

    def evaluate(self, mode: str, module: torch.nn.Module) -> tuple[Predictions, int]:
        """``mode`` on every rank's share of val: the gathered predictions (every video once, on
        every rank) and the videos skipped on all ranks."""
        preds, skipped = evaluate(
            module, self.val_sets[mode].iter_batches(batch_size=self.eval_batches[mode], batch_format="numpy"),
            device=self.device, average=self.recipe.preset.views(mode).average, amp=self.cfg.use_amp,
            memory_format=self.memory_format,
        )
        (total_skipped,) = self.comm.sum([skipped])
        return self.comm.gather_predictions(preds), int(total_skipped)

    def report(self, metrics: dict, epoch: int, predictions: dict[str, Predictions], best: BestEpoch) -> None:
        """``ray.train.report`` of ``metrics`` on every rank, with rank 0's checkpoint after ``epoch``
        finished training epochs."""
        import ray.train

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if self.rank == 0:
                ckpt.save(Path(tmp), model=unwrap(self.model), optimizer=self.optimizer, scheduler=self.scheduler,
                          epoch=epoch, config=self.cfg.model_dump(mode="json"), metrics=metrics,
                          predictions=predictions, world_size=self.world, base_lr=self.recipe.lr,
                          recipe=self.recipe.model_dump(mode="json"), best_state=best.state)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)


@dataclass
class Progress:
    """What the epochs carry from one to the next, and into :func:`finish`."""

    start_epoch: int = 0
    finished: bool = False  # the checkpoint restored had the accurate mode too
    resumed: dict = field(default_factory=dict)  # world size and lr of a resume on another world size
    best: BestEpoch = field(default_factory=BestEpoch)
    skipped: int = 0  # videos skipped so far (train and eval)
    efficient: Predictions | None = None  # the last efficient-mode predictions
    metrics: dict = field(default_factory=dict)  # the last epoch's report


def setup(cfg: TrialConfig, recipe: TrialRecipe) -> WorkerRun:
    """The model, its optimizer and schedule, and the data of this rank. ``recipe``: as resolved
    for the trial; made this run's world size's here (:func:`~k400ray.engine.recipe.for_world`)."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    recipe = for_world(recipe, world)
    preset = recipe.preset
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
    optimizer, scheduler = build_optimizer(model, recipe)
    a = cfg.augmentation
    mix = BatchMix(cfg.config if cfg.config in BATCH_MIX_CONFIGS else None,
                   alpha=a.mixup_alpha if cfg.config == MIXUP else a.cutmix_alpha, num_classes=cfg.num_classes)
    eval_batches = {mode: eval_batch_videos(preset.clip_spec(mode), cfg.resources.eval_batch_videos)
                    for mode in EVAL_MODES}
    val_sets = {
        mode: clip_dataset(
            cfg.data.val_path, cfg.val_split, preset.clip_spec(mode), data_root=cfg.data.data_root,
            decode_cpus=cfg.resources.decode_cpus, decode_tasks=cfg.resources.eval_decode_tasks_per_worker,
            batch_size=eval_batches[mode], limit=cfg.training.limit_videos, shard=(rank, world),
            local_cache=cfg.data.local_cache,
        )
        for mode in EVAL_MODES
    }
    return WorkerRun(cfg, recipe, rank, world, device, model, optimizer, scheduler, comm, mix, val_sets,
                     eval_batches, input_memory_format(family, device))


def restore_checkpoint(run: WorkerRun) -> Progress:
    """Restore the run's own latest checkpoint (a restarted worker group), else the one it starts
    from (``init_checkpoint``), into ``run``'s model, optimizer and schedule; nothing: epoch 0."""
    import ray.train

    progress = Progress()
    restored = ray.train.get_checkpoint()
    started_from = None
    if restored is None and run.cfg.init_checkpoint:
        restored = started_from = ray.train.Checkpoint(run.cfg.init_checkpoint)
    if not restored:
        return progress
    with restored.as_directory() as directory:
        state = restore(Path(directory), model=unwrap(run.model), optimizer=run.optimizer, scheduler=run.scheduler,
                        base_lr=run.recipe.lr, total_epochs=run.recipe.epochs, saved_world_size_default=run.world)
        progress.best = BestEpoch.restored(ckpt.load_metrics(Path(directory)), ckpt.load_best(Path(directory)))
    progress.finished, progress.start_epoch = state.finished, state.epoch
    if started_from is not None:
        # Another run's weights (a PBT exploit's donor): the digest lets anyone check what was loaded.
        progress.resumed[RESTORED_WEIGHTS_DIGEST] = ckpt.weights_digest(unwrap(run.model).state_dict())
    if state.lr_rescaled_from is not None and state.world_size == run.world:
        # Same world size, another lr: this run's recipe sets it (an explored value), not the checkpoint.
        print(f"k400ray: started from a checkpoint trained with lr {state.lr_rescaled_from:g}: "
              f"lr {run.recipe.lr:g} from this run's recipe", flush=True)
        progress.resumed[LR_FROM_CHECKPOINT] = state.lr_rescaled_from
    elif state.lr_rescaled_from is not None:
        # Said in the worker's log and in every metrics row of this run.
        print(f"k400ray: resumed on {run.world} workers (checkpoint written by {state.world_size}): "
              f"lr rescaled from {state.lr_rescaled_from:g} to {run.recipe.lr:g}", flush=True)
        progress.resumed.update({RESUMED_WORLD_SIZE_FROM: state.world_size, LR_RESCALED_FROM: state.lr_rescaled_from})
    return progress


def _efficient_metrics(eff: dict) -> dict:
    return {EFFICIENT_ACC1: eff[ACC1], EFFICIENT_ACC5: eff[ACC5],
            EFFICIENT_MEAN_CLASS_ACC: eff[MEAN_CLASS_ACC], VAL_VIDEOS: eff["videos"]}


def run_epoch(run: WorkerRun, progress: Progress, epoch: int) -> None:
    """Training epoch ``epoch`` (0-based), its efficient evaluation when due, and its report."""
    cfg, recipe, optimizer = run.cfg, run.recipe, run.optimizer
    lr_now = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0)
    torch.manual_seed(epoch_seed(cfg.seed, epoch, run.rank))
    reads = LocalReads()
    stats = train_one_epoch(
        run.model, run.train_batches(epoch, reads), optimizer, device=run.device, mix=run.mix,
        clip_grad_norm=recipe.clip_grad_norm, amp=cfg.use_amp, memory_format=run.memory_format,
    )
    run.scheduler.step()
    loss_sum, clips, train_skipped, clips_per_s, wait, local_rows, rows = run.comm.sum(
        [stats.loss_sum, stats.clips, stats.skipped_videos, stats.clips_per_s, stats.data_wait_fraction,
         reads.local, reads.rows])
    progress.skipped += int(train_skipped)
    metrics = {
        EPOCH: epoch + 1, TRAIN_LOSS: loss_sum / max(clips, 1), LR: lr_now, CLIPS_PER_S: clips_per_s,
        DATA_WAIT_FRACTION: wait / run.world, LOCAL_READ_FRACTION: local_rows / max(rows, 1),
        START_EPOCH: progress.start_epoch, TRAIN_TIME_S: stats.seconds, TESTED: 0, **progress.resumed,
    }
    predictions = {}
    if recipe.evaluates_after(epoch + 1):
        eval_start = time.perf_counter()
        progress.efficient, eval_skipped = run.evaluate("efficient", unwrap(run.model))
        progress.skipped += eval_skipped
        eff = summarize(progress.efficient, cfg.num_classes)
        metrics.update(_efficient_metrics(eff), **{EVAL_TIME_S: time.perf_counter() - eval_start})
        progress.best.offer(epoch + 1, eff, unwrap(run.model))
        predictions = {"efficient": progress.efficient}
    metrics.update({SKIPPED_VIDEOS: progress.skipped, **progress.best.metrics()})
    progress.metrics = metrics
    run.report(metrics, epoch + 1, predictions, progress.best)


def finish(run: WorkerRun, progress: Progress) -> None:
    """The accurate mode on the best efficient-mode epoch's weights (MMAction2 0.x ``--test-best``)
    or on the last ones, reported with the final checkpoint (``tested=1``)."""
    cfg, epochs = run.cfg, run.recipe.epochs
    metrics = progress.metrics
    if progress.efficient is None:  # resumed after the last training epoch: only the test remains
        progress.efficient, _ = run.evaluate("efficient", unwrap(run.model))
        metrics = {EPOCH: epochs, **_efficient_metrics(summarize(progress.efficient, cfg.num_classes)),
                   SKIPPED_VIDEOS: progress.skipped, **progress.best.metrics(), **progress.resumed}
    # A copy of the best weights, so the final checkpoint keeps the last weights for any resume.
    use_best = run.recipe.accurate_checkpoint == "best" and progress.best.state is not None
    eval_model = unwrap(run.model)
    if use_best:
        eval_model = copy.deepcopy(eval_model)  # a deepcopy is eager: compiled again below
        eval_model.load_state_dict(progress.best.state)
        compile_model(eval_model, cfg.compile_mode, device_type=run.device.type)
    test_start = time.perf_counter()
    accurate_preds, acc_skipped = run.evaluate("accurate", eval_model)
    acc = summarize(accurate_preds, cfg.num_classes)
    final = dict(metrics)
    final.update({
        ACCURATE_ACC1: acc[ACC1], ACCURATE_ACC5: acc[ACC5], ACCURATE_MEAN_CLASS_ACC: acc[MEAN_CLASS_ACC],
        ACCURATE_EPOCH: progress.best.epoch if use_best else epochs,
        SKIPPED_VIDEOS: progress.skipped + acc_skipped, ACCURATE_TIME_S: time.perf_counter() - test_start,
        TESTED: 1,
    })
    run.report(final, epochs, {"efficient": progress.efficient, "accurate": accurate_preds}, progress.best)


def train_loop_per_worker(config: dict) -> None:
    """``config``: ``{"trial": TrialConfig as data, "recipe": TrialRecipe as data}`` (JSON-able:
    what Ray Train hands every worker).

    Collectives: every rank makes the same sequence of them (DDP's gradient all-reduce per
    training batch, metric sums and prediction gathers on ``Collectives``, ``ray.train.report``),
    whatever data it gets: a rank whose batch has no decodable row still steps, and a rank with
    no val video still gathers. Evaluation runs the unwrapped model (no DDP collectives)."""
    run = setup(TrialConfig.model_validate(config["trial"]), TrialRecipe.model_validate(config["recipe"]))
    progress = restore_checkpoint(run)
    if progress.finished:
        return
    for epoch in range(progress.start_epoch, run.recipe.epochs):
        run_epoch(run, progress, epoch)
    finish(run, progress)

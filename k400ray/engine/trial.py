"""Run one trial: resolve its recipe, fit a Ray Train ``TorchTrainer``, read the result.

Used directly by ``k400ray train`` and, inside a Tune trial function, by ``k400ray tune``
(Ray 2.60 / Train V2: each Tune trial builds and fits its own trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from k400ray.contracts import (
    ACCURATE_ACC1, ACCURATE_ACC5, ACCURATE_EPOCH, ACCURATE_MEAN_CLASS_ACC, BEST_EPOCH, EFFICIENT_ACC1,
    EFFICIENT_ACC1_BEST, EFFICIENT_ACC5, EFFICIENT_ACC5_BEST, EFFICIENT_MEAN_CLASS_ACC, EPOCH, is_tested,
)
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions
from k400ray.engine.recipe import TrialRecipe, resolve_recipe
from k400ray.presets import EVAL_MODES
from k400ray.engine.entry import train_loop_per_worker

FINAL_METRICS = (
    EFFICIENT_ACC1, EFFICIENT_ACC5, ACCURATE_ACC1, ACCURATE_ACC5,
    EFFICIENT_MEAN_CLASS_ACC, ACCURATE_MEAN_CLASS_ACC,
    # the best efficient-mode epoch, and the epoch whose weights accurate mode evaluated
    BEST_EPOCH, EFFICIENT_ACC1_BEST, EFFICIENT_ACC5_BEST, ACCURATE_EPOCH,
)


@dataclass
class TrialOutcome:
    metrics: dict
    checkpoint_path: str | None
    predictions: dict[str, Predictions]
    error: str | None = None
    checkpoint: object = None  # the final ray.train.Checkpoint
    # (checkpoint, metrics) of the kept checkpoints (CheckpointConfig(num_to_keep=2)), by epoch
    history: list = field(default_factory=list)


def default_storage() -> str:
    return str(Path("k400ray-runs").resolve())


def train_run_dir(cfg: TrialConfig) -> str:
    """Where Ray Train keeps this trial's run (checkpoints, its manager's state): a second fit with
    the same name and storage path continues it rather than training again."""
    return f"{(cfg.storage_path or default_storage()).rstrip('/')}/{cfg.name}"


def existing_run(cfg: TrialConfig) -> str | None:
    """What a previous fit of this trial left (``"finished, 4 epochs"``, ``"stopped after epoch
    2 of 4"``, ``"started"``), or None when there is none to continue."""
    import pyarrow.fs

    from k400ray.ray_private import checkpoint_manager_snapshot_filename

    fs, root = pyarrow.fs.FileSystem.from_uri(train_run_dir(cfg)) if "://" in train_run_dir(cfg) else (
        pyarrow.fs.LocalFileSystem(), str(Path(train_run_dir(cfg)).resolve()))
    if fs.get_file_info(root).type == pyarrow.fs.FileType.NotFound:
        return None
    entries = fs.get_file_info(pyarrow.fs.FileSelector(root))
    names = sorted(e.base_name for e in entries if e.base_name.startswith("checkpoint_") and
                   e.type == pyarrow.fs.FileType.Directory)
    if not names and not any(e.base_name == checkpoint_manager_snapshot_filename() for e in entries):
        return None
    if names and isinstance(fs, pyarrow.fs.LocalFileSystem):
        metrics = ckpt.load_metrics(Path(root) / names[-1])
        if is_tested(metrics):
            return f"finished, {metrics.get(EPOCH)} epochs"
        if EPOCH in metrics:
            return f"stopped after epoch {metrics[EPOCH]}"
    return "started" if not names else f"{len(names)} checkpoint(s)"


def build_trainer(cfg: TrialConfig, *, recipe: TrialRecipe | None = None, callbacks: list | None = None):
    """``recipe``: the trial's resolved recipe (default: resolved here), which the workers receive.

    No dataset is handed to the trainer: each worker builds its share of every epoch from the
    seed and the epoch (``data.pipeline.clip_dataset``), so the data a seed sees does not depend
    on how Ray splits a stream between workers."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

    from k400ray.engine.lean_trainer import LeanTorchTrainer

    recipe = recipe or resolve_recipe(cfg)
    resources = {"CPU": cfg.resources.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = 1
    return LeanTorchTrainer(
        train_loop_per_worker,
        train_loop_config={"trial": cfg.model_dump(mode="json"), "recipe": recipe.model_dump(mode="json")},
        scaling_config=ScalingConfig(num_workers=cfg.resources.workers_per_trial, use_gpu=cfg.use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=cfg.storage_path or default_storage(),
            failure_config=FailureConfig(max_failures=cfg.resources.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or None,
        ),
    )


def run_trial(cfg: TrialConfig, *, recipe: TrialRecipe | None = None, callbacks: list | None = None,
              resume_from=None) -> TrialOutcome:
    """Fit the trial, starting from ``resume_from`` (a ``ray.train.Checkpoint``) when given;
    ``recipe`` as resolved by the caller (e.g. to log it first), else resolved here.

    Train V2 deprecates ``resume_from_checkpoint``; the checkpoint's path travels in the config
    and the worker loads it when its run has no checkpoint of its own."""
    if resume_from is not None:
        cfg = cfg.model_copy(update={"init_checkpoint": resume_from.path})
    result = build_trainer(cfg, recipe=recipe, callbacks=callbacks).fit()
    if result.checkpoint is None:
        return TrialOutcome({}, None, {}, error=str(result.error) if result.error else "no checkpoint")
    with result.checkpoint.as_directory() as directory:
        d = Path(directory)
        metrics = ckpt.load_metrics(d)
        predictions = {m: p for m in EVAL_MODES if (p := ckpt.load_predictions(d, m)) is not None}
    error = None if is_tested(metrics) else (str(result.error) if result.error else "trial did not finish")
    history = sorted(result.best_checkpoints or [], key=lambda cm: (cm[1].get(EPOCH, 0), is_tested(cm[1])))
    return TrialOutcome(metrics, result.checkpoint.path, predictions, error=error, checkpoint=result.checkpoint,
                        history=history)

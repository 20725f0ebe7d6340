"""The recipe of one trial, resolved once: what its workers train with, what every checkpoint and
its MLflow run record, and what ``k400ray eval`` evaluates a checkpoint with.

A :class:`~k400ray.engine.config.TrialConfig` names a preset, a config and overrides; the
numbers a run actually uses (lr after linear scaling, total batch, schedule in epochs, parameter
groups, crops, sampling, views per mode) are derived here, in one place, and every later step
(the worker's optimizer, schedule and evaluation, the checkpoint, MLflow, the dry-run's reader,
offline evaluation) reads this object. The full preset is kept in it as a typed value
(``preset``: the ``ModelPreset`` with its architecture, sampling, crops, views and recipe), so a
checkpoint keeps its meaning when ``presets.py`` changes later: evaluation rebuilds the model
and the views from the record, and a resume on another world size derives its lr from it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from k400ray.contracts import RECIPE_PARAM_PREFIX
from k400ray.engine.config import TrialConfig
from k400ray.presets import CUTMIX, MIXUP, RANDAUGMENT, ModelPreset, Recipe

# MMAction2 0.x validates every 5 epochs (`evaluation = dict(interval=5, ...)` in the K400
# configs, open-mmlab/mmaction2 branch 0.x) and keeps the best checkpoint
# (`EvalHook(save_best='auto')`, tested with `tools/train.py --test-best`).
REFERENCE_EVAL_INTERVAL = 5
TOY_EVAL_INTERVAL = 1  # toy runs last a few epochs: evaluate every one
# How `lr_rule` begins when the lr follows the total batch (and a resume on another world size
# rescales it); any other rule is an lr the spec set, kept as it is.
LINEAR_SCALING = "linear scaling"
SPEC_LR = "set by the spec (training.lr)"


class GroupRule(BaseModel):
    """One optimizer parameter group: its lr multiplier, weight decay and what it holds."""

    model_config = ConfigDict(frozen=True)

    lr_mult: float
    weight_decay: float
    tensors: int
    params: int
    examples: list[str]  # a few parameter names, for the reader


class TrialRecipe(BaseModel):
    """Everything a trial's numbers depend on besides the data and the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: ModelPreset  # the whole preset the trial trains (config applied), as resolved then
    config: str
    scale: str
    world_size: int
    batch_per_worker: int
    total_batch: int
    lr: float  # base lr after linear scaling (or the spec's), before group multipliers
    lr_rule: str  # how `lr` was obtained, in words
    lr_policy: Literal["step", "cosine"]
    epochs: int
    milestones: tuple[int, ...]
    warmup_epochs: int
    warmup_start_factor: float
    gamma: float
    momentum: float
    weight_decay: float
    clip_grad_norm: float | None
    param_groups: list[GroupRule]
    eval_interval: int  # efficient mode every N epochs (and after the last)
    accurate_checkpoint: Literal["best", "last"]
    augmentation: dict  # the config's augmentation parameters (empty for default / gluoncv)
    views: dict[str, str]  # per mode, the views in words

    @model_validator(mode="before")
    @classmethod
    def _older_layout(cls, data):
        """A record written before the preset was typed: ``preset`` its name, ``preset_spec``
        the preset as ``dataclasses.asdict`` data."""
        if isinstance(data, dict) and "preset_spec" in data:
            data = {k: v for k, v in data.items() if k != "preset_spec"} | {"preset": data["preset_spec"]}
        return data

    @property
    def lr_follows_batch(self) -> bool:
        """The lr came from linear scaling (not from the spec): it follows the total batch."""
        return self.lr_rule.startswith(LINEAR_SCALING)

    def evaluates_after(self, epoch: int) -> bool:
        """Whether efficient mode runs after ``epoch`` (1-based): every ``eval_interval``-th and the last."""
        return epoch % self.eval_interval == 0 or epoch == self.epochs

    @property
    def efficient_evaluations(self) -> int:
        """How many times efficient mode runs over the whole run."""
        return sum(self.evaluates_after(e) for e in range(1, self.epochs + 1))

    def mlflow_params(self) -> dict[str, str]:
        """Flat ``recipe.*`` params for an MLflow run (values as text, lists as JSON); the preset
        by its name (``recipe.json`` holds the whole of it)."""
        flat = {f"{RECIPE_PARAM_PREFIX}preset": self.preset.name}
        for key, value in self.model_dump(mode="json", exclude={"preset", "param_groups"}).items():
            flat[f"{RECIPE_PARAM_PREFIX}{key}"] = value if isinstance(value, str) else json.dumps(value)
        for i, g in enumerate(self.param_groups):
            flat[f"{RECIPE_PARAM_PREFIX}group{i}"] = (
                f"lr x{g.lr_mult:g}, wd {g.weight_decay:g}, {g.tensors} tensors ({g.params} params)")
        return flat


def _describe_groups(preset: ModelPreset, num_classes: int, *, lr: float, weight_decay: float) -> list[GroupRule]:
    """The optimizer's parameter groups for this preset, from the model built on the meta device."""
    import torch

    from k400ray.engine.optim import param_groups
    from k400ray.models.build import build_model

    with torch.device("meta"):
        model = build_model(dataclasses.replace(preset.arch, pretrained=None), num_classes)
    names = {id(p): n for n, p in model.named_parameters()}
    rules = []
    for g in param_groups(model, preset.recipe, lr=lr, weight_decay=weight_decay):
        members = [names[id(p)] for p in g["params"]]
        rules.append(GroupRule(lr_mult=g["lr_mult"], weight_decay=g["weight_decay"], tensors=len(members),
                               params=sum(p.numel() for p in g["params"]), examples=members[:3]))
    return rules


def _linear_rule(recipe: Recipe, total_batch: int) -> str:
    return (f"{LINEAR_SCALING}: {recipe.lr:g} for {recipe.reference_batch} clips "
            f"({recipe.reference_gpus} GPUs x {recipe.batch_per_gpu}) -> {total_batch} clips")


def resolve_recipe(cfg: TrialConfig, *, world_size: int | None = None) -> TrialRecipe:
    """The trial's recipe on ``world_size`` workers (default: ``cfg.resources.workers_per_trial``)."""
    from k400ray.engine.optim import scaled_milestones, scaled_warmup

    preset = cfg.resolved_preset()
    recipe = preset.recipe
    t, a = cfg.training, cfg.augmentation
    world = world_size or cfg.resources.workers_per_trial
    batch = t.batch_size(preset)
    epochs = t.total_epochs(preset)
    if t.lr is not None:
        lr, rule = t.lr, SPEC_LR
    else:
        lr, rule = recipe.scaled_lr(batch * world), _linear_rule(recipe, batch * world)
    warmup = scaled_warmup(recipe, epochs) if t.warmup_epochs is None else t.warmup_epochs
    weight_decay = recipe.weight_decay if t.weight_decay is None else t.weight_decay
    default_interval = TOY_EVAL_INTERVAL if cfg.scale == "toy" else REFERENCE_EVAL_INTERVAL
    augmentation = {
        MIXUP: {"alpha": a.mixup_alpha},
        CUTMIX: {"alpha": a.cutmix_alpha},
        RANDAUGMENT: {"num_ops": a.randaugment_num_ops, "level": a.randaugment_magnitude},
    }.get(cfg.config, {})
    return TrialRecipe(
        preset=preset, config=cfg.config, scale=cfg.scale, world_size=world, batch_per_worker=batch,
        total_batch=batch * world, lr=lr, lr_rule=rule, lr_policy=recipe.lr_policy,
        epochs=epochs, milestones=tuple(t.milestones or scaled_milestones(recipe, epochs)), warmup_epochs=warmup,
        warmup_start_factor=recipe.warmup_start_factor, gamma=recipe.gamma, momentum=recipe.momentum,
        weight_decay=weight_decay, clip_grad_norm=recipe.clip_grad_norm or None,
        param_groups=_describe_groups(preset, cfg.num_classes, lr=lr, weight_decay=weight_decay),
        eval_interval=t.eval_interval or default_interval, accurate_checkpoint=t.accurate_checkpoint,
        augmentation=augmentation,
        views={"train": f"{preset.train_sampling} + {preset.train_crop}",
               "efficient": preset.efficient.description, "accurate": preset.accurate.description},
    )


def for_world(recipe: TrialRecipe, world_size: int) -> TrialRecipe:
    """The same recipe on ``world_size`` workers, derived from the record alone: the total batch
    follows, and so does the lr when it came from linear scaling (an lr the spec set stays)."""
    if world_size == recipe.world_size:
        return recipe
    total = recipe.batch_per_worker * world_size
    update: dict = {"world_size": world_size, "total_batch": total}
    if recipe.lr_follows_batch:
        update.update(lr=recipe.preset.recipe.scaled_lr(total), lr_rule=_linear_rule(recipe.preset.recipe, total))
    return recipe.model_copy(update=update)

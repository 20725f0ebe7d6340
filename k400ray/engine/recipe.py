"""The recipe of one trial, resolved once: what its workers train with, what every checkpoint and
its MLflow run record, and what ``k400ray eval`` evaluates a checkpoint with.

A :class:`~k400ray.engine.config.TrialConfig` names a preset, a config and overrides; the
numbers a run actually uses (lr after linear scaling, total batch, schedule in epochs, parameter
groups, crops, sampling, views per mode) are derived here, in one place, and every later step
(the worker, the checkpoint, MLflow, the dry-run's reader, offline evaluation) reads this object.
The full preset is kept as data (``preset_spec``), so a checkpoint keeps its meaning when
``presets.py`` changes later: evaluation rebuilds the model and the views from the record.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Literal

from pydantic import BaseModel, ConfigDict

from k400ray.contracts import RECIPE_PARAM_PREFIX
from k400ray.engine.config import TrialConfig
from k400ray.presets import CUTMIX, MIXUP, RANDAUGMENT, ModelPreset

# MMAction2 0.x validates every 5 epochs (`evaluation = dict(interval=5, ...)` in the K400
# configs, open-mmlab/mmaction2 branch 0.x) and keeps the best checkpoint
# (`EvalHook(save_best='auto')`, tested with `tools/train.py --test-best`).
REFERENCE_EVAL_INTERVAL = 5
TOY_EVAL_INTERVAL = 1  # toy runs last a few epochs: evaluate every one


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

    preset: str
    config: str
    scale: str
    world_size: int
    batch_per_worker: int
    total_batch: int
    lr: float  # base lr after linear scaling (or the spec's), before group multipliers
    lr_rule: str  # how `lr` was obtained, in words
    lr_policy: str
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
    preset_spec: dict  # the whole ModelPreset as data

    def model_preset(self) -> ModelPreset:
        """The preset this recipe was resolved from, rebuilt from the record (not from presets.py)."""
        return _from_dict(ModelPreset, self.preset_spec)

    def mlflow_params(self) -> dict[str, str]:
        """Flat ``recipe.*`` params for an MLflow run (values as text, lists as JSON)."""
        flat = {}
        for key, value in self.model_dump(mode="json", exclude={"preset_spec", "param_groups"}).items():
            flat[f"{RECIPE_PARAM_PREFIX}{key}"] = value if isinstance(value, str) else json.dumps(value)
        for i, g in enumerate(self.param_groups):
            flat[f"{RECIPE_PARAM_PREFIX}group{i}"] = (
                f"lr x{g.lr_mult:g}, wd {g.weight_decay:g}, {g.tensors} tensors ({g.params} params)")
        return flat


def _from_dict(cls, data):
    """A (nested, frozen) dataclass from ``dataclasses.asdict`` output that went through JSON:
    nested dataclass fields rebuilt from their type hints, lists back to tuples."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue  # a field added since the record was written keeps its default
        value, hint = data[f.name], hints[f.name]
        nested = next((a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)), None)
        kwargs[f.name] = _from_dict(nested, value) if nested is not None and isinstance(value, dict) else _tuples(value)
    return cls(**kwargs)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


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


def resolve_recipe(cfg: TrialConfig, *, world_size: int | None = None) -> TrialRecipe:
    """The trial's recipe on ``world_size`` workers (default: ``cfg.num_workers``)."""
    from k400ray.engine.optim import scaled_milestones, scaled_warmup

    preset = cfg.resolved_preset()
    recipe = preset.recipe
    world = world_size or cfg.num_workers
    batch = cfg.batch_size
    epochs = cfg.total_epochs
    if cfg.lr is not None:
        lr, rule = cfg.lr, "set by the spec (training.lr)"
    else:
        lr = recipe.scaled_lr(batch * world)
        rule = (f"linear scaling: {recipe.lr:g} for {recipe.reference_batch} clips "
                f"({recipe.reference_gpus} GPUs x {recipe.batch_per_gpu}) -> {batch * world} clips")
    warmup = scaled_warmup(recipe, epochs) if cfg.warmup_epochs is None else cfg.warmup_epochs
    weight_decay = recipe.weight_decay if cfg.weight_decay is None else cfg.weight_decay
    default_interval = TOY_EVAL_INTERVAL if cfg.scale == "toy" else getattr(recipe, "eval_interval", REFERENCE_EVAL_INTERVAL)
    augmentation = {
        MIXUP: {"alpha": cfg.mixup_alpha},
        CUTMIX: {"alpha": cfg.cutmix_alpha},
        RANDAUGMENT: {"num_ops": cfg.randaugment_ops, "level": cfg.randaugment_magnitude},
    }.get(cfg.aug, {})
    return TrialRecipe(
        preset=cfg.preset, config=cfg.aug, scale=cfg.scale, world_size=world, batch_per_worker=batch,
        total_batch=batch * world, lr=lr, lr_rule=rule, lr_policy=getattr(recipe, "lr_policy", "step"),
        epochs=epochs, milestones=tuple(cfg.milestones or scaled_milestones(recipe, epochs)), warmup_epochs=warmup,
        warmup_start_factor=recipe.warmup_start_factor, gamma=recipe.gamma, momentum=recipe.momentum,
        weight_decay=weight_decay, clip_grad_norm=recipe.clip_grad_norm or None,
        param_groups=_describe_groups(preset, cfg.num_classes, lr=lr, weight_decay=weight_decay),
        eval_interval=cfg.eval_interval or default_interval, accurate_checkpoint=cfg.accurate_checkpoint,
        augmentation=augmentation,
        views={"train": f"{preset.train_sampling} + {preset.train_crop}",
               "efficient": preset.efficient.description, "accurate": preset.accurate.description},
        preset_spec=json.loads(json.dumps(dataclasses.asdict(preset))),
    )


def for_world(recipe: TrialRecipe, cfg: TrialConfig, world_size: int) -> TrialRecipe:
    """The same recipe on another number of workers (lr and total batch follow; nothing else)."""
    if world_size == recipe.world_size:
        return recipe
    return resolve_recipe(cfg, world_size=world_size).model_copy(
        update={"preset_spec": recipe.preset_spec, "views": recipe.views})

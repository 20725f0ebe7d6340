"""SGD as a trial's recipe sets it: parameter groups, warmup + step or cosine schedule."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from k400ray.presets import Recipe

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.SyncBatchNorm)


def classifier(model: nn.Module) -> nn.Linear:
    """The class head: the model's last ``nn.Linear``."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise ValueError("model has no nn.Linear class head")
    return heads[-1]


def param_groups(model: nn.Module, recipe: Recipe, *, lr: float, weight_decay: float) -> list[dict]:
    """Parameter groups of the recipe; each group keeps its multiplier in ``lr_mult`` so that
    schedules scale every group alike.

    With the default recipe fields every parameter gets ``lr`` and ``weight_decay`` (one group),
    as MMAction2's default optimizer constructor does for TSN and I3D. The TSM recipes
    (``presets.TSM_PARAM_GROUPS``) reproduce MMAction2 0.x ``TSMOptimizerConstructor`` with
    ``fc_lr5=True`` (open-mmlab/mmaction2, branch 0.x,
    ``mmaction/core/optimizer/tsm_optimizer_constructor.py``; docs/reference.md):

    - conv and linear weights, the first conv included: lr x1, weight decay;
    - conv and linear biases: lr x ``bias_lr_mult`` (2), no weight decay;
    - batch-norm / group-norm weights and biases: lr x1, no weight decay;
    - the classifier (the last ``nn.Linear``): weight lr x ``fc_weight_lr_mult`` (5) *with*
      weight decay, bias lr x ``fc_bias_lr_mult`` (10) without.
    """
    head = classifier(model)
    decay_off = 0.0 if recipe.no_decay_bias_norm else weight_decay
    settings: dict[int, tuple[float, float]] = {id(head.weight): (recipe.fc_weight_lr_mult, weight_decay)}
    if head.bias is not None:
        settings[id(head.bias)] = (recipe.fc_bias_lr_mult, decay_off)
    for module in model.modules():
        if module is head:
            continue
        if isinstance(module, _NORM_TYPES):
            for p in module.parameters(recurse=False):
                settings[id(p)] = (1.0, decay_off)
        elif isinstance(module, (_ConvNd, nn.Linear)) and module.bias is not None:
            settings[id(module.bias)] = (recipe.bias_lr_mult, decay_off)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        mult, wd = settings.get(id(p), (1.0, weight_decay))
        groups.setdefault((mult, wd), []).append(p)
    return [
        {"params": params, "lr": lr * mult, "lr_mult": mult, "weight_decay": wd}
        for (mult, wd), params in sorted(groups.items())
    ]


def scaled_milestones(recipe: Recipe, epochs: int) -> tuple[int, ...]:
    """The recipe's milestones, stretched to a run of ``epochs`` (a 10-epoch smoke run keeps the shape)."""
    if epochs == recipe.epochs:
        return recipe.milestones
    return tuple(max(1, round(m * epochs / recipe.epochs)) for m in recipe.milestones)


def scaled_warmup(recipe: Recipe, epochs: int) -> int:
    """The recipe's warmup epochs, stretched like the milestones to a run of ``epochs``."""
    if epochs == recipe.epochs:
        return recipe.warmup_epochs
    return round(recipe.warmup_epochs * epochs / recipe.epochs)


def lr_factor(epoch: int, *, milestones: tuple[int, ...], gamma: float, warmup_epochs: int, warmup_start: float,
              policy: str = "step", epochs: int | None = None) -> float:
    """Multiplier of the base lr during ``epoch`` (0-based): linear warmup from ``warmup_start``,
    then ``policy``: x``gamma`` at each milestone (``step``), or half a cosine from 1 to 0 over the
    ``epochs`` after the warmup (``cosine``, which needs ``epochs``).

    Stepped once per epoch, like every k400ray schedule: GluonCV's ``LRScheduler`` updates its
    cosine every iteration, so within an epoch its lr falls slightly where this one is constant
    (the mean over a 100-epoch run differs by under 1%).
    """
    if policy == "step":
        factor = gamma ** sum(epoch >= m for m in milestones)
    elif policy == "cosine":
        if epochs is None:
            raise ValueError("the cosine policy needs the run's epochs")
        span = max(1, epochs - warmup_epochs)
        factor = 0.5 * (1.0 + math.cos(math.pi * min(max(epoch - warmup_epochs, 0), span) / span))
    else:
        raise ValueError(f"lr policy must be 'step' or 'cosine', got {policy!r}")
    if epoch < warmup_epochs:
        factor *= warmup_start + (1.0 - warmup_start) * epoch / warmup_epochs
    return factor


def build_optimizer(model: nn.Module, recipe) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD and its epoch-stepped schedule, every number from the trial's resolved ``recipe`` (an
    ``engine.recipe.TrialRecipe``, which imports this module: not imported here): base
    lr, weight decay, momentum, policy, milestones, gamma, warmup, run length; the parameter
    groups by the rules of the recipe's preset (:func:`param_groups`)."""
    optimizer = sgd(model, recipe.preset.recipe, lr=recipe.lr, weight_decay=recipe.weight_decay,
                    momentum=recipe.momentum)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda epoch: lr_factor(epoch, milestones=recipe.milestones, gamma=recipe.gamma,
                                warmup_epochs=recipe.warmup_epochs, warmup_start=recipe.warmup_start_factor,
                                policy=recipe.lr_policy, epochs=recipe.epochs),
    )
    return optimizer, schedule


def sgd(model: nn.Module, rules: Recipe, *, lr: float, weight_decay: float, momentum: float) -> torch.optim.SGD:
    """SGD over the parameter groups of ``rules`` (its multipliers and decay switches), base ``lr``
    and ``weight_decay``. For a model trained without a trial (``k400ray bench train``)."""
    return torch.optim.SGD(param_groups(model, rules, lr=lr, weight_decay=weight_decay), lr=lr, momentum=momentum)

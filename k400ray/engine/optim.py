"""The preset's SGD recipe: parameter groups, linear lr scaling, warmup + step schedule."""

from __future__ import annotations

import torch
from torch import nn

from k400ray.presets import Recipe

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.SyncBatchNorm)


def classifier(model: nn.Module) -> nn.Linear:
    """The class head: the model's last ``nn.Linear``."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise ValueError("model has no nn.Linear class head")
    return heads[-1]


def param_groups(model: nn.Module, recipe: Recipe, *, lr: float, weight_decay: float) -> list[dict]:
    """TSM-style groups when the recipe asks for them: fc weight lr x ``fc_weight_lr_mult``, fc
    bias lr x ``fc_bias_lr_mult``, no weight decay on biases and norm layers. Each group keeps
    its multiplier in ``lr_mult`` so schedules scale every group alike."""
    head = classifier(model)
    head_ids = {id(head.weight): recipe.fc_weight_lr_mult, id(head.bias): recipe.fc_bias_lr_mult}
    no_decay: set[int] = set()
    if recipe.no_decay_bias_norm:
        for module in model.modules():
            if isinstance(module, _NORM_TYPES):
                no_decay.update(id(p) for p in module.parameters(recurse=False))
            elif getattr(module, "bias", None) is not None and isinstance(module.bias, torch.Tensor):
                no_decay.add(id(module.bias))
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        mult = head_ids.get(id(p), 1.0)
        wd = 0.0 if id(p) in no_decay else weight_decay
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


def lr_factor(epoch: int, *, milestones: tuple[int, ...], gamma: float, warmup_epochs: int, warmup_start: float) -> float:
    """Multiplier of the base lr during ``epoch`` (0-based): linear warmup from ``warmup_start``,
    then x``gamma`` at each milestone."""
    factor = gamma ** sum(epoch >= m for m in milestones)
    if epoch < warmup_epochs:
        factor *= warmup_start + (1.0 - warmup_start) * epoch / warmup_epochs
    return factor


def build_optimizer(
    model: nn.Module, recipe: Recipe, *, lr: float, weight_decay: float, milestones: tuple[int, ...], warmup_epochs: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD (momentum from the recipe) and an epoch-stepped schedule."""
    optimizer = torch.optim.SGD(param_groups(model, recipe, lr=lr, weight_decay=weight_decay), lr=lr,
                                momentum=recipe.momentum)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda epoch: lr_factor(epoch, milestones=milestones, gamma=recipe.gamma, warmup_epochs=warmup_epochs,
                                warmup_start=recipe.warmup_start_factor),
    )
    return optimizer, schedule

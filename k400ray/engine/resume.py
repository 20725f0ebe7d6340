"""Restoring a trial from a checkpoint on a worker: weights, optimiser, schedule, RNG, and the lr
when the run resumes on another world size.

The recipe's lr is scaled linearly with the total batch (``Recipe.scaled_lr``). A checkpoint
written by 8 workers and resumed by 4 (a node lost, a smaller cluster) would otherwise keep
the 8-worker lr with half the batch; :func:`rescale_lr` sets it to the new world size's and
the caller says so in the run's metrics.

A checkpoint also carries the optimiser's hyperparameters as it trained with them. A run started
from another run's checkpoint with another recipe (a population-based-training exploit, whose
explored lr or weight decay differ) trains with its own recipe's: the lr through
:func:`rescale_lr`, weight decay and momentum kept from the optimiser the recipe built
(:func:`restore`); only the schedule's position comes from the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from k400ray.contracts import is_tested
from k400ray.engine import checkpoint as ckpt


# Parameter-group hyperparameters a recipe sets, other than the lr (rescale_lr sets that one).
_RECIPE_KEYS = ("weight_decay", "momentum")


@dataclass
class Restored:
    epoch: int  # finished training epochs
    finished: bool  # the accurate mode ran too: nothing left to do
    world_size: int  # of the run that wrote the checkpoint
    lr_rescaled_from: float | None  # the old base lr, when it changed


def rescale_lr(optimizer: torch.optim.Optimizer, scheduler, base_lr: float) -> float | None:
    """Give every parameter group ``base_lr`` x its ``lr_mult`` at the point of *this* run's
    schedule where the checkpoint left off (its lambda at ``last_epoch``: a run resumed with
    more epochs stretches its milestones, and its lr follows them from the first resumed epoch).
    Returns the previous base lr if it changed, else None."""
    groups = optimizer.param_groups
    old = scheduler.base_lrs[0] / groups[0].get("lr_mult", 1.0)
    for i, group in enumerate(groups):
        new_base = base_lr * group.get("lr_mult", 1.0)
        scheduler.base_lrs[i] = group["initial_lr"] = new_base
        group["lr"] = new_base * scheduler.lr_lambdas[i](scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in groups]  # what get_last_lr() reports
    return None if math.isclose(old, base_lr, rel_tol=1e-9) else old


def restore(directory, *, model: torch.nn.Module, optimizer, scheduler, base_lr: float, total_epochs: int,
            saved_world_size_default: int) -> Restored:
    """Load the checkpoint in ``directory`` into the (unwrapped) ``model``, ``optimizer`` and
    ``scheduler``; set the RNG states; rescale the lr to ``base_lr`` (this run's world size)."""
    state = ckpt.load_state(directory)
    metrics = ckpt.load_metrics(directory)
    model.load_state_dict(state["model"])
    recipe_values = [{k: g[k] for k in _RECIPE_KEYS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state["optimizer"])
    for group, values in zip(optimizer.param_groups, recipe_values):
        group.update(values)  # this run's recipe, not the checkpoint's
    scheduler.load_state_dict(state["scheduler"])
    ckpt.set_rng_state(state["rng"])
    epoch = state["epoch"]
    rescaled = rescale_lr(optimizer, scheduler, base_lr)
    return Restored(
        epoch=epoch, finished=is_tested(metrics) and epoch >= total_epochs,
        world_size=int(state.get("world_size") or saved_world_size_default), lr_rescaled_from=rescaled,
    )

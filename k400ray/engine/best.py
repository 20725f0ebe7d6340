"""The best efficient-mode epoch of a trial, with its weights, as MMAction2 0.x keeps it
(``EvalHook(save_best='auto')``: the highest top-1 so far; a tie keeps the earlier epoch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from k400ray.contracts import (
    ACC1, ACC5, BEST_EPOCH, EFFICIENT_ACC1_BEST, EFFICIENT_ACC5_BEST, EFFICIENT_MEAN_CLASS_ACC_BEST, MEAN_CLASS_ACC,
)


@dataclass
class BestEpoch:
    epoch: int = 0  # 0: no evaluated epoch yet
    acc1: float = -math.inf
    acc5: float = math.nan
    mean_class_acc: float = math.nan
    state: dict | None = field(default=None, repr=False)  # the model's state dict then, on the CPU

    def offer(self, epoch: int, efficient: dict, model: torch.nn.Module) -> bool:
        """Keep ``model``'s weights if ``efficient[ACC1]`` beats the best so far."""
        if not efficient[ACC1] > self.acc1:  # NaN (no val video) never wins
            return False
        self.epoch, self.acc1 = epoch, efficient[ACC1]
        self.acc5, self.mean_class_acc = efficient[ACC5], efficient[MEAN_CLASS_ACC]
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def metrics(self) -> dict:
        """What every report carries once an epoch was evaluated (MLflow: ``best_epoch``, ...)."""
        if not self.epoch:
            return {}
        return {BEST_EPOCH: self.epoch, EFFICIENT_ACC1_BEST: self.acc1, EFFICIENT_ACC5_BEST: self.acc5,
                EFFICIENT_MEAN_CLASS_ACC_BEST: self.mean_class_acc}

    @classmethod
    def restored(cls, metrics: dict, state: dict | None) -> "BestEpoch":
        """From a checkpoint's metrics and its best weights (``checkpoint.load_best``)."""
        if not metrics.get(BEST_EPOCH) or state is None:
            return cls()
        return cls(int(metrics[BEST_EPOCH]), metrics[EFFICIENT_ACC1_BEST], metrics[EFFICIENT_ACC5_BEST],
                   metrics.get(EFFICIENT_MEAN_CLASS_ACC_BEST, math.nan), state)

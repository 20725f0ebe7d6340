"""The best efficient-mode epoch of a trial, with its weights, as MMAction2 0.x keeps it
(``EvalHook(save_best='auto')``: the highest top-1 so far; a tie keeps the earlier epoch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class BestEpoch:
    epoch: int = 0  # 0: no evaluated epoch yet
    acc1: float = -math.inf
    acc5: float = math.nan
    mean_class_acc: float = math.nan
    state: dict | None = field(default=None, repr=False)  # the model's state dict then, on the CPU

    def offer(self, epoch: int, efficient: dict, model: torch.nn.Module) -> bool:
        """Keep ``model``'s weights if ``efficient['acc1']`` beats the best so far."""
        if not efficient["acc1"] > self.acc1:  # NaN (no val video) never wins
            return False
        self.epoch, self.acc1 = epoch, efficient["acc1"]
        self.acc5, self.mean_class_acc = efficient["acc5"], efficient["mean_class_acc"]
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def metrics(self) -> dict:
        """What every report carries once an epoch was evaluated (MLflow: ``best_epoch``, ...)."""
        if not self.epoch:
            return {}
        return {"best_epoch": self.epoch, "efficient_acc1_best": self.acc1, "efficient_acc5_best": self.acc5,
                "efficient_mean_class_acc_best": self.mean_class_acc}

    @classmethod
    def restored(cls, metrics: dict, state: dict | None) -> "BestEpoch":
        """From a checkpoint's metrics and its best weights (``checkpoint.load_best``)."""
        if not metrics.get("best_epoch") or state is None:
            return cls()
        return cls(int(metrics["best_epoch"]), metrics["efficient_acc1_best"], metrics["efficient_acc5_best"],
                   metrics.get("efficient_mean_class_acc_best", math.nan), state)

"""What a running grid tells whoever shows it: small frozen events, nothing rendered.

The grid runs in Ray processes the user never sees; the driver is the one place that hears
about every trial (:class:`k400ray.tune.progress.GridProgress`, a Tune callback, produces these
events there). Rendering them (a live table on a terminal, plain lines in a pipe, the MLflow
description) is the CLI's job (:mod:`k400ray.console`). No Ray import here: the CLI imports
this module before Ray starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Union

from k400ray.contracts import (
    ACCURATE_ACC1, ACCURATE_ACC5, CLIPS_PER_S, DATA_WAIT_FRACTION, EFFICIENT_ACC1, EFFICIENT_ACC5, PENDING, TRAIN_LOSS,
)

# What a trial's epoch report may carry that a console shows (the worker's metric names).
EPOCH_FIELDS = (TRAIN_LOSS, EFFICIENT_ACC1, EFFICIENT_ACC5, CLIPS_PER_S, DATA_WAIT_FRACTION)
FINAL_FIELDS = (EFFICIENT_ACC1, EFFICIENT_ACC5, ACCURATE_ACC1, ACCURATE_ACC5)


@dataclass(frozen=True)
class TrialPlan:
    """One grid point as the grid starts: ``status`` is ``pending``, or what a previous run of
    this experiment left (``finished``, ``stopped early``, ...) when it is resumed."""

    name: str
    preset: str
    aug: str
    seed: int
    epochs: int
    status: str = PENDING
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GridStarted:
    """``trials``: the plans known up front; ``total``: how many trials run in all, where more
    appear as they start (a search's samples; None: ``trials`` is all)."""

    experiment: str
    trials: tuple[TrialPlan, ...]
    max_concurrent: int
    at: float = field(default_factory=time.time)
    total: int | None = None


@dataclass(frozen=True)
class TrialStarted:
    """``plan``: set for a trial the grid did not know up front (a search's sampled trial): the
    console adds it as it appears."""

    name: str
    at: float = field(default_factory=time.time)
    plan: TrialPlan | None = None


@dataclass(frozen=True)
class EpochEnded:
    """One epoch of one trial; ``metrics`` holds the :data:`EPOCH_FIELDS` it reported."""

    name: str
    epoch: int
    metrics: dict
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TrialTested:
    """The accurate mode finished (the worker's final report); the trial is logging its artifacts."""

    name: str
    metrics: dict
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TrialEnded:
    """``status``: one of :data:`k400ray.contracts.ENDED` (finished | stopped early | error |
    interrupted | not started)."""

    name: str
    status: str
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class GridEnded:
    """The grid returned (or was interrupted): ``status`` FINISHED | FAILED | KILLED."""

    status: str
    at: float = field(default_factory=time.time)


GridEvent = Union[GridStarted, TrialStarted, EpochEnded, TrialTested, TrialEnded, GridEnded]
Emit = Callable[[GridEvent], None]


def pick(metrics: dict, keys: tuple[str, ...]) -> dict:
    """The numeric ``keys`` present in ``metrics`` (Tune adds its own fields beside them)."""
    return {k: float(metrics[k]) for k in keys if isinstance(metrics.get(k), (int, float))}

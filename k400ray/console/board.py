"""The state of a running grid, rebuilt from its events: what each trial is doing, its figures,
and the time left (per trial and for the grid). Pure: the views read it, tests feed it events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from k400ray.tune.events import (
    EpochEnded, GridEnded, GridEvent, GridStarted, TrialEnded, TrialPlan, TrialStarted, TrialTested,
)

ENDED = ("done", "stopped early", "error", "interrupted", "not started")


@dataclass
class TrialRow:
    plan: TrialPlan
    status: str = "pending"
    epoch: int = 0
    metrics: dict = field(default_factory=dict)  # the last epoch's, then the final figures
    error: str | None = None
    started_at: float | None = None
    last_epoch_at: float | None = None
    first_epoch: int = 0  # the epoch this run started from (a resumed trial starts late)
    ended_at: float | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or now) - self.started_at

    def eta(self, now: float) -> float | None:
        """Seconds to the last epoch at this trial's own pace so far (the accurate mode after it is
        not counted); None until one epoch ran or once the trial ended."""
        done = self.epoch - self.first_epoch
        if self.status in ENDED or done <= 0 or self.started_at is None or self.last_epoch_at is None:
            return None
        per_epoch = (self.last_epoch_at - self.started_at) / done
        return max(per_epoch * (self.plan.epochs - self.epoch) - (now - self.last_epoch_at), 0.0)


class GridBoard:
    """Every trial of one grid, in grid order. :meth:`apply` returns whether the event changed
    anything a view should say (a repeated end, e.g. the runner's final statuses, does not)."""

    def __init__(self) -> None:
        self.experiment = ""
        self.max_concurrent = 1
        self.rows: dict[str, TrialRow] = {}
        self.started_at: float | None = None
        self.ended: GridEnded | None = None
        self.epochs_run = 0  # epochs trained since this grid (run) started: the grid's pace

    def apply(self, event: GridEvent) -> bool:
        if isinstance(event, GridStarted):
            self.experiment, self.max_concurrent, self.started_at = event.experiment, event.max_concurrent, event.at
            self.rows = {p.name: TrialRow(p, status=p.status, metrics=dict(p.metrics),
                                          epoch=p.epochs if p.status == "done" else 0) for p in event.trials}
            return True
        if isinstance(event, GridEnded):
            self.ended = event
            return True
        row = self.rows.get(event.name)
        if row is None:
            return False
        if isinstance(event, TrialStarted):
            row.status, row.started_at, row.ended_at, row.error = "starting", event.at, None, None
            row.last_epoch_at, row.first_epoch = None, row.epoch
        elif isinstance(event, EpochEnded):
            if row.started_at is None:
                row.started_at = event.at
            if row.last_epoch_at is None:  # this run's first epoch: a resumed Train run starts late
                row.first_epoch = event.epoch - 1
            self.epochs_run += 1
            row.epoch, row.last_epoch_at = event.epoch, event.at
            row.metrics = {**{k: v for k, v in row.metrics.items() if k.startswith("efficient")}, **event.metrics}
            row.status = "testing" if event.epoch >= row.plan.epochs else "training"
        elif isinstance(event, TrialTested):
            row.metrics.update(event.metrics)
            row.epoch, row.status = max(row.epoch, row.plan.epochs), "logging"
        elif isinstance(event, TrialEnded):
            if row.status == event.status:  # said already (the runner repeats every end at the grid's end)
                return False
            row.status, row.error = event.status, event.error
            row.metrics.update(event.metrics)
            row.ended_at = event.at if row.started_at is not None else None
            if event.status == "done":
                row.epoch = row.plan.epochs
        return True

    # -- summaries the views print -------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def ended_count(self) -> int:
        return sum(r.status in ENDED and r.status != "not started" for r in self.rows.values())

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        return ((self.ended.at if self.ended else None) or now or time.time()) - self.started_at

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left for the whole grid: epochs still to train over the epochs per second the
        grid has trained so far (which already counts the concurrency and each trial's start-up)."""
        now = now or time.time()
        if self.ended or self.started_at is None or self.epochs_run == 0:
            return None
        left = sum(r.plan.epochs - r.epoch for r in self.rows.values() if r.status not in ENDED)
        return left * (now - self.started_at) / self.epochs_run


def clock(seconds: float | None) -> str:
    """``1:05`` / ``1:02:05``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(int(round(seconds)), 0)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

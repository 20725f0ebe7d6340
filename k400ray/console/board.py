"""The state of a running grid, rebuilt from its events: what each trial is doing, its figures,
and the time left (per trial and for the grid). Pure: the views read it, tests feed it events.

Time left is measured from how the grid has run so far, a trial in three parts: its
**start-up** (from its start to its first epoch, less an epoch), its epochs at the **pace**
(seconds per epoch after a trial's first) and its **tail** (from its last epoch to its end: the
accurate-mode test and the logging). Each is the median of the latest ``max_concurrent``
observations, the last wave of trials: the first wave also pays Ray's warm-up (on the demo, a
start-up of 2 minutes, then 1), so the first grid ETA is high and comes down as later trials
start. The grid's ETA places the trials still to run on ``max_concurrent`` slots as they free up.
Why not epochs left x (time so far / epochs so far), as before: the first epochs end together
after the start-up of several concurrent trials, which made that ratio say 52:42 for a grid of
4:48 (and 2:04:51 at the first epoch of the demo in ``tests/console/demo_grid_events.json``,
which ended 4:29 later).
"""

from __future__ import annotations

import heapq
import statistics
import time
from dataclasses import dataclass, field

from k400ray.contracts import ENDED, FINISHED, LOGGING, NOT_STARTED, PENDING, STARTING, TESTING, TRAINING
from k400ray.tune.events import (
    EpochEnded, GridEnded, GridEvent, GridStarted, TrialEnded, TrialPlan, TrialStarted, TrialTested,
)



@dataclass
class TrialRow:
    plan: TrialPlan
    status: str = PENDING
    epoch: int = 0
    metrics: dict = field(default_factory=dict)  # the last epoch's, then the final figures
    error: str | None = None
    started_at: float | None = None
    last_epoch_at: float | None = None
    first_epoch: int = 0  # the epoch this run started from (a resumed trial starts late)
    first_epoch_at: float | None = None  # when this run's first epoch ended (its start-up included)
    ended_at: float | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or now) - self.started_at

    def epochs_run(self) -> int:
        """Epochs this run of the trial trained (a resumed trial starts after its checkpoint)."""
        return self.epoch - self.first_epoch

    def steady_pace(self) -> float | None:
        """Seconds per epoch after this run's first epoch (which also paid the start-up); None
        before its second epoch."""
        if self.first_epoch_at is None or self.last_epoch_at is None or self.epochs_run() < 2:
            return None
        return (self.last_epoch_at - self.first_epoch_at) / (self.epochs_run() - 1)

    def eta(self, now: float, pace: float | None = None) -> float | None:
        """Seconds to the last epoch (the accurate mode after it is not counted): at this trial's
        steady pace, else ``pace`` (the grid's), else its first epoch's; None until one epoch ran
        or once the trial ended."""
        done = self.epochs_run()
        if self.status in ENDED or done <= 0 or self.started_at is None or self.last_epoch_at is None:
            return None
        per_epoch = self.steady_pace() or pace or (self.last_epoch_at - self.started_at) / done
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
        self.expected = 0  # a search's trials in all (they appear as they start)

    @property
    def total(self) -> int:
        """Trials in all: those known, or a search's expected count."""
        return max(len(self.rows), self.expected)

    def apply(self, event: GridEvent) -> bool:
        if isinstance(event, GridStarted):
            self.experiment, self.max_concurrent, self.started_at = event.experiment, event.max_concurrent, event.at
            self.expected = event.total or 0
            self.rows = {p.name: TrialRow(p, status=p.status, metrics=dict(p.metrics),
                                          epoch=p.epochs if p.status == FINISHED else 0) for p in event.trials}
            return True
        if isinstance(event, GridEnded):
            self.ended = event
            return True
        row = self.rows.get(event.name)
        if row is None and isinstance(event, TrialStarted) and event.plan is not None:
            row = self.rows[event.name] = TrialRow(event.plan, status=event.plan.status)  # a search's new trial
        if row is None:
            return False
        if isinstance(event, TrialStarted):
            row.status, row.started_at, row.ended_at, row.error = STARTING, event.at, None, None
            row.last_epoch_at, row.first_epoch, row.first_epoch_at = None, row.epoch, None
        elif isinstance(event, EpochEnded):
            if row.started_at is None:
                row.started_at = event.at
            if row.last_epoch_at is None:  # this run's first epoch: a resumed Train run starts late
                row.first_epoch, row.first_epoch_at = event.epoch - 1, event.at
            row.epoch, row.last_epoch_at = event.epoch, event.at
            row.metrics = {**{k: v for k, v in row.metrics.items() if k.startswith("efficient")}, **event.metrics}
            row.status = TESTING if event.epoch >= row.plan.epochs else TRAINING
        elif isinstance(event, TrialTested):
            row.metrics.update(event.metrics)
            row.epoch, row.status = max(row.epoch, row.plan.epochs), LOGGING
        elif isinstance(event, TrialEnded):
            if row.status == event.status:  # said already (the runner repeats every end at the grid's end)
                return False
            row.status, row.error = event.status, event.error
            row.metrics.update(event.metrics)
            row.ended_at = event.at if row.started_at is not None else None
            if event.status == FINISHED:
                row.epoch = row.plan.epochs
        return True

    # -- summaries the views print -------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def ended_count(self) -> int:
        return sum(r.status in ENDED and r.status != NOT_STARTED for r in self.rows.values())

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        return ((self.ended.at if self.ended else None) or now or time.time()) - self.started_at

    def _latest(self, observations: list[tuple[float, float]]) -> float | None:
        """The median of the latest ``max_concurrent`` ``(when, value)`` observations."""
        latest = [value for _, value in sorted(observations)[-max(self.max_concurrent, 1):]]
        return statistics.median(latest) if latest else None

    def _ran(self) -> list[TrialRow]:
        """Trials that started and ended in this run of the grid."""
        return [r for r in self.rows.values() if r.status in ENDED and r.started_at is not None
                and r.ended_at is not None]

    def pace(self) -> float | None:
        """Seconds per epoch of a training trial (the latest steady paces); 0 when no trial has a
        second epoch but some ended (one-epoch trials: all is start-up and tail); None before."""
        pace = self._latest([(r.last_epoch_at, r.steady_pace()) for r in self.rows.values()
                             if r.steady_pace() is not None])
        if pace is not None:
            return pace
        return 0.0 if self._ran() else None

    def start_up(self, pace: float) -> float:
        """Seconds from a trial's start to its first epoch, less that epoch (the latest trials')."""
        return max(self._latest([(r.first_epoch_at, r.first_epoch_at - r.started_at - pace) for r in self.rows.values()
                                 if r.first_epoch_at is not None and r.started_at is not None]) or 0.0, 0.0)

    def tail(self) -> float:
        """Seconds from a trial's last epoch to its end: the accurate-mode test and the logging (the
        latest trials' that ended; 0 before one has)."""
        return max(self._latest([(r.ended_at, r.ended_at - r.last_epoch_at) for r in self._ran()
                                 if r.last_epoch_at is not None]) or 0.0, 0.0)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left for the whole grid: each running trial's time left (from its last epoch, or
        its start), then the pending trials placed on the ``max_concurrent`` slots as they free up;
        None until the pace is known."""
        now = now or time.time()
        pace = self.pace()
        if self.ended or self.started_at is None or pace is None:
            return None
        start_up, tail = self.start_up(pace), self.tail()
        running, pending = [], []
        for r in self.rows.values():
            if r.status in ENDED:
                continue
            if r.started_at is None:
                pending.append(start_up + (r.plan.epochs - r.epoch) * pace + tail)
            elif r.last_epoch_at is None:
                running.append(max(r.started_at + start_up + (r.plan.epochs - r.epoch) * pace + tail - now, 0.0))
            else:
                running.append(max(r.last_epoch_at + (r.plan.epochs - r.epoch) * pace + tail - now, 0.0))
        slots = sorted(running) + [0.0] * max(self.max_concurrent - len(running), 0)
        heapq.heapify(slots)
        for seconds in pending:
            heapq.heappush(slots, heapq.heappop(slots) + seconds)
        return max(slots, default=0.0)

    def trial_eta(self, row: TrialRow, now: float) -> float | None:
        """A trial's time to its last epoch (:meth:`TrialRow.eta` at the grid's pace)."""
        return row.eta(now, self.pace())


def clock(seconds: float | None) -> str:
    """``1:05`` / ``1:02:05``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(int(round(seconds)), 0)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

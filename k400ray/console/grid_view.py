"""How a running grid is shown: one live table on a terminal, plain lines anywhere else.

Both views take the grid's events (:mod:`k400ray.tune.events`) through ``view(event)`` and
notes (the MLflow links, the log path) through ``view.note(text)``; :func:`grid_view` picks one
for a stream. The live view redraws a row per trial (status, epoch / epochs, loss, last
efficient acc1, accurate acc1 once tested, elapsed, ETA) and the grid's ETA; the plain view
writes a line per thing that happened (a trial's start, each epoch, its test, its end, the
grid's end), which is what CI logs and ``| tee`` keep.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from k400ray.contracts import (
    ACC1, ACC5, ACCURATE_ACC1, CLIPS_PER_S, DATA_WAIT_FRACTION, EFFICIENT_ACC1, EFFICIENT_ACC5, ERROR, FINISHED,
    INTERRUPTED, LOGGING, STARTING, STOPPED_EARLY, TESTING, TRAINING, TRAIN_LOSS, mode_metric,
)
from k400ray.console.board import ENDED, GridBoard, TrialRow, clock
from k400ray.tune.events import EpochEnded, GridEnded, GridEvent, GridStarted, TrialEnded, TrialStarted, TrialTested


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def epoch_figures(metrics: dict) -> str:
    """``loss 1.386, efficient acc1/acc5 25.00/75.00, 12.3 clips/s, data wait 40%`` (what there is)."""
    parts = []
    if TRAIN_LOSS in metrics:
        parts.append(f"loss {metrics[TRAIN_LOSS]:.4f}")
    if EFFICIENT_ACC1 in metrics:
        parts.append(f"efficient acc1/acc5 {_pct(metrics[EFFICIENT_ACC1])}/{_pct(metrics.get(EFFICIENT_ACC5))}")
    if CLIPS_PER_S in metrics:
        parts.append(f"{metrics[CLIPS_PER_S]:.1f} clips/s")
    if DATA_WAIT_FRACTION in metrics:
        parts.append(f"data wait {100 * metrics[DATA_WAIT_FRACTION]:.0f}%")
    return ", ".join(parts)


def final_figures(metrics: dict) -> str:
    parts = []
    for mode in ("efficient", "accurate"):
        acc1, acc5 = mode_metric(mode, ACC1), mode_metric(mode, ACC5)
        if acc1 in metrics:
            parts.append(f"{mode} acc1/acc5 {_pct(metrics[acc1])}/{_pct(metrics.get(acc5))}")
    return ", ".join(parts)


class PlainGridView:
    """A line per event, flushed at once (a pipe must not hold them back)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.board = GridBoard()
        self._lock = threading.Lock()

    def __enter__(self) -> "PlainGridView":
        return self

    def __exit__(self, *exc) -> None:
        self.stream.flush()

    def note(self, text: str) -> None:
        self._write(text)

    def _write(self, line: str) -> None:
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __call__(self, event: GridEvent) -> None:
        if not self.board.apply(event):
            return
        line = self.line(event)
        if line:
            self._write(line)

    def line(self, event: GridEvent) -> str | None:
        b, now = self.board, event.at
        if isinstance(event, GridStarted):
            kept = sum(r.status in ENDED for r in b.rows.values())
            return (f"grid {b.experiment}: {b.total} trials, up to {b.max_concurrent} at a time"
                    + (f" ({kept} already finished)" if kept else ""))
        if isinstance(event, GridEnded):
            counts = ", ".join(f"{n} {s}" for s, n in sorted(b.counts().items()))
            return f"grid {b.experiment} {event.status} in {clock(b.elapsed(now))}: {counts}"
        row = b.rows[event.name]
        if isinstance(event, TrialStarted):
            return f"start  {row.name} ({row.plan.epochs} epochs)"
        if isinstance(event, EpochEnded):
            return (f"epoch  {row.name} {row.epoch}/{row.plan.epochs}: {epoch_figures(event.metrics)}"
                    f" | trial {clock(row.elapsed(now))}, ETA {clock(b.trial_eta(row, now))}"
                    f" | grid ETA {clock(b.eta(now))}")
        if isinstance(event, TrialTested):
            return f"tested {row.name}: {final_figures(row.metrics)}"
        if isinstance(event, TrialEnded):
            figures = final_figures(row.metrics)
            took = f" in {clock(row.elapsed(now))}" if row.started_at is not None else ""
            return (f"{row.status} {row.name}{took}" + (f": {figures}" if figures else "")
                    + (f" ({row.error})" if row.error else "")
                    + f" [{b.ended_count()}/{b.total} trials ended]")
        return None


class LiveGridView:
    """A rich ``Live`` table, redrawn every second (elapsed times move between events); notes
    print above it. Leaves the final table on screen."""

    def __init__(self, console) -> None:
        from rich.live import Live

        self.console = console
        self.board = GridBoard()
        self.log_path: str | None = None
        # Not rich's default stdout/stderr redirection: Ray's and Tune's prints go to the Ray log
        # (console.ray_log), and Live would bring them back onto the terminal above the table.
        self._live = Live(console=console, get_renderable=self.render, refresh_per_second=1, transient=False,
                          redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> "LiveGridView":
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.refresh()
        self._live.__exit__(*exc)

    def note(self, text: str) -> None:
        self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, event: GridEvent) -> None:
        if self.board.apply(event):
            self._live.refresh()

    def render(self):
        from rich.table import Table

        b, now = self.board, time.time()
        if not b.rows:
            return ""
        table = Table(title=f"grid {b.experiment}", title_justify="left", caption_justify="left", expand=False,
                      caption=self._caption(now))
        for header, justify in (("model", "left"), ("config", "left"), ("seed", "right"), ("status", "left"),
                                ("epoch", "right"), ("loss", "right"), ("eff acc1", "right"),
                                ("acc acc1", "right"), ("elapsed", "right"), ("ETA", "right")):
            table.add_column(header, justify=justify, no_wrap=True)
        for row in b.rows.values():
            table.add_row(*self._cells(row, now, b.trial_eta(row, now)))
        return table

    def _caption(self, now: float) -> str:
        b = self.board
        counts = ", ".join(f"{n} {s}" for s, n in sorted(b.counts().items()))
        state = f"{b.ended.status}" if b.ended else f"grid ETA {clock(b.eta(now))}"
        return f"{state} | {clock(b.elapsed(now))} elapsed | {counts}"

    @staticmethod
    def _cells(row: TrialRow, now: float, eta: float | None) -> tuple[str, ...]:
        m = row.metrics
        style = {FINISHED: "green", ERROR: "red", INTERRUPTED: "yellow", STOPPED_EARLY: "yellow",
                 TRAINING: "cyan", TESTING: "cyan", LOGGING: "cyan", STARTING: "cyan"}.get(row.status, "dim")
        loss = f"{m[TRAIN_LOSS]:.3f}" if TRAIN_LOSS in m and row.status not in ENDED else ""
        return (row.plan.preset, row.plan.aug, str(row.plan.seed), f"[{style}]{row.status}[/]",
                f"{row.epoch}/{row.plan.epochs}", loss, _pct(m.get(EFFICIENT_ACC1)) if EFFICIENT_ACC1 in m else "",
                _pct(m.get(ACCURATE_ACC1)) if ACCURATE_ACC1 in m else "", clock(row.elapsed(now)),
                clock(eta) if row.status not in ENDED else "")


def grid_view(stream: TextIO, *, live: bool | None = None):
    """The live view when ``stream`` is a terminal (or ``live``), else plain lines."""
    from rich.console import Console

    console = Console(file=stream)
    if live if live is not None else console.is_terminal:
        return LiveGridView(console)
    return PlainGridView(stream)

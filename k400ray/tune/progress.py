"""Tune's driver-side hooks -> :mod:`k400ray.tune.events` for one ``emit`` function.

Every epoch reaches the driver: the trial forwards each epoch's report to Tune (only the
evaluated ones carry ``efficient_acc1``; see :mod:`k400ray.tune.trainable`), so the console
moves with every epoch, not only with evaluations.
"""

from __future__ import annotations

import logging

from ray.tune import Callback

from k400ray.contracts import EPOCH, ERROR, FINISHED, STOPPED_EARLY, TESTED
from k400ray.tune.events import (
    EPOCH_FIELDS, FINAL_FIELDS, Emit, EpochEnded, GridEvent, TrialEnded, TrialStarted, TrialTested, pick,
)
from k400ray.tune.spec import tune_trial_name

logger = logging.getLogger(__name__)


class GridProgress(Callback):
    """Tune ``Callback`` (driver side) -> :data:`GridEvent` s for ``emit``.

    A callback in a ``RunConfig`` is pickled into the experiment's ``tuner.pkl``; this one
    pickles to a silent copy (the console lives in this process only), and the runner attaches
    a live one to every ``fit``, new or restored. A failing ``emit`` never stops the grid."""

    def __init__(self, experiment: str, emit: Emit | None, *, finished_key: str, planner=None) -> None:
        """``planner``: a search's ``trial -> TrialPlan``, for trials not known up front."""
        self.experiment = experiment
        self.finished_key = finished_key
        self._emit = emit
        self._planner = planner
        self._planned: set[str] = set()

    def __getstate__(self) -> dict:
        return {"experiment": self.experiment, "finished_key": self.finished_key, "_emit": None,
                "_planner": None, "_planned": set()}

    def _send(self, event: GridEvent) -> None:
        if self._emit is None:
            return
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - showing progress must never stop the grid
            logger.warning("progress display failed", exc_info=True)

    def _name(self, trial) -> str | None:
        config = trial.config or {}
        if "preset" not in config.get("point", config):
            return None
        return tune_trial_name(self.experiment, config, trial.trial_id)

    def on_trial_start(self, iteration, trials, trial, **info):
        if name := self._name(trial):
            plan = None
            if self._planner is not None and name not in self._planned:
                self._planned.add(name)
                plan = self._planner(trial)
            self._send(TrialStarted(name, plan=plan))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        name = self._name(trial)
        if name is None or result.get(self.finished_key):
            return  # the trial function's own last report: on_trial_complete follows
        if result.get(TESTED):
            self._send(TrialTested(name, pick(result, FINAL_FIELDS)))
        elif EPOCH in result:
            self._send(EpochEnded(name, int(result[EPOCH]), pick(result, EPOCH_FIELDS)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if name := self._name(trial):
            result = trial.last_result or {}
            status = FINISHED if result.get(self.finished_key) else STOPPED_EARLY
            self._send(TrialEnded(name, status, pick(result, FINAL_FIELDS)))

    def on_trial_error(self, iteration, trials, trial, **info):
        if name := self._name(trial):
            self._send(TrialEnded(name, ERROR, pick(trial.last_result or {}, FINAL_FIELDS), error=error_line(trial)))


def error_line(trial) -> str:
    """The last non-empty line of a failed trial's error (the exception, not the traceback)."""
    try:
        text = str(trial.get_pickled_error() or trial.get_error() or "")
    except Exception:  # noqa: BLE001 - the error file may be gone; say something
        text = ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "failed"

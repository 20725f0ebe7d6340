"""Early stopping that never compares unlike models: one ASHA per preset.

A single ASHA would rank TSN trials against I3D trials at each rung, and stop an augmentation
because another architecture learns faster. Here each preset has its own rungs; within a
preset, trials (configs x seeds) compete on the efficient-mode top-1 at
``grace_period x reduction_factor^k`` epochs. A trial is never stopped at its last epoch, so its
accurate-mode test (run after the last epoch) happens: ``stop_last_trials=False`` keeps Ray's
ASHA from stopping trials past its last rung, but when ``max_t`` is itself
``grace_period x reduction_factor^k`` (2, 4, 8... epochs with the defaults) Ray puts a rung *at*
``max_t`` and stops trials there, fully trained and untested; such a stop is turned into continue.
A trial ASHA stops has no accurate-mode result; its MLflow run ends KILLED with
``k400ray.end_reason = stopped early by ASHA``.

Tune saves no scheduler state with its experiment (Ray 2.60 never calls a scheduler's
``save``/``restore``): after ``--resume`` the rungs would start empty, and the trials still to
run would compete only with each other. At its first event after a resume, the scheduler reads
the ended trials' results back (each trial's ``result.json``) into its preset's rungs.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from k400ray.contracts import EFFICIENT_ACC1, EPOCH
from k400ray.tune.spec import grid_point

METRIC = EFFICIENT_ACC1
TIME_ATTR = EPOCH


class PerPresetASHA(FIFOScheduler):
    def __init__(self, max_epochs: dict[str, int], *, grace_period: int, reduction_factor: float) -> None:
        super().__init__()
        self._metric, self._mode = METRIC, "max"
        self._asha = {
            preset: AsyncHyperBandScheduler(
                time_attr=TIME_ATTR, metric=METRIC, mode="max", max_t=epochs, grace_period=min(grace_period, epochs),
                reduction_factor=reduction_factor, stop_last_trials=False,
            )
            for preset, epochs in max_epochs.items()
        }
        self._max_t = dict(max_epochs)
        self._known: set[str] = set()
        self._replayed = False

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return metric in (None, METRIC) and mode in (None, "max")

    def _for(self, tune_controller, trial) -> AsyncHyperBandScheduler:
        if not self._replayed:
            self._replayed = True
            self._replay_ended(tune_controller)
        asha = self._asha[grid_point(trial.config)[0]]
        if trial.trial_id not in self._known:  # trials restored by --resume were added before us
            asha.on_trial_add(tune_controller, trial)
            self._known.add(trial.trial_id)
        return asha

    def _replay_ended(self, tune_controller) -> None:
        """The rung values of the trials that had ended before a ``--resume`` (none in a new
        search): each one's results, in order, through its preset's ASHA, which records them as
        it did the first time (its decisions then are long taken and ignored here)."""
        for trial in tune_controller.get_trials() if tune_controller is not None else ():
            if trial.status == Trial.TERMINATED and trial.trial_id not in self._known:
                asha = self._asha[grid_point(trial.config)[0]]  # --resume refuses a changed grid
                asha.on_trial_add(tune_controller, trial)
                for result in _results_of(trial):
                    asha.on_trial_result(tune_controller, trial, result)
                asha.on_trial_remove(tune_controller, trial)

    def on_trial_add(self, tune_controller, trial) -> None:
        self._for(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = self._for(tune_controller, trial).on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and result.get(TIME_ATTR, 0) >= self._max_t[grid_point(trial.config)[0]]:
            return TrialScheduler.CONTINUE  # its last epoch: trained, its test follows
        return decision

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._for(tune_controller, trial).on_trial_complete(tune_controller, trial, result)
        self._known.discard(trial.trial_id)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._drop(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._drop(tune_controller, trial)

    def _drop(self, tune_controller, trial) -> None:
        if trial.trial_id in self._known:
            self._asha[grid_point(trial.config)[0]].on_trial_remove(tune_controller, trial)
            self._known.discard(trial.trial_id)

    def debug_string(self) -> str:
        return "ASHA per preset: " + "; ".join(
            f"{preset}: {asha.debug_string().splitlines()[0]}" for preset, asha in self._asha.items()
        )


def _results_of(trial) -> list[dict]:
    """The results a trial reported (its ``result.json``, one JSON object a line, in the
    experiment's storage: local or a bucket), those with an epoch and ASHA's metric; [] when
    there is no such file."""
    import json

    from ray.air.constants import EXPR_RESULT_FILE

    try:
        fs = trial.storage.storage_filesystem
        with fs.open_input_stream(f"{trial.storage.trial_fs_path}/{EXPR_RESULT_FILE}") as f:
            lines = f.read().decode().splitlines()
    except (OSError, AttributeError):
        return []
    results = []
    for line in lines:
        try:
            result = json.loads(line)
        except ValueError:
            continue  # a line cut short by the interruption
        if isinstance(result, dict) and TIME_ATTR in result and METRIC in result:
            results.append(result)
    return results


def build_scheduler(spec) -> TrialScheduler:
    """FIFO, PBT (:mod:`k400ray.tune.pbt`), or one ASHA per preset with ``max_t`` = the longest run
    among that preset's trials (a config may bring its own recipe, hence its own epochs). A
    search's sampled trials join their preset's ASHA like the grid's."""
    if spec.scheduler.kind == "fifo":
        return FIFOScheduler()
    epochs: dict[str, int] = {}
    for preset, config, _ in spec.grid_points():
        run = spec.epochs_of(preset, config)
        epochs[preset] = max(epochs.get(preset, 0), run)
    if spec.scheduler.kind == "pbt":
        from k400ray.tune.pbt import build_pbt

        return build_pbt(spec, min(epochs.values()))
    return PerPresetASHA(epochs, grace_period=spec.scheduler.grace_period,
                         reduction_factor=spec.scheduler.reduction_factor)

"""``k400ray tune``: the whole grid as one Ray Tune experiment.

One trial per grid point (preset x config x seed: the cross product or the spec's rows, one
``tune.grid_search`` over the points, so a grid of rows runs exactly those); each trial runs
:func:`~k400ray.tune.trainable.grid_trial`, which fits its own ``TorchTrainer``. The Tune
experiment lives at ``storage_path/experiment``; each trial's Train run at
``storage_path/<trial name>`` (see :func:`~k400ray.tune.spec.trial_name`).

A search (the spec's ``search:`` axes) adds the axes to the same param space, beside the grid's
points (``values``), with ``num_samples`` and its searcher: Tune's random one, or Optuna's TPE
(one study over one grid point, see :mod:`k400ray.tune.spec`) behind a concurrency limit. Its
trials are not known up front: the console hears of each as it starts.

Resume: ``Tuner.restore`` re-runs only trials that did not terminate (interrupted, errored);
a finished trial is never run again. A restarted trial's Train run continues from its latest
checkpoint and its MLflow child run is reopened, not duplicated. Ctrl+C (or SIGTERM, turned
into Ctrl+C) stops the Tuner gracefully: its state is saved, the open MLflow runs are marked
KILLED, and the command prints how to resume.

Progress: ``run_grid(..., on_event=...)`` hands :mod:`k400ray.tune.events` to the caller (the
CLI's console and the parent run's description) as the grid moves: every trial's start, each
epoch, the accurate mode, its end, and the grid's end. Nothing here prints them.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from k400ray import ray_private
from k400ray.contracts import (
    ACC1, ACC5, ERROR, FINISHED, FOUND_OPEN, INTERRUPTED, NOT_STARTED, PENDING, RUN_FAILED,
    RUN_FINISHED, RUN_KILLED, SOME_FAILED, STOPPED_BY_ASHA, STOPPED_EARLY, mode_metric,
)
from k400ray.tracking import mlflow_log
from k400ray.tracking.outbox import few_retries, outbox_location, send_held, server_answers, wait_until_answering
from k400ray.text_table import text_table
from k400ray.tune.cost import DRIVER_CPUS
from k400ray.tune.events import FINAL_FIELDS, Emit, GridEnded, GridStarted, TrialEnded, TrialPlan, pick
from k400ray.tune.spec import (
    SearchSpec, grid_point, run_label, sampled_values, trial_config, trial_name, tune_trial_name,
)


class GridError(RuntimeError):
    """A grid that cannot start as asked (one line, for the CLI)."""


@dataclass
class TrialSummary:
    preset: str
    aug: str
    seed: int
    status: str  # one of contracts.ENDED: finished | error | stopped early | interrupted | not started
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    trial_id: str | None = None  # Tune's (the MLflow child run's ``trial_id`` tag); None if never created
    name: str = ""  # the stable trial name (:func:`~k400ray.tune.spec.tune_trial_name`)
    values: dict = field(default_factory=dict)  # a search's sampled values ({section.field: value})


@dataclass
class GridOutcome:
    experiment_path: str
    tracking_uri: str
    parent_run_id: str
    trials: list[TrialSummary]
    unsampled: int = 0  # a search's trials its searcher had not yet drawn when it stopped

    @property
    def interrupted(self) -> bool:
        return self.unsampled > 0 or any(t.status in (INTERRUPTED, NOT_STARTED) for t in self.trials)

    @property
    def failed(self) -> bool:
        return any(t.status == ERROR for t in self.trials)


def resolve_spec(spec: SearchSpec) -> SearchSpec:
    """Local paths and the SQLite URI made absolute: trials run in their own working directory."""

    def absolute(path: str | None) -> str | None:
        return path if path is None or "://" in path else str(Path(path).resolve())

    data = spec.data.model_copy(update={
        "train_index": absolute(spec.data.train_index), "val_index": absolute(spec.data.val_index),
        "data_root": absolute(spec.data.data_root),
    })
    mlflow = spec.mlflow.model_copy(update={"tracking_uri": mlflow_log.resolve_tracking_uri(spec.mlflow.tracking_uri)})
    return spec.model_copy(update={"data": data, "mlflow": mlflow, "storage_path": absolute(spec.storage_path)})


def experiment_path(spec: SearchSpec) -> str:
    storage = spec.storage_path if "://" in spec.storage_path else str(Path(spec.storage_path).resolve())
    return f"{storage.rstrip('/')}/{spec.experiment}"


def _trial_label(experiment: str, trial) -> str:
    return tune_trial_name(experiment, trial.config, trial.trial_id)


@contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (a scheduler, `kill`) gets Ctrl+C's graceful stop instead of an abrupt exit.
    Also puts back the SIGINT handler Tune leaves installed after ``fit``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_grid(spec: SearchSpec, *, num_classes: int, class_names: list[str], address: str | None = None,
             resume: bool = False, smoke: bool = False, echo: Callable[[str], None] = print,
             on_event: Emit | None = None,
             on_parent_run: Callable[[mlflow_log.GridRun], None] | None = None) -> GridOutcome:
    """Run (or resume) every trial of ``spec``; ``check_indexes`` must have passed. ``smoke``: its
    smoke run instead (one epoch, a few videos per class, ``-smoke`` names: :mod:`k400ray.tune.smoke`).
    ``on_event`` receives the grid's progress events; ``on_parent_run`` the MLflow parent run
    once it is open, before any trial starts (the CLI prints its links then)."""
    from ray import tune

    from k400ray.runtime import init_ray
    from k400ray.tune.progress import GridProgress
    from k400ray.tune.smoke import smoke_spec, write_smoke_indexes
    from k400ray.tune.trainable import grid_trial

    emit = on_event or (lambda event: None)
    real = spec
    spec = resolve_spec(smoke_spec(spec) if smoke else spec)
    path = experiment_path(spec)
    uri = spec.mlflow.tracking_uri
    shown_uri = mlflow_log.redact_uri(uri)
    # Everything that can refuse the grid is checked before anything is written.
    try:
        mlflow_log.check_reachable(uri)
    except mlflow_log.TrackingError as exc:
        raise GridError(str(exc)) from None
    restorable = tune.Tuner.can_restore(path)
    if restorable and not resume:
        raise GridError(f"experiment {spec.experiment!r} already exists at {path}: pass --resume to continue it, "
                        "or choose another experiment name")
    try:
        init_ray(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GridError(f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'}: {first}") from None
    check_cluster_fits(spec)
    if smoke:
        try:
            write_smoke_indexes(real)
        except OSError as exc:
            raise GridError(f"--smoke: cannot write the smoke index next to {real.data.train_index}: {exc}") from None
        from k400ray.tune.smoke import VIDEOS_PER_CLASS

        echo(f"smoke run: experiment {spec.experiment!r} (MLflow {spec.mlflow_experiment!r}): every trial, "
             f"1 epoch on {VIDEOS_PER_CLASS} videos per class ({spec.data.train_index}), both eval modes")
    if resume and not restorable:
        echo(f"nothing to resume at {path}: starting the experiment")
    if address and uri.startswith("sqlite:"):
        echo("note: a SQLite tracking URI is only reachable from this machine; on a multi-node cluster "
             "use an MLflow server (mlflow.tracking_uri: http://...)")

    spec_json = spec.model_dump(mode="json")
    try:
        grid = mlflow_log.open_grid_run(uri, spec.mlflow_experiment, spec.experiment,
                                        spec_json, resume=resume, identity=_spec_identity(spec_json))
    except mlflow_log.TrackingError as exc:
        raise GridError(str(exc)) from None
    # What trials held during an outage first (a trial that ended then is not "open"), then: no
    # trial of this grid runs now, so a child left RUNNING belongs to a driver that was killed.
    before = _summaries(spec, tune.ExperimentAnalysis(path))[0] if restorable else []
    names = [t.name for t in before] if spec.searching else [trial_name(spec.experiment, *p) for p in spec.grid_points()]
    outboxes = [outbox_location(spec.storage_path, name) for name in names]
    _send_held(uri, outboxes, echo)
    mlflow_log.close_open_trials(grid, reason_by_trial_id={}, default_reason=FOUND_OPEN)
    if spec.searching:  # before the links: a search's saved view reads its axes from the parent
        _tracked(lambda: mlflow_log.log_search(grid, spec_json["search"]))
    if on_parent_run is not None:
        on_parent_run(grid)  # the console says where the runs are (its MLflow block)
    else:
        echo(f"MLflow: experiment {spec.mlflow_experiment!r}, parent run {grid.parent_run_id} at {shown_uri}")

    # Each trial's config, built here once from the spec: the Tune actor only picks its own.
    points = spec.grid_points()
    presets = [p for p, _, _ in points]
    trials = {point: trial_config(spec, *point, num_classes=num_classes) for point in points}
    labels = {point: run_label(*point, presets) for point in points}
    trainable = tune.with_resources(
        tune.with_parameters(grid_trial, trials=trials, labels=labels,
                             start_wait_minutes=spec.mlflow.trial_start_wait_minutes, class_names=class_names,
                             grid=grid),
        {"cpu": DRIVER_CPUS},
    )
    status, reason = RUN_KILLED, INTERRUPTED
    try:
        with _sigterm_as_ctrl_c():
            emit(GridStarted(spec.experiment, tuple(plan_trials(spec, before)), _concurrency(spec),
                             total=expected_trials(spec) if spec.searching else None))
            if restorable:
                tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
            else:
                tuner = _new_tuner(spec, trainable)
            planner = functools.partial(_plan_of, spec) if spec.searching else None
            _attach_callbacks(tuner, [GridProgress(spec.experiment, emit, finished_key=FINISHED, planner=planner)])
            tuner.fit()
        trials, stopped_ids = _summaries(spec, tune.ExperimentAnalysis(path))
        outcome = GridOutcome(path, shown_uri, grid.parent_run_id, trials,
                              unsampled=max(0, expected_trials(spec) - len(trials)) if spec.searching else 0)
        stopped = dict.fromkeys(stopped_ids, STOPPED_BY_ASHA)
        tracked = wait_until_answering(uri, limit_s=60 * spec.mlflow.grid_end_wait_minutes, what="the grid's end",
                                       say=echo)
        if tracked:
            _send_held(uri, outboxes, echo)
            # A trial whose Train controller Ctrl+C killed first ended its run FAILED on the dead
            # actor; Tune says interrupted, and so does MLflow.
            tracked = _tracked(lambda: mlflow_log.close_open_trials(
                grid, reason_by_trial_id=stopped, default_reason=INTERRUPTED,
                interrupted_ids=[t.trial_id for t in trials if t.status == INTERRUPTED]))
        if not tracked:
            echo(f"MLflow server {shown_uri} does not answer: every result is kept (the trials' checkpoints, "
                 f"Tune's state); what MLflow lacks is held beside each trial's checkpoints. "
                 f"Run the same command with --resume once the server answers: it sends it and runs nothing again.")
        if outcome.interrupted:
            status, reason = RUN_KILLED, INTERRUPTED
        elif outcome.failed:
            status, reason = RUN_FAILED, SOME_FAILED
        else:
            status, reason = RUN_FINISHED, FINISHED
        # What Tune saved is the truth (an interrupted trial, one that never started).
        for t in trials:
            emit(TrialEnded(t.name, t.status, pick(t.metrics, FINAL_FIELDS), error=t.error))
        return outcome
    except BaseException:
        if server_answers(uri):
            _tracked(lambda: mlflow_log.close_open_trials(grid, reason_by_trial_id={}, default_reason=INTERRUPTED))
        raise
    finally:
        if server_answers(uri):
            _tracked(lambda: mlflow_log.finish_grid_run(grid, status, reason))
        emit(GridEnded(status))


def _tracked(call: Callable[[], object]) -> bool:
    """Run an MLflow call of the grid's end with few retries (the server may have just gone):
    whether it went through. What it could not do, the next --resume does."""
    try:
        with few_retries():
            call()
        return True
    except Exception:  # noqa: BLE001 - a tracking outage must not fail a grid whose results are kept
        return False


def _send_held(uri: str, outboxes: list[str], echo: Callable[[str], None]) -> None:
    sent, left = send_held(uri, outboxes)
    if sent:
        echo(f"MLflow: sent {sent} record(s) that trials held during a tracking outage")
    if left:
        echo(f"MLflow: {left} trial(s) still hold records (see Ray's log); the next --resume sends them")


def plan_trials(spec: SearchSpec, before: list[TrialSummary]) -> list[TrialPlan]:
    """Every grid point with its epochs (the spec's, else its config's recipe: what the trial
    runs) and, on a resume, what the previous run left: finished trials keep their figures. A
    search's trials are not known up front: those of the previous run only (the others are
    planned as they start, :func:`_plan_of`)."""
    if spec.searching:
        return [_plan(spec, (t.preset, t.aug, t.seed), t.name, t) for t in before]
    left = {(t.preset, t.aug, t.seed): t for t in before}
    return [_plan(spec, point, trial_name(spec.experiment, *point), left.get(point)) for point in spec.grid_points()]


def _plan_of(spec: SearchSpec, trial) -> TrialPlan:
    """The plan of a search's Tune trial that has just appeared."""
    return _plan(spec, grid_point(trial.config), _trial_label(spec.experiment, trial), None,
                 sampled_values(trial.config))


def _plan(spec: SearchSpec, point: tuple[str, str, int], name: str, old: TrialSummary | None,
          values: dict | None = None) -> TrialPlan:
    """One trial's plan: its epochs (a searched ``training.epochs`` wins) and what a previous run left."""
    preset, aug, seed = point
    values = old.values if old is not None else values or {}
    epochs = values.get("training.epochs") or spec.epochs_of(preset, aug)
    kept = old is not None and old.status in (FINISHED, STOPPED_EARLY)
    return TrialPlan(name, preset, aug, seed, int(epochs), status=old.status if kept else PENDING,
                     metrics=pick(old.metrics, FINAL_FIELDS) if kept else {})


def _attach_callbacks(tuner, callbacks: list) -> None:
    """Give this ``fit`` our driver-side callbacks. Not through ``RunConfig(callbacks=...)``: Tune
    pickles the run config into ``tuner.pkl`` and ``Tuner.restore`` brings back those copies, which
    cannot reach this process's console; the restored config is updated in place instead.

    Also lets every epoch's report through Tune's strict metric check: the epochs that were not
    evaluated lack ``efficient_acc1`` (ASHA's metric) and carry only the progress; ASHA itself
    skips results without its metric."""
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    run_config = ray_private.tuner_run_config(tuner)
    run_config.callbacks = [*(c for c in run_config.callbacks or [] if not _is_progress(c)), *callbacks]


def _is_progress(callback) -> bool:
    from k400ray.tune.progress import GridProgress

    return isinstance(callback, GridProgress)


def check_cluster_fits(spec: SearchSpec) -> None:
    """Refuse (:class:`GridError`) a trial the connected cluster can never hold, instead of
    leaving it PENDING forever: GPUs or CPUs per trial above what the cluster has now or, on
    an autoscaling cluster (``ray up``), could have at its configured maximum."""
    import ray

    res = spec.resources
    need = {"GPU": res.workers_per_trial * res.gpus_per_worker,
            "CPU": DRIVER_CPUS + res.workers_per_trial * res.cpus_per_worker}
    have = dict(ray.cluster_resources())
    try:
        for key, value in ray_private.autoscaler_max_resources().items():
            have[key] = max(have.get(key, 0), value)
    except Exception:  # noqa: BLE001 - no autoscaler config: what is there now is all there is
        pass
    for key, field_name in (("GPU", "gpus_per_worker"), ("CPU", "cpus_per_worker")):
        if need[key] > have.get(key, 0) + 1e-9:
            raise GridError(
                f"resources.{field_name}: a trial needs {need[key]:g} {key}s "
                f"({res.workers_per_trial} workers x {getattr(res, field_name):g}), the Ray cluster has "
                f"{have.get(key, 0):g}"
            )


def _new_tuner(spec: SearchSpec, trainable):
    from ray import tune

    from k400ray.tune.scheduler import build_scheduler

    label = functools.partial(_trial_label, spec.experiment)
    return tune.Tuner(
        trainable,
        param_space={**param_space(spec), **_pbt_space(spec)},
        tune_config=tune.TuneConfig(
            scheduler=build_scheduler(spec), max_concurrent_trials=_concurrency(spec),
            num_samples=_tune_samples(spec), search_alg=build_searcher(spec),
            trial_name_creator=label, trial_dirname_creator=label,
            # The next trial runs in the process of one that ended (Tune's default starts a new one,
            # which imports torch again): one process fewer per trial beyond the concurrency.
            # Only when no scheduler stops or pauses trials: a trial ASHA stops or PBT pauses is
            # still inside its fit, so Tune cannot reset its process for the next trial (it fails
            # that trial, and the search waited forever on Ray 2.60); it ends the process instead.
            reuse_actors=reuses_trial_processes(spec),
        ),
        run_config=tune.RunConfig(
            name=spec.experiment, storage_path=spec.storage_path,
            # A worker lost is retried inside the trial (Train's FailureConfig). A node lost with
            # the trial's own process (its Tune actor and Train controller) is retried here, once
            # capacity returns: the Train run continues from its checkpoint, the MLflow run is
            # reopened. An error that repeats is retried too (each retry resumes); then reported,
            # and `--resume` retries it.
            failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
        ),
    )


def _tune_samples(spec: SearchSpec) -> int:
    """Tune's ``num_samples``: Optuna's study size; 1 otherwise (a random search's draws are in
    its param space already: :func:`param_space`)."""
    return spec.search.num_samples if spec.searching and spec.search.searcher == "optuna" else 1


def reuses_trial_processes(spec: SearchSpec) -> bool:
    """Whether a trial may run in the process of one that ended: only under FIFO, where every
    trial ends by returning from its fit (see :func:`_new_tuner`)."""
    return spec.scheduler.kind == "fifo"


def param_space(spec: SearchSpec) -> dict:
    """Tune's param space: ``point``, one grid search over the spec's (preset, config, seed) points
    (the layout grids have always had, so older grids resume); a search adds its values under
    ``values`` (``{section: {field: value}}``). The random searcher's values are drawn here
    (:func:`drawn_values`) and given as a second grid search, so that every point (each seed)
    runs every drawn value: Tune's own sampling draws anew for each grid variant, and the seeds
    would not be common random numbers. Optuna takes no grid search: its one point is given as
    it is (the spec allows it one), its values as Tune's domains."""
    from ray import tune

    points = [{"preset": p, "aug": a, "seed": s} for p, a, s in spec.grid_points()]
    if not spec.searching:
        return {"point": tune.grid_search(points)}
    if spec.search.searcher != "optuna":
        return {"point": tune.grid_search(points), "values": tune.grid_search(drawn_values(spec))}
    return {"point": points[0], "values": _nested({path: axis.domain() for path, axis in spec.search.space.items()})}


def _nested(flat: dict) -> dict[str, dict]:
    """``{"section.field": v}`` -> ``{section: {field: v}}`` (the layout of ``values``)."""
    nested: dict[str, dict] = {}
    for path, value in flat.items():
        section, _, name = path.partition(".")
        nested.setdefault(section, {})[name] = value
    return nested


def drawn_values(spec: SearchSpec) -> list[dict]:
    """The random searcher's values, ``{section: {field: value}}`` each: ``num_samples`` draws of
    the distributions (Ray Tune's samplers, seeded with the first grid point's seed: the same
    spec draws the same values), each with every combination of the list axes."""
    import itertools

    import numpy as np

    rng = np.random.default_rng(spec.grid_points()[0][2])
    sampled = {path: axis.domain() for path, axis in spec.search.space.items() if axis.sampled}
    listed = {path: list(axis.values) for path, axis in spec.search.space.items() if not axis.sampled}
    out = []
    for _ in range(spec.search.num_samples):
        drawn = {path: domain.sample(random_state=rng) for path, domain in sampled.items()}
        for combo in itertools.product(*listed.values()):
            flat = {**drawn, **dict(zip(listed, combo))}
            out.append(_nested({path: v.item() if hasattr(v, "item") else v for path, v in flat.items()}))
    return out


def build_searcher(spec: SearchSpec):
    """None (Tune's default: every point of the grid and of :func:`drawn_values`) or Optuna's TPE
    on ``efficient_acc1`` (ASHA's metric), at most ``search.max_concurrent`` trials at once (TPE
    suggests better from results it already has). Its sampler is seeded with the grid point's
    seed, so the same spec draws the same first points."""
    if spec.search.searcher != "optuna" or not spec.searching:
        return None
    from optuna.samplers import TPESampler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from k400ray.tune.scheduler import METRIC

    searcher = OptunaSearch(metric=METRIC, mode="max", sampler=TPESampler(seed=spec.grid_points()[0][2]))
    if spec.search.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.search.max_concurrent)
    return searcher


def expected_trials(spec: SearchSpec) -> int:
    """How many trials a search runs in all: ``num_samples`` per grid point and per combination
    of its list axes (Optuna's one point has none)."""
    import math

    points = 1 if spec.search.searcher == "optuna" else len(spec.grid_points())
    listed = math.prod(len(a.values) for a in spec.search.space.values() if not a.sampled)
    return spec.search.num_samples * points * listed


def _concurrency(spec: SearchSpec) -> int | None:
    """Trials at once: the resources' bound, and a search's own (the smaller)."""
    bounds = [b for b in (spec.resources.max_concurrent_trials, spec.search.max_concurrent if spec.searching else None)
              if b]
    return min(bounds) if bounds else None


def _pbt_space(spec: SearchSpec) -> dict:
    """A PBT trial's mutated values, drawn per trial (none for the other schedulers)."""
    from k400ray.tune.pbt import initial_space

    return initial_space(spec.scheduler.mutations) if spec.scheduler.kind == "pbt" else {}


def _spec_identity(spec_json: dict) -> dict:
    """What must not change between a run and its --resume (resources and scheduler may). A
    cross-product grid (no rows) hashes as it did before rows existed, so older grids resume."""
    identity = {k: spec_json[k] for k in ("experiment", "scale", "data", "grid", "augmentation", "training")}
    # Where each node reads the (checksummed, identical) videos from changes no result; nor do
    # decoding the same frames on a GPU and compiling the same model (rounding only).
    identity["data"] = {k: v for k, v in identity["data"].items() if k not in ("local_cache", "decode_backend")}
    identity["training"] = {k: v for k, v in identity["training"].items() if k != "compile"}
    if identity["grid"].get("rows") is None:
        identity["grid"] = {k: v for k, v in identity["grid"].items() if k != "rows"}
    # A search and named configs are part of what the grid is; a grid without them hashes as before.
    for key in ("search", "configs"):
        part = spec_json.get(key) or {}
        if part.get("space") if key == "search" else part:
            identity[key] = {k: v for k, v in part.items() if k != "max_concurrent"}
    # Training fields added later hash as absent while they keep their defaults.
    later = {"eval_interval": None, "accurate_checkpoint": "best"}
    identity["training"] = {k: v for k, v in identity["training"].items() if later.get(k, object()) != v}
    return identity


def _summaries(spec: SearchSpec, analysis) -> tuple[list[TrialSummary], list[str]]:
    """One summary per grid point, from the trial states Tune saved when it stopped; also the
    Tune ids of trials ASHA stopped.

    Read back from storage on purpose: after Ctrl+C, Tune saves the state (interrupted trials
    RUNNING, so a restore resumes them) and only then stops the actors, which marks the
    in-memory trials TERMINATED, like a trial ASHA stopped.
    """
    from ray.tune.experiment import Trial

    by_key, stopped = {}, []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        config = trial.config or {}
        if "preset" not in config.get("point", config):
            continue
        metrics = dict(trial.last_result or {})
        error = None
        if trial.status == Trial.ERROR:
            status = ERROR
            text = str(trial.get_pickled_error() or trial.get_error() or "").strip().splitlines()
            error = next((ln.strip() for ln in reversed(text) if ln.strip()), "failed")
        elif trial.status == Trial.TERMINATED:
            status = FINISHED if metrics.get(FINISHED) else STOPPED_EARLY
            if status == STOPPED_EARLY:
                stopped.append(trial.trial_id)
        else:
            status = INTERRUPTED if metrics else NOT_STARTED
        name = tune_trial_name(spec.experiment, config, trial.trial_id)
        summary = TrialSummary(*grid_point(config), status=status, metrics=metrics, error=error,
                               trial_id=trial.trial_id, name=name, values=sampled_values(config))
        by_key[name if spec.searching else grid_point(config)] = summary
    if spec.searching:  # its trials are Tune's, not known up front
        return list(by_key.values()), stopped
    return [by_key.get(k) or TrialSummary(*k, status=NOT_STARTED, name=trial_name(spec.experiment, *k))
            for k in spec.grid_points()], stopped


def format_summary(trials: list[TrialSummary]) -> str:
    header = ("preset", "config", "seed", "efficient acc1/acc5", "accurate acc1/acc5", "status")

    def pair(m: dict, mode: str) -> str:
        a1, a5 = m.get(mode_metric(mode, ACC1)), m.get(mode_metric(mode, ACC5))
        return "-" if a1 is None or a5 is None else f"{a1:.2f} / {a5:.2f}"

    body = [(t.preset, t.aug, str(t.seed), pair(t.metrics, "efficient"), pair(t.metrics, "accurate"), t.status)
            for t in trials]
    if any(t.values for t in trials):  # a search: each trial's sampled values
        from k400ray.tune.space import short_values

        header = (*header, "values")
        body = [(*row, short_values(t.values)) for row, t in zip(body, trials)]
    lines = text_table(header, body, right={2})
    for t in trials:
        if t.error:
            lines.append(f"{t.name or trial_name('', t.preset, t.aug, t.seed).lstrip('-')}: {t.error}")
    return "\n".join(lines)

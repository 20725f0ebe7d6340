"""Parent and child MLflow runs of a grid, found again by tags so that a resumed or retried
trial keeps its one child run.

- experiment: tagged ``mlflow.experimentKind = custom_model_development``, so that MLflow's UI
  treats it as model training rather than GenAI (with the links of
  :mod:`k400ray.tracking.ui_links`, which also carry the mode in the URL, and the saved view of
  the runs table they open).
- parent (one per ``k400ray tune`` experiment): tags ``k400ray.role=grid``, ``k400ray.grid``
  (the spec's experiment), ``k400ray.spec_sha1``; the spec as an artifact; the report later;
  its description (``mlflow.note.content``, markdown on its page) is the result sheet and every
  trial's figures (:func:`set_description`, refreshed by the CLI as trials finish).
- child (one per trial): named for MLflow's runs table (``tsm·mixup·s0``:
  :func:`~k400ray.tune.spec.run_label`); tags ``mlflow.parentRunId``, ``k400ray.role=trial``,
  ``k400ray.trial`` (:func:`~k400ray.tune.spec.trial_name`, stable across restarts), ``model``, ``config`` (the
  sheet's configs column; also as ``aug``, its older name), ``seed``, ``family``, ``trial_id`` (Tune's); params = the resolved ``TrialConfig``; per-epoch metrics
  (step = epoch) and the final ones; artifacts (:mod:`k400ray.tracking.artifacts`).

A run is never left ``RUNNING``: the trial function ends its own run (FINISHED / FAILED /
KILLED), and the driver closes whatever a killed trial actor could not (:func:`close_open_trials`).
Everything here talks to MLflow through ``MlflowClient`` with an explicit tracking URI: trial
functions and the Train controller run in other processes (and another working directory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

# The tag names stay readable as this module's (mlflow_log.END_TAG): the code that reads runs uses them here.
from k400ray.contracts import (
    ACC1, ACC5, ATTEMPT_TAG, BEST_SUFFIX, CLIPS_PER_S, CONFIG_TAG, CONFIG_TAG_FORMERLY, DATA_WAIT_FRACTION,
    EFFICIENT_ACC1, EFFICIENT_ACC5, EFFICIENT_MEAN_CLASS_ACC, END_TAG, EPOCH, ERROR_TAG, EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG, FAMILY_TAG, FINISHED, GRID_TAG, INTERRUPTED, LOCAL_READ_FRACTION, LR, MEAN_CLASS_ACC,
    MODEL_TAG, NOTE_TAG, PARENT_TAG, PBT_DONOR_TAG, PBT_EXPLOIT_TAG_PREFIX, PBT_VALUE_PREFIX, RESUMED, ROLE_GRID, ROLE_TAG, ROLE_TRIAL, RUNNING, RUN_FAILED, RUN_FINISHED,
    RUN_KILLED, RUN_RUNNING, SEED_TAG, SKIPPED_VIDEOS, SPEC_ARTIFACT, SPEC_TAG, START_EPOCH, TRAIN_LOSS, TRIAL_TAG,
    TUNE_TRIAL_ID_TAG, is_tested, NUM_SAMPLES_PARAM, SEARCH_PARAM_PREFIX, SEARCH_SPACE_ARTIFACT, SEARCHER_PARAM,
)

logger = logging.getLogger(__name__)

# Logged every epoch with step=epoch (by the Train callback, from rank 0's report).
EPOCH_METRICS = (
    TRAIN_LOSS, LR, EFFICIENT_ACC1, EFFICIENT_ACC5, EFFICIENT_MEAN_CLASS_ACC,
    CLIPS_PER_S, DATA_WAIT_FRACTION, SKIPPED_VIDEOS,
    LOCAL_READ_FRACTION,  # of the epoch's training clips, read from their node's staged copy (k400ray stage)
    START_EPOCH,  # the epoch this worker group (re)started from: > 0 after a restart or resume
)


PERCENT_METRIC = re.compile(rf"_({ACC1}|{ACC5}|{MEAN_CLASS_ACC})({BEST_SUFFIX})?$")


def shown_value(key: str, value) -> float:
    """A metric as logged: accuracies (percent) to 0.01, as the sheet prints them. MLflow's runs
    table shows every digit a value has (79.1666666...); one val video of Kinetics-400 is 0.005
    points, and the report's figures come from the predictions artifacts, exact."""
    value = float(value)
    return round(value, 2) if PERCENT_METRIC.search(key) and math.isfinite(value) else value


class TrackingError(RuntimeError):
    """An MLflow state the user must resolve (e.g. resuming with a changed spec)."""


def resolve_tracking_uri(uri: str) -> str:
    """Relative ``sqlite:///path`` -> absolute (trials run in other working directories).
    Other URIs unchanged. Writes nothing (see :func:`prepare_store`)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return uri
    return prefix + str(Path(uri[len(prefix):]).resolve())


def prepare_store(uri: str) -> None:
    """Create the directory of a SQLite store (SQLite will not); done only once a grid starts."""
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def redact_uri(uri: str) -> str:
    """``http://user:secret@host`` -> ``http://***@host``: URIs are printed and logged."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def check_reachable(uri: str, timeout_s: float = 30.0) -> None:
    """Fail fast (:class:`TrackingError`, one line) when an MLflow server does not answer.

    MLflow's own client retries an unreachable server with backoff for minutes; a grid must
    not start trials that could not record anything. ``/health`` is the server's liveness
    route. A refused connection fails at once; a slow answer is retried for ``timeout_s``.
    """
    import time
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):  # noqa: S310 - http(s) only
                return
        except urllib.error.HTTPError:
            return  # it answered: a proxy or an auth layer in front of it, not an outage
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            slow = isinstance(reason, TimeoutError) or "timed out" in str(reason)
            if not slow or time.monotonic() >= deadline:
                raise TrackingError(f"MLflow tracking server {redact_uri(uri)} is unreachable ({reason}); "
                                    "start it or fix mlflow.tracking_uri") from None


def _artifact_location(uri: str) -> str | None:
    """SQLite stores keep artifacts beside the database (MLflow's default is ./mlruns of
    whichever process creates the experiment); servers choose their own."""
    if uri.startswith("sqlite:////"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


def client_for(uri: str):
    """A client of ``uri``. MLflow draws a progress bar on stderr for every artifact it downloads;
    k400ray reads small JSON and parquet artifacts while a grid's console is live (the parent's
    description) and in ``report``: the bars are off unless the user's environment says otherwise."""
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=uri)


def get_or_create_experiment(client, name: str, uri: str) -> str:
    """The experiment (restored if deleted, created if absent), tagged as model development."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return found.experiment_id
    location = _artifact_location(uri)
    if location:
        base = location.rstrip("/")
        location = f"{base}/{name}"
    return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})


def set_description(client, run_id: str, markdown: str) -> None:
    """A run's description in MLflow's UI (rendered as markdown on the run's page). MLflow keeps
    tag values up to 8000 characters in its stores; a longer text is cut with a pointer."""
    limit = 7900
    if len(markdown) > limit:
        markdown = markdown[:limit] + "\n\n(cut: the whole sheet is the run's artifact report/report.md)\n"
    client.set_tag(run_id, NOTE_TAG, markdown)


def spec_hash(spec_json: dict) -> str:
    return hashlib.sha1(json.dumps(spec_json, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class GridRun:
    """What a trial needs to find its runs: small and picklable."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    grid: str

    @classmethod
    def of_parent(cls, tracking_uri: str, parent) -> "GridRun":
        """The grid whose parent run is ``parent`` (an ``mlflow.entities.Run``): how ``report``
        and the console find a grid they did not start."""
        return cls(tracking_uri, parent.info.experiment_id, parent.info.run_id, parent.data.tags.get(GRID_TAG, ""))


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def find_grid_runs(client, experiment_id: str, grid: str | None = None) -> list:
    """Parent runs of this experiment, newest first."""
    query = f"tags.`{ROLE_TAG}` = {_quote(ROLE_GRID)}" + (f" and tags.`{GRID_TAG}` = {_quote(grid)}" if grid else "")
    return list(client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"]))


def open_grid_run(uri: str, mlflow_experiment: str, grid: str, spec_json: dict, *, resume: bool,
                  identity: dict | None = None) -> GridRun:
    """A fresh grid gets a new parent run; ``resume`` reopens the newest one of this grid,
    refusing a changed spec (``identity``: the part of it that must not change; default all):
    its finished trials would not match the new one."""
    prepare_store(uri)
    client = client_for(uri)
    experiment_id = get_or_create_experiment(client, mlflow_experiment, uri)
    digest = spec_hash(spec_json if identity is None else identity)
    existing = find_grid_runs(client, experiment_id, grid) if resume else []
    if existing:
        run = existing[0]
        if run.data.tags.get(SPEC_TAG) not in (None, digest):
            raise TrackingError(
                f"the spec of experiment {grid!r} changed since its parent run {run.info.run_id} started; "
                "--resume needs the same spec (or start a new experiment name)"
            )
        client.update_run(run.info.run_id, status=RUN_RUNNING)
        client.set_tag(run.info.run_id, END_TAG, RESUMED)
        return GridRun(uri, experiment_id, run.info.run_id, grid)
    run = client.create_run(experiment_id, run_name=grid, tags={ROLE_TAG: ROLE_GRID, GRID_TAG: grid, SPEC_TAG: digest})
    shown = {**spec_json, "mlflow": {**spec_json.get("mlflow", {}), "tracking_uri": redact_uri(uri)}}
    client.log_text(run.info.run_id, json.dumps(shown, indent=2, sort_keys=True), SPEC_ARTIFACT)
    client.log_batch(run.info.run_id, params=_params({
        "experiment": grid, "scale": spec_json.get("scale"),
        "presets": ",".join(spec_json["grid"]["presets"]),
        "augmentations": ",".join(spec_json["grid"]["augmentations"]),
        "seeds": ",".join(str(s) for s in spec_json["grid"]["seeds"]),
    }))
    return GridRun(uri, experiment_id, run.info.run_id, grid)


def log_search(grid: GridRun, search: dict) -> None:
    """The parent run of a search: its searcher and samples per grid point as params, the whole
    ``search`` section (the spec's, as JSON) as ``search_space.json``. Kept on a resume."""
    client = client_for(grid.tracking_uri)
    logged = client.get_run(grid.parent_run_id).data.params
    params = {k: v for k, v in {SEARCHER_PARAM: search["searcher"], NUM_SAMPLES_PARAM: search["num_samples"]}.items()
              if k not in logged}
    if params:
        client.log_batch(grid.parent_run_id, params=_params(params))
    client.log_dict(grid.parent_run_id, search, SEARCH_SPACE_ARTIFACT)


def finish_grid_run(grid: GridRun, status: str, reason: str) -> None:
    client = client_for(grid.tracking_uri)
    client.set_tag(grid.parent_run_id, END_TAG, reason)
    client.set_terminated(grid.parent_run_id, status)


def child_runs(client, grid: GridRun) -> list:
    query = f"tags.`{PARENT_TAG}` = {_quote(grid.parent_run_id)}"
    return list(client.search_runs([grid.experiment_id], query, max_results=10_000))


def _params(values: dict):
    from mlflow.entities import Param

    # MLflow 3 accepts 6000 characters per value; a TrialConfig's longest is an index path.
    return [Param(k, "None" if v is None else str(v)[:6000]) for k, v in values.items()]


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class TrialRun:
    """The child run of one trial. Ending it is the caller's job (see :meth:`end`)."""

    def __init__(self, grid: GridRun, run_id: str) -> None:
        self.grid = grid
        self.run_id = run_id
        self.client = client_for(grid.tracking_uri)

    @classmethod
    def open(cls, grid: GridRun, cfg, *, family: str, tune_trial_id: str | None,
             run_name: str | None = None) -> "TrialRun":
        """Find this trial's child run (by parent + trial name) or create it; mark it RUNNING.
        ``run_name``: what MLflow's runs table shows (default the trial name); a reopened run
        takes it too."""
        client = client_for(grid.tracking_uri)
        query = f"tags.`{PARENT_TAG}` = {_quote(grid.parent_run_id)} and tags.`{TRIAL_TAG}` = {_quote(cfg.name)}"
        found = list(client.search_runs([grid.experiment_id], query, order_by=["attributes.start_time ASC"]))
        tags = {
            PARENT_TAG: grid.parent_run_id, ROLE_TAG: ROLE_TRIAL, GRID_TAG: grid.grid, TRIAL_TAG: cfg.name,
            MODEL_TAG: cfg.preset, CONFIG_TAG: cfg.config_label, CONFIG_TAG_FORMERLY: cfg.config_label, SEED_TAG: str(cfg.seed),
            FAMILY_TAG: family,
        }
        if tune_trial_id:
            tags[TUNE_TRIAL_ID_TAG] = tune_trial_id
        if found:
            run = found[0]
            client.update_run(run.info.run_id, status=RUN_RUNNING, name=run_name)
            _retire_error(client, run)  # the row shows this attempt, not the error that ended the last
            attempt = int(run.data.tags.get(ATTEMPT_TAG, "1")) + 1
            for key, value in {**tags, ATTEMPT_TAG: str(attempt), END_TAG: RUNNING}.items():
                client.set_tag(run.info.run_id, key, value)
            logged = run.data.params
        else:
            run = client.create_run(grid.experiment_id, run_name=run_name or cfg.name, tags={**tags, ATTEMPT_TAG: "1"})
            logged = {}
        params = {k: v for k, v in cfg.flat_params().items() if k not in logged}
        if params:
            client.log_batch(run.info.run_id, params=_params(params))
        return cls(grid, run.info.run_id)

    def log_sampled(self, values: dict) -> None:
        """A search's sampled ``values`` (``{section.field: value}``) as ``search.<section>.<field>``
        params, so MLflow's compare views plot results against them. A reopened run has them."""
        logged = self.client.get_run(self.run_id).data.params
        params = {SEARCH_PARAM_PREFIX + k: v for k, v in values.items() if SEARCH_PARAM_PREFIX + k not in logged}
        if params:
            self.client.log_batch(self.run_id, params=_params(params))

    def log_recipe(self, recipe) -> None:
        """The trial's resolved recipe (``engine.recipe.TrialRecipe``): ``recipe.*`` params (lr after
        scaling, batches, schedule, groups, views, ...) and the whole of it as ``recipe.json``.
        Params already logged (a resumed trial) are left as they are: MLflow params are immutable."""
        logged = self.client.get_run(self.run_id).data.params
        params = {k: v for k, v in recipe.mlflow_params().items() if k not in logged}
        if params:
            self.client.log_batch(self.run_id, params=_params(params))
        self.client.log_dict(self.run_id, recipe.model_dump(mode="json"), "recipe.json")

    def record_exploit(self, donor: str, epoch: int) -> None:
        """A population-based-training exploit: this trial continues from the checkpoint ``donor``
        (a trial name) wrote after ``epoch``, one tag per exploit and the latest donor."""
        self.client.set_tag(self.run_id, PBT_DONOR_TAG, donor)
        self.client.set_tag(self.run_id, f"{PBT_EXPLOIT_TAG_PREFIX}{epoch}", donor)

    def log_final(self, metrics: dict, step: int) -> None:
        """:func:`log_final_metrics` of this run."""
        log_final_metrics(self.client, self.run_id, metrics, step)

    def log_missing_epochs(self, history: list, extra: dict | None = None) -> int:
        """Log the epochs that ``history`` (``(checkpoint, metrics)`` of the Train run's kept
        checkpoints) holds and this run lacks, each with ``extra`` (what the epoch logger adds to
        every epoch: a PBT trial's values); returns how many. An interruption can kill the
        Train controller after an epoch's checkpoint was registered and before its MLflow call;
        the resumed run continues after that epoch and would never log it."""
        return log_epochs_if_missing(self.client, self.run_id, checkpoint_epochs(history, extra))

    def log_artifacts(self, cfg, predictions: dict, class_names: list[str]) -> None:
        from k400ray.tracking.artifacts import write_trial_artifacts

        with tempfile.TemporaryDirectory() as tmp:
            write_trial_artifacts(Path(tmp), cfg, predictions, class_names)
            self.client.log_artifacts(self.run_id, tmp)

    def finish(self, final: dict, step: int, artifacts: Path | None) -> None:
        """:func:`record_trial_end` of this run: raises what the client raises (a tracking
        outage), so that the caller can hold the end instead."""
        record_trial_end(self.client, self.run_id, final, step, artifacts)

    def end(self, status: str, *, reason: str, error: BaseException | str | None = None) -> None:
        """FINISHED, FAILED (with the error as a tag and ``error.txt``) or KILLED. Best effort:
        a tracking failure here must not hide the trial's own error. A run no longer RUNNING is
        left as it is: the driver closed it first (:func:`close_open_trials`, after an
        interruption), and a trial stopped by that interruption can reach here later with the
        error the stop raised in it (seen 2026-12-06: SIGTERM 8 s into a trial's start)."""
        try:
            if self.client.get_run(self.run_id).info.status != RUN_RUNNING:
                return
            if error is not None:
                if isinstance(error, BaseException):
                    summary, text = f"{type(error).__name__}: {error}", _error_text(error)
                else:
                    summary, text = error, error
                self.client.set_tag(self.run_id, ERROR_TAG, (summary.strip().splitlines() or ["?"])[0][:1000])
                self.client.log_text(self.run_id, text, "error.txt")
            self.client.set_tag(self.run_id, END_TAG, reason)
            self.client.set_terminated(self.run_id, status)
        except Exception:  # noqa: BLE001 - the driver closes what is left open (close_open_trials)
            logger.warning("could not end MLflow run %s as %s", self.run_id, status, exc_info=True)


def log_final_metrics(client, run_id: str, metrics: dict, step: int) -> None:
    """The final metrics (both modes, the best efficient-mode epoch, the epoch accurate mode
    evaluated) at step = last epoch, unless the epoch callback already logged the same value
    there (efficient_* of the last epoch)."""
    from mlflow.entities import Metric

    from k400ray.engine.trial import FINAL_METRICS

    now = int(time.time() * 1000)
    batch = []
    for key in FINAL_METRICS:
        if key not in metrics:
            continue
        value = shown_value(key, metrics[key])
        history = client.get_metric_history(run_id, key) if key in EPOCH_METRICS else []
        if any(m.step == step and _same(m.value, value) for m in history):
            continue
        batch.append(Metric(key, value, now, step))
    if batch:
        client.log_batch(run_id, metrics=batch)


def record_trial_end(client, run_id: str, final: dict, step: int, artifacts: Path | None, *,
                     status: str = RUN_FINISHED, reason: str = FINISHED) -> None:
    """A finished trial in MLflow: its final metrics, the files of ``artifacts`` (a folder:
    ``tracking.artifacts.write_trial_artifacts``), the end reason and the status. The one way a
    trial's end is recorded, whether at once or from the outbox after an outage."""
    log_final_metrics(client, run_id, final, step)
    if artifacts is not None:
        client.log_artifacts(run_id, str(artifacts))
    client.set_tag(run_id, END_TAG, reason)
    client.set_terminated(run_id, status)


def _retire_error(client, run) -> None:
    """Move ``run``'s error tag to ``k400ray.error.attempt<N>`` (N: the attempt it ended).
    The error tag is what the trials table and the sheet show next to a run's status; an error
    that ended an earlier attempt (or that the interruption itself raised) must not stand next
    to the status of the attempt that followed. ``error.txt`` keeps the last traceback."""
    error = run.data.tags.get(ERROR_TAG)
    if error is None:
        return
    attempt = run.data.tags.get(ATTEMPT_TAG, "1")
    client.set_tag(run.info.run_id, f"{ERROR_TAG}.attempt{attempt}", error)
    client.delete_tag(run.info.run_id, ERROR_TAG)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def log_epoch(client, run_id: str, metrics: dict, outbox=None) -> None:
    """One epoch's metrics (rank 0's report) at step = epoch. With an ``outbox``
    (:class:`~k400ray.tracking.outbox.Outbox`), a server that does not answer gets them later."""
    from mlflow.entities import Metric

    step = int(metrics[EPOCH])
    now = int(time.time() * 1000)
    keys = [*(k for k in EPOCH_METRICS if k in metrics), *(k for k in metrics if k.startswith(PBT_VALUE_PREFIX))]
    batch = [Metric(k, shown_value(k, metrics[k]), now, step) for k in keys]
    if outbox is not None:
        outbox.send(client, run_id, batch)
    elif batch:
        client.log_batch(run_id, metrics=batch)


def checkpoint_epochs(history: list, extra: dict | None = None) -> list[dict]:
    """The epoch metrics ``history`` (``(checkpoint, metrics)`` of the kept checkpoints) holds,
    each with ``extra``, as :func:`log_epoch` logs them (numbers only: they may wait in an outbox
    as JSON)."""
    epochs = []
    for _, metrics in history:
        if is_tested(metrics) or EPOCH not in metrics:
            continue
        merged = {**metrics, **(extra or {})}
        epochs.append({k: v for k, v in merged.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return epochs


def logged_epochs(client, run_id: str) -> set[int]:
    """The epochs the run has on its curves (the steps of its ``train_loss``)."""
    return {int(m.step) for m in client.get_metric_history(run_id, TRAIN_LOSS)}


def log_epochs_if_missing(client, run_id: str, epochs: list[dict]) -> int:
    """Log each of ``epochs`` whose step the run's ``train_loss`` lacks; returns how many."""
    logged = logged_epochs(client, run_id)
    missing = [m for m in epochs if int(m[EPOCH]) not in logged]
    for metrics in missing:
        log_epoch(client, run_id, metrics)
    return len(missing)


def close_open_trials(grid: GridRun, *, reason_by_trial_id: dict[str, str], default_reason: str,
                      interrupted_ids: Collection[str] = ()) -> int:
    """Trial runs still RUNNING after the Tuner returned belong to trial actors that were
    killed (Ctrl+C, SIGTERM, an early stop): mark them KILLED with the reason. So are the runs
    of ``interrupted_ids`` (trials Tune saved as interrupted) and of ``reason_by_trial_id``
    (trials ASHA stopped) that ended FAILED, with their reason ("interrupted" for the former):
    Ctrl+C or the stop can kill a trial's Train controller first, and the error that raised in
    the trial is the stop's, not the trial's. A closed run's error tag is retired
    (:func:`_retire_error`): a trial killed while it was ending its run can hold one. Returns
    how many."""
    client = client_for(grid.tracking_uri)
    interrupted, closed = set(interrupted_ids), 0
    for run in child_runs(client, grid):
        trial_id = run.data.tags.get(TUNE_TRIAL_ID_TAG, "")
        if run.info.status == RUN_RUNNING:
            reason = reason_by_trial_id.get(trial_id, default_reason)
        elif run.info.status == RUN_FAILED and (trial_id in interrupted or trial_id in reason_by_trial_id):
            reason = reason_by_trial_id.get(trial_id, INTERRUPTED)
        else:
            continue
        _retire_error(client, run)
        client.set_tag(run.info.run_id, END_TAG, reason)
        client.set_terminated(run.info.run_id, RUN_KILLED)
        closed += 1
    return closed

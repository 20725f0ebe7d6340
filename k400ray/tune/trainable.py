"""The Tune trial function: one grid point -> one ``TorchTrainer`` fit and its MLflow child run.

Ray 2.60 / Train V2: a Tune trial is a plain function that builds and fits its own trainer.
Two Ray Train callbacks run on the Train controller after each epoch's report:
:class:`~k400ray.tracking.epoch_callback.MlflowEpochLogger` logs rank 0's metrics to MLflow,
then ``TuneReportCallback`` forwards them to Tune (what ASHA sees; see
:mod:`k400ray.tune.forward`). In that order: a trial ASHA stops has its last epoch on record.
A trial Tune stopped (ASHA, an interruption) leaves its MLflow run to the driver, which knows
why it ended. The final
metrics, the artifacts and ``ray.tune.report`` of the final result happen here, after the fit.
Under population based training the epochs reach Tune with their checkpoints instead, and a
trial restarted by an exploit starts from its donor's checkpoint with the explored values
(:func:`k400ray.tune.pbt.fit`).

The Train run is named by :func:`~k400ray.tune.spec.trial_name`, with the spec's storage path:
a trial restarted by ``--resume`` (or a Tune retry) finds its own checkpoints there and
continues from the last epoch; one that had finished training only redoes what is missing.
Epoch metrics the tracking server did not take (an outage) wait in the trial's outbox
(:mod:`k400ray.tracking.outbox`) and are sent when the trial (re)starts and before its final
metrics. A trial waits for a server that does not answer before it starts (it holds no GPU
yet: ``mlflow.trial_start_wait_minutes``), and one that ends during an outage holds its end
(final metrics, artifacts, status) in the outbox and reports its result to Tune all the same:
the driver sends it when the server answers again.
"""

from __future__ import annotations

import sys

from k400ray.contracts import EPOCH, ERROR, FINISHED, INTERRUPTED, MLFLOW_RUN_ID, NODE_TAG, RUN_FAILED, RUN_KILLED
from k400ray.ray_private import trial_session_ended
from k400ray.tracking.mlflow_log import GridRun, TrialRun, checkpoint_epochs
from k400ray.tracking.outbox import Outbox, few_retries, outbox_location, server_answers, wait_until_answering
from k400ray.tune import pbt
from k400ray.tune.forward import ForwardToTune
from k400ray.tune.space import short_values
from k400ray.tune.spec import grid_point, sampled_trial, sampled_values, tune_trial_name


def _say(message: str) -> None:
    """A line in the driver's Ray log: Ray forwards a trial actor's stderr there, not its logging."""
    print(f"k400ray: {message}", file=sys.stderr, flush=True)


class TrialFailed(RuntimeError):
    """The trainer returned without a finished result (the message says why)."""


def grid_trial(params: dict, *, trials: dict, labels: dict[tuple, str], start_wait_minutes: float,
               class_names: list[str], grid: GridRun) -> None:
    """One Tune trial. ``params``: Tune's, naming the grid point (:func:`~k400ray.tune.spec.grid_point`);
    ``trials``: every point's ``TrialConfig`` as the driver built it from the spec (so the spec
    is read once, by the driver); ``labels``: every point's name in MLflow's runs table;
    ``start_wait_minutes``: how long to wait for an MLflow server that does not answer.

    A search's trial also has sampled values in ``params`` (:func:`~k400ray.tune.spec.sampled_values`):
    its point's config with them applied, named by its Tune trial id, is what it runs; its MLflow
    run holds them as ``search.<section>.<field>`` params."""
    import ray
    import ray.tune

    from k400ray.engine.recipe import resolve_recipe
    from k400ray.engine.trial import FINAL_METRICS, default_storage, run_trial
    from k400ray.tracking.epoch_callback import MlflowEpochLogger

    point = grid_point(params)
    cfg, label = trials[point], labels[point]
    values = sampled_values(params)
    trial_id = ray.tune.get_context().get_trial_id()
    if values:
        cfg = sampled_trial(cfg, values, name=tune_trial_name(grid.grid, params, trial_id))
        label = f"{label}·{short_values(values)}"
    mutated = pbt.mutated_values(params)  # a PBT trial's explored values (tune/pbt.py); else none
    if mutated:
        cfg = pbt.explored_config(cfg, mutated)
    recipe = resolve_recipe(cfg)  # once: the workers train with it, MLflow and checkpoints record it
    outbox = Outbox(outbox_location(cfg.storage_path or default_storage(), cfg.name), grid.tracking_uri)
    run = _start_run(grid, cfg, recipe, outbox, run_name=label, sampled=values, start_wait_minutes=start_wait_minutes)
    try:
        epoch_logger = MlflowEpochLogger(grid.tracking_uri, run.run_id, outbox=outbox,
                                         extra=pbt.epoch_values(mutated))
        if not mutated:  # PBT restarts trials at each perturbation and accounts for its epochs itself
            _log_checkpointed_epochs(run, cfg, epoch_logger.extra)
        if mutated:
            outcome = pbt.fit(cfg, recipe=recipe, callbacks=[epoch_logger], values=mutated,
                              on_exploit=run.record_exploit)
        else:
            # MLflow first: once Tune has an epoch, ASHA may stop the trial, and its process
            # goes with the Train controller that runs these callbacks.
            outcome = run_trial(cfg, recipe=recipe, callbacks=[epoch_logger, ForwardToTune()])
        if outcome.error:
            raise TrialFailed(f"{cfg.name}: {outcome.error}")
        _end_or_hold(run, outbox, cfg, outcome, class_names, extra=epoch_logger.extra)
    except (KeyboardInterrupt, SystemExit):
        run.end(RUN_KILLED, reason=INTERRUPTED)
        raise
    except BaseException as exc:
        if not trial_session_ended():  # else Tune stopped it: the driver ends its run, and says why
            run.end(RUN_FAILED, reason=ERROR, error=exc)
        raise
    final = {k: outcome.metrics[k] for k in (EPOCH, *FINAL_METRICS) if k in outcome.metrics}
    ray.tune.report({**final, FINISHED: 1, MLFLOW_RUN_ID: run.run_id})


def _start_run(grid: GridRun, cfg, recipe, outbox: Outbox, *, run_name: str, start_wait_minutes: float,
               sampled: dict | None = None) -> TrialRun:
    """Open (or reopen) the trial's MLflow run, log its sampled values (``sampled``: a search's
    ``{section.field: value}``), send what an earlier attempt held, log the recipe and tag its node, waiting up to ``start_wait_minutes`` in all for a server that does not answer,
    before or between those calls (a run already opened is not opened again, so the attempt
    count stays right). A call that fails while the server answers is a real error: raised."""
    import time

    import ray
    import ray.tune

    deadline = time.monotonic() + 60 * start_wait_minutes
    run = None
    while True:
        if not wait_until_answering(grid.tracking_uri, limit_s=max(0.0, deadline - time.monotonic()),
                                    what=f"trial {cfg.name}", say=_say):
            raise TrialFailed(f"{cfg.name}: the MLflow server {grid.tracking_uri} did not answer for "
                              f"{start_wait_minutes:g} min (mlflow.trial_start_wait_minutes)")
        try:
            with few_retries():
                if run is None:
                    run = TrialRun.open(grid, cfg, family=cfg.resolved_preset().arch.family,
                                        tune_trial_id=ray.tune.get_context().get_trial_id(), run_name=run_name)
                if sampled:
                    run.log_sampled(sampled)
                outbox.flush(run.client)  # what an earlier attempt held during an outage
                run.log_recipe(recipe)
                # Which node drove the trial: on a cluster, where to look for its logs. Set last:
                # a run tagged with this attempt's node has made every call of its start.
                run.client.set_tag(run.run_id, NODE_TAG, ray.get_runtime_context().get_node_id())
            return run
        except Exception as exc:  # noqa: BLE001 - an outage is waited for; anything else is raised
            if server_answers(grid.tracking_uri):
                raise
            _say(f"trial {cfg.name}: the MLflow server stopped answering while the trial started ({exc}); waiting")


def _log_checkpointed_epochs(run: TrialRun, cfg, extra: dict | None) -> None:
    """Before the fit resumes: the epochs an earlier attempt checkpointed and never logged (an
    interruption between the checkpoint and its MLflow call). The resumed fit goes on after them,
    and with two checkpoints kept, its own history may no longer hold them at its end. Best
    effort: the server answered at the start; a failure here loses only this catch-up."""
    from k400ray.engine.checkpoint import run_checkpoint_metrics
    from k400ray.engine.trial import train_run_dir

    earlier = run_checkpoint_metrics(train_run_dir(cfg))
    if not earlier or not server_answers(run.grid.tracking_uri):
        return
    try:
        with few_retries():  # a server gone since the start must not hold the fit for minutes
            logged = run.log_missing_epochs([(None, m) for m in earlier], extra)
    except Exception as exc:  # noqa: BLE001 - tracking only
        _say(f"trial {cfg.name}: could not log the epochs of its earlier checkpoints ({exc})")
        return
    if logged:
        _say(f"trial {cfg.name}: logged {logged} epoch(s) its earlier attempt checkpointed and did not log")


def _end_or_hold(run: TrialRun, outbox: Outbox, cfg, outcome, class_names: list[str], *,
                 extra: dict | None = None) -> bool:
    """Record the finished trial in MLflow (held epochs, epochs the run lacks with ``extra``, as
    the epoch logger logs them, final metrics, artifacts, FINISHED); when the server does not
    answer or a call fails, hold the end in the outbox instead. True when MLflow has it all."""
    import tempfile
    from pathlib import Path

    from k400ray.engine.trial import FINAL_METRICS
    from k400ray.tracking.artifacts import write_trial_artifacts

    step = int(outcome.metrics[EPOCH])
    with tempfile.TemporaryDirectory() as tmp:
        write_trial_artifacts(Path(tmp), cfg, outcome.predictions, class_names)
        if server_answers(run.grid.tracking_uri):
            try:
                with few_retries():
                    outbox.flush(run.client)
                    run.log_missing_epochs(outcome.history, extra)
                    run.finish(outcome.metrics, step, Path(tmp))
                return True
            except Exception as exc:  # noqa: BLE001 - any tracking failure: hold it, the result is safe
                _say(f"trial {cfg.name}: MLflow did not take its end ({exc}); held in {outbox.location}")
        else:
            _say(f"trial {cfg.name}: the MLflow server does not answer at its end; held in {outbox.location}")
        final = {k: float(outcome.metrics[k]) for k in FINAL_METRICS if k in outcome.metrics}
        outbox.hold_end(run.run_id, final=final, step=step, artifacts=Path(tmp),
                        epochs=checkpoint_epochs(outcome.history, extra))
    return False

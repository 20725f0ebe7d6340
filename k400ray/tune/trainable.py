"""The Tune trial function: one grid point -> one ``TorchTrainer`` fit and its MLflow child run.

Ray 2.60 / Train V2: a Tune trial is a plain function that builds and fits its own trainer.
Two Ray Train callbacks run on the Train controller after each epoch's report:
``TuneReportCallback`` forwards rank 0's metrics to Tune (what ASHA sees; ``done`` renamed,
see :data:`k400ray.tune.forward.FINISHED_KEY`), and
:class:`~k400ray.tracking.epoch_callback.MlflowEpochLogger` logs them to MLflow. The final
metrics, the artifacts and ``ray.tune.report`` of the final result happen here, after the fit.

The Train run is named by :func:`~k400ray.tune.spec.trial_name`, with the spec's storage path:
a trial restarted by ``--resume`` (or a Tune retry) finds its own checkpoints there and
continues from the last epoch; one that had finished training only redoes what is missing.
Epoch metrics the tracking server did not take (an outage) wait in the trial's outbox
(:mod:`k400ray.tracking.outbox`) and are sent when the trial (re)starts and before its final
metrics.
"""

from __future__ import annotations

from k400ray.tracking.mlflow_log import GridRun, TrialRun
from k400ray.tracking.outbox import Outbox, outbox_location
from k400ray.tune.forward import FINISHED_KEY, ForwardToTune
from k400ray.tune.spec import SearchSpec, grid_point, run_label, trial_config


class TrialFailed(RuntimeError):
    """The trainer returned without a finished result (the message says why)."""


def grid_trial(params: dict, *, spec: dict, num_classes: int, class_names: list[str], grid: GridRun) -> None:
    import ray
    import ray.tune

    from k400ray.engine.recipe import resolve_recipe
    from k400ray.engine.trial import FINAL_METRICS, default_storage, run_trial
    from k400ray.tracking.epoch_callback import MlflowEpochLogger

    search = SearchSpec.model_validate(spec)
    point = grid_point(params)
    cfg = trial_config(search, *point, num_classes=num_classes)
    run = TrialRun.open(grid, cfg, family=cfg.resolved_preset().arch.family,
                        tune_trial_id=ray.tune.get_context().get_trial_id(),
                        run_name=run_label(*point, [p for p, _, _ in search.grid_points()]))
    # Which node drove the trial: on a cluster, where to look for its logs.
    run.client.set_tag(run.run_id, "ray_node_id", ray.get_runtime_context().get_node_id())
    outbox = Outbox(outbox_location(cfg.storage_path or default_storage(), cfg.name), grid.tracking_uri)
    try:
        outbox.flush(run.client)  # what an earlier attempt held during an outage
        recipe = resolve_recipe(cfg)  # once: the workers train with it, MLflow and checkpoints record it
        run.log_recipe(recipe)
        epoch_logger = MlflowEpochLogger(grid.tracking_uri, run.run_id, outbox=outbox)
        outcome = run_trial(cfg, recipe=recipe, callbacks=[ForwardToTune(), epoch_logger])
        if outcome.error:
            raise TrialFailed(f"{cfg.name}: {outcome.error}")
        outbox.flush(run.client)  # MLflow's client waits out a short outage here (~4 min of retries)
        run.log_missing_epochs(outcome.history)
        run.log_final(outcome.metrics, step=int(outcome.metrics["epoch"]))
        run.log_artifacts(cfg, outcome.predictions, class_names)
    except (KeyboardInterrupt, SystemExit):
        run.end("KILLED", reason="interrupted")
        raise
    except BaseException as exc:
        run.end("FAILED", reason="error", error=exc)
        raise
    run.end("FINISHED", reason="done")
    final = {k: outcome.metrics[k] for k in ("epoch", *FINAL_METRICS) if k in outcome.metrics}
    ray.tune.report({**final, FINISHED_KEY: 1, "mlflow_run_id": run.run_id})

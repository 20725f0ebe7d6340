"""The Train callback that forwards each epoch's report to Tune, in a module of its own.

It runs on the Train controller, which imports the module of every callback it is given; this
one imports only Ray, so the controller does not load the spec, presets and torchvision that
``tune.trainable`` brings (see ``engine.entry`` for the same reason).
"""

from __future__ import annotations

from ray.tune.integration.ray_train import TuneReportCallback

# Tune reads a truthy ``done`` in a result as "this trial is over" and stops its actor at
# once; the worker's final report carries ``done=1``, so forwarded as is, it would kill the
# trial function before the final metrics and artifacts reach MLflow. Forwarded as ``trained``;
# the trial function's own last report says ``finished``.
FINISHED_KEY = "finished"


class ForwardToTune(TuneReportCallback):
    """Forwards every epoch's report to Tune: the driver's console shows each epoch
    (:mod:`k400ray.tune.progress`). Only the evaluated epochs (every ``eval_interval``-th and
    the last) carry ``efficient_acc1``, ASHA's metric; ASHA skips the others, and the runner
    lets them through Tune's strict metric check."""

    def after_report(self, run_context, metrics, checkpoint):
        renamed = [{("trained" if k == "done" else k): v for k, v in m.items()} for m in metrics]
        super().after_report(run_context, renamed, checkpoint)

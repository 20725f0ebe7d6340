"""The Train callback that forwards each epoch's report to Tune, in a module of its own.

It runs on the Train controller, which imports the module of every callback it is given; this
one imports only Ray, so the controller does not load the spec, presets and torchvision that
``tune.trainable`` brings (see ``engine.entry`` for the same reason).

Reports go to Tune as the worker wrote them: its final one says
:data:`~k400ray.contracts.TESTED`, not Tune's ``done``, which Tune reads as "this trial is
over" and which would stop the trial function before its final metrics and artifacts reach
MLflow. The trial function's own last report says :data:`~k400ray.contracts.FINISHED`.
"""

from __future__ import annotations

from ray.tune.integration.ray_train import TuneReportCallback


class ForwardToTune(TuneReportCallback):
    """Forwards every epoch's report to Tune: the driver's console shows each epoch
    (:mod:`k400ray.tune.progress`). Only the evaluated epochs (every ``eval_interval``-th and
    the last) carry ``efficient_acc1``, ASHA's metric; ASHA skips the others, and the runner
    lets them through Tune's strict metric check."""

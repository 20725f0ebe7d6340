"""Per-epoch metrics to MLflow from the Ray Train controller.

A ``ray.train.UserCallback`` runs on the Train controller after every ``ray.train.report``
of the worker group, with every rank's metrics: rank 0's are logged to the trial's child run,
step = epoch. The final report (``tested=1``) is left to the trial function, which logs the
final metrics and artifacts once the fit returned. With an ``outbox``, an epoch the tracking
server does not take (it is down) is held on the trial's storage and sent later
(:mod:`k400ray.tracking.outbox`), without holding up training.
"""

from __future__ import annotations

import logging

from ray.train import UserCallback

from k400ray.contracts import EPOCH, is_tested
from k400ray.tracking.mlflow_log import client_for, log_epoch

logger = logging.getLogger(__name__)


class MlflowEpochLogger(UserCallback):
    def __init__(self, tracking_uri: str, run_id: str, outbox=None, extra: dict | None = None) -> None:
        """``extra``: metrics logged with every epoch beside the worker's (a PBT trial's values)."""
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.outbox = outbox
        self.extra = dict(extra or {})
        self._client = None

    def after_report(self, run_context, metrics, checkpoint) -> None:
        latest = metrics[0] if metrics else {}
        if is_tested(latest) or EPOCH not in latest:
            return
        try:
            if self._client is None:
                self._client = client_for(self.tracking_uri)
            log_epoch(self._client, self.run_id, {**latest, **self.extra}, outbox=self.outbox)
        except Exception:  # noqa: BLE001 - a tracking outage must not stop training
            logger.warning("could not log epoch %s to MLflow run %s", latest.get(EPOCH), self.run_id, exc_info=True)

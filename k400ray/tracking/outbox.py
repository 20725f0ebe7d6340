"""Metrics the MLflow server could not take, held beside the trial's checkpoints until it can.

Why: a grid trains for days and its tracking server restarts in between (an upgrade, an OOM
kill, the head rebooted). Training must not stop for it, and no epoch's metrics may be lost.
The Train controller's epoch logger asks the server's ``/health`` first (a refused connection
answers at once; MLflow's own client would retry for about 4 minutes while the controller
waits) and, when it does not answer or the send fails, writes the batch here instead.

Each held batch is one small JSON file ``<storage_path>/<trial>/mlflow-outbox/<time>.json``,
through pyarrow's filesystems: the same code for a local or NFS path and for ``s3://``, where
a file cannot be appended to (hence a file per batch, not one JSONL). The trial's storage
outlives the node that wrote it, so a trial retried elsewhere (a lost node, ``--resume``)
still finds them. They are sent, oldest first, at the next epoch that reaches the server, when
the trial (re)starts, and before its final metrics; each file is deleted once MLflow took it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import contextmanager

logger = logging.getLogger(__name__)

OUTBOX_DIR = "mlflow-outbox"


def outbox_location(storage_path: str, trial: str) -> str:
    """Where a trial's held metrics go: inside its Train run directory."""
    return f"{storage_path.rstrip('/')}/{trial}/{OUTBOX_DIR}"


def server_answers(tracking_uri: str, timeout_s: float = 5.0) -> bool:
    """Whether an MLflow server answers ``/health`` (any HTTP answer counts: a proxy or an auth
    layer in front of it is not an outage). Non-HTTP stores (SQLite) are always asked directly."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout_s):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


@contextmanager
def _few_retries():
    """MLflow's client retries a failing request ~4 minutes; the epoch logger holds the batch
    instead. The variables are read per request; the Train controller is a process of its own."""
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
    before = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Outbox:
    """The held batches of one trial (picklable: it travels to the Train controller)."""

    def __init__(self, location: str, tracking_uri: str) -> None:
        self.location = location
        self.tracking_uri = tracking_uri

    def _fs(self):
        import pyarrow.fs

        return pyarrow.fs.FileSystem.from_uri(self.location)

    def send(self, client, run_id: str, metrics: list) -> bool:
        """Send what is held, then ``metrics`` (``mlflow.entities.Metric``); hold ``metrics`` when
        the server does not answer or the send fails. True when MLflow has everything."""
        if server_answers(self.tracking_uri):
            try:
                with _few_retries():
                    self.flush(client)
                    client.log_batch(run_id, metrics=metrics)
                return True
            except Exception as exc:  # noqa: BLE001 - any tracking failure: hold, keep training
                logger.warning("MLflow did not take the metrics of run %s (%s): held in %s",
                               run_id, exc, self.location)
        else:
            logger.warning("MLflow server does not answer: metrics of run %s held in %s", run_id, self.location)
        self.hold(run_id, metrics)
        return False

    def hold(self, run_id: str, metrics: list) -> str:
        """Write one batch; returns its path. Named by time, then a random part: sorted = sent order."""
        fs, root = self._fs()
        fs.create_dir(root, recursive=True)
        path = f"{root}/{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        record = {"run_id": run_id,
                  "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                              for m in metrics]}
        with fs.open_output_stream(path) as out:
            out.write(json.dumps(record).encode())
        return path

    def pending(self) -> list[str]:
        """The held batches, oldest first."""
        import pyarrow.fs

        fs, root = self._fs()
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pyarrow.fs.FileType.File and i.path.endswith(".json"))

    def flush(self, client) -> int:
        """Send every held batch, oldest first, deleting each once MLflow took it; raises what
        the client raises (the rest stay held). Returns how many batches were sent."""
        from mlflow.entities import Metric

        fs, _ = self._fs()
        sent = 0
        for path in self.pending():
            with fs.open_input_stream(path) as stream:
                record = json.loads(stream.read())
            batch = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in record["metrics"]]
            if batch:
                client.log_batch(record["run_id"], metrics=batch)
            fs.delete_file(path)
            sent += 1
        if sent:
            logger.info("sent %d held metric batch(es) to MLflow from %s", sent, self.location)
        return sent

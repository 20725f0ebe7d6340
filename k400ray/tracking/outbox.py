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

A trial that ends while the server is down holds its end too (:meth:`Outbox.hold_end`: the
final metrics, its artifacts in a folder beside the record, the status): the trial's result is
safe in its checkpoints and Tune's state, so it reports finished instead of failing on the
tracking server. ``k400ray tune`` sends every trial's held records when a grid ends and when it
starts (``--resume``), before it closes runs left open (:func:`send_held`).

Each epoch is on a run's curves once: an epoch batch (it holds ``train_loss``) whose step the run
already has is dropped, live or held. A node lost after its epoch's metrics were held and before
that epoch's checkpoint was recorded makes the retry train the epoch again; MLflow cannot delete
a point, so the first one logged stays (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from k400ray.contracts import FINISHED, RUN_FINISHED, TRAIN_LOSS

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


def wait_until_answering(tracking_uri: str, *, limit_s: float, what: str, poll_s: float = 5.0,
                         say=logger.warning) -> bool:
    """Whether the server answers within ``limit_s``, asking every ``poll_s`` and saying so once a
    minute (``what``: who waits, e.g. "trial X"). A trial that could record nothing waits here
    before it starts, holding no GPU; the driver waits here before it ends the grid's runs."""
    deadline = time.monotonic() + limit_s
    said = float("-inf")
    while True:
        if server_answers(tracking_uri):
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - said >= 60:
            left = deadline - now
            say(f"{what}: the MLflow server {tracking_uri} does not answer; waiting for it (at most "
                + (f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min") + " more)")
            said = now
        time.sleep(min(poll_s, max(0.0, deadline - now)))


@contextmanager
def few_retries():
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
        """Send what is held, then ``metrics`` (``mlflow.entities.Metric``; an epoch batch the run
        already has is dropped); hold ``metrics`` when the server does not answer or the send
        fails. True when MLflow has everything."""
        if server_answers(self.tracking_uri):
            try:
                with few_retries():
                    self.flush(client)
                    step = _epoch_step(metrics)
                    if step is None or step not in _logged_epochs(client, run_id):
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
        record = {"run_id": run_id,
                  "metrics": [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                              for m in metrics]}
        return self._write(record)

    def hold_end(self, run_id: str, *, final: dict, step: int, artifacts: Path | None,
                 status: str = RUN_FINISHED, reason: str = FINISHED, epochs: list[dict] | None = None) -> str:
        """Hold a trial's end: its final metrics (at ``step``), the files of ``artifacts`` (copied
        into a folder beside the record) and the status it ends with. ``epochs``: the epoch
        metrics its checkpoints hold, logged when it is sent where the run lacks them (a node
        lost after an epoch's checkpoint and before its report reached MLflow or this outbox,
        while the server was down: the retry, ending in that outage, cannot tell what is missing)."""
        import pyarrow.fs

        fs, root = self._fs()
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        folder = None
        if artifacts is not None:
            folder = f"{stamp}-artifacts"
            fs.create_dir(f"{root}/{folder}", recursive=True)
            pyarrow.fs.copy_files(str(artifacts), f"{root}/{folder}", destination_filesystem=fs)
        return self._write({"run_id": run_id, "end": {"final": final, "step": step, "artifacts": folder,
                                                      "status": status, "reason": reason,
                                                      "epochs": epochs or []}}, stamp)

    def _write(self, record: dict, stamp: str | None = None) -> str:
        fs, root = self._fs()
        fs.create_dir(root, recursive=True)
        path = f"{root}/{stamp or f'{time.time_ns():020d}-{uuid.uuid4().hex[:8]}'}.json"
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
        """Send every held record, oldest first, deleting each once MLflow took it; raises what
        the client raises (the rest stay held). Returns how many records were sent."""
        from mlflow.entities import Metric

        from k400ray.tracking.mlflow_log import log_epochs_if_missing, record_trial_end

        fs, root = self._fs()
        sent = 0
        for path in self.pending():
            with fs.open_input_stream(path) as stream:
                record = json.loads(stream.read())
            batch = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in record.get("metrics", [])]
            step = _epoch_step(batch)
            if batch and (step is None or step not in _logged_epochs(client, record["run_id"])):
                client.log_batch(record["run_id"], metrics=batch)
            end = record.get("end")
            if end:
                log_epochs_if_missing(client, record["run_id"], end.get("epochs", []))
                with _local_copy(fs, f"{root}/{end['artifacts']}" if end.get("artifacts") else None) as artifacts:
                    record_trial_end(client, record["run_id"], end["final"], int(end["step"]), artifacts,
                                     status=end["status"], reason=end["reason"])
                if end.get("artifacts"):
                    fs.delete_dir(f"{root}/{end['artifacts']}")
            fs.delete_file(path)
            sent += 1
        if sent:
            logger.info("sent %d held record(s) to MLflow from %s", sent, self.location)
        return sent


def _epoch_step(metrics: list) -> int | None:
    """The epoch of an epoch batch (the step of its ``train_loss``); None for other metrics."""
    return next((int(m.step) for m in metrics if m.key == TRAIN_LOSS), None)


def _logged_epochs(client, run_id: str) -> set[int]:
    from k400ray.tracking.mlflow_log import logged_epochs

    return logged_epochs(client, run_id)


@contextmanager
def _local_copy(fs, folder: str | None):
    """A local folder holding ``folder``'s files (the held artifacts may be on S3), or None."""
    if folder is None:
        yield None
        return
    import pyarrow.fs

    with tempfile.TemporaryDirectory() as tmp:
        pyarrow.fs.copy_files(folder, tmp, source_filesystem=fs)
        yield Path(tmp)


def send_held(tracking_uri: str, locations: list[str]) -> tuple[int, int]:
    """Send what the outboxes at ``locations`` hold (a grid's trials); (records sent, outboxes
    that still hold some). Best effort, outbox by outbox: one that fails keeps its records."""
    from k400ray.tracking.mlflow_log import client_for

    client, sent, left = client_for(tracking_uri), 0, 0
    for location in locations:
        outbox = Outbox(location, tracking_uri)
        try:
            if not outbox.pending():
                continue
            with few_retries():
                sent += outbox.flush(client)
        except Exception as exc:  # noqa: BLE001 - kept for the next grid start
            logger.warning("could not send the records held in %s (%s)", location, exc)
            left += 1
    return sent, left

"""The outbox: epoch metrics a tracking server did not take are held on the trial's storage and
sent, oldest first, once it answers; nothing is lost and nothing is sent twice."""

from __future__ import annotations

import socket

from mlflow.entities import Metric

from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.outbox import Outbox, outbox_location, server_answers


def _closed_port_uri() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket closes


def _run(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = ml.client_for(uri)
    run = client.create_run(client.create_experiment("x"))
    return client, run.info.run_id


def test_metrics_held_while_the_server_is_down_are_sent_in_order_when_it_answers(tmp_path):
    client, run_id = _run(tmp_path)
    down = _closed_port_uri()
    assert not server_answers(down)
    box = Outbox(outbox_location(str(tmp_path / "runs"), "trial"), down)
    for epoch in (1, 2):  # the server is down: both epochs held, the callers go on
        ml.log_epoch(client, run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "lr": 0.1}, outbox=box)
    assert len(box.pending()) == 2 and (tmp_path / "runs" / "trial" / "mlflow-outbox").is_dir()
    assert client.get_metric_history(run_id, "train_loss") == []

    box.tracking_uri = client.tracking_uri  # the server is back (a SQLite store always answers)
    ml.log_epoch(client, run_id, {"epoch": 3, "train_loss": 0.25, "lr": 0.1}, outbox=box)
    history = client.get_metric_history(run_id, "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5), (3, 0.25)]
    assert box.pending() == [] and box.flush(client) == 0  # each sent once, then deleted


def test_a_failing_send_is_held_and_flushed_later(tmp_path):
    client, run_id = _run(tmp_path)

    class Refusing:
        def log_batch(self, *args, **kwargs):
            raise ConnectionError("503 from a proxy")

    box = Outbox(str(tmp_path / "outbox"), client.tracking_uri)
    assert not box.send(Refusing(), run_id, [Metric("train_loss", 2.0, 1, 1)])
    assert len(box.pending()) == 1
    assert box.flush(client) == 1 and box.pending() == []
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")] == [(1, 2.0)]


def test_an_end_held_during_an_outage_finishes_the_run_when_sent(tmp_path):
    """A trial that ends while the server is down holds its final metrics, artifacts and status;
    sent later, the run ends as if the server had never gone (and the outbox is empty)."""
    from k400ray.tracking.outbox import send_held

    client, run_id = _run(tmp_path)
    artifacts = tmp_path / "made"
    artifacts.mkdir()
    (artifacts / "config.json").write_text('{"preset": "tsn"}')
    location = outbox_location(str(tmp_path / "runs"), "trial")
    box = Outbox(location, _closed_port_uri())
    box.hold(run_id, [Metric("train_loss", 0.5, 1, 2)])  # the last epoch, held by the epoch logger
    box.hold_end(run_id, final={"efficient_acc1": 75.0, "accurate_acc1": 80.0}, step=2, artifacts=artifacts)
    assert len(box.pending()) == 2
    assert client.get_run(run_id).info.status == "RUNNING"

    other = outbox_location(str(tmp_path / "runs"), "nothing-held")
    assert send_held(client.tracking_uri, [location, other]) == (2, 0)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags[ml.END_TAG] == "finished"
    assert run.data.metrics["accurate_acc1"] == 80.0 and run.data.metrics["train_loss"] == 0.5
    assert [a.path for a in client.list_artifacts(run_id)] == ["config.json"]
    assert box.pending() == [] and not any((tmp_path / "runs" / "trial" / "mlflow-outbox").iterdir())


def test_a_held_end_logs_the_checkpoint_epochs_the_run_lacks_once(tmp_path):
    """A node lost after epoch 3's checkpoint and before its report reached MLflow or the outbox,
    while the server was down: the retry only ends the trial, in the outage, and holds its end
    with the epochs its checkpoints hold. Sent later, the run gets epoch 3 (which it lacked) and
    not epochs 1-2 again (held earlier, sent first), then its end. Seen once in the two-node
    fault test under load (2026-12-06): the run had train_loss at steps 1 and 2 only."""
    from k400ray.tracking.mlflow_log import checkpoint_epochs
    from k400ray.tracking.outbox import send_held

    client, run_id = _run(tmp_path)
    client.log_batch(run_id, metrics=[Metric("train_loss", 1.0, 1, 1)])  # epoch 1 reached MLflow
    box = Outbox(outbox_location(str(tmp_path / "runs"), "trial"), _closed_port_uri())
    box.hold(run_id, [Metric("train_loss", 0.8, 2, 2)])  # epoch 2 held in the outage
    history = [(None, {"epoch": e, "train_loss": 1.2 - 0.2 * e, "efficient_acc1": 25.0 * e, "note": "text"})
               for e in (1, 2, 3)] + [(None, {"epoch": 3, "tested": 1, "train_loss": 0.6})]
    epochs = checkpoint_epochs(history, {"pbt.training.lr": 0.01})
    assert [m["epoch"] for m in epochs] == [1, 2, 3] and "note" not in epochs[0]  # numbers only, not the test
    box.hold_end(run_id, final={"efficient_acc1": 75.0}, step=3, artifacts=None, epochs=epochs)
    assert send_held(client.tracking_uri, [box.location]) == (2, 0)
    history_logged = client.get_metric_history(run_id, "train_loss")
    assert sorted((m.step, round(m.value, 6)) for m in history_logged) == [(1, 1.0), (2, 0.8), (3, 0.6)]
    assert [m.step for m in client.get_metric_history(run_id, "pbt.training.lr")] == [3]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_an_epoch_trained_again_by_a_retry_stays_one_point_on_the_curve(tmp_path):
    """Seen in the two-node fault test (2026-12-06): attempt 1 held epoch 3's metrics in the
    outage and its node was lost before epoch 3's checkpoint was recorded; the retry trained epoch
    3 again from epoch 2's checkpoint and held it too. Sent, the run has one epoch 3 (the first
    held: MLflow cannot delete a point), and an epoch batch for a step the run has is dropped live too."""
    client, run_id = _run(tmp_path)
    box = Outbox(outbox_location(str(tmp_path / "runs"), "trial"), _closed_port_uri())
    for epoch, loss in ((1, 1.0), (2, 0.8), (3, 0.6)):
        ml.log_epoch(client, run_id, {"epoch": epoch, "train_loss": loss, "lr": 0.1}, outbox=box)  # attempt 1
    ml.log_epoch(client, run_id, {"epoch": 3, "train_loss": 0.61, "lr": 0.1}, outbox=box)  # the retry's epoch 3
    box.tracking_uri = client.tracking_uri  # the server is back
    assert box.flush(client) == 4 and box.pending() == []
    curve = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train_loss"))
    assert curve == [(1, 1.0), (2, 0.8), (3, 0.6)]
    assert [m.step for m in client.get_metric_history(run_id, "lr")] == [1, 2, 3]
    ml.log_epoch(client, run_id, {"epoch": 3, "train_loss": 0.62, "lr": 0.1}, outbox=box)  # live, server up
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2, 3]
    assert box.send(client, run_id, [Metric("accurate_acc1", 50.0, 5, 3)])  # not an epoch batch: logged
    assert [m.value for m in client.get_metric_history(run_id, "accurate_acc1")] == [50.0]


def test_waiting_for_a_server_gives_up_after_its_limit_and_says_why():
    from k400ray.tracking.outbox import wait_until_answering

    said = []
    assert not wait_until_answering(_closed_port_uri(), limit_s=0.3, what="trial t", poll_s=0.1, say=said.append)
    assert len(said) == 1 and said[0].startswith("trial t: the MLflow server") and "does not answer" in said[0]
    assert wait_until_answering("sqlite:///x.db", limit_s=0, what="trial t", say=said.append) and len(said) == 1


def test_a_resumed_trial_finds_the_epochs_its_earlier_attempt_checkpointed(tmp_path):
    """The metrics of a Train run's kept checkpoints, oldest first (what a trial resumed by
    `--resume` logs before its fit when its run lacks them: an interruption between an epoch's
    checkpoint and its MLflow call, with two later checkpoints, lost epoch 1's curve once)."""
    import json

    from k400ray.engine.checkpoint import METRICS, run_checkpoint_metrics

    run_dir = tmp_path / "runs" / "trial"
    for n, epoch in ((1, 2), (0, 1)):
        (run_dir / f"checkpoint_{n:06d}").mkdir(parents=True)
        (run_dir / f"checkpoint_{n:06d}" / METRICS).write_text(json.dumps({"epoch": epoch, "train_loss": 1.0 / epoch}))
    (run_dir / "checkpoint_000002").mkdir()  # one being written: no metrics yet
    assert [m["epoch"] for m in run_checkpoint_metrics(str(run_dir))] == [1, 2]
    assert run_checkpoint_metrics(str(tmp_path / "none")) == []
    client, run_id = _run(tmp_path)
    client.log_batch(run_id, metrics=[Metric("train_loss", 0.5, 1, 2)])
    from k400ray.tracking.mlflow_log import checkpoint_epochs, log_epochs_if_missing

    assert log_epochs_if_missing(client, run_id, checkpoint_epochs([(None, m) for m in run_checkpoint_metrics(str(run_dir))])) == 1
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2]

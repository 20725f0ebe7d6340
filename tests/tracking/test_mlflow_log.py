"""Parent/child runs found again by tags; runs always end; per-epoch and final metrics; artifacts."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions
from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.artifacts import write_trial_artifacts

SPEC = {"experiment": "g", "scale": "toy", "data": {"train_index": "/i"}, "grid": {
    "presets": ["tsn_r50_1x1x8"], "augmentations": ["default"], "seeds": [0]}, "training": {"epochs": 2}}


@pytest.fixture()
def uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = ml.resolve_tracking_uri("sqlite:///db/mlflow.db")
    ml.prepare_store(resolved)
    return resolved


def _cfg(name="g-tsn_r50_1x1x8-default-s0", **kw) -> TrialConfig:
    return TrialConfig(preset="tsn_r50_1x1x8", scale="toy", train_index="/i", val_index="/i", num_classes=3,
                       name=name, **kw)


def _preds(labels, top1) -> Predictions:
    top = np.array([[t, (t + 1) % 3, (t + 2) % 3, -1, -1] for t in top1])
    return Predictions([f"v{i}" for i in range(len(labels))], np.array(labels), top, np.ones((len(labels), 5)))


def test_relative_sqlite_uri_becomes_absolute_and_only_prepare_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = ml.resolve_tracking_uri("sqlite:///db/mlflow.db")
    assert uri == f"sqlite:///{tmp_path}/db/mlflow.db" and not (tmp_path / "db").exists()
    ml.prepare_store(uri)
    assert (tmp_path / "db").is_dir()
    assert ml.resolve_tracking_uri("http://host:5000") == "http://host:5000"


def test_parent_is_new_per_run_and_reused_on_resume(uri):
    first = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    again = ml.open_grid_run(uri, "exp", "g", SPEC, resume=True)
    assert again.parent_run_id == first.parent_run_id
    client = ml.client_for(uri)
    assert client.get_run(first.parent_run_id).info.status == "RUNNING"
    assert client.get_experiment(first.experiment_id).artifact_location.endswith("/db/mlartifacts/exp")
    changed = {**SPEC, "training": {"epochs": 3}}
    with pytest.raises(ml.TrackingError, match="changed"):
        ml.open_grid_run(uri, "exp", "g", changed, resume=True)
    fresh = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    assert fresh.parent_run_id != first.parent_run_id
    ml.finish_grid_run(fresh, "FINISHED", "done")
    assert client.get_run(fresh.parent_run_id).info.status == "FINISHED"


def test_a_retried_trial_keeps_its_one_child_run(uri):
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    first = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id="t1")
    first.end("FAILED", reason="error", error=ValueError("decoder exploded"))
    client = ml.client_for(uri)
    run = client.get_run(first.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[ml.ERROR_TAG] == "ValueError: decoder exploded"
    assert "error.txt" in [a.path for a in client.list_artifacts(first.run_id)]
    assert run.data.tags[ml.PARENT_TAG] == grid.parent_run_id
    assert {run.data.tags[k] for k in ("model", "aug", "seed", "trial_id")} == {"tsn_r50_1x1x8", "default", "0", "t1"}
    assert run.data.params["preset"] == "tsn_r50_1x1x8" and run.data.params["num_classes"] == "3"

    assert run.info.run_name == "g-tsn_r50_1x1x8-default-s0"  # no run_name: the trial's name

    second = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id="t1", run_name="tsn·default·s0")
    assert second.run_id == first.run_id
    assert client.get_run(second.run_id).info.status == "RUNNING"
    assert client.get_run(second.run_id).info.run_name == "tsn·default·s0"  # a reopened run takes the short name
    assert client.get_run(second.run_id).data.tags["k400ray.attempt"] == "2"
    assert len(ml.child_runs(client, grid)) == 1
    # The second attempt's row shows its own outcome: the first attempt's error is kept aside.
    tags = client.get_run(second.run_id).data.tags
    assert ml.ERROR_TAG not in tags and tags[f"{ml.ERROR_TAG}.attempt1"] == "ValueError: decoder exploded"
    second.end("FINISHED", reason="done")
    from k400ray.console.mlflow_ui import trials_markdown

    row = next(ln for ln in trials_markdown(client, grid).splitlines() if ln.startswith("| tsn_r50_1x1x8"))
    assert row.startswith("| tsn_r50_1x1x8 | default | 0 | finished | ") and "exploded" not in row, row


def test_epoch_then_final_metrics_without_duplicates(uri):
    from k400ray.tracking.epoch_callback import MlflowEpochLogger

    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    run = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id=None)
    logger = MlflowEpochLogger(uri, run.run_id)
    epoch = {"train_loss": 1.0, "lr": 0.1, "efficient_acc1": 50.0, "efficient_acc5": 90.0, "clips_per_s": 3.0,
             "data_wait_fraction": 0.1, "skipped_videos": 0, "efficient_mean_class_acc": 40.0, "done": 0}
    logger.after_report(None, [{**epoch, "epoch": 1}, {"epoch": 1}], None)
    logger.after_report(None, [{**epoch, "epoch": 2, "efficient_acc1": 60.0}], None)
    final = {**epoch, "epoch": 2, "efficient_acc1": 60.0, "accurate_acc1": 70.0, "accurate_acc5": 95.0,
             "accurate_mean_class_acc": 65.0, "done": 1}
    logger.after_report(None, [final], None)  # the final report is the trial function's to log
    run.log_final(final, step=2)
    run.end("FINISHED", reason="done")
    client = ml.client_for(uri)
    history = client.get_metric_history(run.run_id, "efficient_acc1")
    assert sorted((m.step, m.value) for m in history) == [(1, 50.0), (2, 60.0)]
    metrics = client.get_run(run.run_id).data.metrics
    for key in ("efficient_acc1", "efficient_acc5", "accurate_acc1", "accurate_acc5",
                "efficient_mean_class_acc", "accurate_mean_class_acc", "train_loss", "lr", "clips_per_s",
                "data_wait_fraction", "skipped_videos"):
        assert key in metrics, key
    assert [m.step for m in client.get_metric_history(run.run_id, "accurate_acc1")] == [2]


def test_accuracies_are_logged_to_a_hundredth():
    """MLflow's runs table prints every digit; the sheet's figures come from the predictions."""
    assert ml.shown_value("accurate_acc1", 100 * 38 / 48) == 79.17
    assert ml.shown_value("efficient_acc5_best", 2 / 3 * 100) == 66.67
    assert ml.shown_value("efficient_mean_class_acc", 12.3456) == 12.35
    assert ml.shown_value("train_loss", 1.23456) == 1.23456 and ml.shown_value("lr", 1e-5) == 1e-5


def test_open_trials_are_closed_killed_with_a_reason(uri):
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    a = ml.TrialRun.open(grid, _cfg("a"), family="tsn", tune_trial_id="ta")
    b = ml.TrialRun.open(grid, _cfg("b"), family="tsn", tune_trial_id="tb")
    done = ml.TrialRun.open(grid, _cfg("c"), family="tsn", tune_trial_id="tc")
    done.end("FINISHED", reason="done")
    closed = ml.close_open_trials(grid, reason_by_trial_id={"tb": "stopped early by ASHA"}, default_reason="interrupted")
    client = ml.client_for(uri)
    assert closed == 2
    assert client.get_run(a.run_id).info.status == "KILLED"
    assert client.get_run(a.run_id).data.tags[ml.END_TAG] == "interrupted"
    assert client.get_run(b.run_id).data.tags[ml.END_TAG] == "stopped early by ASHA"
    assert client.get_run(done.run_id).info.status == "FINISHED"


def test_a_trial_failed_by_the_interruption_itself_is_marked_interrupted(uri):
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    hit = ml.TrialRun.open(grid, _cfg("a"), family="tsn", tune_trial_id="ta")  # its Train actor died under Ctrl+C
    hit.end("FAILED", reason="error", error=RuntimeError("ActorDiedError: The actor died unexpectedly"))
    broken = ml.TrialRun.open(grid, _cfg("b"), family="tsn", tune_trial_id="tb")  # a real failure, not interrupted
    broken.end("FAILED", reason="error", error=ValueError("bad"))
    done = ml.TrialRun.open(grid, _cfg("c"), family="tsn", tune_trial_id="tc")
    done.end("FINISHED", reason="done")
    assert ml.close_open_trials(grid, reason_by_trial_id={}, default_reason="-", interrupted_ids=["ta", "tc"]) == 1
    client = ml.client_for(uri)
    run = client.get_run(hit.run_id)
    assert run.info.status == "KILLED" and run.data.tags[ml.END_TAG] == "interrupted" and ml.ERROR_TAG not in run.data.tags
    assert "ActorDiedError" in run.data.tags[f"{ml.ERROR_TAG}.attempt1"]
    assert client.get_run(broken.run_id).info.status == "FAILED"
    assert client.get_run(broken.run_id).data.tags[ml.ERROR_TAG] == "ValueError: bad"
    assert client.get_run(done.run_id).info.status == "FINISHED"
    assert ml.close_open_trials(grid, reason_by_trial_id={}, default_reason="-") == 0


def test_a_trial_failed_by_an_asha_stop_is_marked_stopped_early(uri):
    """ASHA stopped the trial, and the stop killed its Train controller: the error that raised in
    the trial is the stop's. Tune says stopped, and so does MLflow."""
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    hit = ml.TrialRun.open(grid, _cfg("a"), family="tsn", tune_trial_id="ta")
    hit.end("FAILED", reason="error", error=RuntimeError("ActorDiedError: The actor died unexpectedly"))
    broken = ml.TrialRun.open(grid, _cfg("b"), family="tsn", tune_trial_id="tb")
    broken.end("FAILED", reason="error", error=ValueError("bad"))
    assert ml.close_open_trials(grid, reason_by_trial_id={"ta": "stopped early by ASHA"}, default_reason="-") == 1
    client = ml.client_for(uri)
    run = client.get_run(hit.run_id)
    assert run.info.status == "KILLED" and run.data.tags[ml.END_TAG] == "stopped early by ASHA"
    assert ml.ERROR_TAG not in run.data.tags and client.get_run(broken.run_id).info.status == "FAILED"


def test_a_trial_ending_after_the_driver_closed_its_run_keeps_the_drivers_reason(uri):
    """Ctrl+C: the driver closes the open run as interrupted, then the stopped trial's own error
    handler, later, tries to end it FAILED with the error the stop raised in it."""
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    late = ml.TrialRun.open(grid, _cfg("a"), family="tsn", tune_trial_id="ta")
    assert ml.close_open_trials(grid, reason_by_trial_id={}, default_reason="interrupted", interrupted_ids=["ta"]) == 1
    late.end("FAILED", reason="error", error=RuntimeError("ActorDiedError: The actor died unexpectedly"))
    run = ml.client_for(uri).get_run(late.run_id)
    assert run.info.status == "KILLED" and run.data.tags[ml.END_TAG] == "interrupted" and ml.ERROR_TAG not in run.data.tags


def test_a_trial_killed_while_ending_its_run_is_closed_without_its_error(uri):
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    hit = ml.TrialRun.open(grid, _cfg("a"), family="tsn", tune_trial_id="ta")
    client = ml.client_for(uri)
    client.set_tag(hit.run_id, ml.ERROR_TAG, "ActorDiedError: killed")  # end() got this far, then the kill
    assert ml.close_open_trials(grid, reason_by_trial_id={}, default_reason="interrupted") == 1
    run = client.get_run(hit.run_id)
    assert run.info.status == "KILLED" and run.data.tags[ml.END_TAG] == "interrupted"
    assert ml.ERROR_TAG not in run.data.tags and run.data.tags[f"{ml.ERROR_TAG}.attempt1"] == "ActorDiedError: killed"


def test_an_epoch_only_its_checkpoint_holds_is_logged_once(uri):
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    run = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id="t1")
    ml.log_epoch(run.client, run.run_id, {"epoch": 1, "train_loss": 1.5})
    history = [("c1", {"epoch": 1, "train_loss": 1.5, "tested": 0}),
               ("c2", {"epoch": 2, "train_loss": 1.2, "tested": 0}),
               ("c3", {"epoch": 2, "train_loss": 1.2, "efficient_acc1": 50.0, "tested": 1})]
    assert run.log_missing_epochs(history) == 1  # epoch 2: checkpointed, never logged
    assert [(m.step, m.value) for m in run.client.get_metric_history(run.run_id, "train_loss")] == [(1, 1.5), (2, 1.2)]
    assert run.log_missing_epochs(history) == 0


def test_an_epoch_logged_at_the_end_carries_what_the_epoch_logger_adds(uri):
    """A PBT trial's values go with every epoch, whichever path logs it."""
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    run = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id="t1")
    key = f"{ml.PBT_VALUE_PREFIX}training.lr"
    history = [("c1", {"epoch": 1, "train_loss": 1.5, "tested": 0})]
    assert run.log_missing_epochs(history, {key: 0.01}) == 1
    assert [(m.step, m.value) for m in run.client.get_metric_history(run.run_id, key)] == [(1, 0.01)]


def test_checkpoints_of_older_runs_say_done_for_tested(uri):
    """A run resumed from checkpoints written before the flag was called ``tested``: their final
    report (``done=1``) is not an epoch to log."""
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    run = ml.TrialRun.open(grid, _cfg(), family="tsn", tune_trial_id="t1")
    history = [("c1", {"epoch": 1, "train_loss": 1.5, "done": 0}),
               ("c2", {"epoch": 1, "train_loss": 1.5, "efficient_acc1": 50.0, "done": 1})]
    assert run.log_missing_epochs(history) == 1
    assert [m.step for m in run.client.get_metric_history(run.run_id, "train_loss")] == [1]


def test_trial_artifacts(tmp_path):
    preds = {"efficient": _preds([0, 1, 2, 2], [0, 1, 1, 2]), "accurate": _preds([0, 1, 2, 2], [0, 1, 2, 2])}
    files = write_trial_artifacts(tmp_path, _cfg(), preds, ["walk", "run", "jump"])
    assert {f.name for f in files} == {"config.json", "predictions_efficient.parquet", "predictions_accurate.parquet",
                                       "per_class_accuracy.csv", "confusion_matrix.png"}
    rows = list(csv.DictReader((tmp_path / "per_class_accuracy.csv").open()))
    assert [(r["class_name"], r["val_videos"], r["efficient_acc1"], r["accurate_acc1"]) for r in rows] == [
        ("walk", "1", "100.00", "100.00"), ("run", "1", "100.00", "100.00"), ("jump", "2", "50.00", "100.00")]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_artifact_downloads_draw_no_progress_bar_unless_asked(tmp_path, monkeypatch, capfd):
    """The grid's live console and `report` download artifacts: MLflow's bars stay off (a user's
    own MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR wins)."""
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    client = ml.client_for(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("bars"))
    client.log_dict(run.info.run_id, {"a": 1}, "x.json")
    client.download_artifacts(run.info.run_id, "x.json", str(tmp_path))
    assert "Downloading artifacts" not in capfd.readouterr().err
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    ml.client_for(f"sqlite:///{tmp_path}/mlflow.db")
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"

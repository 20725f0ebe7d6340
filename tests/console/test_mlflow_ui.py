"""MLflow UI: links that open in "Model training" mode, the experiment's kind tag, and the parent
run's description (every trial's figures, then the sheet) on a SQLite store, without Ray."""

from __future__ import annotations

import threading

from k400ray.console.mlflow_ui import DescriptionRefresher, compose, link_lines, refresh_description
from k400ray.tracking import mlflow_log as ml


def test_links_carry_the_model_training_mode():
    links = ml.ui_links("sqlite:////tmp/x/mlflow.db", "7", "abc")
    assert links["experiment"] == "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning"
    assert links["run"] == "http://127.0.0.1:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert links["command"] == "mlflow ui --backend-store-uri sqlite:////tmp/x/mlflow.db"
    server = ml.ui_links("https://user:token@mlflow.example:5000/", "7")
    assert server["experiment"] == "https://***@mlflow.example:5000/#/experiments/7?workflowType=machine_learning"
    assert server["command"] == "" and "run" not in server
    lines = link_lines(links)
    assert lines[0].startswith("MLflow UI: mlflow ui --backend-store-uri") and all(
        "workflowType=machine_learning" in ln for ln in lines[1:])


def test_description_holds_every_trial_and_the_experiment_is_model_development(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = {"grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default", "mixup"], "seeds": [0]}}
    grid = ml.open_grid_run(uri, "exp", "g", spec, resume=False)
    client = ml.client_for(uri)
    assert client.get_experiment(grid.experiment_id).tags[ml.EXPERIMENT_KIND_TAG] == "custom_model_development"
    for aug, status, acc in (("default", "FINISHED", 62.5), ("mixup", "FAILED", None)):
        run = client.create_run(grid.experiment_id, tags={ml.PARENT_TAG: grid.parent_run_id, "model": "tsn_r50_1x1x8",
                                                         "config": aug, "seed": "0", ml.ROLE_TAG: "trial"})
        if acc is not None:
            for key, value in (("efficient_acc1", 50.0), ("efficient_acc5", 100.0), ("accurate_acc1", acc),
                               ("accurate_acc5", 100.0)):
                client.log_metric(run.info.run_id, key, value)
        else:
            client.set_tag(run.info.run_id, ml.ERROR_TAG, "TrialFailed: boom")
        client.set_terminated(run.info.run_id, status)
    # No predictions artifacts here: the sheet cannot be built, the trials table still is.
    refresh_description(grid)
    note = client.get_run(grid.parent_run_id).data.tags[ml.NOTE_TAG]
    assert "| tsn_r50_1x1x8 | default | 0 | done | 50.00 / 100.00 | 62.50 / 100.00 |" in note
    assert "| tsn_r50_1x1x8 | mixup | 0 | error (TrialFailed: boom) | - | - |" in note
    refresh_description(grid, sheet="# the sheet\n")
    assert client.get_run(grid.parent_run_id).data.tags[ml.NOTE_TAG].endswith("## Result sheet\n\n# the sheet\n")


def test_a_long_sheet_is_cut_between_tables():
    trials = "## Trials\n\n| a |\n"
    sheet = "\n\n".join(f"table {i}\n" + "x" * 900 for i in range(20))
    text = compose(trials, sheet, limit=4000)
    assert len(text) <= 4000 and text.startswith(trials) and "table 0" in text and "table 19" not in text
    assert text.rstrip().endswith("of this run, or `k400ray report`.")


def test_refresher_runs_in_the_background_and_once_more_at_close():
    calls, started, gate = [], threading.Event(), threading.Event()

    def refresh(grid, *, log_report):
        started.set()
        gate.wait(5)
        calls.append(log_report)

    refresher = DescriptionRefresher("grid", refresh=refresh)
    refresher.request()
    assert started.wait(5)  # the first refresh runs on its own thread: request() did not wait
    for _ in range(5):
        refresher.request()  # coalesced into at most one more while it runs
    gate.set()
    refresher.close()
    assert calls[0] is False and calls[-1] is True and 2 <= len(calls) <= 3

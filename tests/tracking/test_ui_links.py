"""The runs table the printed link opens: a saved view per grid (MLflow 3's
``mlflow.sharedViewState.<key>`` experiment tag) with the trials' figures, and the plain table
where the store refuses the tag; the command that serves the UI."""

from __future__ import annotations

import json
import sys

from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.ui_links import VIEW_COLUMNS, VIEW_TAG_PREFIX, grid_links, save_runs_view, ui_command, view_key

SPEC = {"grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"], "seeds": [0]}}


def test_each_grid_gets_a_saved_view_of_its_trials(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    grid = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    links = grid_links(grid)
    key = view_key(grid)
    assert f"/#/experiments/{grid.experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning" in (
        links["experiment"])
    tags = ml.client_for(uri).get_experiment(grid.experiment_id).tags
    envelope = json.loads(tags[VIEW_TAG_PREFIX + key])
    assert envelope["name"].startswith("k400ray g: trials of run ") and isinstance(envelope["createdAt"], int)
    state = json.loads(envelope["state"])  # MLflow's UI reads the state from a JSON string
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{grid.parent_run_id}'"
    assert state["selectedColumns"] == state["columnOrder"] == list(VIEW_COLUMNS)
    assert VIEW_COLUMNS == ("tags.`model`", "tags.`config`", "tags.`seed`", "metrics.`efficient_acc1`",
                            "metrics.`efficient_acc5`", "metrics.`accurate_acc1`", "metrics.`accurate_acc5`")
    assert grid_links(grid) == links  # made once, kept after
    other = ml.open_grid_run(uri, "exp", "g", SPEC, resume=False)
    assert view_key(other) != key and view_key(other) in grid_links(other)["experiment"]


class _Refusing:
    def get_experiment(self, experiment_id):
        raise PermissionError("read-only store")


def test_a_store_that_refuses_the_view_gets_the_plain_table():
    grid = ml.GridRun("http://mlflow.example", "3", "abcdef0123456789", "g")
    assert save_runs_view(_Refusing(), grid) is None


def test_the_ui_command_names_this_interpreters_mlflow():
    command = ui_command("sqlite:////data/my runs/mlflow.db")
    assert command.startswith(sys.executable.rsplit("/", 1)[0] + "/mlflow ui ")  # the venv's, by absolute path
    assert command.endswith("--backend-store-uri 'sqlite:////data/my runs/mlflow.db'")  # quoted for a shell

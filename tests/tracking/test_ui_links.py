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


def test_a_searchs_view_shows_its_values_and_a_parallel_coordinates_chart(tmp_path):
    """The parent of a search names its axes (``search_space.json``): the saved view adds them as
    columns and holds the chart card MLflow's chart view draws (the link opens that view)."""
    from k400ray.tracking.ui_links import SEARCH_SECTION, view_state

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    grid = ml.open_grid_run(uri, "exp", "s", SPEC, resume=False)
    ml.log_search(grid, {"space": {"training.lr": {"kind": "loguniform", "low": 1e-4, "high": 0.1},
                                   "augmentation.mixup_alpha": {"kind": "choice", "values": [0.2, 1.0]}},
                         "num_samples": 4, "searcher": "random"})
    links = grid_links(grid)
    key = view_key(grid)
    assert links["charts"] == links["experiment"].replace("workflowType", "compareRunsMode=CHART&workflowType")
    state = json.loads(json.loads(ml.client_for(uri).get_experiment(grid.experiment_id).tags[VIEW_TAG_PREFIX + key])["state"])
    assert state["selectedColumns"][3:5] == ["params.`search.training.lr`", "params.`search.augmentation.mixup_alpha`"]
    assert state["selectedColumns"][5:] == list(VIEW_COLUMNS[3:])
    [chart] = state["compareRunCharts"]
    assert chart["type"] == "PARALLEL" and chart["metricSectionId"] == SEARCH_SECTION
    assert chart["selectedParams"] == ["search.training.lr", "search.augmentation.mixup_alpha"]
    assert chart["selectedMetrics"] == ["efficient_acc1"]
    assert [s["uuid"] for s in state["compareRunSections"]] == [SEARCH_SECTION]
    # A grid's view has neither.
    plain = view_state(ml.GridRun(uri, "1", "abcdef0123456789", "g"))
    assert "compareRunCharts" not in plain and plain["selectedColumns"] == list(VIEW_COLUMNS)
    assert "charts" not in grid_links(ml.open_grid_run(uri, "exp", "g", SPEC, resume=False))

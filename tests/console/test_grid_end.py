"""The end of ``k400ray tune`` as a user reads it: the summary, then one MLflow block whose
command runs as printed from a shell where the venv is not active; the grid itself is a stand-in
(no Ray), its parent run a real one in a SQLite store."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import yaml
from typer.testing import CliRunner

from k400ray.tracking import mlflow_log as ml
from k400ray.tune import runner
from k400ray.tune.runner import GridOutcome, TrialSummary

BLOCK = "MLflow: grid run "


def _spec(tmp_path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text(json.dumps({"classes": ["a", "b"], "splits": {
        "train": {"videos": 2, "shards": []}, "val": {"videos": 2, "shards": []}}}))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": "ending", "scale": "toy", "data": {"train_index": str(index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"]},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}, "storage_path": "runs"}))


def _grid_without_ray(spec, *, on_parent_run, **_):
    """What :func:`k400ray.tune.runner.run_grid` does for the console: opens the parent run,
    says so, ends it, returns the outcome."""
    grid = ml.open_grid_run(spec.mlflow.tracking_uri, spec.mlflow_experiment, spec.experiment,
                            spec.model_dump(mode="json"), resume=False)
    on_parent_run(grid)
    ml.finish_grid_run(grid, "FINISHED", "done")
    return GridOutcome("runs/ending", spec.mlflow.tracking_uri, grid.parent_run_id,
                       [TrialSummary("tsn_r50_1x1x8", "default", 0, "finished")])


def test_tune_ends_with_one_mlflow_block_whose_command_runs_as_printed(tmp_path, monkeypatch):
    from k400ray.cli import app
    _spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_grid", _grid_without_ray)
    result = CliRunner().invoke(app, ["tune", "spec.yaml"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    # once when the parent run opens (to follow the grid in the UI), once at the end
    assert out.count(BLOCK) == 2
    end = out[out.index("Tune experiment:"):]
    assert end.count(BLOCK) == 1 and end.count("serve the UI:") == 1 and end.count("runs table:") == 1
    block = end[end.index(BLOCK):].splitlines()
    assert len(block) == 4 and block[-1].startswith("  the sheet:") and out.endswith(block[-1] + "\n")
    runs = block[2].split()[-1]
    assert "/runs?viewStateShareKey=k400ray-" in runs and runs.endswith("&workflowType=machine_learning")
    command = shlex.split(block[1].split("serve the UI:", 1)[1])
    assert os.path.isabs(command[0]) and command[-3:] == ["ui", "--backend-store-uri",
                                                          f"sqlite:///{tmp_path.resolve()}/mlflow.db"]
    # a shell without the venv: its bin is not on PATH
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    help_ = subprocess.run([*command[:-2], "--help"], env=clean, capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--backend-store-uri" in help_.stdout, help_.stderr[-2000:]

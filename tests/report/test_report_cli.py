"""``k400ray report`` on runs logged the way ``tune`` logs them (no training needed)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions
from k400ray.tracking import mlflow_log as ml

SPEC = {"experiment": "grid", "scale": "toy", "data": {"train_index": "/i"},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default", "mixup"], "seeds": [0]}, "training": {}}


def _preds(right: np.ndarray) -> Predictions:
    labels = np.arange(len(right)) % 3
    top1 = np.where(right, labels, (labels + 1) % 3)
    top = np.stack([top1, (top1 + 1) % 3, (top1 + 2) % 3, -np.ones_like(top1), -np.ones_like(top1)], axis=1)
    return Predictions([f"v{i}" for i in range(len(right))], labels, top, np.ones((len(right), 5), np.float32))


def _log_grid(uri: str) -> ml.GridRun:
    grid = ml.open_grid_run(uri, "exp", "grid", SPEC, resume=False)
    rng = np.random.default_rng(0)
    for aug, acc in (("default", 0.5), ("mixup", 0.9)):
        cfg = TrialConfig(preset="tsn_r50_1x1x8", scale="toy", aug=aug, train_index="/i", val_index="/i",
                          num_classes=3, name=f"grid-tsn_r50_1x1x8-{aug}-s0")
        run = ml.TrialRun.open(grid, cfg, family="tsn", tune_trial_id=aug)
        preds = {m: _preds(rng.random(120) < acc) for m in ("efficient", "accurate")}
        metrics = {f"{m}_acc{k}": 100.0 * float((p.topk[:, :k] == p.label[:, None]).any(1).mean())
                   for m, p in preds.items() for k in (1, 5)}
        run.log_final({**metrics, "epoch": 1}, step=1)
        run.log_artifacts(cfg, preds, ["a", "b", "c"])
        run.end("FINISHED", reason="done")
    killed = ml.TrialRun.open(grid, TrialConfig(preset="tsn_r50_1x1x8", scale="toy", aug="cutmix", train_index="/i",
                                                val_index="/i", num_classes=3, name="grid-cut"), family="tsn",
                              tune_trial_id="k")
    killed.end("KILLED", reason="interrupted")
    ml.finish_grid_run(grid, "FINISHED", "done")
    return grid


def test_report_formats_plot_and_parent_artifacts(cli_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = ml.resolve_tracking_uri("sqlite:///mlflow.db")
    grid = _log_grid(uri)
    runner = CliRunner()
    md = runner.invoke(cli_app, ["report", "--experiment", "exp", "--tracking-uri", "sqlite:///mlflow.db",
                                 "--plot", "bars.png"])
    assert md.exit_code == 0, md.output
    assert "## TSN" in md.stdout and "| tsn_r50_1x1x8 | mixup alpha=1.0 |" in md.stdout
    assert "Not in the tables: trial runs that did not finish (1 KILLED)" in md.stdout
    assert (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"
    csv_out = runner.invoke(cli_app, ["report", "--experiment", "exp", "--tracking-uri", uri, "--format", "csv"])
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines()[0].startswith("family,model,aug,configs")
    js = runner.invoke(cli_app, ["report", "--experiment", "exp", "--tracking-uri", uri, "--format", "json"])
    data = json.loads(js.stdout)
    assert data["parent_run_id"] == grid.parent_run_id and data["finished_trials"] == 2
    (mixup,) = [x for x in data["comparisons_vs_default"] if x["mode"] == "efficient"]
    assert mixup["delta"] > 20 and mixup["p_value"] < 0.01
    logged = {a.path for a in ml.client_for(uri).list_artifacts(grid.parent_run_id, "report")}
    assert {"report/report.md", "report/report.csv", "report/report.json", "report/bars.png"} <= logged


def test_empty_or_missing_experiment_is_a_one_line_error(cli_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = ml.resolve_tracking_uri("sqlite:///mlflow.db")
    ml.get_or_create_experiment(ml.client_for(uri), "empty", uri)
    for name in ("empty", "nope"):
        result = CliRunner().invoke(cli_app, ["report", "--experiment", name, "--tracking-uri", uri])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
    bad = CliRunner().invoke(cli_app, ["report", "--experiment", "x", "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.stderr

"""``k400ray report`` on runs logged the way ``tune`` logs them (no training needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
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


MODELS = {"tsn_r50_1x1x8": ("tsn", 50), "tsm_r50_1x1x8": ("tsm", 90), "i3d_r50_32x2x1": ("i3d", 80)}


def _log_models(uri: str, baseline: str) -> ml.GridRun:
    """One seed of each model under `default`, right on its first k of the same 100 videos; the
    grid's spec (the parent's spec.json) chooses ``baseline``."""
    spec = {**SPEC, "experiment": "models", "report": {"baseline_model": baseline},
            "grid": {"presets": list(MODELS), "augmentations": ["default"], "seeds": [0]}}
    grid = ml.open_grid_run(uri, "models", "models", spec, resume=False)
    for preset, (family, k) in MODELS.items():
        cfg = TrialConfig(preset=preset, scale="toy", aug="default", train_index="/i", val_index="/i",
                          num_classes=3, name=f"models-{preset}-default-s0")
        run = ml.TrialRun.open(grid, cfg, family=family, tune_trial_id=preset)
        preds = {m: _preds(np.arange(100) < k) for m in ("efficient", "accurate")}
        run.log_final({"efficient_acc1": float(k), "accurate_acc1": float(k), "epoch": 1}, step=1)
        run.log_artifacts(cfg, preds, ["a", "b", "c"])
        run.end("FINISHED", reason="done")
    ml.finish_grid_run(grid, "FINISHED", "done")
    return grid


def _model_rows(runner, cli_app, *args) -> tuple[dict, dict]:
    result = runner.invoke(cli_app, ["report", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data, {x["preset"]: x["delta"] for x in data["comparisons_vs_baseline_model"] if x["mode"] == "efficient"}


def test_baseline_model_from_the_grid_spec_a_spec_file_or_the_command_line(cli_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = ml.resolve_tracking_uri("sqlite:///mlflow.db")
    _log_models(uri, baseline="tsm_r50_1x1x8")
    runner = CliRunner()
    base = ["--experiment", "models", "--tracking-uri", uri]
    data, rows = _model_rows(runner, cli_app, *base)  # the spec the grid ran with
    assert data["baseline_model"] == "tsm_r50_1x1x8" and "grid's spec" in data["baseline_source"]
    assert rows == {"tsn_r50_1x1x8": pytest.approx(-40.0), "i3d_r50_32x2x1": pytest.approx(-10.0)}
    data, rows = _model_rows(runner, cli_app, *base, "--baseline", "tsn_r50_1x1x8")  # the command line wins
    assert data["baseline_model"] == "tsn_r50_1x1x8" and data["baseline_source"] == "--baseline"
    assert rows == {"tsm_r50_1x1x8": pytest.approx(40.0), "i3d_r50_32x2x1": pytest.approx(30.0)}
    assert data["holm_family_size"] == 4  # 2 model rows x 2 modes; no config besides default
    spec = {"experiment": "models", "scale": "toy", "data": {"train_index": "idx"},
            "grid": {"presets": list(MODELS), "configs": ["default"]},
            "mlflow": {"tracking_uri": uri}, "report": {"baseline_model": "i3d_r50_32x2x1"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    data, rows = _model_rows(runner, cli_app, "--spec", "spec.yaml")  # a spec file given to `report`
    assert data["baseline_model"] == "i3d_r50_32x2x1" and "spec.yaml" in data["baseline_source"]
    assert rows == {"tsn_r50_1x1x8": pytest.approx(-30.0), "tsm_r50_1x1x8": pytest.approx(10.0)}
    data, _ = _model_rows(runner, cli_app, "--spec", "spec.yaml", "--baseline", "tsm_r50_1x1x8")
    assert data["baseline_model"] == "tsm_r50_1x1x8"
    md = runner.invoke(cli_app, ["report", *base, "--baseline", "tsn_r50_1x1x8"]).stdout
    assert "## Models vs tsn_r50_1x1x8" in md and "| tsm_r50_1x1x8 | default config | 100 | +40.00 [" in md
    bad = runner.invoke(cli_app, ["report", *base, "--baseline", "tsn_r101"])
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "--baseline" in bad.stderr and "tsn_r101" in bad.stderr

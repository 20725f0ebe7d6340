"""``k400ray report`` on a search: runs logged with the search params (no training needed), the
best points with their values and intervals, and acc1 against each axis; a grid keeps its sheet."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from typer.testing import CliRunner

from k400ray.contracts import NUM_SAMPLES_PARAM, SEARCH_SPACE_ARTIFACT, SEARCHER_PARAM, search_param
from k400ray.engine.config import TrialConfig
from k400ray.engine.metrics import Predictions
from k400ray.tracking import mlflow_log as ml

SPEC = {"experiment": "lrs", "scale": "toy", "data": {"train_index": "/i"},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["mixup"], "seeds": [0]}, "training": {}}
SPACE = {"space": {"training.lr": {"kind": "loguniform", "low": 0.001, "high": 0.1},
                   "augmentation.mixup_alpha": {"kind": "grid", "values": [0.2, 1.0]}},
         "num_samples": 5, "searcher": "optuna", "max_concurrent": None}
LRS = (0.001, 0.002, 0.005, 0.01, 0.03)
BEST_LR = 0.01  # accuracy peaks here; alpha 0.2 adds 10 points


def _preds(right: np.ndarray) -> Predictions:
    labels = np.arange(len(right)) % 3
    top1 = np.where(right, labels, (labels + 1) % 3)
    top = np.stack([top1, (top1 + 1) % 3, (top1 + 2) % 3, -np.ones_like(top1), -np.ones_like(top1)], axis=1)
    return Predictions([f"v{i}" for i in range(len(right))], labels, top, np.ones((len(right), 5), np.float32))


def _accuracy(lr: float, alpha: float) -> float:
    return 0.8 - 0.1 * abs(np.log10(lr / BEST_LR)) + (0.1 if alpha == 0.2 else 0.0)


def _log_search(uri: str) -> ml.GridRun:
    grid = ml.open_grid_run(uri, "exp", "lrs", SPEC, resume=False)
    client = ml.client_for(uri)
    client.log_param(grid.parent_run_id, SEARCHER_PARAM, "optuna")
    client.log_param(grid.parent_run_id, NUM_SAMPLES_PARAM, "5")
    client.log_text(grid.parent_run_id, json.dumps(SPACE), SEARCH_SPACE_ARTIFACT)
    n = 100
    for alpha in (0.2, 1.0):
        for lr in LRS:
            name = f"lrs-{alpha}-{lr}"
            cfg = TrialConfig(preset="tsn_r50_1x1x8", scale="toy", aug="mixup", train_index="/i", val_index="/i",
                              num_classes=3, name=name)
            run = ml.TrialRun.open(grid, cfg, family="tsn", tune_trial_id=name)
            client.log_param(run.run_id, search_param("training.lr"), str(lr))
            client.log_param(run.run_id, search_param("augmentation.mixup_alpha"), str(alpha))
            right = np.arange(n) < round(_accuracy(lr, alpha) * n)
            preds = {m: _preds(right) for m in ("efficient", "accurate")}
            metrics = {f"{m}_acc{k}": 100.0 * float((p.topk[:, :k] == p.label[:, None]).any(1).mean())
                       for m, p in preds.items() for k in (1, 5)}
            run.log_final({**metrics, "epoch": 1}, step=1)
            run.log_artifacts(cfg, preds, ["a", "b", "c"])
            run.end("FINISHED", reason="done")
    ml.finish_grid_run(grid, "FINISHED", "done")
    return grid


def test_search_report_best_points_axis_tables_exports_and_plots(cli_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = ml.resolve_tracking_uri("sqlite:///mlflow.db")
    _log_search(uri)
    runner = CliRunner()
    args = ["report", "--experiment", "exp", "--tracking-uri", uri]
    md = runner.invoke(cli_app, [*args, "--plot", "search.png"])
    assert md.exit_code == 0, md.output
    out = md.stdout
    assert "A search (optuna searcher, 5 sample(s) per grid point) over training.lr, augmentation.mixup_alpha" in out
    # the three best points of tsn_r50_1x1x8 mixup, best first, with values, both modes and intervals
    best = [ln for ln in out.splitlines() if ln.startswith("| tsn_r50_1x1x8 | mixup | ") and "–" in ln]
    assert [ln.split(" | ")[2:5] for ln in best] == [["1", "0.01", "0.2"], ["2", "0.005", "0.2"],
                                                     ["3", "0.03", "0.2"]]
    assert "90.00 / n/a" in best[0] and "82.38–95.10" in best[0]  # exact CI of 90/100; top-5 of 3 classes: n/a
    # acc1 against the grid axis: per value, mean over the lr samples; against lr: per sampled value
    assert "## acc1 against augmentation.mixup_alpha" in out and "## acc1 against training.lr" in out
    alpha = {ln.split(" | ")[2]: ln.split(" | ")[4] for ln in out.splitlines()
             if ln.startswith("| tsn_r50_1x1x8 | mixup | ") and ln.split(" | ")[3] == "5"}
    assert float(alpha["0.2"]) - float(alpha["1.0"]) == 10.0
    assert (tmp_path / "search-training.lr.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "search-augmentation.mixup_alpha.png").exists()

    data = json.loads(runner.invoke(cli_app, [*args, "--format", "json"]).stdout)
    assert data["searcher"] == "optuna" and len(data["points"]) == 10 and len(data["best"]) == 3
    lr_rows = data["axis_tables"]["training.lr"]
    assert [r["value"] for r in lr_rows] == ["0.001", "0.002", "0.005", "0.01", "0.03"]
    assert max(lr_rows, key=lambda r: r["efficient_acc1"])["value"] == "0.01"
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli_app, [*args, "--format", "csv"]).stdout)))
    top = next(r for r in rows if r["rank"] == "1")
    assert top[search_param("training.lr")] == "0.01" and float(top["efficient_acc1_ci_low"]) < 90 < float(
        top["efficient_acc1_ci_high"])


def test_a_sampled_range_with_many_values_is_binned():
    from k400ray.report.search import BINS, build_search_tables
    from k400ray.report.tables import TrialRecord

    records = [TrialRecord("tsn_r50_1x1x8", "default", 0, {"efficient_acc1": float(i), "accurate_acc1": float(i)},
                           params={search_param("training.lr"): str(0.001 * (i + 1))}) for i in range(20)]
    tables = build_search_tables(records, {SEARCHER_PARAM: "random"},
                                 {"space": {"training.lr": {"kind": "loguniform"}}})
    rows = tables.axis_rows
    assert len(rows) == BINS and [r.trials for r in rows] == [4] * BINS
    assert rows[0].value == "0.001–0.004" and rows[0].efficient_acc1 == 1.5
    assert [p.rank for p in tables.best] == [1, 2, 3] and tables.best[0].values == {"training.lr": "0.02"}


def test_drawn_values_are_shown_to_three_digits_and_listed_ones_as_written():
    from k400ray.report.search import _shown

    assert _shown("0.042301234567") == "0.0423" and _shown("5.851234e-05") == "5.85e-05"
    assert _shown("1.0") == "1.0" and _shown("0.2") == "0.2" and _shown("9") == "9" and _shown("mixup") == "mixup"

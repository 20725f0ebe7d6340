"""ASHA stopping a sampled trial of ``k400ray tune``, end to end on the session's tiny synthetic set.

A TPE search over lr for toy TSN (2 points, one at a time, 2 epochs, ASHA at epoch 1). Toy TSN
learns the set's pairs within one epoch of 8 steps only at lr of about 1e-3 to 3e-3 (37.5-50%
efficient top-1 at epoch 1, measured); below and above it stays at chance (25%). Optuna's TPE,
seeded by the grid's seed 0, first draws lr 0.0016 (inside that band), then 0.0073 (above
it): the second trial is behind the first at the rung and ASHA stops it after its first epoch.
What is checked: the console, and MLflow, where the stopped trial's run ends KILLED with the
reason, its one epoch and no accurate mode, and the first trial's run has both epochs and every
final metric; both runs carry their sampled lr as a param, the value they trained with."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.contracts import ACCURATE_ACC1, EFFICIENT_ACC1, STOPPED_BY_ASHA, TRAIN_LOSS, search_param
from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow
LR_RANGE = (1.0e-5, 0.1)


def _spec(tmp_path, index) -> str:
    spec = {
        "experiment": "asha", "scale": "toy",
        "data": {"train_index": str(index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "training": {"epochs": 2, "batch_per_worker": 2, "eval_interval": 1},
        "resources": {"max_concurrent_trials": 1, "decode_tasks": 1, "max_failures": 0},
        "search": {"space": {"training.lr": {"loguniform": list(LR_RANGE)}}, "num_samples": 2, "searcher": "optuna",
                   "max_concurrent": 1},
        "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "asha-mlflow"},
        "storage_path": "runs",
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def test_asha_stops_the_sampled_trial_behind_at_its_first_rung(cli_app, tiny_index, tmp_path, monkeypatch):
    spec = _spec(tmp_path, tiny_index)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", spec])
    assert result.exit_code == 0, result.output[-3000:]

    client = ml.client_for(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("asha-mlflow")
    runs = sorted(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"),
                  key=lambda r: r.info.start_time)
    assert len(runs) == 2
    lrs = [float(r.data.params[search_param("training.lr")]) for r in runs]
    assert all(LR_RANGE[0] <= lr <= LR_RANGE[1] for lr in lrs) and lrs[0] != lrs[1]
    assert all(float(r.data.params["lr"]) == lr for r, lr in zip(runs, lrs))  # trained with its sampled lr

    def at_epoch(run, key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}

    first, second = runs
    scores = (at_epoch(first, EFFICIENT_ACC1), at_epoch(second, EFFICIENT_ACC1))
    assert second.info.status == "KILLED" and second.data.tags[ml.END_TAG] == STOPPED_BY_ASHA, (lrs, scores)
    assert scores[1][1] < scores[0][1], (lrs, scores)  # behind the first at the rung (epoch 1)
    assert set(at_epoch(second, TRAIN_LOSS)) == {1} and ACCURATE_ACC1 not in second.data.metrics
    assert first.info.status == "FINISHED" and set(at_epoch(first, TRAIN_LOSS)) == {1, 2}
    assert set(FINAL_METRICS) <= set(first.data.metrics)

    name = second.data.tags[ml.TRIAL_TAG]
    assert f"stopped early {name} in " in result.stdout and "1 finished, 1 stopped early" in result.stdout
    assert f"finished {first.data.tags[ml.TRIAL_TAG]} in " in result.stdout

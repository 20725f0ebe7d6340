"""``k400ray tune`` of a search with the default random searcher, end to end on the session's tiny
set: two points of lr x weight decay, sampled by Ray Tune's own generator, run side by side into
MLflow; each run holds its sampled values as ``search.<section>.<field>`` params and trained with
them, and the parent says which searcher drew them. (TPE: tests/tune/test_tune_e2e.py.)"""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.contracts import NUM_SAMPLES_PARAM, SEARCHER_PARAM, TRIAL_TAG, search_param
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow


def test_a_random_search_logs_every_sampled_value(cli_app, tiny_index, tmp_path, monkeypatch):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": "rnd", "scale": "toy",
        "data": {"train_index": str(tiny_index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "training": {"epochs": 1, "batch_per_worker": 4, "limit_videos": 4},
        "resources": {"max_concurrent_trials": 2, "decode_tasks": 1, "max_failures": 0, "cpus_per_worker": 0.5,
                      "decode_cpus": 0.25},
        "search": {"space": {"training.lr": {"loguniform": [1.0e-4, 0.1]},
                             "training.weight_decay": {"uniform": [1.0e-5, 1.0e-3]}},
                   "num_samples": 2},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "rnd-mlflow"},
        "storage_path": "runs",
    }))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", "spec.yaml"])
    assert result.exit_code == 0, result.output[-3000:]

    client = ml.client_for(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("rnd-mlflow")
    runs = list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags[TRIAL_TAG] for r in runs}) == 2
    for run in runs:
        p = run.data.params
        lr, wd = float(p[search_param("training.lr")]), float(p[search_param("training.weight_decay")])
        assert 1e-4 <= lr <= 0.1 and 1e-5 <= wd <= 1e-3
        assert float(p["lr"]) == lr and float(p["weight_decay"]) == wd  # the trial ran with them
    assert len({r.data.params[search_param("training.lr")] for r in runs}) == 2
    parent = client.get_run(runs[0].data.tags[ml.PARENT_TAG])
    assert parent.data.params[SEARCHER_PARAM] == "random" and parent.data.params[NUM_SAMPLES_PARAM] == "2"

"""``k400ray tune`` of a sampled search end to end on the session's tiny synthetic set: Optuna's
TPE over lr and weight decay for a named config, ASHA per preset, one trial at a time. SIGTERM
after two trials finished (the third running), then ``--resume``: the finished trials are not run again (their
MLflow runs untouched), the search ends with exactly ``num_samples`` trials, the searcher's
restored state holds the trials of the first run, and every trial's run carries its sampled
values as ``search.<section>.<field>`` params. ASHA runs (grace period 1) but whether it stops a
trial depends on accuracies that tie at chance on this set: tests/tune/test_scheduler.py shows it
stopping a sampled trial deterministically."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.contracts import NUM_SAMPLES_PARAM, SEARCH_PARAM_PREFIX, SEARCH_SPACE_ARTIFACT, SEARCHER_PARAM
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow

CLI = "from k400ray.cli import app; app()"
SAMPLES = 3


def _spec(tmp_path, index) -> str:
    spec = {
        "experiment": "se2e", "scale": "toy",
        "data": {"train_index": str(index)},
        "configs": {"nowarm": {"base": "default", "training": {"warmup_epochs": 0}}},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["nowarm"], "seeds": [0]},
        "training": {"epochs": 2, "batch_per_worker": 4, "limit_videos": 8, "eval_interval": 1},
        "resources": {"max_concurrent_trials": 1, "decode_tasks": 1, "max_failures": 0},
        "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
        "search": {"space": {"training.lr": {"loguniform": [1.0e-4, 0.1]},
                             "training.weight_decay": {"loguniform": [1.0e-5, 1.0e-3]}},
                   "num_samples": SAMPLES, "searcher": "optuna", "max_concurrent": 1},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "se2e-mlflow"},
        "storage_path": "runs",
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def _children(uri: str) -> list:
    client = ml.client_for(uri)
    exp = client.get_experiment_by_name("se2e-mlflow")
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))


def _ended(run) -> bool:
    return run.info.status in ("FINISHED", "KILLED") and run.data.tags.get(ml.END_TAG) != "interrupted"


def _wait_for_two_ended(proc, uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tune exited before it could be interrupted"
        try:
            runs = _children(uri)
        except Exception:  # noqa: BLE001 - the database may be being created
            runs = []
        if sum(_ended(r) for r in runs) >= 2 and any(r.info.status == "RUNNING" for r in runs):
            return  # two ended, the third under way
        time.sleep(1)
    raise AssertionError("timed out waiting for two ended trials and a third running")


def _searcher_trials(experiment_dir) -> int:
    """Trials the saved Optuna study holds (Tune saves the searcher beside its experiment state)."""
    saved = sorted(experiment_dir.glob("searcher-state-*.pkl"))
    assert saved, sorted(p.name for p in experiment_dir.iterdir())
    state = pickle.loads(saved[-1].read_bytes())
    searcher = state.get("searcher", state) if isinstance(state, dict) else state
    study = searcher["_ot_study"] if isinstance(searcher, dict) else searcher._ot_study
    return len(study.trials)


def test_interrupted_tpe_search_resumes_with_its_searcher(cli_app, tiny_index, tmp_path, monkeypatch):
    spec = _spec(tmp_path, tiny_index)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", CLI, "tune", spec], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_two_ended(proc, uri, timeout=300)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 130, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    first = {r.data.tags[ml.TRIAL_TAG]: r for r in _children(uri)}
    done = {name: r for name, r in first.items() if _ended(r)}
    assert len(done) >= 2
    assert "resume with `k400ray tune spec.yaml --resume`" in (tmp_path / "first.log").read_text()
    experiment_dir = tmp_path / "runs" / "se2e"
    studied_before = _searcher_trials(experiment_dir)
    assert studied_before >= 2

    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(cli_app, ["tune", spec, "--resume"])
    assert resumed.exit_code == 0, resumed.output[-3000:]

    final = {r.data.tags[ml.TRIAL_TAG]: r for r in _children(uri)}
    assert len(final) == SAMPLES  # no sample beyond num_samples, none lost
    assert _searcher_trials(experiment_dir) >= max(studied_before, SAMPLES)  # the study continued
    client = ml.client_for(uri)
    for name, run in done.items():  # finished (or stopped) trials were not run again
        after = final[name].info
        assert (after.start_time, after.end_time, after.status) == (run.info.start_time, run.info.end_time,
                                                                   run.info.status), name
    for name, run in final.items():
        params, tags = run.data.params, run.data.tags
        assert name.startswith("se2e-tsn_r50_1x1x8-nowarm-s0-") and tags["config"] == "nowarm"
        assert params["aug"] == "default" and params["config_name"] == "nowarm" and params["warmup_epochs"] == "0"
        lr, wd = float(params[SEARCH_PARAM_PREFIX + "training.lr"]), float(params[SEARCH_PARAM_PREFIX + "training.weight_decay"])
        assert 1e-4 <= lr <= 0.1 and 1e-5 <= wd <= 1e-3
        assert float(params["lr"]) == lr and float(params["weight_decay"]) == wd  # the trial ran with them
        assert "lr=" in run.info.run_name and run.info.status in ("FINISHED", "KILLED")
    assert len({r.data.params[SEARCH_PARAM_PREFIX + "training.lr"] for r in final.values()}) == SAMPLES
    parent = client.get_run(next(iter(final.values())).data.tags[ml.PARENT_TAG])
    assert parent.data.params[SEARCHER_PARAM] == "optuna" and parent.data.params[NUM_SAMPLES_PARAM] == str(SAMPLES)
    space = json.loads(open(client.download_artifacts(parent.info.run_id, SEARCH_SPACE_ARTIFACT, str(tmp_path))).read())
    assert space["space"]["training.lr"]["kind"] == "loguniform"
    stopped = [r for r in final.values() if r.data.tags.get(ml.END_TAG) == "stopped early by ASHA"]
    print(f"ASHA stopped {len(stopped)} of {SAMPLES}")

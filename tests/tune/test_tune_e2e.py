"""``k400ray tune`` end to end on the session's tiny synthetic set, interrupted and resumed: a
sampled search (Optuna's TPE over lr and weight decay for a named config, one trial at a time,
3 epochs, ASHA with rungs at epochs 1 and 2) is stopped by SIGTERM (a batch scheduler, ``kill``) after the first trial ended
and the second started, then ``--resume`` runs only the unfinished trial, with the searcher's
state restored, and ASHA stops it at its first rung, behind the trial that ended before the
interruption.

Why ASHA stops it: toy TSN learns this set in one epoch (8 steps of 2 clips) only at lr of about
1e-3 to 3e-3 (37.5-50% efficient top-1 at epoch 1, measured; 25%, chance, below 6e-4 and above
5e-3). TPE, seeded by the grid's seed 0, first draws lr 0.0016 (50% at epochs 1 and 2), then 0.0005
(25% at both). Tune restores no scheduler state, so the rung value of the first trial reaches the
resumed ASHA only because k400ray reads the ended trials' results back (tune/scheduler.py);
without that the resumed trial would be alone at the rung and run on.

SIGTERM is turned into Ctrl+C's SIGINT, whose handler (Tune's, during the fit) stops the grid:
one interruption covers both signals (tests/tune/test_runner_units.py shows SIGTERM reaching
whatever handles SIGINT). What is checked: the console of both runs (plain lines without a
terminal, Ray's own output in the log file it names); MLflow ends with exactly ``num_samples``
child runs, each with its sampled values as ``search.<section>.<field>`` params and the parent
tag, the finished one with the final metrics; the finished trial's run was not touched again,
the interrupted one was reopened (attempt 2) and ended KILLED, "stopped early by ASHA", with its
one epoch on its curve; the parent run was ``KILLED``, never left ``RUNNING``, then reopened and
``FINISHED``; the searcher's restored state holds the trials of the first run and went on to the
last point; the same command without ``--resume`` is refused; the report reads it."""

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

from k400ray.contracts import (
    ACCURATE_ACC1, EFFICIENT_ACC1, NUM_SAMPLES_PARAM, SEARCH_PARAM_PREFIX, SEARCH_SPACE_ARTIFACT, SEARCHER_PARAM,
    STOPPED_BY_ASHA,
)
from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow

CLI = "from k400ray.cli import app; app()"
SAMPLES = 2
EPOCHS = 3
LR_RANGE = (1.0e-5, 0.1)


def _spec(tmp_path, index) -> str:
    spec = {
        "experiment": "se2e", "scale": "toy",
        "data": {"train_index": str(index)},
        "configs": {"nowarm": {"base": "default", "training": {"warmup_epochs": 0}}},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["nowarm"], "seeds": [0]},
        "training": {"epochs": EPOCHS, "batch_per_worker": 2, "eval_interval": 1},
        "resources": {"max_concurrent_trials": 1, "decode_tasks": 1, "max_failures": 0},
        "search": {"space": {"training.lr": {"loguniform": list(LR_RANGE)},
                             "training.weight_decay": {"choice": [1.0e-5, 1.0e-4, 1.0e-3]}},
                   "num_samples": SAMPLES, "searcher": "optuna", "max_concurrent": 1},
        "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
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


def _wait_for_all_but_one_ended(proc, uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tune exited before it could be interrupted"
        try:
            runs = _children(uri)
        except Exception:  # noqa: BLE001 - the database may be being created
            runs = []
        if sum(_ended(r) for r in runs) >= SAMPLES - 1 and any(r.info.status == "RUNNING" for r in runs):
            return  # all ended but the last, which is under way
        time.sleep(1)
    raise AssertionError("timed out waiting for all trials but the last to end and the last to run")


def _searcher_trials(experiment_dir) -> int:
    """Trials the saved Optuna study holds (Tune saves the searcher beside its experiment state)."""
    saved = sorted(experiment_dir.glob("searcher-state-*.pkl"))
    assert saved, sorted(p.name for p in experiment_dir.iterdir())
    state = pickle.loads(saved[-1].read_bytes())
    searcher = state.get("searcher", state) if isinstance(state, dict) else state
    study = searcher["_ot_study"] if isinstance(searcher, dict) else searcher._ot_study
    return len(study.trials)


def test_an_interrupted_search_resumes_its_unfinished_trial_and_its_searcher(cli_app, tiny_index, tmp_path,
                                                                               monkeypatch):
    from ray import tune

    spec = _spec(tmp_path, tiny_index)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", CLI, "tune", spec], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_all_but_one_ended(proc, uri, timeout=420)
        proc.send_signal(signal.SIGTERM)  # handled as Ctrl+C: Tune saves its state and stops the running trial
        assert proc.wait(timeout=180) == 130, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()

    # The first run: all trials but the last ended, the last interrupted, the parent KILLED, Tune's state saved.
    client = ml.client_for(uri)
    first = {r.data.tags[ml.TRIAL_TAG]: r for r in _children(uri)}
    done = {name: r for name, r in first.items() if _ended(r)}
    assert len(done) == SAMPLES - 1
    interrupted = [name for name, r in first.items() if not _ended(r)]
    assert len(interrupted) == 1, {n: (r.info.status, r.data.tags.get(ml.END_TAG)) for n, r in first.items()}
    other = interrupted[0]
    assert first[other].info.status == "KILLED" and first[other].data.tags[ml.END_TAG] == "interrupted"
    parent_id = first[other].data.tags[ml.PARENT_TAG]
    assert client.get_run(parent_id).info.status == "KILLED"  # never left RUNNING
    experiment_dir = tmp_path / "runs" / "se2e"
    assert tune.Tuner.can_restore(str(experiment_dir))
    studied_before = _searcher_trials(experiment_dir)
    assert studied_before >= SAMPLES - 1
    history = {name: len(client.get_metric_history(r.info.run_id, "train_loss")) for name, r in done.items()}

    # Its console: plain lines without a terminal; Ray's own output went to the log file it named.
    first_out = (tmp_path / "first.log").read_text()
    assert "resume with `k400ray tune spec.yaml --resume`" in first_out
    ray_log = tmp_path / "runs" / "se2e.ray.log"
    assert f"Ray's output (Tune's tables, worker and raylet messages): {ray_log}" in first_out
    assert f"grid se2e: {SAMPLES} trials, up to 1 at a time" in first_out
    finished_first = next(name for name, r in done.items() if r.info.status == "FINISHED")
    for line in (f"start  {finished_first} (3 epochs)", f"epoch  {finished_first} 1/3: loss ",
                 f"epoch  {finished_first} 3/3: loss ", f"tested {finished_first}: ", f"finished {finished_first} in ",
                 f"interrupted {other} in "):
        assert line in first_out, (line, first_out[-3000:])
    assert "grid se2e KILLED" in first_out and "Trial status" not in first_out and "╭" not in first_out
    assert "stopped early" not in first_out  # the second trial was interrupted before its first rung
    assert "Trial status" in ray_log.read_text()
    assert "?workflowType=machine_learning" in first_out

    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(cli_app, ["tune", spec, "--resume"])
    assert resumed.exit_code == 0, resumed.output[-3000:]

    # MLflow: num_samples runs, no more, none lost; the ended ones untouched, the interrupted one reopened.
    final = {r.data.tags[ml.TRIAL_TAG]: r for r in _children(uri)}
    assert len(final) == SAMPLES
    assert _searcher_trials(experiment_dir) >= max(studied_before, SAMPLES)  # the study continued
    for name, run in done.items():
        after = final[name].info
        assert (after.start_time, after.end_time, after.status) == (run.info.start_time, run.info.end_time,
                                                                   run.info.status), name
        assert len(client.get_metric_history(after.run_id, "train_loss")) == history[name], name
    assert final[other].info.run_id == first[other].info.run_id and final[other].data.tags["k400ray.attempt"] == "2"
    assert client.get_run(parent_id).info.status == "FINISHED"
    for name, run in final.items():
        params, tags, m = run.data.params, run.data.tags, run.data.metrics
        assert tags[ml.PARENT_TAG] == parent_id  # the same parent run, reopened
        assert name.startswith("se2e-tsn_r50_1x1x8-nowarm-s0-") and tags["config"] == "nowarm"
        assert params["aug"] == "default" and params["config_name"] == "nowarm" and params["warmup_epochs"] == "0"
        lr, wd = float(params[SEARCH_PARAM_PREFIX + "training.lr"]), float(params[SEARCH_PARAM_PREFIX + "training.weight_decay"])
        assert LR_RANGE[0] <= lr <= LR_RANGE[1] and wd in (1e-5, 1e-4, 1e-3)
        assert float(params["lr"]) == lr and float(params["weight_decay"]) == wd  # the trial ran with them
        assert "lr=" in run.info.run_name and run.info.status in ("FINISHED", "KILLED")
        if run.info.status == "FINISHED":  # best and last both on record, and the recipe as run
            assert set(FINAL_METRICS) <= set(m), name
            assert m["accurate_epoch"] == m["best_epoch"] and m["efficient_acc1_best"] >= m["efficient_acc1"], name
            assert params["recipe.accurate_checkpoint"] == "best" and float(params["recipe.lr"]) == lr, name
    assert len({r.data.params[SEARCH_PARAM_PREFIX + "training.lr"] for r in final.values()}) == SAMPLES
    # ASHA stopped the resumed trial at its first rung, behind the finished trial there (read back
    # from the first run): at epoch 1, or at epoch 2 when the interruption came after it had
    # trained and checkpointed epoch 1 (the resumed fit then reports epoch 2 first). Its run
    # ends KILLED with the reason and no accurate mode; its curve holds each epoch it trained
    # once, up to the stop at least (a toy epoch, under a second, can end after the stop and
    # before Tune ends the trial's process).
    stop = [json.loads(line) for line in (experiment_dir / other / "result.json").read_text().splitlines()][-1]["epoch"]
    assert stop in (1, 2), stop
    stopped, ahead = final[other], final[finished_first]
    assert stopped.info.status == "KILLED" and stopped.data.tags[ml.END_TAG] == STOPPED_BY_ASHA, stopped.data.tags
    epochs = [m.step for m in client.get_metric_history(stopped.info.run_id, "train_loss")]
    assert epochs == list(range(1, len(epochs) + 1)) and stop <= epochs[-1], epochs
    rung = {r.data.tags[ml.TRIAL_TAG]: {m.step: m.value for m in client.get_metric_history(r.info.run_id, EFFICIENT_ACC1)}
            for r in (stopped, ahead)}
    assert rung[other][stop] < rung[finished_first][stop], rung
    assert ACCURATE_ACC1 not in stopped.data.metrics
    parent = client.get_run(parent_id)
    assert parent.data.params[SEARCHER_PARAM] == "optuna" and parent.data.params[NUM_SAMPLES_PARAM] == str(SAMPLES)
    space = json.loads(open(client.download_artifacts(parent_id, SEARCH_SPACE_ARTIFACT, str(tmp_path))).read())
    assert space["space"]["training.lr"]["kind"] == "loguniform"

    # The resumed console: the ended trials kept, the interrupted one and the last point step by step.
    out = resumed.stdout
    assert f"grid se2e: {SAMPLES} trials, up to 1 at a time ({len(done)} already finished)" in out, out[-3000:]
    for line in (f"start  {other} (3 epochs)", f"epoch  {other} ", f"stopped early {other} in ",
                 "grid se2e FINISHED in ", "1 finished, 1 stopped early"):
        assert line in out, (line, out[-3000:])
    assert not any(f"start  {name}" in out for name in done)
    # The experiment is "model development"; the links open the runs table in that mode; the
    # parent's description holds every trial's figures.
    experiment = client.get_experiment_by_name("se2e-mlflow")
    assert experiment.tags[ml.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert (f"#/experiments/{experiment.experiment_id}/runs?viewStateShareKey=k400ray-{parent_id[:12]}"
            "&workflowType=machine_learning") in out  # the grid's saved view of the runs table
    assert f"#/experiments/{experiment.experiment_id}/runs/{parent_id}?workflowType=machine_learning" in out
    assert (f"#/experiments/{experiment.experiment_id}/runs?viewStateShareKey=k400ray-{parent_id[:12]}"
            "&compareRunsMode=CHART&workflowType=machine_learning") in out  # the search's chart view
    note = parent.data.tags[ml.NOTE_TAG]
    for run in final.values():
        if run.info.status == "FINISHED":
            m = run.data.metrics
            assert f"{m['efficient_acc1']:.2f} / {m['efficient_acc5']:.2f}" in note, note

    again = CliRunner().invoke(cli_app, ["tune", spec])
    assert again.exit_code == 2 and "--resume" in again.stderr
    report = CliRunner().invoke(cli_app, ["report", "--spec", spec])
    assert report.exit_code == 0, report.output
    assert "?workflowType=machine_learning" in report.stderr and "workflowType" not in report.stdout
    assert "training.lr" in report.stdout

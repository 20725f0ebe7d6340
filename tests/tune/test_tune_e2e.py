"""``k400ray tune`` end to end on a tiny synthetic set: a 2-trial grid of explicit rows (toy I3D
with the ``gluoncv`` config, toy TSN with ``randaugment``) is stopped by SIGTERM (a batch
scheduler, ``kill``) after its first trial finished, then ``--resume`` runs only the unfinished
trial. SIGTERM is turned into Ctrl+C's SIGINT, whose handler (Tune's, during the fit) stops the
grid: one interruption covers both signals, and tests/tune/test_runner_units.py shows SIGTERM
reaching whatever handles SIGINT. MLflow ends with exactly one child run per trial, each with
the final metrics and the parent tag; the finished trial's run was not touched again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow

CLI = "from k400ray.cli import app; app()"


def _spec(tmp_path, index) -> str:
    spec = {
        "experiment": "e2e", "scale": "toy",
        "data": {"train_index": str(index)},
        "grid": {"rows": [{"preset": "i3d_r50_32x2x1", "config": "gluoncv"},
                          {"preset": "tsn_r50_1x1x8", "config": "randaugment"}], "seeds": [0]},
        "training": {"epochs": 1, "batch_per_worker": 4, "lr": 0.01, "limit_videos": 8},
        "resources": {"max_concurrent_trials": 1, "decode_tasks": 1, "max_failures": 0},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "e2e-mlflow"},
        "storage_path": "runs",
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def _children(uri: str) -> list:
    client = ml.client_for(uri)
    exp = client.get_experiment_by_name("e2e-mlflow")
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))


def _wait_for_first_finished_and_second_running(proc, uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tune exited before it could be interrupted"
        try:
            statuses = sorted(r.info.status for r in _children(uri))
        except Exception:  # noqa: BLE001 - the database may be being created
            statuses = []
        if statuses == ["FINISHED", "RUNNING"]:
            return
        time.sleep(2)
    raise AssertionError(f"timed out waiting for one finished and one running trial: {statuses}")


def test_interrupted_grid_resumes_only_unfinished_trials(cli_app, tiny_index, tmp_path, monkeypatch):
    from ray import tune

    spec = _spec(tmp_path, tiny_index)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", CLI, "tune", spec], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_first_finished_and_second_running(proc, uri, timeout=420)
        proc.send_signal(signal.SIGTERM)  # handled as Ctrl+C: Tune saves its state and stops the running trial
        assert proc.wait(timeout=180) == 130, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    first = {r.data.tags["aug"]: r for r in _children(uri)}
    assert first["gluoncv"].info.status == "FINISHED" or first["randaugment"].info.status == "FINISHED"
    done_aug = "gluoncv" if first["gluoncv"].info.status == "FINISHED" else "randaugment"
    other = "randaugment" if done_aug == "gluoncv" else "gluoncv"
    assert first[other].info.status == "KILLED" and first[other].data.tags[ml.END_TAG] == "interrupted"
    client = ml.client_for(uri)
    parent_id = first[other].data.tags[ml.PARENT_TAG]
    assert client.get_run(parent_id).info.status == "KILLED"  # never left RUNNING
    assert tune.Tuner.can_restore(str(tmp_path / "runs" / "e2e"))  # Tune saved its state
    done_history = len(client.get_metric_history(first[done_aug].info.run_id, "train_loss"))
    first_out = (tmp_path / "first.log").read_text()
    assert "resume with `k400ray tune spec.yaml --resume`" in first_out
    # Without a terminal the console is plain lines; Ray's own output went to the log file it named.
    ray_log = tmp_path / "runs" / "e2e.ray.log"
    assert f"Ray's output (Tune's tables, worker and raylet messages): {ray_log}" in first_out
    assert "grid e2e: 2 trials, up to 1 at a time" in first_out
    done_name = f"e2e-{first[done_aug].data.tags['model']}-{done_aug}-s0"
    for line in (f"start  {done_name} (1 epochs)", f"epoch  {done_name} 1/1: loss ", f"tested {done_name}: ",
                 f"finished {done_name} in "):
        assert line in first_out, (line, first_out[-3000:])
    assert "grid e2e KILLED" in first_out and "Trial status" not in first_out and "╭" not in first_out
    assert "Trial status" in ray_log.read_text()
    assert "?workflowType=machine_learning" in first_out

    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(cli_app, ["tune", spec, "--resume"])
    assert resumed.exit_code == 0, resumed.output[-3000:]

    final = {r.data.tags["aug"]: r for r in _children(uri)}
    assert len(_children(uri)) == 2 and set(final) == {"gluoncv", "randaugment"}
    assert final["gluoncv"].data.tags[ml.PARENT_TAG] == parent_id  # the same parent run, reopened
    assert final["randaugment"].data.tags[ml.PARENT_TAG] == parent_id
    assert final["gluoncv"].data.tags["model"] == "i3d_r50_32x2x1"
    assert client.get_run(parent_id).info.status == "FINISHED"
    for aug, run in final.items():
        assert run.info.status == "FINISHED", aug
        assert set(FINAL_METRICS) <= set(run.data.metrics), aug
        # best and last both on record, and the recipe as run (lr after scaling, groups, views)
        m, p = run.data.metrics, run.data.params
        assert m["accurate_epoch"] == m["best_epoch"] and m["efficient_acc1_best"] >= m["efficient_acc1"], aug
        assert p["recipe.config"] == aug and p["recipe.accurate_checkpoint"] == "best" and "recipe.lr" in p
        assert run.info.run_id == first[aug].info.run_id  # one child run per trial, reopened not duplicated
    # The finished trial was not run again; the interrupted one was, in its own run.
    done_before, done_after = first[done_aug].info, final[done_aug].info
    assert (done_after.start_time, done_after.end_time) == (done_before.start_time, done_before.end_time)
    assert len(client.get_metric_history(done_after.run_id, "train_loss")) == done_history
    assert final[other].data.tags["k400ray.attempt"] == "2"
    # The console of the resumed grid: the finished trial kept, the other one step by step, the end.
    # SIGTERM may have come after the interrupted trial's only epoch was trained and checkpointed
    # (then the resumed run goes straight to its test, and its end line carries both modes) or
    # before (then it trains that epoch again and says so). Either way MLflow holds that epoch:
    # logged when trained, or from its checkpoint when the interruption came before the
    # controller logged it.
    other_name = f"e2e-{final[other].data.tags['model']}-{other}-s0"
    out = resumed.stdout
    other_epochs = client.get_metric_history(final[other].info.run_id, "train_loss")
    assert other_epochs and {m.step for m in other_epochs} == {1}  # epoch 1, by either run (or both)
    assert "grid e2e: 2 trials, up to 1 at a time (1 already finished)" in out
    for line in (f"start  {other_name} (1 epochs)", f"finished {other_name} in ", "grid e2e FINISHED in "):
        assert line in out, (line, out[-3000:])
    done_line = next(ln for ln in out.splitlines() if ln.startswith(f"finished {other_name} in "))
    assert "efficient acc1/acc5 " in done_line and "accurate acc1/acc5 " in done_line, done_line
    if f"epoch  {other_name} 1/1: " in out:  # trained again: then tested, step by step
        assert f"tested {other_name}: " in out, out[-3000:]
    assert f"start  {done_name}" not in out
    # MLflow: the experiment is "model development"; the links open the runs table in that mode;
    # the parent's description holds every trial's figures and the sheet; children carry filter tags.
    experiment = client.get_experiment_by_name("e2e-mlflow")
    assert experiment.tags[ml.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert (f"#/experiments/{experiment.experiment_id}/runs?viewStateShareKey=k400ray-{parent_id[:12]}"
            "&workflowType=machine_learning") in out  # the grid's saved view of the runs table
    assert f"#/experiments/{experiment.experiment_id}/runs/{parent_id}?workflowType=machine_learning" in out
    assert {r.info.run_name for r in final.values()} == {"i3d·gluoncv·s0", "tsn·randaugment·s0"}
    note = client.get_run(parent_id).data.tags[ml.NOTE_TAG]
    for aug, run in final.items():
        m, t = run.data.metrics, run.data.tags
        assert (t["model"], t["config"], t["seed"]) == (t["model"], aug, "0")
        assert (f"| {t['model']} | {aug} | 0 | finished | {m['efficient_acc1']:.2f} / {m['efficient_acc5']:.2f} | "
                f"{m['accurate_acc1']:.2f} / {m['accurate_acc5']:.2f} |") in note, note
    assert "## e2e: 2 finished trials" in note  # the sheet, its title beside "Trials"
    rows = [ln.split() for ln in resumed.stdout.splitlines() if ln.startswith(("tsn_r50_1x1x8", "i3d_r50_32x2x1"))]
    assert sorted((r[0], r[1], r[-1]) for r in rows) == [("i3d_r50_32x2x1", "gluoncv", "finished"),
                                                          ("tsn_r50_1x1x8", "randaugment", "finished")]

    again = CliRunner().invoke(cli_app, ["tune", spec])
    assert again.exit_code == 2 and "--resume" in again.stderr
    report = CliRunner().invoke(cli_app, ["report", "--spec", spec])
    assert report.exit_code == 0, report.output
    assert "?workflowType=machine_learning" in report.stderr and "workflowType" not in report.stdout
    assert "| i3d_r50_32x2x1 | GluonCV |" in report.stdout
    assert "| tsn_r50_1x1x8 | randaugment |" in report.stdout

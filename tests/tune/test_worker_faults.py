"""Faults inside a running trial: a Ray Train worker process killed mid-epoch, and videos that
broke after indexing (one train video overwritten with garbage, one val video deleted).

The trial must restart its worker group from the latest checkpoint (losing at most the epoch
in progress), count the broken videos in ``skipped_videos``, finish, and keep one MLflow run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: no psutil needed)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found += kids
        frontier += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _trial_runs(uri: str) -> list:
    try:
        client = ml.client_for(uri)
        exp = client.get_experiment_by_name("faults")
        return [] if exp is None else list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))
    except Exception:  # noqa: BLE001 - the database may not exist yet
        return []


def test_killed_worker_and_broken_videos(tmp_path, synth_set):
    """On a copy of the session's set (its index used as is, ``data.data_root`` pointing at the
    copy); the grid runs in its own process with its own local Ray, as `k400ray tune` does."""
    from k400ray.data.pipeline import index_table

    source, index = synth_set
    data = tmp_path / "data"
    shutil.copytree(source, data)
    # Break two files after indexing: the index still lists them. Both are among the first 8 rows
    # of their split, the ones `limit_videos` keeps.
    train_video = data / index_table(index, "train")["path"][0].as_py()
    train_video.write_bytes(os.urandom(4096))
    (data / index_table(index, "val")["path"][0].as_py()).unlink()

    spec = {
        "experiment": "faults", "scale": "toy", "data": {"train_index": str(index), "data_root": str(data)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"]},
        "training": {"epochs": 3, "batch_per_worker": 4, "lr": 0.01, "limit_videos": 8},
        "resources": {"decode_tasks": 1, "max_failures": 2},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}, "storage_path": "runs",
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    log_path = tmp_path / "tune.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "k400ray"), "tune", "spec.yaml"], cwd=tmp_path,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 420
        while True:  # wait for epoch 1's report (so a checkpoint exists), then kill the worker
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            runs = _trial_runs(uri)
            if runs and ml.client_for(uri).get_metric_history(runs[0].info.run_id, "train_loss"):
                break
            time.sleep(1)
        workers = [p for p in _descendants(proc.pid) if "RayTrainWorker" in _cmdline(p)]
        assert len(workers) == 1, [_cmdline(p) for p in _descendants(proc.pid)]
        os.kill(workers[0], signal.SIGKILL)
        assert proc.wait(timeout=600) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    runs = _trial_runs(uri)
    assert len(runs) == 1  # the restart stayed inside the trial: one run
    run = runs[0]
    assert run.info.status == "FINISHED" and set(FINAL_METRICS) <= set(run.data.metrics)
    client = ml.client_for(uri)
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
    assert steps == [1, 2, 3]  # epoch 1 was not trained again: the restart resumed from its checkpoint
    restarted_from = max(m.value for m in client.get_metric_history(run.info.run_id, "start_epoch"))
    assert restarted_from >= 1  # a new worker group started after epoch 1, from the checkpoint
    assert run.data.metrics["skipped_videos"] >= 2  # the garbage train video (each epoch) + the deleted val one
    predictions = client.download_artifacts(run.info.run_id, "predictions_accurate.parquet", str(tmp_path))
    import pyarrow.parquet as pq

    assert pq.read_table(predictions).num_rows == 8 - 1  # every val video but the deleted one, once

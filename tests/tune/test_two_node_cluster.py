"""``k400ray tune --address`` against a Ray cluster of two nodes started on this machine, the
way ``ray up`` leaves one: a head with no CPUs for work (it only hosts the GCS, as a cluster
head should) and a worker node that joins it with ``ray start --address`` and token auth.

MLflow is a tracking server (HTTP, artifacts served by it), not a file path, so nothing a
trial writes depends on the driver's local disk; every trial must run on the worker node
because the head has no CPUs. The nodes run with ``--block`` in their own process group, so
tearing them down never touches another Ray on the machine (no ``ray stop``)."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:  # `ray start --block` exits within a second or two of SIGTERM, or not for a minute: then kill
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_until(check, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{what}: {p.args[:3]} exited with {p.returncode}"
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def two_node_cluster(tmp_path):
    """(address, head node id) of a fresh two-node cluster; torn down afterwards."""
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    head = _spawn([str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=0", "--num-gpus=0",
                   "--include-dashboard=false", "--block"], tmp_path / "head.log", env)
    procs = [head]
    try:
        _wait_until(lambda: _port_open(port), 90, "the Ray head", procs)
        worker_args = [str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}", "--num-cpus=8", "--num-gpus=0",
                       "--resources={\"decode_node\": 1}", "--block"]
        procs.append(_spawn(worker_args, tmp_path / "worker.log", env))
        probe = ("import ray; ray.init(address='127.0.0.1:%d', logging_level='ERROR'); "
                 "n = [x for x in ray.nodes() if x['Alive']]; "
                 "print(len(n), [x['NodeID'] for x in n if x['Resources'].get('CPU', 0) == 0][0])" % port)
        retries = [1]

        def two_alive() -> bool:
            if procs[-1].poll() is not None and retries:  # Ray gives a raylet 30 s to register:
                retries.pop()  # a busy machine can miss that once
                procs[-1] = _spawn(worker_args, tmp_path / "worker-retry.log", env)
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
            two_alive.head_id = out.stdout.split()[-1] if out.stdout.startswith("2 ") else None
            return two_alive.head_id is not None

        _wait_until(two_alive, 180, "the worker node to join", procs[:1])
        yield f"127.0.0.1:{port}", two_alive.head_id
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    store = tmp_path / "mlflow-server"
    store.mkdir()
    proc = _spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", f"sqlite:///{store}/mlflow.db", "--artifacts-destination", str(store / "artifacts"),
                   "--workers", "1"], tmp_path / "mlflow.log", dict(os.environ))
    try:
        uri = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                ml.check_reachable(uri, timeout_s=0)
                return True
            except ml.TrackingError:
                return False

        _wait_until(healthy, 180, "the MLflow server", [proc])
        yield uri
    finally:
        _stop(proc)


def test_tune_on_two_node_cluster(two_node_cluster, mlflow_server, tiny_index, tmp_path):
    address, head_id = two_node_cluster
    spec = {
        "experiment": "twonode", "scale": "toy",
        "data": {"train_index": str(tiny_index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default", "mixup"], "seeds": [0]},
        "training": {"epochs": 1, "batch_per_worker": 4, "lr": 0.01, "limit_videos": 8},
        # One trial at a time: with the session's local Ray still holding idle workers, two
        # concurrent trials on one 24 GB machine can reach Ray's memory-monitor kill threshold.
        "resources": {"max_concurrent_trials": 1, "decode_tasks": 1, "max_failures": 0},
        "mlflow": {"tracking_uri": mlflow_server},
        "storage_path": str(tmp_path / "shared-storage"),
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ}
    env.pop("RAY_AUTH_MODE", None)  # k400ray must turn token auth on by itself when joining
    result = subprocess.run([str(BIN / "k400ray"), "tune", "spec.yaml", "--address", address], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    client = ml.client_for(mlflow_server)
    exp = client.get_experiment_by_name("twonode")
    runs = client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'")
    assert sorted(r.data.tags["aug"] for r in runs) == ["default", "mixup"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert set(FINAL_METRICS) <= set(run.data.metrics)
        assert run.data.tags["ray_node_id"] != head_id  # the head has no CPUs: work ran on the worker node
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"predictions_efficient.parquet", "predictions_accurate.parquet", "config.json"} <= artifacts
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()  # all went to the server

    report = subprocess.run([str(BIN / "k400ray"), "report", "--experiment", "twonode", "--tracking-uri", mlflow_server,
                             "--format", "csv"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert sorted((r["model"], r["aug"]) for r in rows) == [("tsn_r50_1x1x8", "default"), ("tsn_r50_1x1x8", "mixup")]

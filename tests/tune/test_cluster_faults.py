"""A grid started the documented way, ``ray job submit --working-dir . -- k400ray tune SPEC``,
on a local two-node cluster (a head with no CPUs, as ``ray up`` leaves one, and a worker node),
through the faults a cluster has, all in one 3-epoch fit (suite time):

- the MLflow server goes down after epoch 1 is logged: training goes on, epoch 2's metrics are
  held in the trial's outbox (``k400ray.tracking.outbox``);
- while it is down, the worker node is lost (its Ray killed outright) with the trial's Tune
  actor, Train controller and worker on it;
- the server comes back on the same port, then the node: Tune retries the trial, which reopens
  its one MLflow run, sends what was held, and continues its Train run from the epoch-2
  checkpoint (at most the epoch in progress is lost).

At the end the job succeeded and the one run holds every epoch's metrics, each once. The nodes
and the server run in process groups of their own; nothing here stops a Ray it did not start.

``ray job submit`` needs the head's job server, part of Ray's dashboard, which needs
``ray[default]``; without those packages the grid is started as ``k400ray tune --address``
from this process (the driver off the lost node, as a job's is) and the faults are the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.outbox import Outbox, outbox_location
from tests.tune.test_two_node_cluster import _free_port, _port_open, _spawn, _stop, _wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _job_server_installed() -> bool:
    from ray._private.utils import get_dashboard_dependency_error

    return get_dashboard_dependency_error() is None
EXPERIMENT = "faultgrid"
TRIAL = f"{EXPERIMENT}-tsn_r50_1x1x8-default-s0"
JOB_ID = "k400ray-faultgrid"


class _Cluster:
    """A head (GCS + dashboard, the job server; no CPUs) and one worker node that can be lost
    and brought back."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.dashboard_port = tmp, _free_port(), _free_port()
        self.jobs = _job_server_installed()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # `k400ray` for the job
        self.env.pop("RAY_ADDRESS", None)
        self.head = self.worker = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def alive(self) -> list[str]:
        """Node ids the GCS holds alive (asked from a fresh process: it joins with the token)."""
        probe = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
                 "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))" % self.address)
        try:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=self.env,
                                 timeout=90)
        except subprocess.TimeoutExpired:  # a busy machine: ask again
            return []
        return out.stdout.split() if out.returncode == 0 else []

    def start_head(self) -> None:
        dashboard = ["--include-dashboard=false"]
        if self.jobs:
            dashboard = ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        self.head = _spawn([str(BIN / "ray"), "start", "--head", f"--port={self.port}", "--num-cpus=0",
                            "--num-gpus=0", *dashboard, "--block"], self.tmp / "head.log", self.env)
        _wait_until(lambda: _port_open(self.port) and (not self.jobs or _port_open(self.dashboard_port)), 180,
                    "the Ray head", [self.head])

    def start_worker(self) -> None:
        def spawn():
            self.starts += 1
            return _spawn([str(BIN / "ray"), "start", f"--address={self.address}", "--num-cpus=8", "--num-gpus=0",
                           "--block"], self.tmp / f"worker-{self.starts}.log", self.env)

        self.worker, retried = spawn(), []

        def joined() -> bool:
            if self.worker.poll() is not None and not retried:  # a busy machine can miss Ray's 30 s once
                retried.append(1)
                self.worker = spawn()
            return len(self.alive()) == 2

        _wait_until(joined, 240, "the worker node to join", [self.head])

    def lose_worker(self) -> None:
        """The node is gone at once (SIGKILL to its whole process group: raylet, workers)."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        _wait_until(lambda: len(self.alive()) == 1, 180, "the lost node to be declared dead", [self.head])

    def stop(self) -> None:
        for proc in (self.worker, self.head):
            if proc is not None:
                _stop(proc)


class _MlflowServer:
    """An MLflow server (SQLite backend) that can go down and come back on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.proc, self.starts = tmp, _free_port(), None, 0
        (tmp / "store").mkdir()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        store = self.tmp / "store"
        self.proc = _spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                            "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
                            "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
                           self.tmp / f"mlflow-{self.starts}.log", dict(os.environ))

        def healthy() -> bool:
            try:
                ml.check_reachable(self.uri, timeout_s=0)
                return True
            except ml.TrackingError:
                return False

        _wait_until(healthy, 300, "the MLflow server", [self.proc])

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = _Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_head()
        c.start_worker()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = _MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _submit_job(cluster: _Cluster, job_dir: Path, entrypoint: list[str]) -> None:
    """``ray job submit --working-dir . -- ENTRYPOINT`` from ``job_dir``, again while the head's
    job agent is still starting (Ray answers "No available agent" for a while on a busy machine)."""
    deadline = time.monotonic() + 240
    while True:
        done = subprocess.run([str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard,
                               "--submission-id", JOB_ID, "--no-wait", "--working-dir", ".", "--", *entrypoint],
                              cwd=job_dir, env=cluster.env, capture_output=True, text=True, timeout=300)
        text = done.stdout + done.stderr
        if done.returncode == 0 or f"submission_id {JOB_ID} already exists" in text:  # an earlier try got through
            return
        assert time.monotonic() < deadline, text[-3000:]
        time.sleep(3)


class _Job:
    """The submitted job, polled like a process (``ray job status`` at most every 5 s)."""

    def __init__(self, cluster: _Cluster) -> None:
        self.cluster, self.args, self.returncode, self._next = cluster, ["ray", "job", JOB_ID], None, 0.0

    def _ray_job(self, *args: str) -> str:
        try:
            done = subprocess.run([str(BIN / "ray"), "job", *args, "--address", self.cluster.dashboard, JOB_ID],
                                  capture_output=True, text=True, env=self.cluster.env, timeout=120)
        except subprocess.TimeoutExpired:  # a busy machine: ask again later
            return ""
        return done.stdout + done.stderr

    def poll(self) -> int | None:
        if self.returncode is None and time.monotonic() >= self._next:
            self._next = time.monotonic() + 5
            status = self._ray_job("status")
            if "SUCCEEDED" in status:
                self.returncode = 0
            elif "FAILED" in status or "STOPPED" in status or "does not exist" in status:
                self.returncode = 1
        return self.returncode

    def wait(self, timeout: float) -> int:
        _wait_until(lambda: self.poll() is not None, timeout, f"job {JOB_ID} to end")
        return self.returncode

    def logs(self) -> str:
        return self._ray_job("logs")


def _trial_runs(uri: str) -> list:
    client = ml.client_for(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    return [] if exp is None else list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))


def _epochs_logged(uri: str) -> list[int]:
    runs = _trial_runs(uri)
    if not runs:
        return []
    return sorted(m.step for m in ml.client_for(uri).get_metric_history(runs[0].info.run_id, "train_loss"))


def test_job_submitted_grid_survives_mlflow_outage_and_node_loss(cluster, mlflow_server, tiny_index, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # this test's own queries: fail, don't wait
    uri, storage = mlflow_server.uri, tmp_path / "storage"
    job_dir = tmp_path / "job"  # what --working-dir uploads: the spec only
    job_dir.mkdir()
    (job_dir / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": EXPERIMENT, "scale": "toy", "data": {"train_index": str(tiny_index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "training": {"epochs": 3, "batch_per_worker": 4, "lr": 0.01, "limit_videos": 8},
        "resources": {"decode_tasks": 1, "max_failures": 1},
        "mlflow": {"tracking_uri": uri}, "storage_path": str(storage),
    }))
    log = tmp_path / "job.log"
    if cluster.jobs:  # the documented launch
        _submit_job(cluster, job_dir, ["k400ray", "tune", "spec.yaml"])
        driver = _Job(cluster)
    else:
        driver = subprocess.Popen([str(BIN / "k400ray"), "tune", "spec.yaml", "--address", cluster.address],
                                  cwd=job_dir, env=cluster.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
    outbox = Outbox(outbox_location(str(storage), TRIAL), uri)
    try:
        def logged(n: int):
            def check() -> bool:
                try:
                    return len(_epochs_logged(uri)) >= n
                except Exception:  # noqa: BLE001 - the experiment may not exist yet
                    return False
            return check

        _wait_until(logged(1), 480, "epoch 1 in MLflow", [driver])
        first_node = _trial_runs(uri)[0].data.tags["ray_node_id"]
        mlflow_server.stop()  # the outage: training must go on
        _wait_until(lambda: outbox.pending(), 300, "epoch 2 held in the outbox", [driver])
        cluster.lose_worker()  # the trial's node, during epoch 3, while MLflow is still down
        mlflow_server.start()
        cluster.start_worker()  # capacity returns: Tune retries the trial there
        returncode = driver.wait(timeout=600)
    finally:
        if isinstance(driver, _Job):
            log.write_text(driver.logs())
        elif driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    out = log.read_text()
    assert returncode == 0, out[-4000:]  # the job SUCCEEDED (or the driver exited 0)
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("tsn_r50_1x1x8")]
    assert rows and rows[-1][-1] == "done", out[-3000:]  # the grid's summary
    runs = _trial_runs(uri)
    assert len(runs) == 1, [r.info.run_id for r in runs]  # the retry reopened the run
    run = runs[0]
    assert run.info.status == "FINISHED" and set(FINAL_METRICS) <= set(run.data.metrics)
    assert run.data.tags["k400ray.attempt"] == "2"  # Tune ran the trial a second time
    assert run.data.tags["ray_node_id"] != first_node  # on the node that came back
    client = ml.client_for(uri)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == [1, 2, 3]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "efficient_acc1")) == [1, 2, 3]
    assert outbox.pending() == []  # what was held was sent
    # The retry continued the Train run from its checkpoint: after the second start, the console
    # shows no epoch before the last (it either trains epoch 3 again, resumed from epoch 2's
    # checkpoint, or, when the node died after training ended, only redoes the final logging).
    starts = [i for i, ln in enumerate(out.splitlines()) if ln.startswith("start ")]
    assert len(starts) == 2, out[-3000:]
    retrained = [int(ln.split()[2].split("/")[0]) for ln in out.splitlines()[starts[1]:] if ln.startswith("epoch ")]
    assert all(e >= 3 for e in retrained), retrained

"""Grids on a Ray cluster of two nodes started on this machine, the way ``ray up`` leaves one: a
head with no CPUs for work (it hosts the GCS and the dashboard with its job server, as a cluster
head should) and a worker node that joins it with ``ray start --address`` and token auth. MLflow
is a tracking server (HTTP, artifacts served by it), not a file path, so nothing a trial writes
depends on the driver's local disk; every trial must run on the worker node.

One cluster and one MLflow server serve the two tests, in this order (a module's tests run in the
order they are defined):

1. ``test_smoke_run_submitted_as_a_job_runs_every_trial_for_one_epoch``: the documented first
   check of a new cluster, ``ray job submit --working-dir . -- k400ray tune SPEC --smoke``.
2. ``test_job_submitted_grid_survives_mlflow_outage_and_node_loss``: a grid started the
   documented way, ``ray job submit --working-dir . -- k400ray tune SPEC``, through the faults a
   cluster has, all in one 8-epoch fit: the tracking server is killed after epoch 1 is logged,
   its PostgreSQL stopped soon after (training goes on, epoch 2's metrics are held in the trial's outbox,
   ``k400ray.tracking.outbox``); while it is down, the worker node is lost (its Ray killed
   outright) with the trial's Tune actor, Train controller and worker on it; the node comes back
   (its disk empty: it stages again) while the server is still down: Tune retries the trial, which
   waits for the server at its start; the server comes back on the same port: the trial reopens
   its one MLflow run, sends what was held and continues its Train run from its latest
   checkpoint; the server goes down again, so the trial ends and the grid ends during an outage:
   the trial holds its end, the job still succeeds, and the same command with ``--resume``,
   once the server is back, sends what was held and runs nothing again; that command is
   ``k400ray tune --address`` from this machine, which turns token auth on by itself, and
   ``k400ray report`` reads the server. It stops and restarts the worker node and the server, so
   it runs last.

Faults inside a trial on a healthy node (its Train worker process killed, videos broken after
indexing) are tests/engine/test_worker_restart.py's, on the local Ray.

MLflow is a tracking server on PostgreSQL, as on the cluster (cluster.yaml's head): the database
is pgserver's, a PostgreSQL that pip installs (the test extra), started by the module.

Both nodes decode (each advertises ``decode_cpu``, as cluster.yaml's GPU and decode nodes do),
and each stages the prepared data onto its own disk before it starts Ray (``k400ray stage``, as
cluster.yaml's worker setup does), once: the grid of test 2 reads only those copies
(``data.local_cache``; the shared videos are moved away before it starts), and the worker node
that comes back after the loss starts with an empty disk and stages again, from a second copy of
the data standing in for a bucket (``--from``). On one machine the two "local disks" are two
folders: ``data.local_cache`` names ``$K400RAY_NODE``, which each node's Ray sees as its own name.

The head declares a lost node dead within seconds (Ray's GCS health check, tightened on the test
head through ``RAY_health_check_*``; the defaults take about 15 s). The nodes and the server
run with ``--block`` in process groups of their own; nothing here stops a Ray it did not start
(no ``ray stop``).

``ray job submit`` needs the head's job server, part of Ray's dashboard, which needs
``ray[default]``; without those packages the faulted grid is started as ``k400ray tune
--address`` from this process (the driver off the lost node, as a job's is) and the faults are
the same."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from k400ray.engine.trial import FINAL_METRICS
from k400ray.tracking import mlflow_log as ml
from k400ray.tracking.outbox import Outbox, outbox_location

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# The GCS checks each node every second after 1 s and declares it dead after 3 failed checks in a
# row (a killed node refuses at once: ~3 s); Ray's defaults are every 3 s, 5 failures, 10 s timeout.
FAST_NODE_DEATH = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
                   "RAY_health_check_timeout_ms": "5000", "RAY_health_check_failure_threshold": "3"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(*procs: subprocess.Popen) -> None:
    """Stop processes this module started, each with its process group (never another Ray),
    all at once."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in running:
        try:  # `ray start --block` exits within a second or two of SIGTERM, or not for a minute: then kill
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_until(check, timeout: float, what: str, procs=(), every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{what}: {p.args[:3]} exited with {p.returncode}"
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _agent_port() -> list[str]:
    """A free port for a node's dashboard agent. Every Ray on a machine (the session's local Ray,
    each node here) takes 52365 unless told otherwise; an agent that cannot bind it runs without
    its HTTP server, and the job server then finds no agent on the head to start a job."""
    return [f"--dashboard-agent-listen-port={_free_port()}"]


def _job_server_installed() -> bool:
    from ray._private.utils import get_dashboard_dependency_error

    return get_dashboard_dependency_error() is None


class _Cluster:
    """A head (GCS + dashboard, the job server; no CPUs) and one worker node that can be lost
    and brought back."""

    def __init__(self, tmp: Path, data: "_SharedData | None" = None) -> None:
        self.tmp, self.port, self.dashboard_port = tmp, _free_port(), _free_port()
        self.data = data
        self.stage_from: str | None = None  # where the next node start stages from (None: the index's data root)
        self.staged: dict[str, list[str]] = {"head": [], "worker": []}  # each start's `k400ray stage` summary
        self.jobs = _job_server_installed()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # `k400ray` for the job
        self.env.pop("RAY_ADDRESS", None)
        # Toy fits of a few seconds: Train's controller polls its workers every 0.5 s, as on a
        # local instance (k400ray.runtime.LOCAL_TRAIN_ENV), not every 2 s (cluster.yaml's nodes).
        self.env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.5"
        if self.jobs:
            # Ray Train's placement group cleaner asks the state API whether its controller lives,
            # at RAY_ADDRESS or else the machine's last `ray start` cluster: this one's, then.
            self.env["RAY_API_SERVER_ADDRESS"] = self.dashboard
        self.head = self.worker = None
        self.head_id: str | None = None
        self.starts = 0
        # Each node has its own Ray temp dir, as on two machines (short: Ray's socket paths live
        # under it). The head then leaves /tmp/ray/ray_current_cluster alone (the local Rays of
        # this machine would take it for theirs: see RAY_API_SERVER_ADDRESS), and the worker node
        # does not share the head's session dir: its runtime env agent would unpack a job's
        # working_dir over the head's copy, the job driver's cwd.
        self.head_temp = Path(tempfile.mkdtemp(prefix="k4h-", dir="/tmp"))
        self.worker_temp = Path(tempfile.mkdtemp(prefix="k4w-", dir="/tmp"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def get(self, path: str):
        """The head's dashboard API at ``path`` (JSON), with the cluster's token as ``ray`` sends it;
        None when it does not answer (a busy machine: ask again)."""
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        request = urllib.request.Request(self.dashboard + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return {"http_status": exc.code}
        except (OSError, ValueError):
            return None

    def alive(self) -> dict[str, float]:
        """{node id: CPUs} of the nodes the GCS holds alive: from the dashboard's state API when
        the head runs one (a request, not a process that joins the cluster), else asked from a
        fresh process (it joins with the token)."""
        if self.jobs:
            answer = self.get("/api/v0/nodes")
            try:
                nodes = answer["data"]["result"]["result"]
            except (KeyError, TypeError):
                return {}
            return {n["node_id"]: float(n["resources_total"].get("CPU") or 0) for n in nodes if n["state"] == "ALIVE"}
        probe = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
                 "print('alive:', *('%%s=%%g' %% (n['NodeID'], n['Resources'].get('CPU', 0)) "
                 "for n in ray.nodes() if n['Alive']))" % self.address)
        try:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=self.env,
                                 timeout=90)
        except subprocess.TimeoutExpired:  # a busy machine: ask again
            return {}
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("alive:")]  # not Ray's own messages
        if out.returncode != 0 or not line:
            return {}
        return {node: float(cpus) for node, cpus in (word.split("=") for word in line[-1].split()[1:])}

    def local_copy(self, node: str) -> Path:
        """The node's "instance-store" folder (``data.local_cache`` with ``$K400RAY_NODE`` = ``node``)."""
        return self.data.nodes / node / "k400"

    def _stage(self, node: str) -> None:
        """What cluster.yaml's worker setup does before ``ray start``: copy the data to the node's disk."""
        if self.data is None:
            return
        extra = ["--from", self.stage_from] if self.stage_from else []
        done = subprocess.run([str(BIN / "k400ray"), "stage", str(self.data.index), "--to", str(self.local_copy(node)),
                               *extra], capture_output=True, text=True, env=self.env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        self.staged[node].append(done.stdout.strip().splitlines()[-1])

    def start_head(self) -> None:
        dashboard = ["--include-dashboard=false"]
        if self.jobs:
            dashboard = ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}"]
        self._stage("head")
        self.head = _spawn([str(BIN / "ray"), "start", "--head", f"--port={self.port}", "--num-cpus=0",
                            "--num-gpus=0", '--resources={"decode_cpu": 2}', *dashboard, f"--temp-dir={self.head_temp}",
                            *_agent_port(), "--block"],
                           self.tmp / "head.log", {**self.env, **FAST_NODE_DEATH, "K400RAY_NODE": "head"})
        _wait_until(lambda: _port_open(self.port) and (not self.jobs or _port_open(self.dashboard_port)), 180,
                    "the Ray head", [self.head])

    def start_worker(self) -> None:
        self._stage("worker")

        def spawn():
            self.starts += 1
            return _spawn([str(BIN / "ray"), "start", f"--address={self.address}", "--num-cpus=8", "--num-gpus=0",
                           '--resources={"decode_cpu": 4}', f"--temp-dir={self.worker_temp}", *_agent_port(), "--block"],
                          self.tmp / f"worker-{self.starts}.log", {**self.env, "K400RAY_NODE": "worker"})

        self.worker, retried = spawn(), []

        def joined() -> bool:
            if self.worker.poll() is not None and not retried:  # a busy machine can miss Ray's 30 s once
                retried.append(1)
                self.worker = spawn()
            if "Ray runtime started" not in (self.tmp / f"worker-{self.starts}.log").read_text():
                return False  # not yet: spare the starting node the CPU of a probe
            nodes = self.alive()
            if len(nodes) != 2:
                return False
            self.head_id = next(node for node, cpus in nodes.items() if cpus == 0)
            return True

        _wait_until(joined, 240, "the worker node to join", [self.head])

    def worker_logs_mention(self, text: str) -> bool:
        """Whether a process of the worker node wrote ``text`` (Ray keeps each worker's stdout and
        stderr in its session's log folder; k400ray does not forward them to the driver)."""
        for path in self.worker_temp.glob("session_*/logs/worker-*.err"):
            try:
                if text in path.read_text(errors="replace"):
                    return True
            except OSError:
                continue
        return False

    def lose_worker(self) -> None:
        """The node is gone at once (SIGKILL to its whole process group: raylet, workers)."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        _wait_until(lambda: len(self.alive()) == 1, 180, "the lost node to be declared dead", [self.head])

    def stop(self) -> None:
        _stop(*(proc for proc in (self.worker, self.head) if proc is not None))
        for temp in (self.worker_temp, self.head_temp):
            shutil.rmtree(temp, ignore_errors=True)


class _MlflowServer:
    """An MLflow tracking server on PostgreSQL, as cluster.yaml's head runs one: the database is
    pgserver's (a PostgreSQL that pip installs, started here), the artifacts served by MLflow.
    The server, and the database with it, can go down and come back on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.proc, self.starts = tmp, _free_port(), None, 0
        (tmp / "artifacts").mkdir()
        # Run as root, pgserver starts PostgreSQL as a user of its own, which must reach the data folder.
        self.pg_parent = Path(tempfile.mkdtemp(prefix="k4pg-", dir="/tmp"))
        self.pg_parent.chmod(0o755)
        self.database = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start_database(self) -> str:
        import pgserver

        fresh = self.database is None and not (self.pg_parent / "pgdata").exists()
        self.database = pgserver.get_server(self.pg_parent / "pgdata", cleanup_mode="stop")
        if fresh:
            self.database.psql("CREATE DATABASE mlflow;")
        return self.database.get_uri().replace("postgresql://", "postgresql+psycopg2://").replace("/postgres?", "/mlflow?")

    def start(self, *, wait: bool = True) -> None:
        """The database, then the server; ``wait``: until it answers (else :meth:`wait`)."""
        self.starts += 1
        backend = self._start_database()
        self.proc = _spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                            "--backend-store-uri", backend, "--artifacts-destination", str(self.tmp / "artifacts"),
                            "--workers", "1"],
                           self.tmp / f"mlflow-{self.starts}.log", dict(os.environ))
        if wait:
            self.wait()

    def wait(self) -> None:
        def healthy() -> bool:
            try:
                ml.check_reachable(self.uri, timeout_s=0)
                return True
            except ml.TrackingError:
                return False

        _wait_until(healthy, 300, "the MLflow server", [self.proc], every=0.5)

    def crash(self) -> None:
        """The tracking server gone at once (SIGKILL: an OOM kill), its database left to :meth:`stop`."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, *, database: bool = False) -> None:
        """The tracking server down (``database``: PostgreSQL too, as when the head reboots)."""
        if self.proc is not None:
            _stop(self.proc)
        if database and self.database is not None:
            self.database.cleanup()
            self.database = None

    def close(self) -> None:
        self.stop(database=True)
        shutil.rmtree(self.pg_parent, ignore_errors=True)


class _SharedData:
    """The session's synthetic set as a cluster's /mnt/k400 holds it: prepared (``k400ray
    prepare``: the list of files staging checks) into a folder of its own beside ``mlflow/`` and
    ``weights/``, indexed; a "bucket" holding the same prepared copy; the nodes' local disks."""

    def __init__(self, base: Path, raw: Path) -> None:
        from k400ray.data.index import build_index
        from k400ray.data.prepare import prepare_dataset

        for sibling in ("mlflow", "weights"):
            (base / sibling).mkdir()
        self.prepared, self.index = base / "prepared", base / "index"
        self.bucket, self.nodes = base / "bucket" / "prepared", base / "nodes"
        manifest = prepare_dataset(raw, self.prepared)
        assert manifest["failed"] == 0, manifest["failed_videos"]
        build_index(self.prepared, self.index, progress=False)
        shutil.copytree(self.prepared, self.bucket)
        self.local_cache = str(self.nodes / "$K400RAY_NODE" / "k400")


@pytest.fixture(scope="module")
def shared_data(ray_local, synth_set, tmp_path_factory):
    return _SharedData(tmp_path_factory.mktemp("k400"), synth_set[0])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """Started first, answering once the cluster is up: the server boots while the nodes start."""
    server = _MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        server.start(wait=False)
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, shared_data, mlflow_server):
    c = _Cluster(tmp_path_factory.mktemp("cluster"), shared_data)
    try:
        c.start_head()
        c.start_worker()
        mlflow_server.wait()
        yield c
    finally:
        c.stop()


# 1. The documented check of a new cluster: `ray job submit ... --smoke`.

SMOKE_JOB = "k400ray-smokegrid"


def test_smoke_run_submitted_as_a_job_runs_every_trial_for_one_epoch(cluster, mlflow_server, shared_data, tmp_path):
    """``k400ray tune SPEC --smoke`` started as docs/cluster.md starts it: the grid's trial, one
    epoch on a few videos per class, both evaluation modes, reading the nodes' staged copies,
    under the ``-smoke`` names (the grid's own experiment stays untouched). One trial keeps the
    suite short; tests/tune/test_smoke.py shows every grid point becomes a smoke trial."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": "smokegrid", "scale": "toy",
        "data": {"train_index": str(shared_data.index), "local_cache": shared_data.local_cache},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "training": {"epochs": 4, "batch_per_worker": 4},
        "resources": {"decode_tasks": 1, "max_failures": 0},
        "mlflow": {"tracking_uri": mlflow_server.uri}, "storage_path": str(tmp_path / "storage"),
    }))
    entrypoint = ["k400ray", "tune", "spec.yaml", "--smoke"]
    if cluster.jobs:
        _submit_job(cluster, job_dir, entrypoint, SMOKE_JOB)
        job = _Job(cluster, SMOKE_JOB)
        returncode, out = job.wait(timeout=600), job.logs()
    else:
        done = subprocess.run([str(BIN / entrypoint[0]), *entrypoint[1:], "--address", cluster.address], cwd=job_dir,
                              env=cluster.env, capture_output=True, text=True, timeout=600)
        returncode, out = done.returncode, done.stdout + done.stderr
    assert returncode == 0, out[-4000:]
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("tsn_")]
    assert rows and rows[-1][-1] == "finished", out[-3000:]
    client = ml.client_for(mlflow_server.uri)
    assert client.get_experiment_by_name("smokegrid") is None  # the grid itself is not touched
    runs = client.search_runs([client.get_experiment_by_name("smokegrid-smoke").experiment_id],
                              f"tags.`{ml.ROLE_TAG}` = 'trial'")
    assert [r.data.tags["model"] for r in runs] == ["tsn_r50_1x1x8"]
    for run in runs:
        assert run.info.status == "FINISHED" and set(FINAL_METRICS) <= set(run.data.metrics)
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]  # one epoch
        assert {m.value for m in client.get_metric_history(run.info.run_id, "local_read_fraction")} == {1.0}


# 2. Last (it stops and restarts the worker node and the MLflow server): a job through faults.

EXPERIMENT = "faultgrid"
TRIAL = f"{EXPERIMENT}-tsn_r50_1x1x8-default-s0"
# Epochs of the faulted fit: a toy epoch takes about a second, and the node must be lost (once
# epoch 2 is held) before the fit ends.
EPOCHS = 8
JOB_ID = "k400ray-faultgrid"


def _submit_job(cluster: _Cluster, job_dir: Path, entrypoint: list[str], job_id: str = JOB_ID) -> None:
    """``ray job submit --working-dir . -- ENTRYPOINT`` from ``job_dir``, again while the head's
    job agent is still starting (Ray answers "No available agent" for a while on a busy machine)."""
    deadline = time.monotonic() + 240
    while True:
        done = subprocess.run([str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard,
                               "--submission-id", job_id, "--no-wait", "--working-dir", ".", "--", *entrypoint],
                              cwd=job_dir, env=cluster.env, capture_output=True, text=True, timeout=300)
        text = done.stdout + done.stderr
        if done.returncode == 0 or f"submission_id {job_id} already exists" in text:  # an earlier try got through
            return
        assert time.monotonic() < deadline, text[-3000:]
        time.sleep(3)


class _Job:
    """The submitted job, polled like a process, at most every ``every`` seconds."""

    def __init__(self, cluster: _Cluster, job_id: str = JOB_ID) -> None:
        self.cluster, self.job_id, self.returncode, self._next = cluster, job_id, None, 0.0
        self.args = ["ray", "job", job_id]
        self.every = 2.0

    def _ray_job(self, *args: str) -> str:
        try:
            done = subprocess.run([str(BIN / "ray"), "job", *args, "--address", self.cluster.dashboard, self.job_id],
                                  capture_output=True, text=True, env=self.cluster.env, timeout=120)
        except subprocess.TimeoutExpired:  # a busy machine: ask again later
            return ""
        return done.stdout + done.stderr

    def poll(self) -> int | None:
        """The job's status from the job server's REST API (what ``ray job status`` asks, without
        a process of 2 s of CPU per question)."""
        if self.returncode is None and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every
            answer = self.cluster.get(f"/api/jobs/{self.job_id}") or {}
            if answer.get("status") == "SUCCEEDED":
                self.returncode = 0
            elif answer.get("status") in ("FAILED", "STOPPED") or answer.get("http_status") == 404:
                self.returncode = 1
        return self.returncode

    def wait(self, timeout: float) -> int:
        self.every, self._next = 0.5, 0.0
        _wait_until(lambda: self.poll() is not None, timeout, f"job {self.job_id} to end")
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


def _staged_roots(cluster: _Cluster, local_cache: str, data_root: str) -> dict[str, str | None]:
    """{node id: the data folder a decode task on that node reads} (a task pinned to each node)."""
    probe = ("import json, ray; from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On\n"
             "ray.init(address=%r, logging_level='ERROR')\n"
             "@ray.remote(num_cpus=0)\n"
             "def where():\n"
             "    from k400ray.data.stage import staged_data_root\n"
             "    return staged_data_root(%r, %r)\n"
             "print('roots:', json.dumps({n['NodeID']: ray.get(where.options(scheduling_strategy=On(n['NodeID'], "
             "soft=False)).remote()) for n in ray.nodes() if n['Alive']}))" % (cluster.address, local_cache, data_root))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=cluster.env, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("roots:")]
    assert out.returncode == 0 and line, out.stdout + out.stderr
    return json.loads(line[-1].removeprefix("roots:"))


def test_job_submitted_grid_survives_mlflow_outage_and_node_loss(cluster, mlflow_server, shared_data, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # this test's own queries: fail, don't wait
    uri, storage = mlflow_server.uri, tmp_path / "storage"
    data = shared_data
    # Each node staged once, when it started; starting it again (a new `ray up`) copies nothing.
    files = int(re.search(r": (\d+) files,", cluster.staged["worker"][0]).group(1))
    assert files > 20 and all(f" {files} copied" in log for log in (cluster.staged["head"][0], cluster.staged["worker"][0])), \
        cluster.staged
    cluster._stage("worker")
    assert " 0 copied" in cluster.staged["worker"][-1] and "already there" in cluster.staged["worker"][-1]
    roots = _staged_roots(cluster, data.local_cache, str(data.prepared.resolve()))
    assert sorted(roots.values()) == sorted(str(cluster.local_copy(n) / "data") for n in ("head", "worker")), roots
    # From here on a read of the shared videos fails: whatever the trial decodes comes from a node's copy.
    moved = {split: data.prepared.parent / f"moved-{split}" for split in ("train", "val")}
    for split, to in moved.items():
        (data.prepared / split).rename(to)
    job_dir = tmp_path / "job"  # what --working-dir uploads: the spec only
    job_dir.mkdir()
    (job_dir / "spec.yaml").write_text(yaml.safe_dump({
        "experiment": EXPERIMENT, "scale": "toy",
        "data": {"train_index": str(data.index), "local_cache": data.local_cache},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "training": {"epochs": EPOCHS, "batch_per_worker": 4, "lr": 0.01, "limit_videos": 8},
        "resources": {"decode_tasks": 1, "max_failures": 1},
        "mlflow": {"tracking_uri": uri, "grid_end_wait_minutes": 0.05}, "storage_path": str(storage),
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

        _wait_until(logged(1), 480, "epoch 1 in MLflow", [driver], every=0.3)
        first_node = _trial_runs(uri)[0].data.tags["ray_node_id"]
        mlflow_server.crash()  # the outage: training must go on
        _wait_until(lambda: outbox.pending(), 300, "epoch 2 held in the outbox", [driver], every=0.2)
        cluster.lose_worker()  # the trial's node, a few epochs before the end, while MLflow is still down
        mlflow_server.stop(database=True)  # PostgreSQL down too, as when the head reboots
        # Capacity returns: a new machine with an empty disk, which stages (from the "bucket")
        # before its Ray starts; Tune retries the trial there, which waits at its start for the
        # tracking server that is still down.
        shutil.rmtree(cluster.local_copy("worker"))
        cluster.stage_from = f"file://{data.bucket}"
        cluster.start_worker()
        _wait_until(lambda: cluster.worker_logs_mention(f"trial {TRIAL}: the MLflow server"), 300,
                    "the retried trial waiting for MLflow at its start", [driver], every=0.5)
        mlflow_server.start()

        def started() -> bool:
            """The retry reopened the run and made every call of its start (its node tag, set
            last, names the new node): what it does next, it does during the outage below."""
            try:
                tags = _trial_runs(uri)[0].data.tags
                return tags.get("k400ray.attempt") == "2" and tags.get("ray_node_id") != first_node
            except Exception:  # noqa: BLE001 - the server is just back
                return False

        _wait_until(started, 300, "the retried trial to reopen its run and start", [driver], every=0.5)
        # Down again, for the rest: the trial ends and the grid ends while MLflow does not answer.
        mlflow_server.crash()
        returncode = driver.wait(timeout=600)  # then the grid, and the job
        held = [json.loads(Path(p).read_text()) for p in outbox.pending()]
        mlflow_server.start()
        # The command again with --resume, from this machine: it sends what was held and runs
        # nothing again. Without RAY_AUTH_MODE: k400ray turns token auth on by itself to join.
        env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
        resumed = subprocess.run([str(BIN / "k400ray"), "tune", "spec.yaml", "--resume", "--address",
                                  cluster.address], cwd=job_dir, env=env, capture_output=True, text=True, timeout=600)
    finally:
        if isinstance(driver, _Job):
            log.write_text(driver.logs())
        elif driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        for split, to in moved.items():
            to.rename(data.prepared / split)
    out = log.read_text()
    assert f" {files} copied" in cluster.staged["worker"][-1], cluster.staged  # the new node staged it all
    assert returncode == 0, out[-4000:]  # the job SUCCEEDED (or the driver exited 0), MLflow down at its end
    assert "does not answer: every result is kept" in out, out[-3000:]
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("tsn_r50_1x1x8")]
    assert rows and rows[-1][-1] == "finished", out[-3000:]  # the grid's summary
    assert [bool(r.get("end")) for r in held][-1], held  # the trial held its end (and what came before)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"sent {len(held)} record(s)" in resumed.stdout, resumed.stdout[-3000:]
    client = ml.client_for(uri)
    grid_runs = ml.find_grid_runs(client, client.get_experiment_by_name(EXPERIMENT).experiment_id)
    assert [r.info.status for r in grid_runs] == ["FINISHED"]
    runs = _trial_runs(uri)
    assert len(runs) == 1, [r.info.run_id for r in runs]  # the retry reopened the run
    run = runs[0]
    assert run.info.status == "FINISHED" and set(FINAL_METRICS) <= set(run.data.metrics)
    assert run.data.tags[ml.END_TAG] == "finished"
    artifacts = {a.path for a in ml.client_for(uri).list_artifacts(run.info.run_id)}
    assert {"predictions_efficient.parquet", "predictions_accurate.parquet", "config.json"} <= artifacts
    assert run.data.tags["k400ray.attempt"] == "2"  # Tune ran the trial a second time
    assert run.data.tags["ray_node_id"] != first_node  # on the node that came back
    assert cluster.head_id and cluster.head_id not in (first_node, run.data.tags["ray_node_id"])  # the head has no CPUs
    assert not (job_dir / "mlruns").exists() and not (job_dir / "mlartifacts").exists()  # all went to the server
    client = ml.client_for(uri)
    every_epoch = list(range(1, EPOCHS + 1))
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == every_epoch
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "efficient_acc1")) == every_epoch
    assert outbox.pending() == []  # what was held was sent
    # Every clip came from a node's staged copy: nothing was skipped though the shared videos were
    # gone, and every epoch's training clips were read locally.
    assert run.data.metrics["skipped_videos"] == 0
    local = client.get_metric_history(run.info.run_id, "local_read_fraction")
    assert {m.step for m in local} == set(every_epoch) and {m.value for m in local} == {1.0}
    # The retry continued the Train run from its checkpoint (epoch 2 or later: the node was lost
    # once epoch 2 was held), not from scratch: after the second start, the console shows no
    # epoch before the third, and the epochs it trained say where they started.
    starts = [i for i, ln in enumerate(out.splitlines()) if ln.startswith("start ")]
    assert len(starts) == 2, out[-3000:]
    retrained = [int(ln.split()[2].split("/")[0]) for ln in out.splitlines()[starts[1]:] if ln.startswith("epoch ")]
    assert all(e >= 3 for e in retrained), retrained
    assert max(m.value for m in client.get_metric_history(run.info.run_id, "start_epoch")) >= 2
    # The sheet from the tracking server.
    report = subprocess.run([str(BIN / "k400ray"), "report", "--experiment", EXPERIMENT, "--tracking-uri", uri,
                             "--format", "csv"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert [(r["model"], r["aug"]) for r in rows] == [("tsn_r50_1x1x8", "default")]

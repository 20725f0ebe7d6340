"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``, as after ``ray up``)
or a local instance sized for this machine.

Ray Train's controller and workers and Ray Data's tasks each hold logical CPUs; on a 2-core
machine they deadlock unless Ray is told there are more logical CPUs than cores, so a local
instance advertises ``max(8, 4 x cores)`` and callers budget them explicitly.

Idle worker processes are kept (not killed after Ray's default 1 s): decode tasks import
torch/torchvision, and re-importing them in fresh processes every epoch cost more than the
decoding itself on a small machine (docs/benchmarks.md, "Figures behind the code").
"""

from __future__ import annotations

import os
from pathlib import Path

from k400ray.ray_private import token_auth_enabler


def keep_workers_alive(cpus: int) -> dict:
    """Ray system config that keeps up to ``cpus`` idle workers (each ~0.7 GB once torch is
    imported) for 10 minutes instead of 1 s; more would risk the node's memory."""
    return {"num_workers_soft_limit": cpus, "idle_worker_killing_time_threshold_ms": 600_000}


# Ray Train V2 starts, per trial, a preemption watcher actor (it polls the cluster for nodes
# about to be reclaimed) and exports controller/worker metrics to the dashboard. A local
# instance has one node that cannot be preempted and no dashboard: both are off there (the
# user's own environment variables win): one process less per trial.
# The Train controller collects its workers' reports and status by polling them, every 2 s by
# default: a fit's reports wait up to that long, and its end two polls (about 3.5 s of a 14 s toy
# fit). Locally a poll is a call between processes of one machine: every 0.5 s (a cluster keeps
# Ray's default; its epochs take minutes).
# LOCAL_RAY_ENV tells the trainer (engine.lean_trainer) it runs on such an instance.
LOCAL_RAY_ENV = "K400RAY_LOCAL_RAY"
LOCAL_TRAIN_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0",
                   "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5", LOCAL_RAY_ENV: "1"}


def local_logical_cpus() -> int:
    """Logical CPUs a local instance advertises: ``max(8, 4 x cores)`` (see the module docstring)."""
    return max(8, 4 * (os.cpu_count() or 1))


_LOCAL_GCS: str | None = None  # the address of the local instance init_ray started in this process
_ENDED_BY_COMMAND = False  # init_ray connected this process and finish_ray should disconnect it


def busy_cpus() -> int:
    """How many CPU-bound tasks keep Ray's CPUs busy: the cluster's CPUs, or this machine's cores
    on the local instance ``init_ray`` started (it advertises more CPUs than there are cores;
    a CPU-bound task beyond the cores only adds a process to start)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    local = _LOCAL_GCS is not None and ray.get_runtime_context().gcs_address == _LOCAL_GCS
    return min(cpus, os.cpu_count() or 1) if local else cpus


def enable_token_auth_if_available() -> None:
    """Join a token-protected cluster (``ray start --head``, Ray >= 2.60) with the token in
    ``~/.ray/auth_token`` unless ``RAY_AUTH_MODE`` says otherwise. Ray reads its auth mode when
    it is imported, so the environment variable alone comes too late here; Ray's own helper
    also refreshes the loaded config."""
    if "RAY_AUTH_MODE" in os.environ or not (Path.home() / ".ray" / "auth_token").is_file():
        return
    os.environ["RAY_AUTH_MODE"] = "token"  # for processes this one starts
    enable = token_auth_enabler()
    if enable is None:  # another Ray version: the environment variable is what remains
        return
    os.environ.pop("RAY_AUTH_MODE")
    enable()


def init_ray(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True,
             keep: bool = False) -> None:
    """Start or join Ray once per process. Ray >= 2.60 protects ``ray start`` clusters with a
    token: joining one from another process needs ``RAY_AUTH_MODE=token`` (token file in
    ``~/.ray/auth_token``), which is set here when the token file exists. ``keep``: not ended by
    :func:`finish_ray` (a test session's instance, shared by the commands it runs)."""
    global _LOCAL_GCS, _ENDED_BY_COMMAND
    import ray

    if ray.is_initialized():
        return
    _ENDED_BY_COMMAND = not keep
    address = address or os.environ.get("RAY_ADDRESS")
    log_level = "ERROR" if quiet else "INFO"
    if address:
        enable_token_auth_if_available()
        ray.init(address=address, logging_level=log_level, log_to_driver=not quiet)
    else:
        cpus = num_cpus or local_logical_cpus()
        for key, value in LOCAL_TRAIN_ENV.items():  # the local raylet and its workers inherit them
            os.environ.setdefault(key, value)
        ray.init(
            # "local": always a new instance; a bare ray.init() would join the last `ray start`
            # cluster of this machine (/tmp/ray/ray_current_cluster), even a dead one.
            address="local", num_cpus=cpus, include_dashboard=False, logging_level=log_level, log_to_driver=not quiet,
            _system_config=keep_workers_alive(cpus),
        )
        _LOCAL_GCS = ray.get_runtime_context().gcs_address


def finish_ray() -> None:
    """End the Ray connection (and the local instance) that :func:`init_ray` opened for this
    command, unless it was asked to keep it. Called while Ray's output still goes to its log
    file (``console.ray_log``): warnings Ray holds back and prints at exit (the raylet's
    "worker processes have been started" count, repeated Nx) then land there, not after the
    command's last line on the terminal."""
    global _ENDED_BY_COMMAND
    import ray

    if _ENDED_BY_COMMAND and ray.is_initialized():
        ray.shutdown()
    _ENDED_BY_COMMAND = False

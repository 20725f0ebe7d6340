"""The local instance advertises more CPUs than the machine has; CPU-bound fan-out uses the cores."""

from __future__ import annotations

import os

from k400ray import runtime


def test_busy_cpus_are_the_cores_on_the_local_instance(ray_local, monkeypatch):
    import ray

    advertised = int(ray.cluster_resources()["CPU"])
    assert advertised == runtime.local_logical_cpus()
    assert runtime.busy_cpus() == min(advertised, os.cpu_count() or 1)
    # Joined to anything else (a cluster), Ray's own count is the answer.
    monkeypatch.setattr(runtime, "_LOCAL_GCS", "10.0.0.1:6379")
    assert runtime.busy_cpus() == advertised


def test_finish_ray_keeps_the_session_instance(ray_local):
    runtime.finish_ray()
    assert ray_local.is_initialized()


def test_finish_ray_ends_the_instance_a_command_started():
    import subprocess
    import sys

    code = ("import ray; from k400ray.runtime import init_ray, finish_ray; init_ray(num_cpus=2); "
            "assert ray.is_initialized(); finish_ray(); print('ended' if not ray.is_initialized() else 'running')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ended"), out.stderr[-2000:]

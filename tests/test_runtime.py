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

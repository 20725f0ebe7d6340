"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``, as after ``ray up``)
or a local instance sized for this machine.

Ray Train's controller and workers and Ray Data's tasks each hold logical CPUs; on a 2-core
machine they deadlock unless Ray is told there are more logical CPUs than cores, so a local
instance advertises ``max(8, 4 x cores)`` and callers budget them explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path


def local_logical_cpus() -> int:
    return max(8, 4 * (os.cpu_count() or 1))


def init_ray(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True) -> None:
    """Start or join Ray once per process. Ray >= 2.60 protects ``ray start`` clusters with a
    token: joining one from another process needs ``RAY_AUTH_MODE=token`` (token file in
    ``~/.ray/auth_token``), which is set here when the token file exists."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    log_level = "ERROR" if quiet else "INFO"
    if address:
        if (Path.home() / ".ray" / "auth_token").is_file():
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        ray.init(address=address, logging_level=log_level, log_to_driver=not quiet)
    else:
        ray.init(
            num_cpus=num_cpus or local_logical_cpus(), include_dashboard=False,
            logging_level=log_level, log_to_driver=not quiet,
        )

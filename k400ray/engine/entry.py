"""The function handed to ``TorchTrainer``: a light module on purpose.

Ray pickles the train function by reference, so every process that holds the trainer imports
its module: the Train controller of each trial as well as the workers. The controller never
trains; importing ``engine.worker`` there (torch, torchvision, the models, the data pipeline)
would cost every trial CPU time for nothing (docs/benchmarks.md, "Figures behind the code"). The
heavy import happens here, inside the call, on the workers only.
"""

from __future__ import annotations


def train_loop_per_worker(config: dict) -> None:
    """Runs :func:`k400ray.engine.worker.train_loop_per_worker` (see there) on this worker."""
    from k400ray.engine.worker import train_loop_per_worker as run

    run(config)

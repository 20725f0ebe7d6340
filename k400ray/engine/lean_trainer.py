"""A ``TorchTrainer`` without the two helper actors this project never uses.

Train V2 starts, for every fit, besides the controller and the workers:

- a ``DatasetManager`` actor, even when the trainer is given no dataset. k400ray never gives
  one: each worker builds its share of every epoch itself (``data.pipeline.clip_dataset``),
  and sets its own Ray Data context there, so the manager and the data context it copies to
  the workers serve nothing;
- a detached ``PlacementGroupCleaner`` actor, which polls every second whether the controller
  still lives, to free the workers' placement group if it died without doing so. On a local
  Ray instance that k400ray started (one node, ended with the driver) there is nothing it can
  free that Ray does not free anyway, and it once asked another Ray instance of the same
  machine about the controller (docs/reliability.md). On a cluster it stays.

Each of them is a fresh Python process that imports Ray per trial: measured on the demo's
12 trials, about 2 and 2.7 CPU-s per trial.

The callbacks are dropped from the list Train V2 builds in ``_create_default_callbacks``, a
private method of the Ray version this project pins (``tests/engine/test_lean_trainer.py``
checks that both are found there, so an upgrade that moves them fails a test, not a run).
"""

from __future__ import annotations

import os

from ray.train.torch import TorchTrainer

from k400ray.runtime import LOCAL_RAY_ENV  # set by init_ray for the local instance it starts


def _unused_callback_types(local_ray: bool) -> tuple[type, ...]:
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    return (DatasetsCallback, PlacementGroupCleanerCallback) if local_ray else (DatasetsCallback,)


class LeanTorchTrainer(TorchTrainer):
    """``TorchTrainer`` for fits without Train-managed datasets (refused here if given)."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("datasets"):
            raise ValueError("LeanTorchTrainer starts no DatasetManager: build datasets in the workers")
        super().__init__(*args, **kwargs)

    def _create_default_callbacks(self):
        unused = _unused_callback_types(os.environ.get(LOCAL_RAY_ENV) == "1")
        return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, unused)]

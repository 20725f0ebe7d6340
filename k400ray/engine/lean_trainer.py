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

Each of them is a fresh Python process that imports Ray per trial (docs/benchmarks.md says
what they cost).

Train V2 has no public option to leave them out: the callbacks are dropped through
:class:`k400ray.ray_private.DropsDefaultTrainCallbacks`, where every private Ray API of the
package is kept and checked against the pinned Ray version.
"""

from __future__ import annotations

import os

from ray.train.torch import TorchTrainer

from k400ray import ray_private
from k400ray.runtime import LOCAL_RAY_ENV  # set by init_ray for the local instance it starts


def unused_callback_types(local_ray: bool) -> tuple[type, ...]:
    """Train V2's callback types this project never uses: the ``DatasetManager``'s, and the
    placement-group cleaner's on a local instance (``local_ray``)."""
    datasets = ray_private.datasets_callback_type()
    return (datasets, ray_private.placement_group_cleaner_type()) if local_ray else (datasets,)


class LeanTorchTrainer(ray_private.DropsDefaultTrainCallbacks, TorchTrainer):
    """``TorchTrainer`` for fits without Train-managed datasets (refused here if given)."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("datasets"):
            raise ValueError("LeanTorchTrainer starts no DatasetManager: build datasets in the workers")
        super().__init__(*args, **kwargs)

    def dropped_callback_types(self) -> tuple[type, ...]:
        return unused_callback_types(os.environ.get(LOCAL_RAY_ENV) == "1")

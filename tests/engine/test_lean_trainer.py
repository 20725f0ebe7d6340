"""The trainer drops exactly Train V2's DatasetManager callback, and the placement-group cleaner
on a local Ray instance only; everything else Train sets up stays."""

from __future__ import annotations

import pytest
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from k400ray.engine.lean_trainer import LeanTorchTrainer
from k400ray.ray_private import datasets_callback_type, default_train_callbacks, placement_group_cleaner_type
from k400ray.runtime import LOCAL_RAY_ENV

DatasetsCallback, PlacementGroupCleanerCallback = datasets_callback_type(), placement_group_cleaner_type()


def _loop(config):  # never run
    pass


def _types(trainer_cls, tmp_path) -> list[str]:
    trainer = trainer_cls(_loop, scaling_config=ScalingConfig(num_workers=1),
                          run_config=RunConfig(name="t", storage_path=str(tmp_path)))
    return [type(cb).__name__ for cb in default_train_callbacks(trainer)]


@pytest.mark.parametrize("local", [True, False])
def test_only_the_unused_helper_actors_are_dropped(tmp_path, monkeypatch, local):
    if local:
        monkeypatch.setenv(LOCAL_RAY_ENV, "1")
    else:
        monkeypatch.delenv(LOCAL_RAY_ENV, raising=False)
    ray_default = _types(TorchTrainer, tmp_path)
    # Both are where this Ray version builds its callbacks: an upgrade that moves them fails here.
    assert DatasetsCallback.__name__ in ray_default and PlacementGroupCleanerCallback.__name__ in ray_default
    dropped = {DatasetsCallback.__name__} | ({PlacementGroupCleanerCallback.__name__} if local else set())
    assert _types(LeanTorchTrainer, tmp_path) == [t for t in ray_default if t not in dropped]


def test_a_trial_on_the_local_instance_starts_no_cleaner(ray_local, tmp_path):
    """Where a Tune trial calls ``fit`` (a worker process of the local instance ``init_ray``
    started), the trainer builds neither helper; everything else Train sets up stays."""

    @ray_local.remote(num_cpus=0)
    def callbacks_in_a_worker(storage: str) -> tuple[list[str], list[str]]:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        from k400ray.engine.lean_trainer import LeanTorchTrainer
        from k400ray.ray_private import default_train_callbacks

        def types(cls) -> list[str]:  # self-contained: the worker need not import this test module
            trainer = cls(lambda config: None, scaling_config=ScalingConfig(num_workers=1),
                          run_config=RunConfig(name="t", storage_path=storage))
            return [type(cb).__name__ for cb in default_train_callbacks(trainer)]

        return types(LeanTorchTrainer), types(TorchTrainer)

    lean, ray_default = ray_local.get(callbacks_in_a_worker.remote(str(tmp_path)), timeout=120)
    assert DatasetsCallback.__name__ in ray_default and PlacementGroupCleanerCallback.__name__ in ray_default
    assert lean == [t for t in ray_default if t not in {DatasetsCallback.__name__, PlacementGroupCleanerCallback.__name__}]


def test_datasets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="DatasetManager"):
        LeanTorchTrainer(_loop, scaling_config=ScalingConfig(num_workers=1), datasets={"train": object()},
                         run_config=RunConfig(name="t", storage_path=str(tmp_path)))

"""The trainer drops exactly Train V2's DatasetManager callback, and the placement-group cleaner
on a local Ray instance only; everything else Train sets up stays."""

from __future__ import annotations

import pytest
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

from k400ray.engine.lean_trainer import LeanTorchTrainer
from k400ray.runtime import LOCAL_RAY_ENV, LOCAL_TRAIN_ENV


def _loop(config):  # never run
    pass


def _types(trainer_cls, tmp_path) -> list[str]:
    trainer = trainer_cls(_loop, scaling_config=ScalingConfig(num_workers=1),
                          run_config=RunConfig(name="t", storage_path=str(tmp_path)))
    return [type(cb).__name__ for cb in trainer._create_default_callbacks()]


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


def test_the_local_instance_says_it_is_local():
    assert LOCAL_TRAIN_ENV[LOCAL_RAY_ENV] == "1"


def test_datasets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="DatasetManager"):
        LeanTorchTrainer(_loop, scaling_config=ScalingConfig(num_workers=1), datasets={"train": object()},
                         run_config=RunConfig(name="t", storage_path=str(tmp_path)))

"""Ray's private API, as ``k400ray.ray_private`` uses it, checked against Ray 2.60.0.

A Ray upgrade fails here, naming what moved, instead of silently in a trial: the installed Ray
must be the version the private symbols were checked against, and each of them must still
resolve and behave as the package expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k400ray import ray_private

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_ray_is_the_version_checked():
    import ray

    assert ray.__version__ == ray_private.RAY_VERSION_CHECKED, (
        f"Ray {ray.__version__} is installed; k400ray/ray_private.py was checked against Ray "
        f"{ray_private.RAY_VERSION_CHECKED}. Check every private symbol it names against the new "
        "version (this file's other tests), then update RAY_VERSION_CHECKED and pyproject.toml's pin.")


def test_pyproject_pins_the_version_checked():
    pins = set(re.findall(r'"ray\[[a-z,]+\]==([0-9.]+)"', (ROOT / "pyproject.toml").read_text()))
    assert pins == {ray_private.RAY_VERSION_CHECKED}


@pytest.mark.parametrize("where", ray_private.PRIVATE_SYMBOLS, ids=lambda w: f"{w[0]}.{w[1]}")
def test_each_private_symbol_resolves(where):
    import importlib

    module, name = where
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"Ray's private module {module} is gone ({exc}): k400ray/ray_private.py needs another way")
    assert hasattr(found, name), f"{module} no longer has {name}: k400ray/ray_private.py needs another way"


def test_the_callback_types_are_the_ones_train_starts_a_fit_with(tmp_path):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(lambda config: None, scaling_config=ScalingConfig(num_workers=1),
                           run_config=RunConfig(name="t", storage_path=str(tmp_path)))
    types = {type(cb) for cb in ray_private.default_train_callbacks(trainer)}
    assert ray_private.datasets_callback_type() in types
    assert ray_private.placement_group_cleaner_type() in types


def test_the_mixin_overrides_the_method_train_calls():
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    assert callable(getattr(DataParallelTrainer, "_create_default_callbacks", None)), (
        "DataParallelTrainer._create_default_callbacks is gone: DropsDefaultTrainCallbacks overrides nothing")


def test_the_snapshot_file_name_is_a_plain_file_name():
    name = ray_private.checkpoint_manager_snapshot_filename()
    assert isinstance(name, str) and name and "/" not in name


def test_the_cluster_state_offers_the_autoscaler_maxima():
    from ray._private.state import state

    assert callable(state.get_max_resources_from_cluster_config)


def test_a_tuner_hands_out_its_own_run_config(tmp_path):
    from ray import tune

    run_config = tune.RunConfig(name="t", storage_path=str(tmp_path))
    tuner = tune.Tuner(lambda config: None, run_config=run_config)
    got = ray_private.tuner_run_config(tuner)
    assert got.name == "t"
    got.callbacks = ["marker"]
    assert ray_private.tuner_run_config(tuner).callbacks == ["marker"]  # the object the fit runs with


def test_a_trial_function_sees_its_session_until_tune_stops_it(ray_local, tmp_path):
    """What a trial's error handler asks before it ends its MLflow run FAILED: inside a running
    Tune trial the session is there; Tune's stop (the trial's cleanup) shuts it down, as here
    outside any trial."""
    from ray import tune

    seen = tmp_path / "seen"

    def trial(config: dict) -> None:
        seen.write_text(str(ray_private.trial_session_ended()))

    tune.Tuner(trial, run_config=tune.RunConfig(name="s", storage_path=str(tmp_path))).fit()
    assert seen.read_text() == "False"
    assert ray_private.trial_session_ended()


def test_the_token_auth_helper_is_there():
    assert callable(ray_private.token_auth_enabler())


def test_the_train_settings_of_a_local_instance_are_ones_ray_reads():
    """``runtime.LOCAL_TRAIN_ENV`` sets Ray Train knobs by environment variable: a renamed one
    would be ignored without a word (the controller's 0.5 s poll, the preemption watcher off)."""
    from ray.train.v2._internal import constants

    from k400ray.runtime import LOCAL_TRAIN_ENV

    read = {value for name, value in vars(constants).items() if name.endswith("_ENV_VAR") and isinstance(value, str)}
    ours = {key for key in LOCAL_TRAIN_ENV if key.startswith("RAY_TRAIN_")}
    assert len(ours) == 3 and ours <= read, sorted(ours - read)

"""Every use of Ray's private API, in one place.

Each name below stands for one thing Ray's public API does not offer yet, says what is missing
and what it reaches for instead. Private API may move or change in any Ray release without
notice: ``tests/test_ray_private.py`` checks that every symbol named here still resolves in the
installed Ray, and that this Ray is the version these were checked against
(:data:`RAY_VERSION_CHECKED`, the version ``pyproject.toml`` pins), so an upgrade fails that
test rather than a trial.

Ray is imported inside the functions only: this module sits below every layer of the package
(``runtime`` imports it) and must stay cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable

RAY_VERSION_CHECKED = "2.60.0"

# Module paths and names reached for below (the test resolves each of them).
_DATASETS_CALLBACK = ("ray.train.v2._internal.callbacks.datasets", "DatasetsCallback")
_PLACEMENT_GROUP_CLEANER = ("ray.train.v2._internal.callbacks.placement_group_callback",
                            "PlacementGroupCleanerCallback")
_SNAPSHOT_FILENAME = ("ray.train.v2._internal.constants", "CHECKPOINT_MANAGER_SNAPSHOT_FILENAME")
_CLUSTER_STATE = ("ray._private.state", "state")
_TOKEN_AUTH = ("ray._private.authentication.authentication_token_setup", "maybe_enable_token_auth_if_token_available")
_TRIAL_SESSION = ("ray.train._internal.session", "get_session")
PRIVATE_SYMBOLS = (_DATASETS_CALLBACK, _PLACEMENT_GROUP_CLEANER, _SNAPSHOT_FILENAME, _CLUSTER_STATE, _TOKEN_AUTH,
                   _TRIAL_SESSION)


def _resolve(where: tuple[str, str]):
    import importlib

    module, name = where
    return getattr(importlib.import_module(module), name)


def datasets_callback_type() -> type:
    """The Train V2 callback that starts a ``DatasetManager`` actor on every fit.

    Missing public API: no way to leave Train's default callbacks out of a fit."""
    return _resolve(_DATASETS_CALLBACK)


def placement_group_cleaner_type() -> type:
    """The Train V2 callback that starts a detached ``PlacementGroupCleaner`` actor on every fit.

    Missing public API: as :func:`datasets_callback_type`."""
    return _resolve(_PLACEMENT_GROUP_CLEANER)


class DropsDefaultTrainCallbacks:
    """Mixin for a Train V2 trainer (listed before ``TorchTrainer`` in the bases) that leaves out
    some of the callbacks Train builds for every fit; the subclass names their types in
    :meth:`dropped_callback_types`.

    Missing public API: Train V2 builds its default callbacks in the private
    ``DataParallelTrainer._create_default_callbacks``, overridden here; there is no option to
    leave one out."""

    def dropped_callback_types(self) -> tuple[type, ...]:
        return ()

    def _create_default_callbacks(self) -> list:
        dropped = self.dropped_callback_types()
        return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, dropped)]


def default_train_callbacks(trainer) -> list:
    """The callbacks Train V2 would start ``trainer``'s fit with (objects; what a test inspects).

    Missing public API: the list is built only inside ``fit``, by the private method above."""
    return trainer._create_default_callbacks()  # noqa: SLF001 - see the docstring


def checkpoint_manager_snapshot_filename() -> str:
    """The file name under which Train V2 keeps its checkpoint manager's state in a run's
    directory: a run that wrote it was started, even with no checkpoint yet.

    Missing public API: Train V2 does not say whether a run directory holds a run to continue."""
    return _resolve(_SNAPSHOT_FILENAME)


def autoscaler_max_resources() -> dict[str, float]:
    """Resources (``{"GPU": 16, ...}``) the autoscaler's node types add up to at their
    configured maxima; ``{}`` without an autoscaler config (a local instance, ``ray start``).
    Needs ``ray.init`` first; may raise where the cluster keeps no such config.

    Missing public API: ``ray.cluster_resources()`` says only what the cluster has now."""
    return dict(_resolve(_CLUSTER_STATE).get_max_resources_from_cluster_config() or {})


def tuner_run_config(tuner):
    """The ``RunConfig`` a ``tune.Tuner`` (new or restored by ``Tuner.restore``) will run with, the
    object itself: what is changed on it (callbacks) holds for the next ``fit``.

    Missing public API: ``Tuner.restore`` brings back the run config pickled into ``tuner.pkl``
    and offers no way to give the restored run driver-side callbacks that cannot be pickled."""
    return tuner._local_tuner.get_run_config()  # noqa: SLF001 - see the docstring


def trial_session_ended() -> bool:
    """Whether Tune has already stopped the trial this trial function runs in: ASHA stopped it,
    or the grid was interrupted. Tune's ``stop`` shuts the trial's session down while the
    function's thread still runs (inside ``TorchTrainer.fit``), and what then fails in that
    thread (the Train controller dies with the trial's process) is the stop's doing, not the
    trial's.

    Missing public API: a trial function cannot ask whether Tune stopped it."""
    return _resolve(_TRIAL_SESSION)() is None


def token_auth_enabler() -> Callable[[], bool] | None:
    """A call that turns on token authentication for this process when ``~/.ray/auth_token``
    exists and ``RAY_AUTH_MODE`` is unset (it also refreshes the config Ray loaded at import);
    None on a Ray without it.

    Missing public API: Ray reads its auth mode when it is imported; joining a token-protected
    cluster from a process that imported Ray already has no public switch."""
    try:
        enable = _resolve(_TOKEN_AUTH)
    except (ImportError, AttributeError):
        return None
    return lambda: enable(warn_if_disabled=False)

"""The names other processes and later commands read: metric keys, trial statuses, MLflow tags.

A Train worker reports metrics that the Train callbacks, Tune, ASHA, MLflow, the console and
the report read, each in another process; an MLflow run is found again by its tags by a
``--resume`` or a ``k400ray report`` months later. A name misspelt in one of those places is no
error, only a figure that never shows or a run that is never found, so each name is spelled
here once and everything else imports it (``tests/test_contract_names.py`` fails on a copy).

One word per state: a worker's report after the accurate-mode test is *tested*; a trial whose
result and MLflow run are complete is *finished*, in Tune's result, on the console and in
MLflow. Checkpoints written before these names said ``done`` for tested and stay readable
(:func:`is_tested`); so do MLflow runs that carry the configuration under the tag ``aug``
(:func:`config_of`).

Imports nothing: the Train controller, the workers and the CLI before Ray starts all load it.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- metric keys: what a trial's worker reports (rank 0's report is the one everyone reads) ---
EPOCH = "epoch"  # epochs trained so far; MLflow's step and ASHA's time
TRAIN_LOSS = "train_loss"
LR = "lr"  # the epoch's base lr (before any parameter group's multiplier)
CLIPS_PER_S = "clips_per_s"
DATA_WAIT_FRACTION = "data_wait_fraction"
LOCAL_READ_FRACTION = "local_read_fraction"  # training clips read from their node's staged copy
START_EPOCH = "start_epoch"  # where this worker group (re)started: > 0 after a restart or resume
SKIPPED_VIDEOS = "skipped_videos"
VAL_VIDEOS = "val_videos"
TRAIN_TIME_S = "train_time_s"
EVAL_TIME_S = "eval_time_s"
ACCURATE_TIME_S = "accurate_time_s"
RESUMED_WORLD_SIZE_FROM = "resumed_world_size_from"  # a resume on another world size says so
LR_RESCALED_FROM = "lr_rescaled_from"
# A run started from another run's checkpoint (a PBT exploit): a digest of the weights it
# restored (engine.checkpoint.weights_digest), and the lr that checkpoint trained with when this
# run's recipe sets another one.
RESTORED_WEIGHTS_DIGEST = "restored_weights_digest"
LR_FROM_CHECKPOINT = "lr_from_checkpoint"
# Population based training: each epoch's value of every mutated field, ``pbt.<section.field>``.
PBT_VALUE_PREFIX = "pbt."

# One evaluation mode's figures (``engine.metrics.summarize``); a metric key is ``<mode>_<figure>``.
ACC1 = "acc1"
ACC5 = "acc5"
MEAN_CLASS_ACC = "mean_class_acc"
BEST_SUFFIX = "_best"  # the figure of the best efficient-mode epoch so far
ACC_AT = {1: ACC1, 5: ACC5}  # top-k accuracy's figure, by k


def mode_metric(mode: str, figure: str) -> str:
    """The metric key of ``figure`` (:data:`ACC1`, ...) in evaluation ``mode``: ``efficient_acc1``."""
    return f"{mode}_{figure}"


EFFICIENT_ACC1 = "efficient_acc1"  # ASHA's metric
EFFICIENT_ACC5 = "efficient_acc5"
EFFICIENT_MEAN_CLASS_ACC = "efficient_mean_class_acc"
ACCURATE_ACC1 = "accurate_acc1"
ACCURATE_ACC5 = "accurate_acc5"
ACCURATE_MEAN_CLASS_ACC = "accurate_mean_class_acc"
BEST_EPOCH = "best_epoch"
EFFICIENT_ACC1_BEST = EFFICIENT_ACC1 + BEST_SUFFIX
EFFICIENT_ACC5_BEST = EFFICIENT_ACC5 + BEST_SUFFIX
EFFICIENT_MEAN_CLASS_ACC_BEST = EFFICIENT_MEAN_CLASS_ACC + BEST_SUFFIX
ACCURATE_EPOCH = "accurate_epoch"  # the epoch whose weights accurate mode evaluated

# -- state flags in a report ----------------------------------------------------------------
# The worker's final report: every epoch trained and the accurate mode tested. Not Tune's
# ``done``, which Tune reads as "stop this trial now" and would end the trial function before
# its final metrics reach MLflow.
TESTED = "tested"
TESTED_FORMERLY = "done"  # checkpoints written before the name was TESTED
# The trial function's own last report to Tune: the MLflow run holds everything (or its outbox does).
FINISHED = "finished"
MLFLOW_RUN_ID = "mlflow_run_id"  # beside FINISHED


def is_tested(metrics: Mapping) -> bool:
    """Whether ``metrics`` (a worker's report, a checkpoint's metrics) is a final, tested one,
    whichever name the code that wrote it used."""
    return bool(metrics.get(TESTED) or metrics.get(TESTED_FORMERLY))


# -- a trial's status as the console, the summary and the MLflow description show it ---------
PENDING = "pending"
STARTING = "starting"
TRAINING = "training"
TESTING = "testing"  # the accurate mode, after the last epoch
LOGGING = "logging"  # the final metrics and artifacts to MLflow
# FINISHED (above): the result and the MLflow run are complete; Tune, MLflow and the console say it alike.
STOPPED_EARLY = "stopped early"  # by ASHA
ERROR = "error"
INTERRUPTED = "interrupted"
NOT_STARTED = "not started"
RUNNING = "running"  # an MLflow run still open
KILLED = "killed"  # an MLflow run ended without a reason tag
ENDED = (FINISHED, STOPPED_EARLY, ERROR, INTERRUPTED, NOT_STARTED)
# Why a run ended, beyond the statuses (the END_TAG of a run that MLflow shows KILLED or the grid's).
STOPPED_BY_ASHA = "stopped early by ASHA"
FOUND_OPEN = "interrupted (found open at resume)"
RESUMED = "resumed"
SOME_FAILED = "some trials failed"

# MLflow's run statuses (its own words; the grid's end uses them too).
RUN_RUNNING = "RUNNING"
RUN_FINISHED = "FINISHED"
RUN_FAILED = "FAILED"
RUN_KILLED = "KILLED"
RUN_SCHEDULED = "SCHEDULED"

# -- MLflow tags ----------------------------------------------------------------------------
ROLE_TAG = "k400ray.role"
ROLE_GRID = "grid"  # the parent run of a `k400ray tune` experiment
ROLE_TRIAL = "trial"  # one trial's child run
GRID_TAG = "k400ray.grid"
TRIAL_TAG = "k400ray.trial"
SPEC_TAG = "k400ray.spec_sha1"
ERROR_TAG = "k400ray.error"
END_TAG = "k400ray.end_reason"
ATTEMPT_TAG = "k400ray.attempt"  # 1, then +1 each time the trial runs again in the same child run
MODEL_TAG = "model"
CONFIG_TAG = "config"
CONFIG_TAG_FORMERLY = "aug"  # still written beside CONFIG_TAG: older readers and saved views use it
SEED_TAG = "seed"
FAMILY_TAG = "family"
TUNE_TRIAL_ID_TAG = "trial_id"
NODE_TAG = "ray_node_id"  # which node drove the trial: where its logs are
# A PBT exploit: the donor trial whose checkpoint this trial continued from (the latest), and one
# tag per exploit, ``k400ray.pbt.exploit.<epoch>`` = the donor's trial name.
PBT_DONOR_TAG = "k400ray.pbt.donor"
PBT_EXPLOIT_TAG_PREFIX = "k400ray.pbt.exploit."
# MLflow's own tags.
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"  # a run's description in MLflow's UI (markdown)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # MLflow 3's "model training" kind (not GenAI)
VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # an experiment's saved views of the runs table


def config_of(tags: Mapping, default: str = "?") -> str:
    """A child run's config (the sheet's configs column), from runs of any age."""
    return tags.get(CONFIG_TAG, tags.get(CONFIG_TAG_FORMERLY, default))


# -- MLflow params and artifacts the report reads back ---------------------------------------
NUM_CLASSES_PARAM = "num_classes"
RECIPE_PARAM_PREFIX = "recipe."
ACCURATE_CHECKPOINT_PARAM = RECIPE_PARAM_PREFIX + "accurate_checkpoint"
SPEC_ARTIFACT = "spec.json"  # the parent run's spec


def alpha_param(config: str) -> str:
    """The param holding a batch-mixing config's alpha: ``mixup_alpha``, ``cutmix_alpha``."""
    return f"{config}_alpha"

# -- a search (the spec's ``search`` section): what its runs carry beyond a grid's ------------
# Every trial of a search logs each searched value as the param ``search.<section>.<field>``
# (MLflow keeps it as text); the parent run logs the searcher, the samples per grid point and the
# spec's search section as data. ``k400ray report`` tells a search from a grid by these params.
SEARCH_PARAM_PREFIX = "search."
SEARCHER_PARAM = SEARCH_PARAM_PREFIX + "searcher"  # parent: random | optuna
NUM_SAMPLES_PARAM = SEARCH_PARAM_PREFIX + "num_samples"  # parent: samples per grid point
SEARCH_SPACE_ARTIFACT = "search_space.json"  # parent: the spec's search section (space, num_samples, ...)


def search_param(path: str) -> str:
    """The param of a searched value, ``path`` being ``section.field``: ``search.training.lr``."""
    return SEARCH_PARAM_PREFIX + path


def searched_path(param: str) -> str | None:
    """``section.field`` of a trial's searched-value param, None for any other param (the parent's
    ``search.searcher`` and ``search.num_samples`` name no field)."""
    if not param.startswith(SEARCH_PARAM_PREFIX):
        return None
    path = param[len(SEARCH_PARAM_PREFIX):]
    return path if "." in path else None

"""The sections of one trial's configuration, declared once.

Each section is both a part of :class:`~k400ray.engine.config.TrialConfig` and the section of the
same name in a search-space spec (``k400ray/tune/spec.py`` imports these classes, it does not
re-declare them): ``augmentation:``, ``training:``, ``data:`` and the per-trial part of
``resources:``. A field's name here is the key a user writes in the spec's YAML.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from k400ray.data.decode import CPU, DECODE_BACKENDS
from k400ray.engine.compiled import COMPILE_MODES
from k400ray.presets import ModelPreset

# torch.compile mode of the model's training and eval forward (engine/compiled.py).
CompileMode = Literal[COMPILE_MODES]
DecodeBackend = Literal[DECODE_BACKENDS]


class Section(BaseModel):
    """A section: unknown keys refused (a typo is an error, not a silent default), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AugmentationParams(Section):
    """The parameters of the sheet's augmentation configs (used by the config that names them)."""

    mixup_alpha: float = Field(1.0, gt=0)
    cutmix_alpha: float = Field(1.0, gt=0)
    # MMAction2 0.x randaugment: ops drawn per clip out of its 15, and level out of 10 (9 -> 0.9)
    randaugment_num_ops: int = Field(2, ge=1, le=15)
    randaugment_magnitude: int = Field(9, ge=0, le=10)


class TrainingParams(Section):
    """Overrides of the preset's recipe (None: the recipe's own value, lr scaled linearly with the
    total batch) and how the run evaluates."""

    epochs: int | None = Field(None, ge=1)
    batch_per_worker: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    milestones: tuple[int, ...] | None = None  # empty or None: the recipe's, stretched to ``epochs``
    warmup_epochs: int | None = Field(None, ge=0)
    weight_decay: float | None = Field(None, ge=0)
    limit_videos: int | None = Field(None, ge=1)  # cap train and val videos (smoke runs)
    # Efficient mode every N epochs and after the last (None: the recipe's, 5 like MMAction2 0.x;
    # 1 at toy scale). Accurate mode evaluates the best-efficient-acc1 checkpoint or the last.
    eval_interval: int | None = Field(None, ge=1)
    accurate_checkpoint: Literal["best", "last"] = "best"
    # torch.compile of the model's forward: off | default | reduce-overhead | max-autotune.
    # Unset: eager, except on GPUs for a preset measured >= 1.3x faster compiled
    # (engine/compiled.py: GPU_DEFAULT_COMPILE). Not part of the grid's identity: a --resume may change it.
    compile: CompileMode | None = None

    @field_validator("compile", mode="before")
    @classmethod
    def _yaml_off(cls, value):
        """YAML reads a bare ``off`` as false: that is the mode ``off``; a bare ``on`` names no mode."""
        if value is False:
            return "off"
        if value is True:
            raise ValueError("name a mode: default, reduce-overhead or max-autotune (or off)")
        return value

    def total_epochs(self, preset: ModelPreset) -> int:
        """The run's epochs: the override, else the recipe of ``preset`` (the trial's, config applied)."""
        return self.epochs or preset.recipe.epochs

    def batch_size(self, preset: ModelPreset) -> int:
        """Clips per worker and step: the override, else the recipe's per GPU."""
        return self.batch_per_worker or preset.recipe.batch_per_gpu


class DataParams(Section):
    """Where a trial's videos are and how they are read."""

    train_index: str
    val_index: str | None = None  # default: the train index (its val split)
    data_root: str | None = None  # where the videos are, if not where the index was built
    # A node-local copy staged by `k400ray stage` on each node that decodes (e.g. /mnt/local/k400;
    # environment variables are expanded on each node). Where a node has none, it reads data_root.
    local_cache: str | None = None
    # Where training clips are decoded: cpu (decord, PyAV), or nvdec: on the GPU of a node whose
    # decode tasks see one and have PyNvVideoCodec (the gpu-decode extra), on the CPU elsewhere.
    # Not part of the grid's identity (same frames, crops and draws; only the RGB conversion differs).
    decode_backend: DecodeBackend = CPU

    @property
    def val_path(self) -> str:
        """The index evaluation reads: ``val_index``, else the train index."""
        return self.val_index or self.train_index


class ResourceParams(Section):
    """What one trial holds: its workers, and the decode tasks of its training and evaluation."""

    workers_per_trial: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    decode_cpus: float = Field(1.0, gt=0)
    decode_tasks: int | None = Field(None, ge=1)
    # Decode tasks of one trial's evaluation, split over its workers (each runs its own val
    # pipeline). None: ``decode_tasks``, or 2 per worker when that is unset too.
    eval_decode_tasks: int | None = Field(None, ge=1)
    eval_batch_videos: int = Field(4, ge=1)  # at most; fewer when a video's views are large (I3D accurate)
    max_failures: int = Field(2, ge=0)

    @property
    def train_decode_tasks_per_worker(self) -> int | None:
        """Training's decode tasks per worker: the trial's ``decode_tasks`` split over its workers
        (each builds its own share of every epoch); None: as many as the cluster allows."""
        return None if self.decode_tasks is None else max(1, self.decode_tasks // self.workers_per_trial)

    @property
    def eval_decode_tasks_total(self) -> int:
        """Evaluation's decode tasks of the whole trial: ``eval_decode_tasks``, else
        ``decode_tasks``, else 2 per worker."""
        return self.eval_decode_tasks or self.decode_tasks or 2 * self.workers_per_trial

    @property
    def eval_decode_tasks_per_worker(self) -> int:
        """Evaluation's decode tasks per worker: the trial's bound split over its workers, so a
        trial of 8 workers does not run 8 uncapped validation pipelines at once."""
        return max(1, self.eval_decode_tasks_total // self.workers_per_trial)

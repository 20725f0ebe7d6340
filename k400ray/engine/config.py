"""The fully resolved configuration of one trial: what a Ray Train worker receives (as a dict)
and turns back into this typed object on its first line. It is saved in every checkpoint and
logged as the MLflow run's params, so each result says exactly how it was made."""

from __future__ import annotations

from dataclasses import replace

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from k400ray.data.decode import CPU, DECODE_BACKENDS
from k400ray.engine.compiled import COMPILE_MODES, default_compile_mode
from k400ray.presets import CONFIGS, DEFAULT, RANDAUGMENT, ModelPreset, config_variant, get_preset

# The sheet's `configs` column (kept under the name `aug` in configs, MLflow and reports), named
# in presets.py only: ``Literal`` takes the tuple as its values (an unknown name is a literal_error).
Augmentation = Literal[CONFIGS]
AUGMENTATIONS: tuple[str, ...] = CONFIGS
# torch.compile mode of the model's training and eval forward (engine/compiled.py).
CompileMode = Literal[COMPILE_MODES]
DecodeBackend = Literal[DECODE_BACKENDS]


class TrialConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str
    scale: Literal["full", "toy"] = "full"
    aug: Augmentation = DEFAULT
    seed: int = 0
    # augmentation parameters
    mixup_alpha: float = Field(1.0, gt=0)
    cutmix_alpha: float = Field(1.0, gt=0)
    # MMAction2 0.x randaugment: ops drawn per clip out of its 15, and level out of 10 (9 -> 0.9)
    randaugment_ops: int = Field(2, ge=1, le=15)
    randaugment_magnitude: int = Field(9, ge=0, le=10)
    # data
    train_index: str
    val_index: str
    train_split: str = "train"
    val_split: str = "val"
    data_root: str | None = None  # override of the manifest's data root (another mount point)
    # A node-local staged copy (``k400ray stage``), resolved on each node; None: shared reads only.
    local_cache: str | None = None
    # Where training clips are decoded: cpu, or nvdec (a decode task's GPU where it sees one and
    # PyNvVideoCodec is installed, the CPU elsewhere: data/decode.py).
    decode_backend: DecodeBackend = CPU
    num_classes: int = Field(..., ge=2)
    # optimisation (None: the preset's recipe, lr scaled linearly with the total batch)
    epochs: int | None = Field(None, ge=1)
    batch_per_worker: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    milestones: tuple[int, ...] | None = None
    warmup_epochs: int | None = Field(None, ge=0)
    weight_decay: float | None = Field(None, ge=0)
    # Efficient mode every N epochs and after the last (None: the recipe's, 5 like MMAction2 0.x;
    # 1 at toy scale). Accurate mode evaluates the best-efficient-acc1 checkpoint or the last.
    eval_interval: int | None = Field(None, ge=1)
    accurate_checkpoint: Literal["best", "last"] = "best"
    # resources
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    decode_cpus: float = Field(1.0, gt=0)
    decode_tasks: int | None = Field(None, ge=1)
    eval_batch_videos: int = Field(4, ge=1)  # at most; fewer when a video's views are large (I3D accurate)
    # Decode tasks of one trial's evaluation, split over its workers (each runs its own val
    # pipeline). None: ``decode_tasks``, or 2 per worker when that is unset too.
    eval_decode_tasks: int | None = Field(None, ge=1)
    amp: bool | None = None  # bf16 autocast; default: on with GPUs
    # torch.compile of the forward (training and eval); None: the measured GPU default of the
    # preset on GPUs (none yet, so eager), eager on CPUs (``compile_mode``)
    compile: CompileMode | None = None
    # bookkeeping
    name: str = "trial"
    storage_path: str | None = None
    max_failures: int = Field(2, ge=0)
    limit_videos: int | None = Field(None, ge=1)  # cap train and val videos (smoke runs)
    # Start from this checkpoint (a path or URI of a trial checkpoint) when the run has none of its own.
    init_checkpoint: str | None = None
    pretrained: str | None = None  # local ImageNet state dict of the preset's 2D backbone

    def resolved_preset(self) -> ModelPreset:
        preset = config_variant(get_preset(self.preset, scale=self.scale), self.aug)
        if self.pretrained:
            preset = replace(preset, arch=replace(preset.arch, pretrained=self.pretrained))
        return preset

    @property
    def total_epochs(self) -> int:
        return self.epochs or self.resolved_preset().recipe.epochs

    @property
    def batch_size(self) -> int:
        return self.batch_per_worker or self.resolved_preset().recipe.batch_per_gpu

    @property
    def train_decode_tasks_per_worker(self) -> int | None:
        """Training's decode tasks per worker: the trial's ``decode_tasks`` split over its workers
        (each builds its own share of every epoch); None: as many as the cluster allows."""
        return None if self.decode_tasks is None else max(1, self.decode_tasks // self.num_workers)

    @property
    def eval_decode_tasks_per_worker(self) -> int:
        """Evaluation's decode tasks per worker: the trial's bound split over its workers, so a
        trial of 8 workers does not run 8 uncapped validation pipelines at once."""
        total = self.eval_decode_tasks or self.decode_tasks or 2 * self.num_workers
        return max(1, total // self.num_workers)

    @property
    def use_amp(self) -> bool:
        return self.use_gpu if self.amp is None else self.amp

    @property
    def compile_mode(self) -> str:
        return self.compile or default_compile_mode(self.preset, self.use_gpu)

    @property
    def randaugment(self) -> tuple[int, int] | None:
        return (self.randaugment_ops, self.randaugment_magnitude) if self.aug == RANDAUGMENT else None

"""Model presets, named exactly like the rows of the result sheet.

A preset is plain data: architecture, how frames are sampled in each mode, the views of the
efficient (val) and accurate (test) modes and how their scores are averaged, the train crop,
and the optimisation recipe of the published config. ``docs/reference.md`` lists, for every
value, the reference file it comes from (open-mmlab/mmaction2 branch ``0.x``, the toolbox the
result sheet was produced with, and dmlc/gluon-cv for the sheet's GluonCV rows).
An ablation cell is a ``dataclasses.replace`` of one of these, never a subclass.

``toy(preset)`` shrinks a preset to run on 2 CPU cores against the synthetic set: same
classes, same code paths, smaller numbers (depth, width, resolution, clip length).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from k400ray.data.clip import ClipSpec
from k400ray.data.sampling import ClipSampling
from k400ray.data.transforms import TrainCrop
from k400ray.models.arch import ArchConfig


@dataclass(frozen=True)
class EvalViews:
    """One evaluation mode: temporal views x spatial crops, and how their scores combine.

    ``average='score'``: mean of raw class scores over all views (TSN's segment consensus);
    ``average='prob'``: mean of per-view softmax (TSM, I3D).
    """

    sampling: ClipSampling
    crop: Literal["center", "three"]
    crop_size: int
    average: Literal["score", "prob"]
    description: str = ""

    @property
    def spatial_views(self) -> int:
        return 3 if self.crop == "three" else 1

    @property
    def num_views(self) -> int:
        return self.sampling.temporal_views(test_mode=True) * self.spatial_views


@dataclass(frozen=True)
class Recipe:
    """SGD recipe of the reference config, for ``reference_gpus`` GPUs x ``batch_per_gpu`` clips.

    Parameter groups (``k400ray.engine.optim.param_groups``): by default every parameter gets the
    base lr and weight decay (MMAction2's default optimizer constructor). The TSM configs use
    ``TSMOptimizerConstructor`` with ``fc_lr5=True``, expressed here by ``TSM_PARAM_GROUPS``:
    classifier weight lr x ``fc_weight_lr_mult`` (decayed), classifier bias lr x
    ``fc_bias_lr_mult``, every other conv/linear bias lr x ``bias_lr_mult``, and with
    ``no_decay_bias_norm`` no weight decay on any bias or norm-layer parameter.
    """

    batch_per_gpu: int
    lr: float
    epochs: int = 100
    milestones: tuple[int, ...] = (40, 80)
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_start_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_grad_norm: float = 40.0
    fc_weight_lr_mult: float = 1.0
    fc_bias_lr_mult: float = 1.0
    bias_lr_mult: float = 1.0
    no_decay_bias_norm: bool = False
    reference_gpus: int = 8

    @property
    def reference_batch(self) -> int:
        return self.batch_per_gpu * self.reference_gpus

    def scaled_lr(self, total_batch: int) -> float:
        """Linear scaling rule: lr grows with the total batch size relative to the recipe's."""
        return self.lr * total_batch / self.reference_batch


@dataclass(frozen=True)
class ModelPreset:
    name: str
    arch: ArchConfig
    train_sampling: ClipSampling
    train_crop: TrainCrop
    efficient: EvalViews
    accurate: EvalViews
    recipe: Recipe
    short_side: int = 256  # decoded frames are resized to this short side before any crop
    note: str = ""

    def views(self, mode: Literal["efficient", "accurate"]) -> EvalViews:
        if mode not in ("efficient", "accurate"):
            raise ValueError(f"mode must be 'efficient' or 'accurate', got {mode!r}")
        return self.efficient if mode == "efficient" else self.accurate

    def clip_spec(
        self, mode: Literal["train", "efficient", "accurate"], *, randaugment: tuple[int, int] | None = None
    ) -> ClipSpec:
        """What the data pipeline must produce for this preset in ``mode`` (RandAugment: train only)."""
        if mode == "train":
            return ClipSpec(
                sampling=self.train_sampling, test_mode=False, short_side=self.short_side, crop="train",
                crop_size=self.train_crop.crop_size, train_crop=self.train_crop, randaugment=randaugment,
            )
        views = self.views(mode)
        return ClipSpec(
            sampling=views.sampling, test_mode=True, short_side=self.short_side, crop=views.crop,
            crop_size=views.crop_size,
        )


def _segments(k: int) -> ClipSampling:
    return ClipSampling(clip_len=1, frame_interval=1, num_clips=k)


# MMAction2 0.x ``TSMOptimizerConstructor`` (mmaction/core/optimizer/tsm_optimizer_constructor.py)
# with ``paramwise_cfg=dict(fc_lr5=True)``: fc weight lr x5 (base weight decay), fc bias lr x10,
# other conv/linear biases lr x2, biases and BN/GN parameters without weight decay.
TSM_PARAM_GROUPS = dict(fc_weight_lr_mult=5.0, fc_bias_lr_mult=10.0, bias_lr_mult=2.0, no_decay_bias_norm=True)

_TSN_CROP = TrainCrop(fixed_positions=5)
_TSM_CROP = TrainCrop(fixed_positions=13)
_I3D_CROP = TrainCrop(scales=(1.0, 0.8), random_crop=False, max_wh_scale_gap=0)


def _tsn(k: int, name: str, note: str = "") -> ModelPreset:
    return ModelPreset(
        name=name,
        arch=ArchConfig(family="tsn", backbone="resnet50", dropout=0.4, num_segments=k),
        train_sampling=_segments(k),
        train_crop=_TSN_CROP,
        efficient=EvalViews(_segments(k), "center", 224, "score", "CenterCrop 224"),
        accurate=EvalViews(_segments(25), "three", 256, "score", "25 clips + ThreeCrop 256"),
        # open-mmlab/mmaction2 0.x: configs/recognition/tsn/tsn_r50_video_1x1x8_100e_kinetics400_rgb.py
        # (videos_per_gpu=32) + configs/_base_/schedules/sgd_100e.py (SGD lr 0.01 for 8 GPUs,
        # momentum 0.9, wd 1e-4, grad clip 40, step at 40 and 80, 100 epochs).
        recipe=Recipe(batch_per_gpu=32, lr=0.01, milestones=(40, 80), clip_grad_norm=40.0),
        note=note,
    )


TSN_R50_1X1X8 = _tsn(8, "tsn_r50_1x1x8")
TSN_R50_1X1X7 = _tsn(
    7, "tsn_r50_1x1x7",
    note="GluonCV row of the sheet: 7 segments with the MMAction2 TSN recipe, not GluonCV's own (docs/reference.md)",
)

TSM_R50_1X1X8 = ModelPreset(
    name="tsm_r50_1x1x8",
    arch=ArchConfig(family="tsm", backbone="resnet50", dropout=0.5, num_segments=8, shift_div=8),
    train_sampling=ClipSampling(1, 1, 8, frames_per_view=8),
    train_crop=_TSM_CROP,
    efficient=EvalViews(ClipSampling(1, 1, 8, frames_per_view=8), "center", 224, "prob", "CenterCrop 224"),
    accurate=EvalViews(
        ClipSampling(1, 1, 8, twice_sample=True, frames_per_view=8), "three", 256, "prob",
        "twice_sample + ThreeCrop 256",
    ),
    # open-mmlab/mmaction2 0.x: configs/recognition/tsm/tsm_r50_1x1x8_100e_kinetics400_rgb.py, which
    # inherits tsm_r50_1x1x8_50e_kinetics400_rgb.py (videos_per_gpu=8, schedule
    # configs/_base_/schedules/sgd_tsm_50e.py: SGD lr 0.01 for 8 GPUs, momentum 0.9, wd 1e-4,
    # TSMOptimizerConstructor fc_lr5=True) and sets grad clip 20, step at 40 and 80, 100 epochs,
    # i.e. configs/_base_/schedules/sgd_tsm_100e.py. No warmup (that is the 1.x config).
    recipe=Recipe(batch_per_gpu=8, lr=0.01, milestones=(40, 80), clip_grad_norm=20.0, **TSM_PARAM_GROUPS),
)

_DENSE = ClipSampling(1, 1, 8, dense=True, sample_range=64, num_sample_positions=10, frames_per_view=8)
TSM_MOBILENETV2_DENSE_1X1X8 = ModelPreset(
    name="tsm_mobilenetv2_dense_1x1x8",
    arch=ArchConfig(family="tsm", backbone="mobilenetv2", dropout=0.5, num_segments=8, shift_div=8),
    train_sampling=_DENSE,
    train_crop=_TSM_CROP,
    efficient=EvalViews(_DENSE, "center", 224, "prob", "10 clips + CenterCrop 224"),
    accurate=EvalViews(_DENSE, "three", 256, "prob", "10 clips + ThreeCrop 256"),
    # open-mmlab/mmaction2 0.x: configs/recognition/tsm/tsm_mobilenetv2_video_dense_1x1x8_100e_kinetics400_rgb.py
    # (videos_per_gpu=8, dense sampling in train, val and test) + configs/_base_/schedules/
    # sgd_tsm_mobilenet_v2_100e.py (SGD lr 0.01 for 8 GPUs, momentum 0.9, wd 2e-5, grad clip 20,
    # step at 40 and 80, 100 epochs, TSMOptimizerConstructor fc_lr5=True).
    recipe=Recipe(
        batch_per_gpu=8, lr=0.01, milestones=(40, 80), weight_decay=2e-5, clip_grad_norm=20.0, **TSM_PARAM_GROUPS,
    ),
)

_I3D_TEST = ClipSampling(32, 2, 10, frames_per_view=32)
I3D_R50_32X2X1 = ModelPreset(
    name="i3d_r50_32x2x1",
    arch=ArchConfig(family="i3d", backbone="resnet50", dropout=0.5),
    train_sampling=ClipSampling(32, 2, 1, frames_per_view=32),
    train_crop=_I3D_CROP,
    # The sheet's efficient mode is one CenterCrop 224 view of one clip.
    efficient=EvalViews(ClipSampling(32, 2, 1, frames_per_view=32), "center", 224, "prob", "CenterCrop 224"),
    accurate=EvalViews(_I3D_TEST, "three", 256, "prob", "10 clips + ThreeCrop 256"),
    # open-mmlab/mmaction2 0.x: configs/recognition/i3d/i3d_r50_32x2x1_100e_kinetics400_rgb.py
    # (videos_per_gpu=8) + configs/_base_/schedules/sgd_100e.py (SGD lr 0.01 for 8 GPUs,
    # momentum 0.9, wd 1e-4, grad clip 40, step at 40 and 80, 100 epochs).
    recipe=Recipe(batch_per_gpu=8, lr=0.01, milestones=(40, 80), clip_grad_norm=40.0),
)

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (TSN_R50_1X1X8, TSN_R50_1X1X7, TSM_R50_1X1X8, TSM_MOBILENETV2_DENSE_1X1X8, I3D_R50_32X2X1)
}


# --- toy scale -------------------------------------------------------------------------------
# Synthetic videos are short (48 frames) and small (short side 64); toy models see 56x56 crops.
TOY_SHORT_SIDE = 64
TOY_CROP = 56


def _toy_sampling(s: ClipSampling) -> ClipSampling:
    """Shrink clip length / dense window to fit 48-frame synthetic videos."""
    if s.clip_len > 1:  # 3D clip: 32x2 -> 8x4 still spans most of a synthetic video
        return replace(s, clip_len=8, frame_interval=4, frames_per_view=8)
    if s.dense:
        return replace(s, sample_range=32)
    return s


def toy(preset: ModelPreset) -> ModelPreset:
    """The same preset at toy scale: 1 block per stage, narrow widths, 56 px crops."""
    arch = replace(
        preset.arch,
        depths=(1, 1, 1, 1),
        base_width=8,
        width_mult=0.25,
        inflate=((1,), (1,), (1,), (0,)),
        conv1_kernel=(3, 7, 7),
        pretrained=None,
    )
    return replace(
        preset,
        name=preset.name,
        arch=arch,
        train_sampling=_toy_sampling(preset.train_sampling),
        train_crop=replace(preset.train_crop, crop_size=TOY_CROP),
        efficient=replace(
            preset.efficient, sampling=_toy_sampling(preset.efficient.sampling), crop_size=TOY_CROP,
            description=preset.efficient.description.replace("224", str(TOY_CROP)),
        ),
        accurate=replace(
            preset.accurate, sampling=_toy_sampling(preset.accurate.sampling), crop_size=TOY_SHORT_SIDE,
            description=preset.accurate.description.replace("256", str(TOY_SHORT_SIDE)),
        ),
        short_side=TOY_SHORT_SIDE,
        note=(preset.note + " " if preset.note else "") + "toy scale",
    )


def get_preset(name: str, *, scale: Literal["full", "toy"] = "full") -> ModelPreset:
    """Look up a preset by its sheet name; ``scale='toy'`` gives its CPU-sized twin."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
    return toy(preset) if scale == "toy" else preset

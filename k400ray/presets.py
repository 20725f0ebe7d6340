"""Model presets, named exactly like the rows of the result sheet.

A preset is plain data: architecture, how frames are sampled in each mode, the views of the
efficient (val) and accurate (test) modes and how their scores are averaged, the train crop,
and the optimisation recipe of the published config. ``docs/reference.md`` lists, for every
value, the reference file it comes from (open-mmlab/mmaction2 branch ``0.x``, the toolbox the
result sheet was produced with, and dmlc/gluon-cv for the sheet's GluonCV rows).
An ablation cell is a ``dataclasses.replace`` of one of these, never a subclass.

``toy(preset)`` shrinks a preset to run on 2 CPU cores against the synthetic set: same
classes, same code paths, smaller numbers (depth, width, resolution, clip length).

``config_variant(preset, config)`` is the preset as one value of the sheet's ``configs`` column
trains it: the augmentations leave it as it is, ``gluoncv`` swaps in GluonCV's own recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from k400ray.data.clip import ClipSpec
from k400ray.data.sampling import ClipSampling
from k400ray.data.transforms import EVAL_CROP_VIEWS, TrainCrop
from k400ray.models.arch import ArchConfig


# The two evaluation modes of every preset (MMAction2's "efficient" and "accurate" test settings).
EVAL_MODES: tuple[str, ...] = ("efficient", "accurate")

@dataclass(frozen=True)
class EvalViews:
    """One evaluation mode: temporal views x spatial crops, and how their scores combine.

    ``average='score'``: mean of raw class scores over all views (TSN's segment consensus, and
    GluonCV, which averages features before its linear fc: the same thing);
    ``average='prob'``: mean of per-view softmax (MMAction2's TSM, I3D).
    """

    sampling: ClipSampling
    crop: Literal["center", "three", "ten"]
    crop_size: int
    average: Literal["score", "prob"]
    description: str = ""

    @property
    def spatial_views(self) -> int:
        return EVAL_CROP_VIEWS[self.crop]

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
    # "step": x``gamma`` at each milestone (MMAction2, GluonCV's I3D); "cosine": from lr to 0 over
    # the run (GluonCV's TSN); ``k400ray.engine.optim.lr_factor`` has both
    lr_policy: Literal["step", "cosine"] = "step"
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
    # (W, H): every frame resized to exactly this instead, aspect not kept (GluonCV's 340x256)
    frame_size: tuple[int, int] | None = None
    note: str = ""

    def views(self, mode: Literal["efficient", "accurate"]) -> EvalViews:
        if mode not in EVAL_MODES:
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
                frame_size=self.frame_size,
            )
        views = self.views(mode)
        return ClipSpec(
            sampling=views.sampling, test_mode=True, short_side=self.short_side, crop=views.crop,
            crop_size=views.crop_size, frame_size=self.frame_size,
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
    note="the sheet's GluonCV row: config gluoncv trains it with GluonCV's recipe; the other configs "
         "use the MMAction2 TSN recipe with 7 segments (docs/reference.md)",
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
# Every pixel size shrinks by the same factor, so a 224 crop of a 256 short side stays a crop of
# the same share of the frame (224 -> 56, 256 -> 64, 340 -> 85).
TOY_SHORT_SIDE = 64


def scaled_px(size: int, short_side: int) -> int:
    """A pixel size given for a 256 short side (the reference's), at ``short_side``."""
    return round(size * short_side / 256)


TOY_CROP = scaled_px(224, TOY_SHORT_SIDE)
_PIXEL_SIZES = re.compile(r"(?<=Crop )\d+|(?<= of )\d+x\d+")


def _toy_px(size: int) -> int:
    return scaled_px(size, TOY_SHORT_SIDE)


def _toy_text(text: str) -> str:
    """A view description with its pixel sizes ("ThreeCrop 256", "of 340x256") at toy scale."""
    return _PIXEL_SIZES.sub(lambda m: "x".join(str(_toy_px(int(v))) for v in m.group().split("x")), text)


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
        train_crop=replace(preset.train_crop, crop_size=_toy_px(preset.train_crop.crop_size)),
        efficient=_toy_views(preset.efficient),
        accurate=_toy_views(preset.accurate),
        short_side=TOY_SHORT_SIDE,
        frame_size=None if preset.frame_size is None else tuple(_toy_px(v) for v in preset.frame_size),
        note=(preset.note + " " if preset.note else "") + "toy scale",
    )


def _toy_views(views: EvalViews) -> EvalViews:
    return replace(views, sampling=_toy_sampling(views.sampling), crop_size=_toy_px(views.crop_size),
                   description=_toy_text(views.description))


def get_preset(name: str, *, scale: Literal["full", "toy"] = "full") -> ModelPreset:
    """Look up a preset by its sheet name; ``scale='toy'`` gives its CPU-sized twin."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
    return toy(preset) if scale == "toy" else preset


def family_of(name: str) -> str:
    """The model family of a preset named ``name`` (``tsn``, ``tsm``, ``i3d``); for a name that is
    not a preset (a grid logged by another version), its first word."""
    return PRESETS[name].arch.family if name in PRESETS else name.split("_", 1)[0]


# The sheet's `configs` column: the four augmentations on a preset's own recipe, and GluonCV's
# own training recipe for the presets GluonCV published a Kinetics-400 model of. The one place
# that names them: every other module uses these constants (tests/test_config_names.py).
DEFAULT = "default"
RANDAUGMENT = "randaugment"
MIXUP = "mixup"
CUTMIX = "cutmix"
GLUONCV = "gluoncv"
CONFIGS: tuple[str, ...] = (DEFAULT, RANDAUGMENT, MIXUP, CUTMIX, GLUONCV)
# The configs that mix whole batches on the device (``engine.augment.BatchMix``), not single clips.
BATCH_MIX_CONFIGS: tuple[str, ...] = (MIXUP, CUTMIX)
GLUONCV_PRESETS: tuple[str, ...] = ("tsn_r50_1x1x7", "i3d_r50_32x2x1")

# dmlc/gluon-cv scripts/action-recognition/train_recognizer.py, run with the commands
# resnet50_v1b_kinetics400_tsn.sh / i3d_resnet50_v1_kinetics400.sh (dmlc/web-data,
# gluoncv/logs/action_recognition/kinetics400/; docs/reference.md 3.4 has every value's source):
# 8 GPUs x 8 clips, lr 0.01, momentum 0.9, wd 1e-4 on every parameter (no_wd=False), no warmup,
# no gradient clipping (clip_grad=0), 100 epochs. TSN: --lr-mode cosine; I3D: --lr-mode step
# --lr-decay-epoch 40,80,100 (the step at 100 is past the end).
_GLUONCV_RECIPES = {
    "tsn": Recipe(batch_per_gpu=8, lr=0.01, lr_policy="cosine", milestones=(), clip_grad_norm=0.0),
    "i3d": Recipe(batch_per_gpu=8, lr=0.01, lr_policy="step", milestones=(40, 80), clip_grad_norm=0.0),
}
# --new-width 340 --new-height 256: every frame resized to 340x256, whatever the video's aspect
_GLUONCV_FRAME = (340, 256)
# --scale-ratios 1.0,0.8 with data_aug='v1' (VideoGroupTrainTransform: more_fix_crop, max_distort=1)
_GLUONCV_SCALES = (1.0, 0.8)


def check_config(preset: str, config: str) -> None:
    """Raise ``ValueError`` (one line) when ``config`` has no meaning for the preset named ``preset``."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r} (known: {', '.join(CONFIGS)})")
    if config == GLUONCV and preset not in GLUONCV_PRESETS:
        raise ValueError(f"config {GLUONCV!r} has no meaning for {preset}: GluonCV trained "
                         f"{' and '.join(GLUONCV_PRESETS)} on Kinetics-400, nothing else of the sheet")


def config_variant(preset: ModelPreset, config: str) -> ModelPreset:
    """The preset as ``config`` trains it. The augmentations leave the preset as it is (they act
    in the data pipeline and the batch); ``gluoncv`` swaps in GluonCV's recipe. Raises
    ``ValueError`` (one line) for a config that has no meaning for the preset."""
    check_config(preset.name, config)
    return gluoncv(preset) if config == GLUONCV else preset


def gluoncv(preset: ModelPreset) -> ModelPreset:
    """GluonCV's recipe for the sheet's GluonCV rows (docs/reference.md 3.4), on ``preset``.

    Every pixel size is taken relative to the preset's own short side and train crop (224 of
    256 at full scale), so the variant of a toy preset is the toy of the full variant. Frame
    sampling stays the preset's: GluonCV picks the same frames (random offset in each segment
    in training, segment centres in validation and test; ``_sample_train_indices`` /
    ``_sample_val_indices`` in ``gluoncv/data/video_custom/classification.py``).
    """
    frame = tuple(scaled_px(v, preset.short_side) for v in _GLUONCV_FRAME)
    crop = preset.train_crop.crop_size  # --input-size 224
    of_frame = f"{crop} of {frame[0]}x{frame[1]}"
    family = preset.arch.family
    # test_recognizer.py: TSN --ten-crop on 25 frames (VideoTenCrop), I3D --three-crop on 10 clips
    tsn = family == "tsn"
    accurate_crop, unit, crop_name = ("ten", "frames", "TenCrop") if tsn else ("three", "clips", "ThreeCrop")
    return replace(
        preset,
        # TSN: dropout 0.5 on each frame's feature before the segment average (actionrec_resnetv1b.py);
        # I3D keeps 0.5 (one clip per video in training); fc init std 0.01 for both
        arch=replace(preset.arch, dropout=0.5, dropout_per_frame=tsn),
        train_crop=TrainCrop(crop_size=crop, scales=_GLUONCV_SCALES, fixed_positions=13, random_crop=False,
                             max_wh_scale_gap=1, flip_ratio=0.5),
        # VideoGroupValTransform: one centre crop; GluonCV averages features before its fc, which
        # for a linear fc is the mean of the raw scores
        efficient=replace(preset.efficient, crop="center", crop_size=crop, average="score",
                          description=f"CenterCrop {of_frame}"),
        accurate=replace(preset.accurate, crop=accurate_crop, crop_size=crop, average="score",
                         description=f"{preset.accurate.sampling.num_clips} {unit} + {crop_name} {of_frame}"),
        recipe=_GLUONCV_RECIPES[family],
        frame_size=frame,
    )

"""The configs axis on the presets: GluonCV's recipe for the two presets GluonCV trained on
Kinetics-400, refused for the others, the same at toy scale.

Expected values are GluonCV's own (dmlc/gluon-cv ``scripts/action-recognition/train_recognizer.py``
with the commands and logs of dmlc/web-data ``gluoncv/logs/action_recognition/kinetics400/``;
docs/reference.md 3.4 gives the file of each), not a copy of presets.py.
"""

import pytest

from k400ray.presets import CONFIGS, GLUONCV_PRESETS, PRESETS, config_variant, get_preset, toy

# preset: (lr policy, milestones, accurate crop, accurate views)
GLUONCV = {
    "tsn_r50_1x1x7": ("cosine", (), "ten", 10),  # --lr-mode cosine; test --ten-crop, 25 frames
    "i3d_r50_32x2x1": ("step", (40, 80), "three", 30),  # --lr-decay-epoch 40,80,100; 10 clips x --three-crop
}


@pytest.mark.parametrize("name", list(GLUONCV))
def test_gluoncv_recipe(name):
    policy, milestones, accurate_crop, accurate_views = GLUONCV[name]
    p = config_variant(PRESETS[name], "gluoncv")
    r = p.recipe
    assert (r.batch_per_gpu, r.reference_gpus, r.lr, r.lr_policy, r.milestones) == (8, 8, 0.01, policy, milestones)
    assert (r.epochs, r.warmup_epochs, r.momentum, r.weight_decay, r.clip_grad_norm) == (100, 0, 0.9, 1e-4, 0.0)
    # wd on every parameter (no_wd=False): no parameter groups
    assert (r.fc_weight_lr_mult, r.fc_bias_lr_mult, r.bias_lr_mult, r.no_decay_bias_norm) == (1.0, 1.0, 1.0, False)
    assert p.frame_size == (340, 256)  # --new-width 340 --new-height 256
    c = p.train_crop  # --scale-ratios 1.0,0.8, more_fix_crop, max_distort=1, --input-size 224
    assert (c.crop_size, c.scales, c.fixed_positions, c.max_wh_scale_gap, c.random_crop, c.flip_ratio) == (
        224, (1.0, 0.8), 13, 1, False, 0.5)
    # dropout 0.5; GluonCV's TSN drops each frame's feature before the segment average
    assert (p.arch.dropout, p.arch.dropout_per_frame) == (0.5, p.arch.family == "tsn")
    assert not PRESETS[name].arch.dropout_per_frame  # MMAction2's TSNHead: dropout after the average
    e = p.efficient
    assert (e.crop, e.crop_size, e.num_views, e.average) == ("center", 224, 1, "score")
    assert (p.accurate.crop, p.accurate.crop_size, p.accurate.num_views, p.accurate.average) == (
        accurate_crop, 224, accurate_views, "score")
    # same frames as the preset's own protocol (segment centres / centre clip)
    assert p.train_sampling == PRESETS[name].train_sampling and p.efficient.sampling == PRESETS[name].efficient.sampling
    assert p.clip_spec("accurate").frame_size == (340, 256) and p.clip_spec("train").frame_size == (340, 256)


@pytest.mark.parametrize("name", sorted(set(PRESETS) - set(GLUONCV_PRESETS)))
def test_gluoncv_is_refused_for_the_other_presets(name):
    with pytest.raises(ValueError) as exc:
        config_variant(PRESETS[name], "gluoncv")
    assert len(str(exc.value).splitlines()) == 1 and f"no meaning for {name}" in str(exc.value)


@pytest.mark.parametrize("name", list(PRESETS))
def test_augmentations_leave_the_preset_as_it_is(name):
    for config in CONFIGS[:4]:
        assert config_variant(PRESETS[name], config) is PRESETS[name]
    assert PRESETS[name].frame_size is None and PRESETS[name].recipe.lr_policy == "step"


@pytest.mark.parametrize("name", GLUONCV_PRESETS)
def test_toy_gluoncv_is_the_toy_of_the_full_variant(name):
    variant_of_toy = config_variant(get_preset(name, scale="toy"), "gluoncv")
    assert variant_of_toy == toy(config_variant(PRESETS[name], "gluoncv"))
    assert variant_of_toy.frame_size == (85, 64) and variant_of_toy.accurate.crop_size == 56
    assert variant_of_toy.efficient.description == "CenterCrop 56 of 85x64"


def test_toy_scale_of_the_default_presets_is_unchanged():
    p = get_preset("tsm_r50_1x1x8", scale="toy")
    assert (p.short_side, p.train_crop.crop_size, p.efficient.crop_size, p.accurate.crop_size) == (64, 56, 56, 64)
    assert p.accurate.description == "twice_sample + ThreeCrop 64" and p.frame_size is None

"""The preset recipes: parameter groups, lr scaling and the warmup + step schedule.

The tables below are the reference configs (open-mmlab/mmaction2, branch 0.x; the file of each
value is in docs/reference.md), not a copy of what k400ray happens to do.
"""

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from k400ray.engine.optim import build_optimizer, classifier, lr_factor, param_groups, scaled_milestones, scaled_warmup
from k400ray.models.build import build_model
from k400ray.presets import PRESETS, Recipe, get_preset

# Recipe per preset, 0.x configs: (batch per GPU, lr for 8 GPUs, milestones, warmup epochs,
# momentum, weight decay, grad-clip max norm, epochs).
#   tsn: tsn_r50_video_1x1x8_100e_kinetics400_rgb.py + _base_/schedules/sgd_100e.py
#   tsm_r50: tsm_r50_1x1x8_100e_kinetics400_rgb.py (on tsm_r50_1x1x8_50e_...py) = sgd_tsm_100e.py
#   tsm_mobilenetv2: tsm_mobilenetv2_video_dense_1x1x8_100e_...py + sgd_tsm_mobilenet_v2_100e.py
#   i3d: i3d_r50_32x2x1_100e_kinetics400_rgb.py + _base_/schedules/sgd_100e.py
REFERENCE_RECIPES = {
    "tsn_r50_1x1x8": (32, 0.01, (40, 80), 0, 0.9, 1e-4, 40.0, 100),
    "tsm_r50_1x1x8": (8, 0.01, (40, 80), 0, 0.9, 1e-4, 20.0, 100),
    "tsm_mobilenetv2_dense_1x1x8": (8, 0.01, (40, 80), 0, 0.9, 2e-5, 20.0, 100),
    "i3d_r50_32x2x1": (8, 0.01, (40, 80), 0, 0.9, 1e-4, 40.0, 100),
}

# (lr multiplier, weight decay) per kind of parameter. TSN and I3D use MMAction2's default
# optimizer constructor (everything at base lr and wd); the TSM configs use 0.x
# TSMOptimizerConstructor with fc_lr5=True (mmaction/core/optimizer/tsm_optimizer_constructor.py):
# fc weight lr x5 with wd, fc bias lr x10 without, BN lr x1 without, conv weights lr x1 with wd,
# conv/linear biases lr x2 without.
WD = {"tsn_r50_1x1x8": 1e-4, "tsm_r50_1x1x8": 1e-4, "tsm_mobilenetv2_dense_1x1x8": 2e-5, "i3d_r50_32x2x1": 1e-4}
_DEFAULT = {k: (1.0, "wd") for k in ("fc_weight", "fc_bias", "bn_weight", "bn_bias", "conv_weight", "conv_bias")}
_TSM = {
    "fc_weight": (5.0, "wd"), "fc_bias": (10.0, 0.0), "bn_weight": (1.0, 0.0), "bn_bias": (1.0, 0.0),
    "conv_weight": (1.0, "wd"), "conv_bias": (2.0, 0.0),
}
REFERENCE_GROUPS = {
    "tsn_r50_1x1x8": _DEFAULT,
    "tsm_r50_1x1x8": _TSM,
    "tsm_mobilenetv2_dense_1x1x8": _TSM,
    "i3d_r50_32x2x1": _DEFAULT,
}


def _expected(name: str, kind: str) -> tuple[float, float]:
    mult, wd = REFERENCE_GROUPS[name][kind]
    return mult, WD[name] if wd == "wd" else wd


def _lookup(groups: list[dict], param: torch.Tensor) -> tuple[float, float]:
    (group,) = [g for g in groups if any(p is param for p in g["params"])]
    return group["lr_mult"], group["weight_decay"]


@pytest.fixture(scope="module")
def full_models() -> dict[str, nn.Module]:
    with torch.device("meta"):  # full size, no memory, no compute
        return {name: build_model(PRESETS[name].arch, 400) for name in REFERENCE_GROUPS}


@pytest.mark.parametrize("name", list(REFERENCE_RECIPES))
def test_recipe_matches_reference_config(name: str) -> None:
    batch, lr, milestones, warmup, momentum, wd, clip, epochs = REFERENCE_RECIPES[name]
    r = PRESETS[name].recipe
    assert (r.batch_per_gpu, r.reference_gpus, r.lr, r.milestones, r.gamma) == (batch, 8, lr, milestones, 0.1)
    assert (r.warmup_epochs, r.momentum, r.weight_decay, r.clip_grad_norm, r.epochs) == (warmup, momentum, wd, clip, epochs)


@pytest.mark.parametrize("name", list(REFERENCE_GROUPS))
def test_full_size_param_groups_match_reference(name: str, full_models: dict[str, nn.Module]) -> None:
    model, base_lr, wd = full_models[name], 0.01, WD[name]
    groups = param_groups(model, PRESETS[name].recipe, lr=base_lr, weight_decay=wd)
    for g in groups:
        assert g["lr"] == pytest.approx(base_lr * g["lr_mult"])
    fc = classifier(model)
    assert fc is model.fc and fc.out_features == 400
    convs = [m for m in model.modules() if isinstance(m, _ConvNd)]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    got = {
        "fc_weight": _lookup(groups, fc.weight), "fc_bias": _lookup(groups, fc.bias),
        "conv_weight": _lookup(groups, convs[0].weight),  # the stem conv: 0.x's "first conv" group
        "bn_weight": _lookup(groups, norms[-1].weight), "bn_bias": _lookup(groups, norms[-1].bias),
    }
    for kind, value in got.items():
        assert value == pytest.approx(_expected(name, kind)), kind
    for conv in convs[1:]:  # every other conv weight: the "normal weight" group
        assert _lookup(groups, conv.weight) == pytest.approx(_expected(name, "conv_weight"))
    for norm in norms:
        assert _lookup(groups, norm.weight) == pytest.approx(_expected(name, "bn_weight"))
    # Like the reference networks (ConvModule bias='auto' before a norm layer), no conv has a bias.
    assert all(c.bias is None for c in convs)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.parametrize("name", list(REFERENCE_GROUPS))
def test_conv_and_hidden_linear_biases_follow_reference(name: str) -> None:
    # None of the four networks has a conv bias, so the bias rule is checked on a small model
    # that has one, plus a hidden nn.Linear: only the last Linear is the classifier.
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=True), nn.Conv2d(4, 4, 3, bias=True), nn.BatchNorm2d(4), nn.GroupNorm(2, 4),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.Linear(4, 10),
    )
    groups = param_groups(model, PRESETS[name].recipe, lr=0.01, weight_decay=WD[name])
    for conv in (model[0], model[1]):  # the first conv is no exception for biases either
        assert _lookup(groups, conv.bias) == pytest.approx(_expected(name, "conv_bias"))
        assert _lookup(groups, conv.weight) == pytest.approx(_expected(name, "conv_weight"))
    assert _lookup(groups, model[6].bias) == pytest.approx(_expected(name, "conv_bias"))
    assert _lookup(groups, model[6].weight) == pytest.approx(_expected(name, "conv_weight"))
    assert _lookup(groups, model[3].weight) == pytest.approx(_expected(name, "bn_weight"))
    assert _lookup(groups, model[7].weight) == pytest.approx(_expected(name, "fc_weight"))
    assert _lookup(groups, model[7].bias) == pytest.approx(_expected(name, "fc_bias"))


def test_frozen_parameters_are_left_out():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    groups = param_groups(model, Recipe(batch_per_gpu=1, lr=0.01), lr=0.01, weight_decay=1e-4)
    assert not any(p is model[0].weight for g in groups for p in g["params"])


def test_toy_tsm_groups_fc_multipliers_and_no_decay_on_bias_and_norm():
    preset = get_preset("tsm_r50_1x1x8", scale="toy")
    model = build_model(preset.arch, 10)
    groups = param_groups(model, preset.recipe, lr=0.01, weight_decay=1e-4)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert by_id[id(model.fc.weight)]["lr"] == pytest.approx(0.05)
    assert by_id[id(model.fc.bias)]["lr"] == pytest.approx(0.1)
    assert by_id[id(model.fc.bias)]["weight_decay"] == 0.0
    assert by_id[id(model.fc.weight)]["weight_decay"] == 1e-4
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert by_id[id(module.weight)]["weight_decay"] == 0.0, name
        if isinstance(module, torch.nn.Conv2d):
            assert by_id[id(module.weight)]["weight_decay"] == 1e-4, name
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_tsn_recipe_is_one_plain_group():
    preset = get_preset("tsn_r50_1x1x8", scale="toy")
    groups = param_groups(build_model(preset.arch, 10), preset.recipe, lr=0.01, weight_decay=1e-4)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4


def test_linear_lr_scaling():
    recipe = get_preset("tsm_r50_1x1x8").recipe  # 0.x: 8 GPUs x 8 = 64 clips at lr 0.01
    assert recipe.reference_batch == 64
    assert recipe.scaled_lr(64) == pytest.approx(0.01)
    assert recipe.scaled_lr(32) == pytest.approx(0.005)
    assert recipe.scaled_lr(128) == pytest.approx(0.02)  # 1.x's 8 x 16 at 0.02 is the same rule


def test_warmup_and_steps():
    # No reference recipe warms up; a spec may (training.warmup_epochs). This shape is the 1.x
    # TSM-R50 schedule: 10 linear warmup epochs from 0.1x, then x0.1 at 50 and 90.
    f = lambda e: lr_factor(e, milestones=(50, 90), gamma=0.1, warmup_epochs=10, warmup_start=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == 1.0
    assert f(49) == 1.0 and f(50) == pytest.approx(0.1) and f(95) == pytest.approx(0.01)


def test_milestones_stretch_to_short_runs():
    recipe = get_preset("tsn_r50_1x1x8").recipe
    assert scaled_milestones(recipe, 100) == (40, 80)
    assert scaled_milestones(recipe, 10) == (4, 8)


def test_scheduler_steps_every_group_alike():
    recipe = _toy_recipe("tsm_r50_1x1x8", "default", lr=0.1, weight_decay=1e-4, milestones=[2], warmup_epochs=0)
    model = build_model(recipe.preset.arch, 10)
    opt, sched = build_optimizer(model, recipe)
    assert opt.defaults["momentum"] == recipe.momentum and {g["lr_mult"] for g in opt.param_groups} == {
        r.lr_mult for r in recipe.param_groups}
    before = [g["lr"] for g in opt.param_groups]
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * 0.1 for b in before])


def test_cosine_from_one_to_zero_over_the_run():
    """GluonCV's TSN (--lr-mode cosine, no warmup), stepped per epoch: half a cosine over 100 epochs."""
    f = lambda e: lr_factor(e, milestones=(), gamma=0.1, warmup_epochs=0, warmup_start=0.1,  # noqa: E731
                            policy="cosine", epochs=100)
    assert f(0) == 1.0 and f(50) == pytest.approx(0.5) and f(25) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert f(99) == pytest.approx((1 + math.cos(math.pi * 0.99)) / 2) and 0 < f(99) < 0.001
    assert all(f(e + 1) < f(e) for e in range(99))


def test_cosine_after_a_warmup_and_bad_policies():
    f = lambda e: lr_factor(e, milestones=(), gamma=0.1, warmup_epochs=10, warmup_start=0.1,  # noqa: E731
                            policy="cosine", epochs=110)
    assert f(0) == pytest.approx(0.1) and f(10) == 1.0 and f(60) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="epochs"):
        lr_factor(1, milestones=(), gamma=0.1, warmup_epochs=0, warmup_start=0.1, policy="cosine")
    with pytest.raises(ValueError, match="'step' or 'cosine'"):
        lr_factor(1, milestones=(), gamma=0.1, warmup_epochs=0, warmup_start=0.1, policy="poly")


def _toy_recipe(preset: str, config: str, **training):
    """The resolved recipe of a toy trial of ``preset`` x ``config`` with ``training`` overrides."""
    from k400ray.engine.config import TrialConfig
    from k400ray.engine.recipe import resolve_recipe

    return resolve_recipe(TrialConfig(preset=preset, scale="toy", config=config, data={"train_index": "i"},
                                      num_classes=10, training=training))


def test_build_optimizer_follows_the_recipe_policy():
    recipe = _toy_recipe("tsn_r50_1x1x7", "gluoncv", lr=0.1, weight_decay=1e-4, warmup_epochs=0, epochs=4)
    assert recipe.lr_policy == "cosine"
    model = build_model(recipe.preset.arch, 10)
    opt, sched = build_optimizer(model, recipe)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])


def test_warmup_stretches_like_the_milestones():
    recipe = Recipe(batch_per_gpu=16, lr=0.02, milestones=(50, 90), warmup_epochs=10)
    assert scaled_warmup(recipe, 100) == 10 and scaled_warmup(recipe, 20) == 2
    assert scaled_milestones(recipe, 20) == (10, 18)

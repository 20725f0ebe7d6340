"""The preset recipes: parameter groups, lr scaling and the warmup + step schedule."""

import pytest
import torch

from k400ray.engine.optim import build_optimizer, lr_factor, param_groups, scaled_milestones
from k400ray.models.build import build_model
from k400ray.presets import get_preset


def test_tsm_groups_fc_multipliers_and_no_decay_on_bias_and_norm():
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
    recipe = get_preset("tsm_r50_1x1x8").recipe  # 8 GPUs x 16 = 128 clips at lr 0.02
    assert recipe.scaled_lr(128) == pytest.approx(0.02)
    assert recipe.scaled_lr(32) == pytest.approx(0.005)


def test_warmup_and_steps():
    f = lambda e: lr_factor(e, milestones=(50, 90), gamma=0.1, warmup_epochs=10, warmup_start=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == 1.0
    assert f(49) == 1.0 and f(50) == pytest.approx(0.1) and f(95) == pytest.approx(0.01)


def test_milestones_stretch_to_short_runs():
    recipe = get_preset("tsn_r50_1x1x8").recipe
    assert scaled_milestones(recipe, 100) == (40, 80)
    assert scaled_milestones(recipe, 10) == (4, 8)


def test_scheduler_steps_every_group_alike():
    preset = get_preset("tsm_r50_1x1x8", scale="toy")
    model = build_model(preset.arch, 10)
    opt, sched = build_optimizer(model, preset.recipe, lr=0.1, weight_decay=1e-4, milestones=(2,), warmup_epochs=0)
    before = [g["lr"] for g in opt.param_groups]
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * 0.1 for b in before])

"""A search's spec before anything runs: named configs (a base plus overrides), the refusals of
Optuna beyond one grid point, the param space handed to Tune, the trials' stable names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from ray import tune

from k400ray.tune import runner
from k400ray.tune.spec import (
    SearchSpec, run_label, sampled_trial, sampled_values, trial_config, trial_name, tune_trial_name,
)

BASE = {"experiment": "x", "scale": "toy", "data": {"train_index": "idx"},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]}}
SPACE = {"training.lr": {"loguniform": [1e-4, 0.1]}, "augmentation.mixup_alpha": [0.2, 1.0]}


def _spec(**parts) -> SearchSpec:
    return SearchSpec.model_validate({**BASE, **parts})


def test_named_config_runs_its_base_with_overrides_under_its_own_name():
    spec = _spec(configs={"mixup_a02": {"base": "mixup", "augmentation": {"mixup_alpha": 0.2},
                                        "training": {"epochs": 3}}},
                 grid={"rows": [{"preset": "tsn_r50_1x1x8", "config": "mixup_a02"},
                                {"preset": "tsn_r50_1x1x8", "config": "mixup"}]})
    named = trial_config(spec, "tsn_r50_1x1x8", "mixup_a02", 0, num_classes=4)
    plain = trial_config(spec, "tsn_r50_1x1x8", "mixup", 0, num_classes=4)
    assert (named.config, named.config_name, named.config_label) == ("mixup", "mixup_a02", "mixup_a02")
    assert named.augmentation.mixup_alpha == 0.2 and named.training.epochs == 3 and named.total_epochs == 3
    assert named.name == "x-tsn_r50_1x1x8-mixup_a02-s0"
    assert plain.augmentation.mixup_alpha == 1.0 and plain.config_label == "mixup"
    assert "config_name" not in plain.flat_params() and named.flat_params()["config_name"] == "mixup_a02"
    assert spec.epochs_of("tsn_r50_1x1x8", "mixup_a02") == 3


@pytest.mark.parametrize("parts, words", [
    ({"configs": {"m": {"base": "nope"}}}, "base"),
    ({"configs": {"mixup": {"base": "default"}}}, "shadows the built-in config"),
    ({"grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["m"]}}, "grid.configs: unknown config 'm'"),
    ({"configs": {"m": {"base": "mixup", "training": {"lr": -1}}}}, "training.lr"),
    ({"configs": {"g": {"base": "gluoncv"}}, "grid": {"presets": ["tsm_mobilenetv2_dense_1x1x8"], "configs": ["g"]}},
     "configs.g"),
])
def test_bad_named_configs_are_refused(parts, words):
    with pytest.raises(ValidationError, match=words):
        _spec(**parts)


@pytest.mark.parametrize("parts, words", [
    ({"search": {"searcher": "optuna", "space": {"training.lr": [0.1, 0.01]}}}, "write {choice"),
    ({"search": {"searcher": "optuna", "space": {"training.lr": {"uniform": [0.01, 0.1]}}},
      "grid": {"presets": ["tsn_r50_1x1x8"], "seeds": [0, 1]}}, "one study over one grid point"),
    ({"search": {"searcher": "optuna"}}, "at least one axis"),
])
def test_optuna_runs_one_study_over_one_point(parts, words):
    with pytest.raises(ValidationError, match=words):
        _spec(**parts)


def test_param_space_of_a_grid_keeps_its_layout():
    space = runner.param_space(_spec())
    assert space == {"point": tune.grid_search([{"preset": "tsn_r50_1x1x8", "aug": "default", "seed": 0}])}
    assert runner.build_searcher(_spec()) is None


def test_param_space_of_a_random_search_runs_every_seed_with_every_sample():
    """Each drawn value runs with every seed (common random numbers): Tune's own sampling would
    draw anew for each seed. The draws are Tune's samplers, seeded: the same spec, the same values."""
    spec = _spec(grid={"presets": ["tsn_r50_1x1x8"], "seeds": [0, 1]}, search={"space": SPACE, "num_samples": 3})
    space = runner.param_space(spec)
    assert [p["seed"] for p in space["point"]["grid_search"]] == [0, 1]
    drawn = space["values"]["grid_search"]
    assert len(drawn) == 3 * 2  # samples x the listed alpha values
    assert sorted({d["augmentation"]["mixup_alpha"] for d in drawn}) == [0.2, 1.0]
    assert all(1e-4 <= d["training"]["lr"] <= 0.1 and type(d["training"]["lr"]) is float for d in drawn)
    assert len({d["training"]["lr"] for d in drawn}) == 3 and drawn == runner.drawn_values(spec)
    assert runner.build_searcher(spec) is None and runner._tune_samples(spec) == 1
    assert runner._concurrency(spec) is None
    from ray.tune.search.variant_generator import generate_variants

    trials = [config for _, config in generate_variants(space)]  # what Tune makes of the space
    assert len(trials) == runner.expected_trials(spec) == 2 * 6
    for values in drawn:  # each drawn point, with both seeds
        assert sorted(t["point"]["seed"] for t in trials if t["values"] == values) == [0, 1]


def test_optuna_searcher_is_tpe_behind_a_concurrency_limit():
    from optuna.samplers import TPESampler
    from ray.tune.search import ConcurrencyLimiter

    spec = _spec(search={"space": {"training.lr": {"loguniform": [1e-4, 0.1]}}, "searcher": "optuna",
                         "max_concurrent": 2, "num_samples": 4})
    searcher = runner.build_searcher(spec)
    assert isinstance(searcher, ConcurrencyLimiter) and searcher.max_concurrent == 2
    assert isinstance(searcher.searcher._sampler, TPESampler)
    assert runner.param_space(spec)["point"] == {"preset": "tsn_r50_1x1x8", "aug": "default", "seed": 0}


def test_sampled_trials_are_named_by_their_tune_id_and_labelled_by_their_values():
    params = {"point": {"preset": "tsn_r50_1x1x8", "aug": "default", "seed": 0},
              "values": {"training": {"lr": 0.0123456, "weight_decay": 3.1e-5}}}
    assert sampled_values(params) == {"training.lr": 0.0123456, "training.weight_decay": 3.1e-5}
    assert tune_trial_name("x", params, "ab12_00003") == "x-tsn_r50_1x1x8-default-s0-ab12_00003"
    assert tune_trial_name("x", {"point": params["point"]}, "ab12_00003") == trial_name("x", "tsn_r50_1x1x8",
                                                                                      "default", 0)
    assert run_label("tsn_r50_1x1x8", "default", 0, ["tsn_r50_1x1x8"], sampled_values(params)) == \
        "tsn·default·s0·lr=0.0123 weight_decay=3.1e-05"
    cfg = trial_config(_spec(), "tsn_r50_1x1x8", "default", 0, num_classes=4)
    sampled = sampled_trial(cfg, sampled_values(params), name="x-y")
    assert sampled.training.lr == 0.0123456 and sampled.name == "x-y" and cfg.training.lr is None


def test_search_and_named_configs_are_part_of_the_identity_a_grid_without_them_is_not():
    grid = runner._spec_identity(_spec().model_dump(mode="json"))
    assert "search" not in grid and "configs" not in grid
    search = runner._spec_identity(_spec(search={"space": SPACE, "max_concurrent": 2}).model_dump(mode="json"))
    assert "max_concurrent" not in search["search"] and search["search"]["num_samples"] == 1

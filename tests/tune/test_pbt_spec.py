"""A PBT scheduler in a spec: its mutations are checked like search axes (a known, schedule-like
field, valid values, a range with low <= high), and it must fit the grid (one preset, an exploit
before the last epoch at an evaluated epoch). Every refusal is one line naming the field."""

from __future__ import annotations

import pytest
import yaml

from k400ray.tune.pbt import MUTATED, build_pbt, clamped, explored_config, forked, initial_space, trial_of
from k400ray.tune.space import Axis
from k400ray.tune.spec import SpecError, load_spec, trial_config

GOOD = {
    "experiment": "pba", "scale": "toy",
    "data": {"train_index": "index"},
    "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["randaugment"], "seeds": [0, 1]},
    "training": {"epochs": 3, "lr": 0.01},
    "scheduler": {"kind": "pbt", "perturbation_interval": 1, "quantile_fraction": 0.5,
                  "mutations": {"training.lr": {"loguniform": [0.001, 0.1]},
                                "augmentation.randaugment_magnitude": [3, 5, 7, 9]}},
}


def _load(tmp_path, **changes):
    spec = yaml.safe_load(yaml.safe_dump(GOOD))
    for path, value in changes.items():
        *parents, leaf = path.split("/")
        node = spec
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return load_spec(tmp_path / "spec.yaml")


def test_a_pbt_spec_loads(tmp_path):
    spec = _load(tmp_path)
    assert spec.scheduler.kind == "pbt" and spec.scheduler.mutations["training.lr"].kind == "loguniform"


BAD = {
    "unknown mutation field": ({"scheduler/mutations": {"training.lrr": [0.1]}}, "mutations.training.lrr: unknown field"),
    "bad section": ({"scheduler/mutations": {"lr": [0.1]}}, "mutations.lr: name a field"),
    "low > high": ({"scheduler/mutations": {"training.lr": {"uniform": [0.1, 0.01]}}}, "low 0.1 > high 0.01"),
    "invalid value": ({"scheduler/mutations": {"augmentation.randaugment_magnitude": [5, 30]}},
                      "mutations.augmentation.randaugment_magnitude: 30"),
    "not schedule-like": ({"scheduler/mutations": {"training.epochs": [2, 3]}}, "mutations.training.epochs: sets the run"),
    "interval past the epochs": ({"scheduler/perturbation_interval": 3}, "perturbation_interval: 3 epochs leaves no exploit"),
    "no interval": ({"scheduler/perturbation_interval": None}, "perturbation_interval: pbt needs"),
    "no mutations": ({"scheduler/mutations": {}}, "mutations: pbt needs"),
    "two presets": ({"grid/presets": ["tsn_r50_1x1x8", "tsm_r50_1x1x8"]}, "one preset"),
    "unevaluated perturbation": ({"training/eval_interval": 2}, "not a multiple of the efficient-mode interval"),
    "magnitude without randaugment": ({"grid/configs": ["default"]}, "acts in the randaugment config only"),
    "mutations without pbt": ({"scheduler/kind": "asha"}, "only for kind pbt"),
    "optuna": ({"search/searcher": "optuna"}, "search.searcher: optuna cannot drive PBT"),
    "quantile above half": ({"scheduler/quantile_fraction": 0.75}, "scheduler.quantile_fraction"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_pbt_spec_is_one_line_naming_the_field(tmp_path, case):
    changes, message = BAD[case]
    with pytest.raises(SpecError) as err:
        _load(tmp_path, **changes)
    text = str(err.value)
    assert "\n" not in text and message in text and text.startswith(f"{tmp_path / 'spec.yaml'}: "), text


def test_the_scheduler_space_and_explored_values(tmp_path):
    spec = _load(tmp_path)
    pbt = build_pbt(spec, max_epochs=3)
    assert type(pbt).__mro__[1].__name__ == "PopulationBasedTraining"
    space = initial_space(spec.scheduler.mutations)
    assert set(space[MUTATED]) == {"training.lr", "augmentation.randaugment_magnitude"}
    cfg = trial_config(spec, "tsn_r50_1x1x8", "randaugment", 0, num_classes=4)
    explored = explored_config(cfg, {"training.lr": 0.05, "augmentation.randaugment_magnitude": 7})
    assert explored.training.lr == 0.05 and explored.randaugment == (2, 7) and explored.name == cfg.name
    fork = forked(explored, "/runs/pba/trial/checkpoint_000001")
    assert trial_of(fork.name) == cfg.name != fork.name and fork.init_checkpoint.endswith("checkpoint_000001")
    assert forked(explored, "/runs/pba/trial/checkpoint_000001").name == fork.name  # a retry: the same run


def test_explored_values_stay_inside_the_axis():
    assert clamped(12, Axis.model_validate({"randint": [0, 11]})) == 10
    assert clamped(0.2, Axis.model_validate({"loguniform": [0.001, 0.1]})) == 0.1
    assert clamped(7, Axis.model_validate([3, 5, 7])) == 7

"""The grid's second axis is the sheet's configs column: its new and old names, explicit rows,
and (preset, config) pairs without meaning refused at load with one line naming file and field."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from k400ray.tune import runner
from k400ray.tune.spec import SearchSpec, SpecError, grid_point, load_spec

BASE = {"experiment": "x", "data": {"train_index": "idx"}}
ROWS = [
    {"preset": "tsn_r50_1x1x7", "config": "gluoncv"},
    {"preset": "tsm_r50_1x1x8", "config": "randaugment", "seeds": [0, 1]},
    {"preset": "i3d_r50_32x2x1", "config": "gluoncv"},
]


def _load(tmp_path, grid: dict) -> SearchSpec:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "grid": grid}))
    return load_spec(path)


def _refused(tmp_path, grid: dict) -> str:
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, grid)
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{tmp_path / 'spec.yaml'}: ")
    return message


def test_configs_and_its_old_name_give_the_same_grid(tmp_path):
    new = _load(tmp_path, {"presets": ["i3d_r50_32x2x1"], "configs": ["default", "gluoncv"], "seeds": [0, 1]})
    old = _load(tmp_path, {"presets": ["i3d_r50_32x2x1"], "augmentations": ["default", "gluoncv"], "seeds": [0, 1]})
    assert new == old and new.grid.augmentations == ["default", "gluoncv"]
    assert new.grid_points() == [("i3d_r50_32x2x1", c, s) for c in ("default", "gluoncv") for s in (0, 1)]


def test_both_names_at_once_are_refused(tmp_path):
    message = _refused(tmp_path, {"presets": ["i3d_r50_32x2x1"], "configs": ["default"], "augmentations": ["default"]})
    assert ": grid: configs and augmentations (its old name) are both set" in message


@pytest.mark.parametrize("field", ["configs", "augmentations"])
def test_gluoncv_crossed_with_a_preset_gluoncv_never_trained_is_refused(tmp_path, field):
    message = _refused(tmp_path, {"presets": ["i3d_r50_32x2x1", "tsm_r50_1x1x8"], field: ["default", "gluoncv"]})
    assert f": grid.{field}: config 'gluoncv' has no meaning for tsm_r50_1x1x8" in message


def test_explicit_rows_run_exactly_the_listed_points(tmp_path):
    spec = _load(tmp_path, {"seeds": [3], "rows": ROWS})
    assert spec.grid_points() == [("tsn_r50_1x1x7", "gluoncv", 3), ("tsm_r50_1x1x8", "randaugment", 0),
                                  ("tsm_r50_1x1x8", "randaugment", 1), ("i3d_r50_32x2x1", "gluoncv", 3)]
    dumped = spec.model_dump(mode="json")  # what trials and MLflow get, and what a trial re-validates
    assert dumped["grid"]["presets"] == ["tsn_r50_1x1x7", "tsm_r50_1x1x8", "i3d_r50_32x2x1"]
    assert dumped["grid"]["augmentations"] == ["gluoncv", "randaugment"]
    assert SearchSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(("grid", "field", "words"), [
    ({"rows": [*ROWS, {"preset": "tsm_mobilenetv2_dense_1x1x8", "config": "gluoncv"}]}, "grid.rows.3",
     "config 'gluoncv' has no meaning for tsm_mobilenetv2_dense_1x1x8"),
    ({"rows": [{"preset": "tsn_r50_1x1x8", "config": "autoaugment"}]}, "grid.rows.0.config", "unknown config 'autoaugment'"),
    ({"rows": [{"preset": "tsn_r50_1x1x9", "config": "default"}]}, "grid.rows.0.preset", "unknown preset"),
    ({"rows": [ROWS[0], ROWS[0]]}, "grid", "tsn_r50_1x1x7 x gluoncv with seed 0 is listed twice"),
    ({"rows": ROWS, "presets": ["tsn_r50_1x1x8"]}, "grid", "rows and presets are both set"),
    ({"rows": ROWS, "configs": ["default"]}, "grid", "rows and configs are both set"),
])
def test_bad_rows_are_refused_with_their_field(tmp_path, grid, field, words):
    message = _refused(tmp_path, grid)
    assert f": {field}: " in message and words in message


def test_trial_params_nested_or_flat_name_the_same_point():
    assert grid_point({"point": {"preset": "p", "aug": "gluoncv", "seed": 1}}) == ("p", "gluoncv", 1)
    assert grid_point({"preset": "p", "aug": "default", "seed": "2"}) == ("p", "default", 2)
    trial = SimpleNamespace(trial_id="t_00000", config={"point": {"preset": "i3d_r50_32x2x1", "aug": "gluoncv", "seed": 0}})
    assert runner._trial_label("e", trial) == "e-i3d_r50_32x2x1-gluoncv-s0"


def test_resume_identity_of_a_cross_product_is_unchanged_by_rows():
    """A grid started before rows existed (no `rows` key) must still match its --resume."""
    spec = SearchSpec.model_validate({**BASE, "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"]}})
    dumped = spec.model_dump(mode="json")
    assert dumped["grid"]["rows"] is None
    before = {k: dumped[k] for k in ("experiment", "scale", "data", "augmentation", "training")}
    # training fields added later (eval_interval, accurate_checkpoint) hash as absent at their defaults
    before["training"] = {k: v for k, v in before["training"].items()
                          if k not in ("eval_interval", "accurate_checkpoint", "compile")}
    before["grid"] = {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"], "seeds": [0]}
    # where nodes read the (checksummed, identical) videos is not part of it either: a grid
    # staged to local disks halfway through still resumes
    before["data"] = {k: v for k, v in before["data"].items() if k not in ("local_cache", "decode_backend")}
    assert runner._spec_identity(dumped) == before
    staged = {**dumped, "data": {**dumped["data"], "local_cache": "/mnt/local/k400"}}
    assert runner._spec_identity(staged) == before
    with_rows = SearchSpec.model_validate({**BASE, "grid": {"rows": ROWS}}).model_dump(mode="json")
    assert runner._spec_identity(with_rows)["grid"]["rows"] == with_rows["grid"]["rows"]


def test_asha_max_epochs_per_preset_come_from_the_rows(tmp_path):
    from k400ray.tune.scheduler import PerPresetASHA, build_scheduler

    spec = SearchSpec.model_validate({**BASE, "scheduler": {"kind": "asha"}, "grid": {"rows": ROWS}})
    scheduler = build_scheduler(spec)
    assert isinstance(scheduler, PerPresetASHA)
    assert set(scheduler._asha) == {"tsn_r50_1x1x7", "tsm_r50_1x1x8", "i3d_r50_32x2x1"}


def test_run_labels_are_short_show_the_config_and_stay_unique():
    from k400ray.tune.spec import preset_labels, run_label

    demo = ["tsn_r50_1x1x8", "tsm_r50_1x1x8", "i3d_r50_32x2x1"]
    assert run_label("i3d_r50_32x2x1", "mixup", 0, demo) == "i3d·mixup·s0"
    sheet = preset_labels(["tsn_r50_1x1x8", "tsn_r50_1x1x7", "tsm_r50_1x1x8", "tsm_mobilenetv2_dense_1x1x8",
                           "i3d_r50_32x2x1"])
    assert sheet == {"tsn_r50_1x1x8": "tsn_1x1x8", "tsn_r50_1x1x7": "tsn_1x1x7", "tsm_r50_1x1x8": "tsm_r50",
                     "tsm_mobilenetv2_dense_1x1x8": "tsm_mobilenetv2_dense", "i3d_r50_32x2x1": "i3d"}
    spec = SearchSpec.model_validate({**BASE, "grid": {"rows": ROWS}})
    presets = [p for p, _, _ in spec.grid_points()]
    names = [run_label(p, a, s, presets) for p, a, s in spec.grid_points()]
    assert len(set(names)) == len(names) == 4 and "tsm·randaugment·s1" in names
    # two presets whose words are the same set: no short label could tell them apart
    assert preset_labels(["tsn_a_b", "tsn_b_a"]) == {"tsn_a_b": "tsn_a_b", "tsn_b_a": "tsn_b_a"}

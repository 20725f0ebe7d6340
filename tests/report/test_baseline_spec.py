"""The spec's ``report.baseline_model``: optional, a known preset of the grid, and no part of
what a ``--resume`` must keep unchanged."""

from __future__ import annotations

import pytest
import yaml

from k400ray.tune import runner
from k400ray.tune.spec import SearchSpec, SpecError, load_spec

BASE = {"experiment": "x", "data": {"train_index": "idx"},
        "grid": {"presets": ["tsn_r50_1x1x8", "tsm_r50_1x1x8"], "configs": ["default"]}}


def _load(tmp_path, **extra) -> SearchSpec:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return load_spec(path)


def test_baseline_is_optional_and_round_trips(tmp_path):
    assert _load(tmp_path).report.baseline_model is None  # the report then takes the first TSN preset
    spec = _load(tmp_path, report={"baseline_model": "tsm_r50_1x1x8"})
    assert spec.report.baseline_model == "tsm_r50_1x1x8"
    assert SearchSpec.model_validate(spec.model_dump(mode="json")) == spec
    rows = {"rows": [{"preset": "tsn_r50_1x1x7", "config": "gluoncv"}, {"preset": "i3d_r50_32x2x1", "config": "gluoncv"}]}
    assert _load(tmp_path, grid=rows, report={"baseline_model": "i3d_r50_32x2x1"}).report.baseline_model


@pytest.mark.parametrize("report, words", [
    ({"baseline_model": "tsn_r101_1x1x8"}, "unknown preset"),
    ({"baseline_model": "i3d_r50_32x2x1"}, "is not a preset of the grid"),
    ({"baseline": "tsn_r50_1x1x8"}, "unknown field"),
])
def test_a_bad_baseline_is_refused_naming_the_field(tmp_path, report, words):
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, report=report)
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and "report." in message and words in message


def test_changing_the_baseline_does_not_change_the_resume_identity():
    plain = SearchSpec.model_validate(BASE).model_dump(mode="json")
    chosen = SearchSpec.model_validate({**BASE, "report": {"baseline_model": "tsm_r50_1x1x8"}}).model_dump(mode="json")
    assert runner._spec_identity(plain) == runner._spec_identity(chosen)

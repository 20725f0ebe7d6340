"""ImageNet weights from the spec: one local file per 2D backbone, checked before anything
starts, carried into each trial's preset."""

from __future__ import annotations

import pytest
import yaml

from k400ray.tune.spec import SpecError, check_indexes, load_spec, trial_config


def _spec(tmp_path, **extra):
    spec = {"experiment": "w", "data": {"train_index": str(tmp_path / "index")},
            "grid": {"presets": ["tsm_r50_1x1x8", "tsm_mobilenetv2_dense_1x1x8"]}, **extra}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_weights_follow_the_preset_backbone(tmp_path):
    r50, mnv2 = tmp_path / "resnet50.pth", tmp_path / "mnv2.pth"
    spec = load_spec(_spec(tmp_path, pretrained={"resnet50": str(r50), "mobilenetv2": str(mnv2)}))
    assert trial_config(spec, "tsm_r50_1x1x8", "default", 0, num_classes=400).resolved_preset().arch.pretrained == str(r50)
    mobile = trial_config(spec, "tsm_mobilenetv2_dense_1x1x8", "default", 0, num_classes=400)
    assert mobile.resolved_preset().arch.pretrained == str(mnv2)
    plain = load_spec(_spec(tmp_path))
    assert trial_config(plain, "tsm_r50_1x1x8", "default", 0, num_classes=400).resolved_preset().arch.pretrained is None


def test_missing_weights_file_and_toy_scale_are_refused(tmp_path):
    import json

    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text(json.dumps({"classes": ["a"], "splits": {"train": {"videos": 1}, "val": {"videos": 1}}}))
    spec = load_spec(_spec(tmp_path, pretrained={"resnet50": str(tmp_path / "nope.pth")}))
    with pytest.raises(SpecError, match=r"pretrained.resnet50: no weights file at .*nope.pth"):
        check_indexes(spec, "spec.yaml")
    with pytest.raises(SpecError, match="scale: full"):
        load_spec(_spec(tmp_path, scale="toy", pretrained={"resnet50": "w.pth"}))
    with pytest.raises(SpecError, match="pretrained.resnet18"):
        load_spec(_spec(tmp_path, pretrained={"resnet18": "w.pth"}))

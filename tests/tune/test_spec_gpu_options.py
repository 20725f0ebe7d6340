"""The GPU options of a spec, ``training.compile`` and ``data.decode_backend``: their values, what a
trial receives, and that a --resume may change them."""

from __future__ import annotations

import pytest
import yaml

from k400ray.tune import runner
from k400ray.tune.spec import SearchSpec, SpecError, load_spec, trial_config

BASE = {"experiment": "x", "data": {"train_index": "idx"}, "grid": {"presets": ["tsn_r50_1x1x8"]}}


def _spec(**training) -> SearchSpec:
    return SearchSpec.model_validate({**BASE, "training": training})


def test_compile_reaches_the_trial_and_unset_means_eager_on_cpu():
    cfg = trial_config(_spec(compile="reduce-overhead"), "tsn_r50_1x1x8", "default", 0, num_classes=4)
    assert cfg.training.compile == cfg.compile_mode == "reduce-overhead"
    unset = trial_config(_spec(), "tsn_r50_1x1x8", "default", 0, num_classes=4)
    assert unset.training.compile is None and unset.compile_mode == "off"
    on_gpu = SearchSpec.model_validate({**BASE, "resources": {"gpus_per_worker": 1}})
    # no preset has a measured GPU default yet (engine/compiled.py: GPU_DEFAULT_COMPILE)
    assert trial_config(on_gpu, "tsn_r50_1x1x8", "default", 0, num_classes=4).compile_mode == "off"


def test_yaml_off_is_the_mode_off_and_on_names_none(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE) + "training:\n  compile: off\n")
    assert load_spec(path).training.compile == "off"
    path.write_text(yaml.safe_dump(BASE) + "training:\n  compile: on\n")
    with pytest.raises(SpecError, match=r"training.compile: name a mode: default, reduce-overhead"):
        load_spec(path)


def test_an_unknown_mode_is_one_line_naming_the_field(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "training": {"compile": "fast"}}))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    message = str(exc.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: training.compile: ") and "'reduce-overhead'" in message


def test_changing_compile_keeps_the_grid_resumable():
    eager = runner._spec_identity(_spec(epochs=2).model_dump(mode="json"))
    assert runner._spec_identity(_spec(epochs=2, compile="max-autotune").model_dump(mode="json")) == eager
    assert runner._spec_identity(_spec(epochs=3).model_dump(mode="json")) != eager


def test_decode_backend_reaches_the_trial_and_keeps_the_grid_resumable(tmp_path):
    nvdec = SearchSpec.model_validate({**BASE, "data": {"train_index": "idx", "decode_backend": "nvdec"}})
    assert trial_config(nvdec, "tsn_r50_1x1x8", "default", 0, num_classes=4).data.decode_backend == "nvdec"
    cpu = SearchSpec.model_validate(BASE)
    assert trial_config(cpu, "tsn_r50_1x1x8", "default", 0, num_classes=4).data.decode_backend == "cpu"
    assert runner._spec_identity(nvdec.model_dump(mode="json")) == runner._spec_identity(cpu.model_dump(mode="json"))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, "data": {"train_index": "idx", "decode_backend": "gpu"}}))
    with pytest.raises(SpecError, match=r"^\S+spec.yaml: data.decode_backend: Input should be 'cpu' or 'nvdec'$"):
        load_spec(path)

"""Loading torchvision ImageNet state dicts from local files (random weights stand in for them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from k400ray.models.build import build_model
from k400ray.models.pretrained import load_pretrained, source_key
from k400ray.models.temporal_shift import TemporalShift
from k400ray.presets import PRESETS, get_preset


def _randomised_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Random values in every tensor (BN stats too), so a load that skipped anything would show."""
    g = torch.Generator().manual_seed(0)
    state = model.state_dict()
    return {k: (torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v) for k, v in state.items()}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("imagenet")
    files = {}
    for name, make in (("resnet50", torchvision.models.resnet50), ("mobilenetv2", torchvision.models.mobilenet_v2)):
        files[name] = folder / f"{name}.pth"
        torch.save(_randomised_state(make()), files[name])
    (folder / "notes.pth").write_text("not a checkpoint")
    files["garbage"] = folder / "notes.pth"
    return files


def _build(name: str, path: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(replace(PRESETS[name].arch, pretrained=str(path)), 400)


@pytest.mark.parametrize(
    ("name", "file", "classifier"),
    [
        ("tsn_r50_1x1x8", "resnet50", ("fc.weight", "fc.bias")),
        ("tsm_r50_1x1x8", "resnet50", ("fc.weight", "fc.bias")),
        ("tsm_mobilenetv2_dense_1x1x8", "mobilenetv2", ("classifier.1.weight", "classifier.1.bias")),
    ],
)
def test_2d_backbones_load_by_name(name: str, file: str, classifier: tuple[str, ...], weight_files) -> None:
    source = torch.load(weight_files[file], weights_only=True)
    model = _build(name, weight_files[file])
    shifts = frozenset(n for n, m in model.named_modules() if isinstance(m, TemporalShift))
    state = model.state_dict()
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
    assert len(backbone) == len(source) - 2
    for key, value in backbone.items():
        torch.testing.assert_close(value, source[source_key(key, shifts)], rtol=0, atol=0)
    # the ImageNet classifier is ignored; the new head keeps its N(0, std) init
    assert state["fc.weight"].abs().max() < 0.1 and torch.count_nonzero(state["fc.bias"]) == 0

    if name == "tsm_r50_1x1x8":  # a shifted conv, by its full name
        torch.testing.assert_close(state["backbone.layer3.2.conv1.net.weight"], source["layer3.2.conv1.weight"])
    report = load_pretrained(model, PRESETS[name].arch, weight_files[file])  # again, for its report
    assert report.unexpected == classifier
    assert report.missing == ("fc.weight", "fc.bias")
    assert report.inflated == ()


def test_i3d_inflates_2d_kernels(weight_files) -> None:
    source = torch.load(weight_files["resnet50"], weights_only=True)
    model = _build("i3d_r50_32x2x1", weight_files["resnet50"])
    state = model.state_dict()
    assert sum(v.dim() == 5 for v in state.values()) == 53  # every conv: stem + 16 blocks x 3 + 4 downsample
    conv1 = state["backbone.conv1.weight"]  # (64, 3, 5, 7, 7) from (64, 3, 7, 7)
    assert conv1.shape == (64, 3, 5, 7, 7)
    torch.testing.assert_close(conv1.sum(dim=2), source["conv1.weight"])
    torch.testing.assert_close(conv1, source["conv1.weight"].unsqueeze(2).expand_as(conv1) / 5)
    inflated = state["backbone.layer1.0.conv1.weight"]  # 3x1x1
    assert inflated.shape[2] == 3
    torch.testing.assert_close(inflated.sum(dim=2), source["layer1.0.conv1.weight"])
    for key, value in state.items():
        if key.startswith("backbone."):
            src = source[key[len("backbone.") :]]
            got = value.sum(dim=2) if value.dim() == 5 else value
            torch.testing.assert_close(got, src)


@pytest.mark.parametrize(
    ("name", "file", "match"),
    [
        ("tsm_r50_1x1x8", "mobilenetv2", "not a torchvision resnet50"),
        ("i3d_r50_32x2x1", "mobilenetv2", "not a torchvision resnet50"),
        ("tsm_mobilenetv2_dense_1x1x8", "resnet50", "not a torchvision mobilenetv2"),
        ("tsm_r50_1x1x8", "garbage", "not a readable PyTorch state dict"),
    ],
)
def test_wrong_file_is_a_one_line_error_naming_it(name: str, file: str, match: str, weight_files) -> None:
    with pytest.raises(ValueError, match=match) as err:
        _build(name, weight_files[file])
    message = str(err.value)
    assert str(weight_files[file]) in message and "\n" not in message


def test_width_mismatch_is_a_shape_error(weight_files) -> None:
    toy = get_preset("tsn_r50_1x1x8", scale="toy")  # base_width 8 cannot take ResNet-50's 64-wide weights
    narrow_r50 = replace(toy.arch, depths=(3, 4, 6, 3), pretrained=str(weight_files["resnet50"]))
    with pytest.raises(ValueError, match="shape mismatch") as err:
        build_model(narrow_r50, 400)
    assert str(weight_files["resnet50"]) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        build_model(replace(PRESETS["tsn_r50_1x1x8"].arch, pretrained=str(tmp_path / "nowhere.pth")), 400)


def test_files_without_num_batches_tracked_load(weight_files, tmp_path: Path) -> None:
    # torchvision's original ImageNet files predate the BN num_batches_tracked buffer.
    source = torch.load(weight_files["mobilenetv2"], weights_only=True)
    old_style = tmp_path / "mobilenet_v2-old.pth"
    torch.save({k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}, old_style)
    arch = PRESETS["tsm_mobilenetv2_dense_1x1x8"].arch
    model = build_model(arch, 400)
    report = load_pretrained(model, arch, old_style)
    assert all(k.endswith("num_batches_tracked") for k in report.missing if not k.startswith("fc."))
    torch.testing.assert_close(model.backbone.features[0][0].weight, source["features.0.0.weight"])

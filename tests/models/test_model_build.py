"""build_model at toy scale: every preset trains on CPU, in channels_last and bf16 autocast, and
the temporal behaviour of each family is what its recipe says."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision
from torch import nn

from k400ray.models.arch import ArchConfig
from k400ray.models.backbones2d import MobileNetV2Features, ResNet2d
from k400ray.models.build import HEAD_INIT_STD, build_model
from k400ray.models.recognizers2d import frames_as_batch
from k400ray.models.temporal_shift import TemporalShift
from k400ray.presets import PRESETS, get_preset

NUM_CLASSES = 400
TOY_CROP = 56


def _toy(name: str) -> tuple[nn.Module, int]:
    preset = get_preset(name, scale="toy")
    torch.manual_seed(0)
    return build_model(preset.arch, NUM_CLASSES), preset.train_sampling.view_frames


def _clip(t: int, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, t, TOY_CROP, TOY_CROP, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(PRESETS))
def test_forward_backward(name: str) -> None:
    model, t = _toy(name)
    model.train()
    logits = model(_clip(t))
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_channels_last_bf16_autocast(name: str) -> None:
    """The GPU path's layout and precision, run on CPU. One thread: CPU conv3d backward has
    thread races (pytorch/pytorch issue 34344); the I3D case got a non-finite gradient now and then
    in full-suite runs under load (last 2026-12-06), never alone nor in 30 repeats."""
    model, t = _toy(name)
    is_3d = get_preset(name, scale="toy").arch.family == "i3d"
    model = model.to(memory_format=torch.channels_last_3d if is_3d else torch.channels_last)
    x = _clip(t).contiguous(memory_format=torch.channels_last_3d)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        assert logits.dtype == torch.bfloat16 and logits.shape == (2, NUM_CLASSES)
        assert torch.isfinite(logits.float()).all()
        logits.float().sum().backward()
    finally:
        torch.set_num_threads(threads)
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


def _order_effect(model: nn.Module, t: int) -> float:
    """Largest logit change when the frames of each clip are reversed, relative to the logit scale."""
    nn.init.normal_(model.fc.weight, std=1.0)  # O(1) logits so a change is far above rounding noise
    model.eval()
    x = _clip(t)
    with torch.no_grad():
        a, b = model(x), model(x.flip(2))
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize("name", ["tsn_r50_1x1x8", "tsn_r50_1x1x7"])
def test_tsn_is_invariant_to_segment_order(name: str) -> None:
    model, t = _toy(name)
    model.eval()
    x = _clip(t)
    perm = torch.randperm(t, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x[:, :, perm]), model(x), rtol=1e-5, atol=1e-6)
    assert _order_effect(model, t) < 1e-5


@pytest.mark.parametrize("name", ["tsm_r50_1x1x8", "tsm_mobilenetv2_dense_1x1x8", "i3d_r50_32x2x1"])
def test_tsm_and_i3d_see_frame_order(name: str) -> None:
    model, t = _toy(name)
    assert _order_effect(model, t) > 1e-3


@pytest.mark.parametrize("per_frame", [False, True])
def test_tsn_dropout_before_or_after_the_segment_average(per_frame: bool) -> None:
    """MMAction2's TSN drops features of the segment average; GluonCV's (``dropout_per_frame``)
    drops each frame's, so a feature of the average is zero only when all 7 frames' are
    (0.5**7 of them). In eval mode both are the same model."""
    arch = replace(get_preset("tsn_r50_1x1x7", scale="toy").arch, dropout=0.5, dropout_per_frame=per_frame)
    torch.manual_seed(0)
    model = build_model(arch, NUM_CLASSES)
    seen = []
    model.fc.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = _clip(7, n=16).abs() + 0.1  # positive input: no feature is zero before dropout
    model.train()
    model(x)
    zeros = (seen[-1] == 0).float().mean().item()
    assert zeros < 0.05 if per_frame else 0.4 < zeros < 0.6
    plain = build_model(replace(arch, dropout_per_frame=False), NUM_CLASSES)
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x))


def test_tsn_takes_any_number_of_segments() -> None:
    model, _ = _toy("tsn_r50_1x1x8")
    model.eval()
    with torch.no_grad():
        assert model(_clip(25, n=1)).shape == (1, NUM_CLASSES)  # accurate mode: 25 segments
        assert model(_clip(3, n=1)).shape == (1, NUM_CLASSES)


def test_tsm_rejects_other_segment_counts() -> None:
    model, _ = _toy("tsm_r50_1x1x8")
    with pytest.raises(ValueError, match="num_segments=8"):
        model(_clip(6, n=1))


def test_i3d_toy_reduces_time_like_the_reference() -> None:
    model, t = _toy("i3d_r50_32x2x1")
    features = model.backbone(_clip(t, n=1))
    assert features.shape[2] == t // 8  # conv1 /2, pool1 /2, pool2 /2


@pytest.mark.parametrize("name", ["tsn_r50_1x1x8", "tsm_r50_1x1x8", "i3d_r50_32x2x1"])
def test_head_init(name: str) -> None:
    model, _ = _toy(name)
    std = HEAD_INIT_STD[PRESETS[name].arch.family]
    assert model.fc.weight.std().item() == pytest.approx(std, rel=0.05)
    assert torch.count_nonzero(model.fc.bias) == 0


def test_shift_count_per_backbone() -> None:
    with torch.device("meta"):
        r50 = build_model(PRESETS["tsm_r50_1x1x8"].arch, NUM_CLASSES)
        mbv2 = build_model(PRESETS["tsm_mobilenetv2_dense_1x1x8"].arch, NUM_CLASSES)
        tsn = build_model(PRESETS["tsn_r50_1x1x8"].arch, NUM_CLASSES)
    count = lambda m: sum(isinstance(x, TemporalShift) for x in m.modules())  # noqa: E731
    assert (count(r50), count(mbv2), count(tsn)) == (16, 10, 0)


def _shapes(state: dict[str, torch.Tensor], drop: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if not k.startswith(drop)}


def test_full_scale_backbones_have_torchvision_names_and_shapes() -> None:
    with torch.device("meta"):
        assert _shapes(ResNet2d().state_dict(), "-") == _shapes(torchvision.models.resnet50().state_dict(), "fc.")
        assert _shapes(MobileNetV2Features().state_dict(), "-") == _shapes(
            torchvision.models.mobilenet_v2().state_dict(), "classifier."
        )


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        (ArchConfig(family="i3d", backbone="mobilenetv2"), "inflated ResNet"),
        (ArchConfig(family="i3d", depths=(1, 1, 1, 1)), "inflate pattern"),
        (ArchConfig(family="tsn", backbone="vgg16"), "unknown 2D backbone"),  # type: ignore[arg-type]
        (ArchConfig(family="slowfast"), "unknown model family"),  # type: ignore[arg-type]
    ],
)
def test_bad_arch_is_a_clear_error(arch: ArchConfig, match: str) -> None:
    with torch.device("meta"), pytest.raises(ValueError, match=match):
        build_model(arch, NUM_CLASSES)


def test_toy_scale_only_changes_numbers() -> None:
    full, toy = PRESETS["tsm_r50_1x1x8"].arch, get_preset("tsm_r50_1x1x8", scale="toy").arch
    with torch.device("meta"):
        a, b = build_model(full, NUM_CLASSES), build_model(replace(toy, depths=full.depths), NUM_CLASSES)
    assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]


def test_frames_as_batch_is_a_channels_last_view_of_channels_last_3d_clips() -> None:
    x = torch.randn(2, 3, 4, 8, 8).contiguous(memory_format=torch.channels_last_3d)
    frames = frames_as_batch(x)
    assert frames.shape == (8, 3, 8, 8) and frames.data_ptr() == x.data_ptr()
    assert frames.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(frames[5], x[1, :, 1])  # clip 1, frame 1

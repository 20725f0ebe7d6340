"""Normalisation and MixUp / CutMix on clip batches."""

from unittest import mock

import pytest
import torch

from k400ray.engine import augment
from k400ray.engine.augment import MEAN, STD, BatchMix, normalization_constants, normalize, soft_cross_entropy


def test_normalize_uses_imagenet_stats_per_channel():
    clips = torch.zeros(2, 3, 4, 5, 5, dtype=torch.uint8)
    clips[:, 1] = 255
    x = normalize(clips)
    assert x.dtype == torch.float32 and x.shape == clips.shape
    assert torch.allclose(x[0, 0, 0, 0, 0], torch.tensor(-MEAN[0] / STD[0]))
    assert torch.allclose(x[0, 1, 0, 0, 0], torch.tensor((255 - MEAN[1]) / STD[1]))


def test_normalize_builds_its_constants_once_per_device():
    """Building mean/std from Python numbers is a blocking host-to-device copy on a GPU: after the
    first batch on a device, normalising makes no tensor from host data."""
    clips = torch.randint(0, 256, (2, 3, 4, 5, 5), dtype=torch.uint8)
    first = normalize(clips)
    assert normalization_constants(clips.device, 5) is normalization_constants(clips.device, 5)
    with mock.patch.object(augment.torch, "tensor", side_effect=AssertionError("a tensor made per batch")):
        again = normalize(clips)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    assert torch.equal(again, first) and torch.allclose(first, (clips.float() - mean) / std)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
@pytest.mark.parametrize("kind", [None, "mixup", "cutmix"])
def test_normalize_and_mixing_keep_the_memory_layout(layout, kind):
    """I3D's batches are channels_last_3d on a GPU (engine.layout), TSN/TSM's the default layout:
    neither normalising nor mixing changes it, so every config feeds a model the same layout."""
    clips = torch.randint(0, 256, (4, 3, 4, 8, 8), dtype=torch.uint8).contiguous(memory_format=layout)
    x = normalize(clips)
    assert x.is_contiguous(memory_format=layout)
    mixed, _ = BatchMix(kind, alpha=1.0, num_classes=4)(x, torch.arange(4))
    assert mixed.stride() == x.stride()


def _batch(b=8, k=5):
    torch.manual_seed(0)
    return torch.randn(b, 3, 4, 16, 16), torch.arange(b) % k


def test_default_gives_one_hot_targets():
    x, y = _batch()
    out, t = BatchMix(None, alpha=1.0, num_classes=5)(x, y)
    assert out is x and torch.equal(t.argmax(1), y) and torch.allclose(t.sum(1), torch.ones(8))


def test_mixup_and_cutmix_targets_sum_to_one():
    for kind in ("mixup", "cutmix"):
        for seed in range(5):
            torch.manual_seed(seed)
            x, y = _batch()
            out, t = BatchMix(kind, alpha=1.0, num_classes=5)(x, y)
            assert out.shape == x.shape and t.shape == (8, 5)
            assert torch.allclose(t.sum(1), torch.ones(8), atol=1e-6)
            assert (t >= 0).all()


def test_cutmix_cuts_the_same_box_in_every_frame():
    torch.manual_seed(3)
    x = torch.zeros(4, 3, 6, 32, 32)
    for i in range(4):
        x[i] = i + 1  # each clip a constant value: pasted pixels reveal the partner
    y = torch.arange(4)
    out, t = BatchMix("cutmix", alpha=1.0, num_classes=4)(x, y)
    for i in range(4):
        changed = out[i] != x[i]  # (C, T, H, W)
        assert torch.equal(changed, changed[:1, :1].expand_as(changed))  # same box, every channel and frame
        frac = changed[0, 0].float().mean()
        assert torch.isclose(t[i, y[i]], 1 - frac, atol=1e-5) or frac == 0  # lambda from the real box area


def test_soft_cross_entropy_matches_hard_for_one_hot():
    logits = torch.randn(6, 5)
    y = torch.arange(6) % 5
    hard = torch.nn.functional.cross_entropy(logits, y)
    soft = soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 5).float())
    assert torch.allclose(hard, soft, atol=1e-6)

"""Temporal shift: exact channel movement on hand-built tensors, and where TSM places it."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import Bottleneck

from k400ray.models.backbones2d import MobileNetV2Features, ResNet2d
from k400ray.models.temporal_shift import TemporalShift, insert_residual_shift, temporal_shift


def _clips(n: int, t: int, c: int, hw: int = 2) -> torch.Tensor:
    """(N*T, C, H, W) with every value distinct and non-zero, so any move or zero is visible."""
    return (torch.arange(n * t * c * hw * hw, dtype=torch.float32) + 1).reshape(n * t, c, hw, hw)


def test_shift_values_padding_and_rest() -> None:
    n, t, c = 2, 4, 16  # fold = 16 // 8 = 2
    x = _clips(n, t, c)
    before = x.clone()
    out = temporal_shift(x, t, 8)
    xs, os_ = x.view(n, t, c, 2, 2), out.view(n, t, c, 2, 2)
    for clip in range(n):
        for frame in range(t):
            # channels 0..1: frame t takes frame t+1; zeros after the last frame
            expect_back = xs[clip, frame + 1, :2] if frame < t - 1 else torch.zeros(2, 2, 2)
            torch.testing.assert_close(os_[clip, frame, :2], expect_back)
            # channels 2..3: frame t takes frame t-1; zeros before the first frame
            expect_fwd = xs[clip, frame - 1, 2:4] if frame > 0 else torch.zeros(2, 2, 2)
            torch.testing.assert_close(os_[clip, frame, 2:4], expect_fwd)
            # the other 12 channels are untouched
            torch.testing.assert_close(os_[clip, frame, 4:], xs[clip, frame, 4:])
    torch.testing.assert_close(x, before)  # not in place
    assert out.data_ptr() != x.data_ptr()


def test_shift_moves_one_eighth_each_way() -> None:
    n, t, c = 1, 8, 64
    x = _clips(n, t, c)
    out = temporal_shift(x, t, 8).view(n, t, c, -1)
    xs = x.view(n, t, c, -1)
    mid = 3  # an interior frame: both neighbours exist
    from_next = [ch for ch in range(c) if torch.equal(out[0, mid, ch], xs[0, mid + 1, ch])]
    from_prev = [ch for ch in range(c) if torch.equal(out[0, mid, ch], xs[0, mid - 1, ch])]
    unchanged = [ch for ch in range(c) if torch.equal(out[0, mid, ch], xs[0, mid, ch])]
    assert from_next == list(range(0, 8))
    assert from_prev == list(range(8, 16))
    assert unchanged == list(range(16, 64))


def test_shift_never_crosses_clips_and_keeps_format() -> None:
    n, t, c = 2, 3, 8  # fold = 1
    x = _clips(n, t, c, hw=4).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = temporal_shift(x, t, 8)
    assert out.is_contiguous(memory_format=torch.channels_last)
    o = out.view(n, t, c, 4, 4)
    assert torch.all(o[1, t - 1, 0] == 0) and torch.all(o[1, 0, 1] == 0)  # clip edges are zero, not the other clip
    out.sum().backward()
    g = x.grad.view(n, t, c, 4, 4)
    # frame 0's first fold and the last frame's second fold are read by no one
    assert torch.all(g[:, 0, 0] == 0) and torch.all(g[:, t - 1, 1] == 0)
    assert torch.all(g[:, 1:, 0] == 1) and torch.all(g[:, :-1, 1] == 1) and torch.all(g[:, :, 2:] == 1)


def test_shift_rejects_a_batch_that_is_not_whole_clips() -> None:
    with pytest.raises(ValueError, match="segments"):
        temporal_shift(torch.zeros(7, 8, 2, 2), 4, 8)


def test_wrapper_shifts_the_input_of_the_wrapped_conv() -> None:
    conv = torch.nn.Conv2d(16, 4, 1, bias=False)
    wrapped = TemporalShift(conv, num_segments=4, shift_div=8)
    x = torch.randn(8, 16, 3, 3)
    torch.testing.assert_close(wrapped(x), conv(temporal_shift(x, 4, 8)))


def test_resnet_shift_sits_on_conv1_of_every_bottleneck_only() -> None:
    backbone = ResNet2d(depths=(1, 2, 1, 1), base_width=8)
    assert insert_residual_shift(backbone, num_segments=8, shift_div=8) == 5
    for block in backbone.modules():
        if isinstance(block, Bottleneck):
            assert isinstance(block.conv1, TemporalShift)
            assert not isinstance(block.conv2, TemporalShift) and not isinstance(block.conv3, TemporalShift)
            assert block.downsample is None or not any(isinstance(m, TemporalShift) for m in block.downsample)
    assert not isinstance(backbone.conv1, TemporalShift)


@pytest.mark.parametrize("width_mult", [1.0, 0.25])
def test_mobilenetv2_shift_only_on_residual_blocks(width_mult: float) -> None:
    with torch.device("meta"):
        backbone = MobileNetV2Features(width_mult=width_mult)
    # Residual blocks with an expansion conv: 1 (24 ch) + 2 (32) + 3 (64) + 2 (96) + 2 (160).
    assert insert_residual_shift(backbone, num_segments=8, shift_div=8) == 10
    for block in backbone.modules():
        if isinstance(block, InvertedResidual):
            shifted = isinstance(block.conv[0][0], TemporalShift)
            assert shifted == (block.use_res_connect and len(block.conv) == 4)

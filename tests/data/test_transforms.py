"""Crop geometry and per-clip consistency of the spatial transforms."""

import numpy as np
import torch

from k400ray.data.transforms import (
    EVAL_CROP_VIEWS, TrainCrop, center_crop, eval_crop, fixed_crop_offsets, multi_scale_crop_box, rand_augment,
    ten_crop, three_crop, train_crop,
)


def _clip(t=4, h=64, w=85):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


def test_fixed_offsets_5_and_13():
    five = fixed_crop_offsets(340, 256, 224, 224, 5)
    assert five == [(0, 0), (116, 0), (0, 32), (116, 32), (58, 16)]
    thirteen = fixed_crop_offsets(340, 256, 224, 224, 13)
    assert len(thirteen) == 13 and thirteen[:5] == five and (29, 8) in thirteen


def test_multi_scale_box_respects_scales_and_gap():
    rng = np.random.default_rng(0)
    sizes = {int(256 * s) for s in (1, 0.875, 0.75, 0.66)}
    for _ in range(200):
        x, y, w, h = multi_scale_crop_box(340, 256, scales=(1, 0.875, 0.75, 0.66), max_wh_scale_gap=1,
                                          random_crop=False, fixed_positions=5, rng=rng)
        assert w in sizes and h in sizes
        assert abs(sorted(sizes, reverse=True).index(w) - sorted(sizes, reverse=True).index(h)) <= 1
        assert 0 <= x <= 340 - w and 0 <= y <= 256 - h


def test_i3d_box_is_square_with_gap_zero():
    rng = np.random.default_rng(0)
    for _ in range(50):
        _, _, w, h = multi_scale_crop_box(340, 256, scales=(1, 0.8), max_wh_scale_gap=0, random_crop=False,
                                          fixed_positions=5, rng=rng)
        assert w == h


def test_train_crop_same_box_and_flip_for_every_frame():
    base = _clip(t=1)
    clip = base.repeat(6, 1, 1, 1)  # identical frames must stay identical after the crop
    out = train_crop(clip, TrainCrop(crop_size=56, fixed_positions=13), rng=np.random.default_rng(3))
    assert out.shape == (6, 3, 56, 56) and out.dtype == torch.uint8
    assert all(torch.equal(out[0], out[i]) for i in range(6))


def test_train_crop_resizes_bilinearly_without_antialiasing():
    """As OpenCV's INTER_LINEAR, which MMAction2 (mmcv.imresize) and GluonCV (cv2.resize) resize
    with: the plain bilinear sample of the crop, no low-pass first. A 1-px checkerboard keeps
    full-contrast pixels where an antialiased resize turns it grey."""
    frame = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 255).to(torch.uint8)
    clip = frame.expand(2, 3, 64, 64).contiguous()
    whole = TrainCrop(crop_size=56, scales=(1.0,), flip_ratio=0.0)  # the crop is the whole 64x64 frame
    out = train_crop(clip, whole, rng=np.random.default_rng(0))
    bilinear = torch.nn.functional.interpolate(clip.float(), size=(56, 56), mode="bilinear", align_corners=False)
    assert (out.float() - bilinear).abs().max() <= 1.0  # rounding of the uint8 path
    assert out.min() < 40 and out.max() > 215


def test_center_and_three_crop_shapes_and_positions():
    clip = _clip()
    c = center_crop(clip, 56)
    assert c.shape == (1, 4, 3, 56, 56)
    assert torch.equal(c[0], clip[..., 4:60, 14:70])
    t = three_crop(clip, 64)
    assert t.shape == (3, 4, 3, 64, 64)
    assert torch.equal(t[0], clip[..., :, 0:64]) and torch.equal(t[2], clip[..., :, 20:84])
    assert torch.equal(t[1], clip[..., :, 10:74])


def test_three_crop_portrait_goes_along_height():
    clip = _clip(h=90, w=64)
    t = three_crop(clip, 64)
    assert torch.equal(t[2], clip[..., 26:90, :])


def test_three_crop_smaller_than_the_short_side_is_centred_across_it():
    """GluonCV's I3D test: 3 crops of 224 on a 340x256 frame, here 56 on 85x64."""
    clip = _clip(h=64, w=85)
    t = three_crop(clip, 56)
    assert t.shape == (3, 4, 3, 56, 56)
    assert torch.equal(t[0], clip[..., 4:60, 0:56]) and torch.equal(t[1], clip[..., 4:60, 14:70])
    assert torch.equal(t[2], clip[..., 4:60, 28:84])


def test_ten_crop_is_centre_and_corners_then_their_flips():
    clip = _clip(h=64, w=85)
    t = ten_crop(clip, 56)
    assert t.shape == (10, 4, 3, 56, 56) and t.dtype == torch.uint8
    boxes = [(14, 4), (0, 0), (0, 8), (29, 0), (29, 8)]  # (x, y): centre, TL, BL, TR, BR (GluonCV's order)
    for i, (x, y) in enumerate(boxes):
        assert torch.equal(t[i], clip[..., y : y + 56, x : x + 56])
        assert torch.equal(t[5 + i], clip[..., y : y + 56, x : x + 56].flip(-1))


def test_eval_crop_views_match_what_each_crop_returns():
    clip = _clip(h=64, w=85)
    for crop, views in EVAL_CROP_VIEWS.items():
        assert eval_crop(clip, crop, 56).shape == (views, 4, 3, 56, 56)
    assert torch.equal(eval_crop(clip, "center", 56), center_crop(clip, 56))


def test_randaugment_is_identical_across_frames():
    frame = _clip(t=1)
    clip = frame.repeat(8, 1, 1, 1)
    for seed in range(10):
        out = rand_augment(clip, num_ops=2, magnitude=9, generator=torch.Generator().manual_seed(seed))
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[i]) for i in range(8))
    changed = [not torch.equal(rand_augment(clip, num_ops=2, magnitude=9,
                                            generator=torch.Generator().manual_seed(s)), clip) for s in range(10)]
    assert any(changed)

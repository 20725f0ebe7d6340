"""Spatial transforms for uint8 clips, one random draw per clip applied to every frame.

Shapes: a clip is a uint8 tensor ``(T, C, H, W)`` (torchvision's video layout, so
``torchvision.transforms.v2`` ops apply per clip). Crop geometry follows the reference
pipelines (MMAction2 ``MultiScaleCrop``, ``CenterCrop``, ``ThreeCrop``; GluonCV's ``VideoTenCrop``);
resizing is torchvision's bilinear without antialiasing, as both references resize (OpenCV's
``INTER_LINEAR``: ``mmcv.imresize`` in MMAction2's ``Resize``, ``cv2.resize`` in GluonCV's
``VideoMultiScaleCrop``); RandAugment is MMAction2 0.x's imgaug op list
(``k400ray.data.randaugment``). Normalisation is left to the device (see ``engine``).

Evaluation crops return ``(crops, T, C, size, size)``; ``EVAL_CROP_VIEWS`` says how many crops
each one makes, so view counts are never restated elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from k400ray.data.randaugment import mmaction_randaugment


@dataclass(frozen=True)
class TrainCrop:
    """MultiScaleCrop -> resize to ``crop_size`` square -> horizontal flip, one draw per clip."""

    crop_size: int = 224
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    fixed_positions: Literal[5, 13] = 5  # TSN: 5 classic positions; TSM: 13 "more fix crop" ones
    random_crop: bool = False
    max_wh_scale_gap: int = 1
    flip_ratio: float = 0.5


def _check_clip(clip: torch.Tensor) -> None:
    if clip.ndim != 4 or clip.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 (T, C, H, W) clip, got {tuple(clip.shape)} {clip.dtype}")


def fixed_crop_offsets(img_w: int, img_h: int, crop_w: int, crop_h: int, positions: int) -> list[tuple[int, int]]:
    """The 5 classic (corners + centre) or 13 "more fix crop" (TSM) top-left offsets."""
    w_step, h_step = (img_w - crop_w) // 4, (img_h - crop_h) // 4
    offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step), (2 * w_step, 2 * h_step)]
    if positions == 13:
        offsets += [
            (0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 4 * h_step), (2 * w_step, 0),
            (1 * w_step, 1 * h_step), (3 * w_step, 1 * h_step), (1 * w_step, 3 * h_step), (3 * w_step, 3 * h_step),
        ]
    elif positions != 5:
        raise ValueError(f"fixed crop positions must be 5 or 13, got {positions}")
    return offsets


def multi_scale_crop_box(
    img_w: int,
    img_h: int,
    *,
    scales: tuple[float, ...],
    max_wh_scale_gap: int,
    random_crop: bool,
    fixed_positions: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a MultiScaleCrop box: width and height each a scale of the short side, at
    most ``max_wh_scale_gap`` scale steps apart, placed at a fixed position (or anywhere)."""
    base = min(img_w, img_h)
    sizes = [int(base * s) for s in scales]
    pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_wh_scale_gap]
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    if random_crop:
        x = int(rng.integers(0, img_w - crop_w + 1))
        y = int(rng.integers(0, img_h - crop_h + 1))
    else:
        offsets = fixed_crop_offsets(img_w, img_h, crop_w, crop_h, fixed_positions)
        x, y = offsets[int(rng.integers(len(offsets)))]
    return x, y, crop_w, crop_h


def train_crop(clip: torch.Tensor, crop: TrainCrop, *, rng: np.random.Generator) -> torch.Tensor:
    """MultiScaleCrop -> resize to ``crop_size`` square -> horizontal flip, same draw for all frames.

    The resize is bilinear without antialiasing, as OpenCV's ``INTER_LINEAR`` that both references
    use: a 256 crop shrunk to 224 keeps its high frequencies (antialiasing would blur it first).
    On uint8 frames torchvision's and OpenCV's results differ by at most one level (rounding)."""
    _check_clip(clip)
    x, y, w, h = multi_scale_crop_box(
        clip.shape[-1], clip.shape[-2], scales=crop.scales, max_wh_scale_gap=crop.max_wh_scale_gap,
        random_crop=crop.random_crop, fixed_positions=crop.fixed_positions, rng=rng,
    )
    out = F.resize(clip[..., y : y + h, x : x + w], [crop.crop_size, crop.crop_size], antialias=False)
    if rng.random() < crop.flip_ratio:
        out = out.flip(-1)
    return out.contiguous()


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """One ``size`` square from the middle of every frame; ``(1, T, C, size, size)``."""
    _check_clip(clip)
    return F.center_crop(clip, [size, size]).unsqueeze(0).contiguous()


def _at_least(clip: torch.Tensor, size: int) -> torch.Tensor:
    """A frame smaller than ``size`` crop-padded (by torchvision) so that crops keep fixed shapes."""
    img_h, img_w = clip.shape[-2:]
    if img_h < size or img_w < size:
        clip = F.center_crop(clip, [max(img_h, size), max(img_w, size)])
    return clip


def three_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Three ``size`` squares spread along the long side (start, middle, end), centred across the
    short side; ``(3, T, C, s, s)``.

    On a short-side-256 frame with ``size=256`` they tile the whole frame, the reference test
    protocol. GluonCV's I3D test takes 3 crops of 224 from a 340x256 frame; its own
    ``VideoThreeCrop`` only accepts crops as tall as the frame, so the vertical position is not
    given there: they are centred, as a centre crop would be.
    """
    _check_clip(clip)
    clip = _at_least(clip, size)
    img_h, img_w = clip.shape[-2:]
    if img_w >= img_h:
        step, across = (img_w - size) // 2, (img_h - size) // 2
        boxes = [(0, across), (step, across), (2 * step, across)]
    else:
        step, across = (img_h - size) // 2, (img_w - size) // 2
        boxes = [(across, 0), (across, step), (across, 2 * step)]
    return torch.stack([clip[..., y : y + size, x : x + size] for x, y in boxes]).contiguous()


def ten_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """GluonCV's ``VideoTenCrop``: the centre and the four corner ``size`` squares, then the same
    five flipped horizontally; ``(10, T, C, s, s)``, in GluonCV's order (centre, top-left,
    bottom-left, top-right, bottom-right; then their flips)."""
    _check_clip(clip)
    clip = _at_least(clip, size)
    img_h, img_w = clip.shape[-2:]
    boxes = [((img_w - size) // 2, (img_h - size) // 2), (0, 0), (0, img_h - size), (img_w - size, 0),
             (img_w - size, img_h - size)]
    five = torch.stack([clip[..., y : y + size, x : x + size] for x, y in boxes])
    return torch.cat([five, five.flip(-1)]).contiguous()


EVAL_CROPS = {"center": center_crop, "three": three_crop, "ten": ten_crop}
EVAL_CROP_VIEWS = {"center": 1, "three": 3, "ten": 10}  # crops per frame of each evaluation crop


def eval_crop(clip: torch.Tensor, crop: Literal["center", "three", "ten"], size: int) -> torch.Tensor:
    """The evaluation crop named ``crop``: ``(EVAL_CROP_VIEWS[crop], T, C, size, size)``."""
    return EVAL_CROPS[crop](clip, size)


def rand_augment(
    clip: torch.Tensor,
    *,
    num_ops: int,
    magnitude: int,
    generator: np.random.Generator | torch.Generator | None = None,
) -> torch.Tensor:
    """MMAction2 0.x randaugment: ``num_ops`` of its 15 ops at level ``magnitude``/10, one draw
    for the whole clip so every frame gets the same ops (the reference's temporal consistency).

    All randomness comes from ``generator`` (the caller's per-clip generator); see
    ``k400ray.data.randaugment`` for the op table and where it departs from the reference.
    """
    _check_clip(clip)
    return mmaction_randaugment(clip, num_ops=num_ops, magnitude=magnitude, generator=generator)

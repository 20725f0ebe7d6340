"""One video -> the uint8 views a model consumes, for one mode (train, efficient, accurate).

``ClipSpec`` is everything the data side needs to know about a preset's mode; presets build
it (``ModelPreset.clip_spec``), so the pipeline never restates sampling or crop numbers.
Output layout: ``(V, C, T, S, S)`` uint8 with V = temporal views x spatial crops, ordered
temporal-major; the model sees each view as one ``(C, T, H, W)`` clip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from k400ray.data.decode import CPU, decode_size, read_frames
from k400ray.data.sampling import ClipSampling
from k400ray.data.transforms import EVAL_CROP_VIEWS, TrainCrop, eval_crop, rand_augment, train_crop


@dataclass(frozen=True)
class ClipSpec:
    sampling: ClipSampling
    test_mode: bool
    short_side: int
    crop: Literal["train", "center", "three", "ten"]
    crop_size: int
    train_crop: TrainCrop | None = None
    # MMAction2 0.x randaugment (ops drawn per clip, level out of 10), train only
    randaugment: tuple[int, int] | None = None
    # (W, H): every frame decoded at exactly this size, aspect not kept (GluonCV); None: short_side
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.crop == "train" and self.train_crop is None:
            raise ValueError("crop='train' needs a train_crop")

    @property
    def num_views(self) -> int:
        return self.sampling.temporal_views(test_mode=self.test_mode) * EVAL_CROP_VIEWS.get(self.crop, 1)

    @property
    def output_shape(self) -> tuple[int, int, int, int, int]:
        """(V, C, T, S, S) of every sample, whatever the video."""
        return (self.num_views, 3, self.sampling.view_frames, self.crop_size, self.crop_size)


def load_clip(
    path: str | os.PathLike,
    *,
    num_frames: int,
    width: int,
    height: int,
    spec: ClipSpec,
    rng: np.random.Generator,
    decoder: str = "auto",
    backend: str = CPU,
) -> np.ndarray:
    """Sample, decode (resized on decode, ``decode_size``) and crop one video: uint8 ``spec.output_shape``.
    ``backend`` is where the frames are decoded (``decode.read_frames``); the draws from ``rng``
    and the crops are the same for every backend.

    Raises :class:`k400ray.data.decode.DecodeError` when the file does not decode.
    """
    indices = spec.sampling.indices(num_frames, test_mode=spec.test_mode, rng=rng)  # (views, T)
    size = decode_size(width, height, short_side=spec.short_side, frame_size=spec.frame_size)
    frames = read_frames(path, indices, size=size, decoder=decoder, backend=backend)  # (views, T, H, W, 3)
    clips = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)  # (views, T, C, H, W)
    out = []
    for clip in clips:
        if spec.crop == "train":
            clip = train_crop(clip, spec.train_crop, rng=rng)
            if spec.randaugment is not None:
                # a child generator per clip: one draw from rng, so later views' draws do not
                # depend on how many numbers the augmentation consumed
                gen = np.random.default_rng(int(rng.integers(2**31 - 1)))
                clip = rand_augment(clip, num_ops=spec.randaugment[0], magnitude=spec.randaugment[1], generator=gen)
            out.append(clip.unsqueeze(0))
        else:
            out.append(eval_crop(clip, spec.crop, spec.crop_size))
    views = torch.cat(out)  # (V, T, C, S, S)
    return views.permute(0, 2, 1, 3, 4).contiguous().numpy()

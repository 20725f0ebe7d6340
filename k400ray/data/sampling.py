"""Frame sampling in the ``clip_len x frame_interval x num_clips`` convention.

Pure NumPy so it can be checked line by line against the reference semantics written out in
``docs/reference.md`` (MMAction2 0.x ``SampleFrames`` / ``DenseSampleFrames`` in
open-mmlab/mmaction2 branch 0.x, ``mmaction/datasets/pipelines/loading.py``: the protocol the
result sheet was produced with). Indices are 0-based and out-of-bound indices loop
(index mod num_frames), so any video with at least one frame yields a full clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if min(clip_len, frame_interval, num_clips) < 1:
        raise ValueError(
            f"clip_len, frame_interval and num_clips must be >= 1, got {clip_len}, {frame_interval}, {num_clips}"
        )


def _expand(offsets: np.ndarray, num_frames: int, clip_len: int, frame_interval: int) -> np.ndarray:
    """Clip start offsets (clips,) -> frame indices (clips, clip_len), looping past the end."""
    frames = offsets.astype(np.int64)[:, None] + np.arange(clip_len, dtype=np.int64)[None, :] * frame_interval
    return frames % num_frames


def sample_clips(
    num_frames: int,
    clip_len: int,
    frame_interval: int,
    num_clips: int,
    *,
    test_mode: bool,
    twice_sample: bool = False,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Frame indices of shape ``(clips, clip_len)``; ``clips`` is num_clips, or 2*num_clips with twice_sample.

    Train (segment style): the usable range is cut into ``num_clips`` equal segments of
    ``avg_interval = (N - L*I + 1) // K`` frames and each clip starts at a random offset inside
    its segment; with ``avg_interval == 0`` starts are spread evenly, and with a video shorter
    than one clip they are all 0.

    Test: clip k starts at the centre of segment k, ``int(k*avg + avg/2)`` with the float
    ``avg = (N - L*I + 1) / K``; ``twice_sample`` (TSM accurate mode) appends the segment starts
    ``int(k*avg)``. Videos with ``N <= L*I - 1`` start every clip at 0.
    """
    _check(num_frames, clip_len, frame_interval, num_clips)
    ori_clip_len = clip_len * frame_interval
    if test_mode:
        avg = (num_frames - ori_clip_len + 1) / float(num_clips)
        if num_frames > ori_clip_len - 1:
            base = np.arange(num_clips) * avg
            offsets = (base + avg / 2.0).astype(np.int64)
            if twice_sample:
                offsets = np.concatenate([offsets, base.astype(np.int64)])
        else:
            offsets = np.zeros(num_clips * (2 if twice_sample else 1), dtype=np.int64)
    else:
        if twice_sample:
            raise ValueError("twice_sample is a test-mode protocol")
        generator = _as_rng(rng)
        avg_interval = (num_frames - ori_clip_len + 1) // num_clips
        if avg_interval > 0:
            offsets = np.arange(num_clips) * avg_interval + generator.integers(0, avg_interval, size=num_clips)
        elif avg_interval == 0:
            ratio = (num_frames - ori_clip_len + 1.0) / num_clips
            offsets = np.around(np.arange(num_clips) * ratio)
        else:
            offsets = np.zeros(num_clips, dtype=np.int64)
    return _expand(np.asarray(offsets), num_frames, clip_len, frame_interval)


def dense_sample_clips(
    num_frames: int,
    clip_len: int = 1,
    frame_interval: int = 1,
    num_clips: int = 8,
    *,
    test_mode: bool,
    sample_range: int = 64,
    num_sample_positions: int = 10,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Dense sampling (TSM-MobileNetV2 "dense"): ``num_clips`` starts spaced ``sample_range // num_clips``
    apart inside a ``sample_range``-frame window.

    Train: one window at a random start in ``[0, N - sample_range)``. Test: ``num_sample_positions``
    windows whose starts are evenly spread over the video, giving ``(positions * num_clips, clip_len)``.
    """
    _check(num_frames, clip_len, frame_interval, num_clips)
    sample_position = max(1, 1 + num_frames - sample_range)
    interval = sample_range // num_clips
    base = np.arange(num_clips) * interval
    if test_mode:
        starts = np.linspace(0, sample_position - 1, num=num_sample_positions, dtype=int)
    else:
        starts = np.array([0 if sample_position == 1 else _as_rng(rng).integers(0, sample_position - 1)])
    offsets = np.concatenate([(base + s) % num_frames for s in starts])
    return _expand(offsets, num_frames, clip_len, frame_interval)


@dataclass(frozen=True)
class ClipSampling:
    """How one mode (train, efficient or accurate) picks frames, and how they group into model views.

    ``frames_per_view`` is how many of the sampled frames the model sees at once: the segment
    count for TSM (which shifts between exactly that many frames), ``clip_len`` for 3D models,
    and all frames for TSN (whose average consensus accepts any number of segments).
    """

    clip_len: int
    frame_interval: int
    num_clips: int
    twice_sample: bool = False
    dense: bool = False
    sample_range: int = 64
    num_sample_positions: int = 10
    frames_per_view: int | None = None  # None: every sampled frame in one view

    def indices(self, num_frames: int, *, test_mode: bool, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Sampled frame indices, shape ``(temporal_views, frames_per_view)``."""
        if self.dense:
            clips = dense_sample_clips(
                num_frames, self.clip_len, self.frame_interval, self.num_clips, test_mode=test_mode,
                sample_range=self.sample_range, num_sample_positions=self.num_sample_positions, rng=rng,
            )
        else:
            clips = sample_clips(
                num_frames, self.clip_len, self.frame_interval, self.num_clips,
                test_mode=test_mode, twice_sample=self.twice_sample, rng=rng,
            )
        return clips.reshape(-1, self.view_frames)

    @property
    def view_frames(self) -> int:
        return self.frames_per_view or self.num_clips * self.clip_len

    def temporal_views(self, *, test_mode: bool) -> int:
        """Number of temporal views this sampling yields per video (fixed, whatever the video length)."""
        total = self.num_clips * self.clip_len
        if self.dense and test_mode:
            total *= self.num_sample_positions
        if self.twice_sample and test_mode:
            total *= 2
        if total % self.view_frames:
            raise ValueError(f"{total} sampled frames do not split into views of {self.view_frames}")
        return total // self.view_frames

"""The realistic benchmark source: textured at all scales, moving, encoded as a raw Kinetics file
is (x264 medium, x264's defaults: one keyframe per 250 frames), the same frames for the same
seed, made once per work folder."""

import av
import numpy as np
import pytest

from k400ray.bench.textured_video import LUMA_EXPONENT, pink_noise, render, textured_videos, write_textured_video


def _luma(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)])


def test_pink_noise_has_the_amplitude_spectrum_of_natural_images():
    field = pink_noise((256, 256), np.random.default_rng(0), LUMA_EXPONENT)
    assert abs(float(field.mean())) < 1e-3 and float(field.std()) == pytest.approx(1.0, rel=1e-3)
    amplitude = np.abs(np.fft.fft2(field))
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256)))
    bands = [(0.02, 0.04), (0.2, 0.4)]  # a decade apart
    low, high = (amplitude[(radius >= a) & (radius < b)].mean() for a, b in bands)
    assert np.log10(low / high) == pytest.approx(LUMA_EXPONENT, abs=0.15)


def test_a_textured_video_is_detailed_moving_and_encoded_like_a_raw_kinetics_file(tmp_path):
    write_textured_video(tmp_path / "a.mp4", (96, 64), frames=20, fps=10, seed=0)
    luma = _luma(tmp_path / "a.mp4")
    assert luma.shape == (20, 64, 96)
    detail = np.abs(np.diff(luma, axis=2)).mean()  # neighbouring pixels differ: not flat areas
    motion = np.abs(luma[-1] - luma[0]).mean()
    assert detail > 2.0 and motion > 5.0
    settings = (tmp_path / "a.mp4").read_bytes()  # x264 writes its settings into the stream
    assert all(s in settings for s in (b"keyint=250 ", b"cabac=1", b"bframes=3", b"crf=23.0"))
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert sum(p.is_keyframe for p in container.demux(video=0) if p.size) == 1


def test_the_same_seed_renders_the_same_frames():
    a, b, c = (np.concatenate(list(render((48, 32), 6, 10, seed))) for seed in (0, 0, 1))
    assert a.shape == (6, 32, 48, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_textured_videos_are_made_once_per_work_folder(tmp_path):
    paths = textured_videos(tmp_path, (48, 32), videos=2, seconds=0.5, fps=8)
    assert [p.name for p in paths] == ["video00.mp4", "video01.mp4"]
    assert paths[0].read_bytes() != paths[1].read_bytes()
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert textured_videos(tmp_path, (48, 32), videos=2, seconds=0.5, fps=8) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps

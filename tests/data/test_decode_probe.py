"""Decoding the right frames (decord and the PyAV fallback) and probing broken files."""

import numpy as np
import pytest

from k400ray.data.decode import DecodeError, decode_size, read_frames, short_side_size
from k400ray.data.probe import ProbeError, probe_video
from tests.conftest import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames=24, size=(64, 48))


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_read_frames_returns_the_requested_frames(video, decoder):
    idx = np.array([[5, 0], [23, 5]])
    frames = read_frames(video, idx, decoder=decoder)
    assert frames.shape == (2, 2, 48, 64, 3) and frames.dtype == np.uint8
    green = frames[..., 20:28, 40:48, 1].mean(axis=(-1, -2))  # away from the moving bar
    assert np.allclose(green, 8 * idx, atol=4)


def test_resize_on_decode_short_side(video):
    size = short_side_size(64, 48, 32)
    assert size == (43, 32)
    frames = read_frames(video, np.array([1, 2]), size=size)
    assert frames.shape == (2, 32, 43, 3)


def test_fixed_frame_size_ignores_the_aspect_ratio(video):
    """GluonCV's 340x256 resize, here 85x64 on a 64x48 video (4:3 becomes 85:64)."""
    assert decode_size(64, 48, short_side=32, frame_size=(85, 64)) == (85, 64)
    assert decode_size(48, 640, short_side=32, frame_size=(85, 64)) == (85, 64)
    assert decode_size(64, 48, short_side=32) == short_side_size(64, 48, 32)
    frames = read_frames(video, np.array([1, 2]), size=decode_size(64, 48, short_side=32, frame_size=(85, 64)))
    assert frames.shape == (2, 64, 85, 3)


def test_probe_good_video(video):
    p = probe_video(video)
    assert (p.num_frames, p.width, p.height, p.decoder) == (24, 64, 48, "decord")
    assert p.fps == pytest.approx(12.0) and p.duration_s == pytest.approx(2.0)


def test_probe_rejects_broken_files_with_reasons(tmp_path, video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    reasons = {}
    for path in (empty, junk, truncated, tmp_path / "absent.mp4"):
        with pytest.raises(ProbeError) as err:
            probe_video(path)
        reasons[path.name] = str(err.value)
    assert reasons["empty.mp4"].startswith("empty file")
    assert reasons["absent.mp4"] == "missing file"
    assert reasons["junk.mp4"] and reasons["trunc.mp4"]
    assert str(tmp_path) not in "".join(reasons.values())  # reasons are short, the manifest has the path


def test_decode_error_on_broken_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DecodeError):
        read_frames(bad, np.array([0]))

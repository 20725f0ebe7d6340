"""``load_clip`` with GluonCV's pipeline: frames resized to a fixed size, ten-crop and three-crop views."""

import numpy as np
import pytest

from k400ray.data.clip import load_clip
from k400ray.presets import config_variant, get_preset
from tests.conftest import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """Square: a short-side resize would keep it square, GluonCV's fixed size makes it 85x64."""
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames=40, size=(48, 48))


def _load(video, spec, seed=0):
    return load_clip(video, num_frames=40, width=48, height=48, spec=spec, rng=np.random.default_rng(seed))


@pytest.mark.parametrize(("preset", "mode", "shape"), [
    ("tsn_r50_1x1x7", "train", (1, 3, 7, 56, 56)),
    ("tsn_r50_1x1x7", "efficient", (1, 3, 7, 56, 56)),
    ("tsn_r50_1x1x7", "accurate", (10, 3, 25, 56, 56)),  # 25 frames x TenCrop
    ("i3d_r50_32x2x1", "efficient", (1, 3, 8, 56, 56)),
    ("i3d_r50_32x2x1", "accurate", (30, 3, 8, 56, 56)),  # 10 clips x ThreeCrop
])
def test_gluoncv_views_have_the_spec_shape(video, preset, mode, shape):
    spec = config_variant(get_preset(preset, scale="toy"), "gluoncv").clip_spec(mode)
    assert spec.frame_size == (85, 64) and spec.output_shape == shape
    out = _load(video, spec)
    assert out.shape == shape and out.dtype == np.uint8


def test_efficient_view_is_the_centre_of_the_frame_resized_to_85x64(video):
    from k400ray.data.decode import read_frames

    spec = config_variant(get_preset("tsn_r50_1x1x7", scale="toy"), "gluoncv").clip_spec("efficient")
    out = _load(video, spec)
    idx = spec.sampling.indices(40, test_mode=True)
    frames = read_frames(video, idx, size=(85, 64))  # (1, 7, 64, 85, 3)
    expected = frames[0, :, 4:60, 14:70].transpose(3, 0, 1, 2)  # (C, T, 56, 56)
    assert np.array_equal(out[0], expected)

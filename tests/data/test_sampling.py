"""sample_clips / dense_sample_clips against hand-computed reference cases (k400-facts.md)."""

import numpy as np
import pytest

from k400ray.data.sampling import ClipSampling, dense_sample_clips, sample_clips


def test_test_mode_segment_centres_2d():
    # N=300, K=8: avg = 37.5, starts int(k*37.5 + 18.75)
    got = sample_clips(300, 1, 1, 8, test_mode=True)
    assert got.shape == (8, 1)
    assert got.ravel().tolist() == [18, 56, 93, 131, 168, 206, 243, 281]


def test_twice_sample_appends_segment_starts():
    got = sample_clips(300, 1, 1, 8, test_mode=True, twice_sample=True)
    assert got.shape == (16, 1)
    assert got.ravel().tolist() == [18, 56, 93, 131, 168, 206, 243, 281, 0, 37, 75, 112, 150, 187, 225, 262]


def test_test_mode_3d_clips():
    # N=100, L=32, I=2, K=10: avg = (100-64+1)/10 = 3.7, starts int(3.7k + 1.85)
    got = sample_clips(100, 32, 2, 10, test_mode=True)
    assert got.shape == (10, 32)
    assert got[:, 0].tolist() == [1, 5, 9, 12, 16, 20, 24, 27, 31, 35]
    assert got[0].tolist() == list(range(1, 65, 2))


def test_test_mode_video_shorter_than_clip_loops():
    got = sample_clips(20, 32, 2, 1, test_mode=True)
    assert got.shape == (1, 32)
    assert got[0].tolist() == [(2 * j) % 20 for j in range(32)]


def test_train_offsets_stay_inside_their_segment():
    rng = np.random.default_rng(0)
    starts = np.stack([sample_clips(300, 1, 1, 8, test_mode=False, rng=rng)[:, 0] for _ in range(500)])
    seg = np.arange(8) * 37  # avg_interval = 300 // 8
    assert (starts >= seg).all() and (starts < seg + 37).all()
    # every offset inside a segment is reachable
    assert set((starts[:, 0]).tolist()) == set(range(37))


def test_train_is_reproducible_with_a_seed():
    a = sample_clips(300, 32, 2, 1, test_mode=False, rng=7)
    b = sample_clips(300, 32, 2, 1, test_mode=False, rng=7)
    assert np.array_equal(a, b)
    assert a.shape == (1, 32) and np.all(np.diff(a[0]) == 2)


def test_train_zero_interval_spreads_evenly():
    # N=5, K=8: avg_interval 0, ratio 5/8, offsets np.around(k * 0.625)
    got = sample_clips(5, 1, 1, 8, test_mode=False, rng=0)
    assert got.ravel().tolist() == [0, 1, 1, 2, 2, 3, 4, 4]


def test_train_video_shorter_than_clip_starts_at_zero_and_loops():
    got = sample_clips(10, 32, 2, 1, test_mode=False, rng=0)
    assert got[0].tolist() == [(2 * j) % 10 for j in range(32)]


def test_one_frame_video_still_gives_a_clip():
    for test_mode in (True, False):
        got = sample_clips(1, 8, 4, 3, test_mode=test_mode, rng=0)
        assert got.shape == (3, 8) and not got.any()


def test_dense_test_positions():
    got = dense_sample_clips(300, 1, 1, 8, test_mode=True)
    assert got.shape == (80, 1)
    starts = got.reshape(10, 8)[:, 0].tolist()
    assert starts == [0, 26, 52, 78, 104, 131, 157, 183, 209, 236]  # linspace(0, 236, 10)
    assert got.reshape(10, 8)[0].tolist() == list(range(0, 64, 8))


def test_dense_train_short_video_wraps():
    got = dense_sample_clips(50, 1, 1, 8, test_mode=False, rng=0)
    assert got.ravel().tolist() == [0, 8, 16, 24, 32, 40, 48, 6]


def test_dense_train_window_inside_video():
    rng = np.random.default_rng(1)
    for _ in range(100):
        got = dense_sample_clips(300, 1, 1, 8, test_mode=False, rng=rng).ravel()
        assert got.shape == (8,) and np.all(np.diff(got) == 8) and got[0] < 236


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        sample_clips(0, 1, 1, 8, test_mode=True)
    with pytest.raises(ValueError):
        sample_clips(10, 1, 1, 8, test_mode=False, twice_sample=True)


def test_clip_sampling_groups_frames_into_views():
    tsm_accurate = ClipSampling(1, 1, 8, twice_sample=True, frames_per_view=8)
    assert tsm_accurate.indices(300, test_mode=True).shape == (2, 8)
    assert tsm_accurate.temporal_views(test_mode=True) == 2
    tsn_accurate = ClipSampling(1, 1, 25)
    assert tsn_accurate.indices(300, test_mode=True).shape == (1, 25)
    i3d = ClipSampling(32, 2, 10, frames_per_view=32)
    assert i3d.indices(300, test_mode=True).shape == (10, 32)
    dense = ClipSampling(1, 1, 8, dense=True, frames_per_view=8)
    assert dense.indices(300, test_mode=True).shape == (10, 8)
    assert dense.indices(300, test_mode=False, rng=0).shape == (1, 8)

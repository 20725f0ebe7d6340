"""The Ray Data clip pipeline: fixed-shape uint8 clips, streaming, broken files dropped and counted."""

import shutil

import numpy as np
import pytest

from k400ray.data.index import build_index
from k400ray.data.pipeline import (
    DECODE_RESOURCE,
    EVAL_BLOCK_BYTES,
    TRAIN_ROWS_PER_DECODE_TASK,
    clip_dataset,
    decode_batch,
    decode_row,
    decode_task_resources,
    eval_batch_videos,
    rows_per_decode_task,
    video_rng,
)
from k400ray.presets import get_preset
from tests.conftest import write_video


@pytest.fixture(scope="module")
def index_dir(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    for i in range(4):
        write_video(root / "train" / ["a", "b"][i % 2] / f"v{i}.mp4", frames=20 + i)
    write_video(root / "val" / "a" / "w0.mp4", frames=30)
    write_video(root / "val" / "b" / "w1.mp4", frames=30)
    out = tmp_path_factory.mktemp("idx") / "index"
    build_index(root, out, progress=False)
    return out, root


def _collect(ds):
    batches = list(ds.iter_batches(batch_size=16, batch_format="numpy"))
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_train_batches_have_fixed_shape_and_labels(index_dir):
    out, _ = index_dir
    spec = get_preset("tsm_r50_1x1x8", scale="toy").clip_spec("train", randaugment=(2, 9))
    got = _collect(clip_dataset(out, "train", spec, shuffle=True, seed=0))
    assert got["clips"].shape == (4, 1, 3, 8, 56, 56) and got["clips"].dtype == np.uint8
    assert sorted(got["video_id"].tolist()) == ["v0", "v1", "v2", "v3"]
    assert dict(zip(got["video_id"], got["label"])) == {"v0": 0, "v1": 1, "v2": 0, "v3": 1}
    assert got["valid"].all() and got["clips"].any()


def test_accurate_views_and_each_video_once(index_dir):
    out, _ = index_dir
    spec = get_preset("i3d_r50_32x2x1", scale="toy").clip_spec("accurate")
    got = _collect(clip_dataset(out, "val", spec))
    assert got["clips"].shape == (2, 30, 3, 8, 64, 64)
    assert sorted(got["video_id"].tolist()) == ["w0", "w1"]


def test_file_broken_after_indexing_is_dropped_not_raised(index_dir, tmp_path):
    out, root = index_dir
    backup = tmp_path / "v1.mp4"
    shutil.copy(root / "train/b/v1.mp4", backup)
    (root / "train/b/v1.mp4").write_bytes(b"garbage")
    try:
        spec = get_preset("tsn_r50_1x1x8", scale="toy").clip_spec("efficient")
        got = _collect(clip_dataset(out, "train", spec))
    finally:
        shutil.copy(backup, root / "train/b/v1.mp4")
    valid = dict(zip(got["video_id"], got["valid"]))
    assert valid == {"v0": True, "v1": False, "v2": True, "v3": True}
    assert not got["clips"][got["video_id"] == "v1"].any()


def test_training_shuffle_is_global_across_shards_and_new_every_epoch(ray_local, tmp_path):
    """Rows of different shard files end up in one batch, and two executions (epochs) order the
    rows differently: the one-task permutation that replaced Ray's all-to-all shuffle."""
    root = tmp_path / "tree"
    for i in range(12):
        write_video(root / "train" / ["a", "b"][i % 2] / f"v{i:02d}.mp4", frames=20)
    out = tmp_path / "index"
    build_index(root, out, shards=3, progress=False)
    spec = get_preset("tsn_r50_1x1x8", scale="toy").clip_spec("efficient")
    ds = clip_dataset(out, "train", spec, shuffle=True, batch_size=4)
    orders = [tuple(_collect(ds)["video_id"].tolist()) for _ in range(4)]
    assert all(sorted(o) == [f"v{i:02d}" for i in range(12)] for o in orders)  # each video once
    assert len(set(orders)) > 1  # 4 epochs all in the same order: 1 in (12!)^3
    import pyarrow.parquet as pq
    from k400ray.data.index import shard_paths

    shard_of = {v: s for s, f in enumerate(shard_paths(out, "train")) for v in pq.read_table(f)["video_id"].to_pylist()}
    assert len(set(shard_of.values())) == 3
    mixed = [len({shard_of[v] for v in o[:4]}) > 1 for o in orders]
    assert any(mixed)  # a per-shard shuffle would keep each 4-row batch within one shard
    # All 12 rows go to one decode task (64 rows per training task), which still hands its
    # clips on one batch per block: a block of 12 would hold the first batch back.
    blocks = [len(b["video_id"]) for b in ds.iter_batches(batch_size=None, batch_format="numpy")]
    assert blocks == [4, 4, 4]


def test_decode_task_rows_are_whole_batches():
    assert TRAIN_ROWS_PER_DECODE_TASK == 64
    assert rows_per_decode_task(32, shuffle=True) == 64  # TSN: two batches per task
    assert rows_per_decode_task(8, shuffle=True) == 64  # I3D: eight
    assert rows_per_decode_task(24, shuffle=True) == 72  # rounded up to whole batches
    assert rows_per_decode_task(100, shuffle=True) == 100
    assert rows_per_decode_task(8, shuffle=False) == 8  # evaluation: one batch per task


def test_a_worker_with_no_val_video_gets_no_batch(index_dir):
    """Two val videos over three workers: rank 2's shard is empty, and its pipeline just ends."""
    out, _ = index_dir
    spec = get_preset("i3d_r50_32x2x1", scale="toy").clip_spec("efficient")
    shards = [list(clip_dataset(out, "val", spec, shard=(rank, 3), batch_size=1).iter_batches(batch_format="numpy"))
              for rank in range(3)]
    assert [sum(len(b["video_id"]) for b in s) for s in shards] == [1, 1, 0]


def test_decode_tasks_hold_decode_cpus_where_the_cluster_has_them():
    assert decode_task_resources({"CPU": 33.0, "GPU": 8.0, DECODE_RESOURCE: 63.0}, 1.0) == {
        "num_cpus": 0, "resources": {DECODE_RESOURCE: 1.0}}  # the trial's CPUs stay free
    assert decode_task_resources({"CPU": 8.0}, 0.5) == {"num_cpus": 0.5}


def test_eval_batches_stay_under_the_block_bound():
    i3d_accurate = get_preset("i3d_r50_32x2x1", scale="full").clip_spec("accurate")
    per_video = int(np.prod(i3d_accurate.output_shape))
    assert per_video == 30 * 3 * 32 * 256 * 256  # 10 clips x 3 crops: 189 MB
    assert eval_batch_videos(i3d_accurate, 4) == 1
    assert eval_batch_videos(get_preset("tsn_r50_1x1x8", scale="full").clip_spec("efficient"), 4) == 4
    assert EVAL_BLOCK_BYTES // per_video == 1


def test_a_seed_fixes_order_frames_and_crops_for_any_number_of_decode_tasks_and_workers(index_dir):
    """Training epochs are keyed by (seed, epoch) and each video's draws by (seed, epoch, video):
    not by which task decodes it or which worker trains on it."""
    out, _ = index_dir
    spec = get_preset("tsm_r50_1x1x8", scale="toy").clip_spec("train", randaugment=(2, 9))

    def epoch(seed, ep, tasks=1, shard=(0, 1)):
        # one row per decode task, so two tasks really run side by side and may finish out of order
        return _collect(clip_dataset(out, "train", spec, seed=seed, epoch=ep, shard=shard, decode_tasks=tasks,
                                     batch_size=1, decode_rows=1))

    one, two = epoch(3, 0, tasks=1), epoch(3, 0, tasks=2)
    assert one["video_id"].tolist() == two["video_id"].tolist() and np.array_equal(one["clips"], two["clips"])
    assert not np.array_equal(epoch(4, 0)["clips"], one["clips"])  # another seed: other order and draws
    assert not np.array_equal(epoch(3, 1)["clips"], one["clips"])  # another epoch: likewise
    # Two workers: rank r trains on rows r, r+2, ... of the same global order, with the same clips.
    for rank in (0, 1):
        mine = epoch(3, 0, shard=(rank, 2))
        assert mine["video_id"].tolist() == one["video_id"][rank::2].tolist()
        assert np.array_equal(mine["clips"], one["clips"][rank::2])


def test_decode_batch_decodes_each_row_with_decode_row(tmp_path):
    """One decode of a row: a block through ``decode_batch`` gives, row by row, what ``decode_row``
    (``bench data``'s decode) gives for the same row and the same draws; a broken file is None there
    and an invalid all-zero row here. No Ray: the batch is built by hand."""
    write_video(tmp_path / "a" / "v0.mp4", frames=24, size=(64, 48))
    write_video(tmp_path / "b" / "v1.mp4", frames=30, size=(48, 64))
    (tmp_path / "b" / "bad.mp4").write_bytes(b"garbage")
    rows = [
        {"video_id": "v0", "path": "a/v0.mp4", "label": 0, "num_frames": 24, "width": 64, "height": 48, "decoder": "auto"},
        {"video_id": "bad", "path": "b/bad.mp4", "label": 1, "num_frames": 24, "width": 64, "height": 48, "decoder": "auto"},
        {"video_id": "v1", "path": "b/v1.mp4", "label": 1, "num_frames": 30, "width": 48, "height": 64, "decoder": "pyav"},
    ]
    batch = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    spec = get_preset("tsm_r50_1x1x8", scale="toy").clip_spec("train", randaugment=(2, 9))
    got = decode_batch(batch, data_root=str(tmp_path), spec=spec, seed=5, epoch=2)
    assert got["valid"].tolist() == [True, False, True] and not got["clips"][1].any()
    for i, row in enumerate(rows):
        clip = decode_row(row, str(tmp_path), spec, video_rng(5, 2, row["video_id"]))
        if row["video_id"] == "bad":
            assert clip is None
        else:
            assert clip.dtype == np.uint8 and clip.shape == spec.output_shape and clip.any()
            assert np.array_equal(clip, got["clips"][i])

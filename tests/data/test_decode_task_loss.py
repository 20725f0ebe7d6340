"""A decode task lost mid-epoch (its process killed, as when a spot decode node is reclaimed):
Ray retries the task on a live worker and the epoch still yields every clip, the same clips a
run without the loss yields. Nothing of the trial restarts, which is why decode nodes may run
on spot (docs/cluster.md, Spot)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from k400ray.data.index import build_index
from k400ray.data.pipeline import clip_dataset
from k400ray.presets import get_preset
from tests.conftest import write_video


@pytest.fixture(scope="module")
def tree(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("loss-tree")
    for i in range(7):
        write_video(root / "train" / ["a", "b"][i % 2] / f"v{i}.mp4", frames=20)
    # Frames up to the last of 400 decode from one keyframe: about a second of a decode task.
    write_video(root / "train" / "a" / "slow.mp4", frames=400, size=(320, 240))
    out = tmp_path_factory.mktemp("loss-idx") / "index"
    build_index(root, out, progress=False)
    return root, out


def _epoch(root: Path, index: Path) -> dict[str, np.ndarray]:
    spec = get_preset("tsn_r50_1x1x8", scale="toy").clip_spec("train")
    ds = clip_dataset(index, "train", spec, data_root=str(root), seed=3, epoch=1, decode_tasks=2, batch_size=2,
                      decode_rows=2)
    batches = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
    return {k: np.concatenate([b[k] for b in batches]) for k in ("video_id", "clips", "valid")}


def _holders(path: Path) -> list[int]:
    """Processes with ``path`` open."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in fds):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_a_decode_task_killed_mid_epoch_is_retried_and_the_epoch_is_whole(tree):
    root, index = tree
    expected = _epoch(root, index)
    slow = root / "train" / "a" / "slow.mp4"  # the one video whose decode lasts long enough to be caught
    killed: list[str] = []
    stop = threading.Event()

    def kill_the_decoder():
        """SIGKILL the Ray worker that has the slow video open: it is inside a decode task."""
        while not stop.is_set() and not killed:
            for pid in _holders(slow):
                killed.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode())
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_decoder, daemon=True)
    killer.start()
    try:
        got = _epoch(root, index)
    finally:
        stop.set()
        killer.join(timeout=10)
    assert len(killed) == 1 and killed[0].startswith("ray::"), killed  # a Ray worker, inside the decode task
    assert got["valid"].all()  # the killed task's rows were decoded again, not dropped
    assert got["video_id"].tolist() == expected["video_id"].tolist()
    np.testing.assert_array_equal(got["clips"], expected["clips"])

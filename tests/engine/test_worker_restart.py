"""Faults inside one trial under Ray Train (the session's local Ray, gloo): its Train worker
process killed once epoch 1 is reported with its checkpoint (a preempted or OOM-killed worker),
and two videos that broke after indexing (a train video overwritten with garbage, a val video
deleted: on a copy of the session's set, ``data_root`` pointing at it). Train restarts the
worker group from the latest checkpoint (``resources.max_failures``), so epoch 1 is not trained
again; the broken videos are counted in ``skipped_videos``; every other val video is predicted
once. tests/tune/test_cluster_faults.py loses a whole node of a two-node cluster."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from k400ray.contracts import EPOCH, START_EPOCH
from k400ray.engine.config import TrialConfig
from k400ray.engine.trial import run_trial
from tests.procs import train_workers

pytestmark = pytest.mark.slow


class _EpochReported:
    """A Train callback (it runs in the Train controller's process) that drops a file once an
    epoch is reported with its checkpoint: the controller has registered it, a restart resumes from it."""

    def __new__(cls, marker: Path):
        from ray.train import UserCallback

        class Marker(UserCallback):
            def after_report(self, run_context, metrics, checkpoint) -> None:
                if checkpoint is not None and any(m.get(EPOCH) == 1 for m in metrics):
                    marker.write_text("1")

        return Marker()


def test_a_killed_train_worker_resumes_from_its_checkpoint_and_broken_videos_are_skipped(synth_set, tmp_path):
    from k400ray.data.pipeline import index_table

    source, index = synth_set
    data = tmp_path / "data"
    shutil.copytree(source, data)
    # The index still lists both; they are among the first 8 rows of their split (limit_videos).
    (data / index_table(index, "train")["path"][0].as_py()).write_bytes(os.urandom(4096))
    (data / index_table(index, "val")["path"][0].as_py()).unlink()
    cfg = TrialConfig(preset="tsn_r50_1x1x8", scale="toy", train_index=str(index), val_index=str(index),
                      data_root=str(data), num_classes=4, epochs=2, batch_per_worker=4, lr=0.01, limit_videos=8,
                      decode_tasks=1, storage_path=str(tmp_path / "runs"), name="killed", max_failures=1)
    marker, killed = tmp_path / "epoch-1-reported", []

    def kill_the_worker_after_epoch_1() -> None:
        deadline = time.monotonic() + 300
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = train_workers(os.getpid())  # the local Ray's raylet, and its workers, are this process's
        if marker.exists() and len(workers) == 1:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    killer = threading.Thread(target=kill_the_worker_after_epoch_1, daemon=True)
    killer.start()
    outcome = run_trial(cfg, callbacks=[_EpochReported(marker)])
    killer.join(timeout=10)
    assert killed, "no single Train worker to kill after epoch 1"
    assert outcome.error is None, outcome.error
    m = outcome.metrics
    assert m[EPOCH] == 2 and m[START_EPOCH] == 1  # the new worker group started after epoch 1
    assert killed[0] not in train_workers(os.getpid())
    # The garbage train video (each epoch) and the deleted val one are skipped; every other val
    # video is predicted, once, in both modes.
    assert m["skipped_videos"] >= 2
    for mode in ("efficient", "accurate"):
        preds = outcome.predictions[mode]
        assert len(preds) == 8 - 1 and len(set(preds.video_id)) == 8 - 1, mode

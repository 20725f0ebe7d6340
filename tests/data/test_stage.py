"""``k400ray stage``: a node's own copy of the prepared data and index, checked file by file
against the list ``k400ray prepare`` writes; resumable; read by decode tasks on that node."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from k400ray.data import stage as st
from k400ray.data.index import INDEX_SCHEMA
from tests.conftest import write_video


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_prepared(base: Path, videos: int = 6) -> tuple[Path, Path]:
    """(prepared root, index dir): small real videos, the file list prepare writes beside them
    (path, bytes, sha256) and an index of them, as `k400ray prepare` and `k400ray index` leave them."""
    root, index = base / "prepared", base / "index"
    paths = [write_video(root / ("train" if i < videos - 2 else "val") / f"vid{i:02d}_000000_000010.mp4",
                         frames=12 + i) for i in range(videos)]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    files = paths + [root / "annotations" / "train.csv"]
    rel = [p.relative_to(root).as_posix() for p in files]
    pq.write_table(pa.table({"path": rel, "bytes": [p.stat().st_size for p in files],
                             "sha256": [_sha256(p) for p in files]}), root / st.FILES_LIST)
    (root / "prepare-manifest.json").write_text(json.dumps({"files": {"list": st.FILES_LIST, "count": len(files)}}))
    splits = {}
    for split in ("train", "val"):
        mine = [p for p in paths if p.parent.name == split]
        rows = {name: [] for name in INDEX_SCHEMA.names}
        for p in mine:
            for name, value in (("video_id", p.stem[:5]), ("path", p.relative_to(root).as_posix()), ("label", 0),
                                ("label_name", "a"), ("split", split), ("num_frames", 12), ("header_frames", 12),
                                ("fps", 12.0), ("width", 64), ("height", 48), ("duration_s", 1.0),
                                ("bytes", p.stat().st_size), ("decoder", "decord")):
                rows[name].append(value)
        (index / split).mkdir(parents=True)
        pq.write_table(pa.table(rows, schema=INDEX_SCHEMA), index / split / "part-00000.parquet")
        splits[split] = {"videos": len(mine), "shards": [f"{split}/part-00000.parquet"]}
    (index / "manifest.json").write_text(json.dumps({"data_root": str(root), "classes": ["a"], "splits": splits}))
    return root, index


@pytest.fixture
def prepared(tmp_path):
    return make_prepared(tmp_path / "shared")


def test_stage_copies_every_file_once_and_checks_it(prepared, tmp_path):
    root, index = prepared
    local = tmp_path / "node" / "k400"
    first = st.stage(str(index), local)
    listed = pq.read_table(root / st.FILES_LIST).to_pylist()
    assert len(listed) == 7 and first.files == 7 + 3 and first.failed == []
    assert first.copied == 7 + 3 and first.kept == 0  # the data files and the index's manifest + 2 shards
    for row in listed:
        assert _sha256(local / st.DATA_DIR / row["path"]) == row["sha256"]
    assert (local / st.INDEX_DIR / "manifest.json").read_bytes() == (index / "manifest.json").read_bytes()
    marker = st.read_marker(local)
    assert marker["data_root"] == str(root) and marker["files"] == 7
    again = st.stage(str(index), local)  # the node starts again (or `ray up` re-runs its setup)
    assert (again.copied, again.kept) == (0, 10)
    assert st.staged_data_root(str(local), str(root)) == str(local / st.DATA_DIR)
    assert st.staged_index(str(local), str(index)) == str(local / st.INDEX_DIR)


def test_stage_killed_midway_resumes_without_copying_finished_files(prepared, tmp_path, monkeypatch):
    """Ctrl+C once 3 files are done, the 4th in flight. The copy thread waits for the interrupt
    before the 4th file (else, under load, it can finish all 10 before the main thread handles
    the 3rd: seen 2026-12-06), and a file it starts after the interrupt, before the pool cancels
    the rest, is not copied."""
    import threading

    root, index = prepared
    local = tmp_path / "k400"
    interrupted, calls, sync_one = threading.Event(), [], st._sync_one

    def in_step_with_the_interrupt(*job):
        calls.append(job)
        if len(calls) == 4:
            assert interrupted.wait(timeout=120)
        elif len(calls) > 4:
            raise RuntimeError("started after the interrupt")
        return sync_one(*job)

    def killed_after_three(done, total, _bytes):
        if done == 3:
            interrupted.set()
            raise KeyboardInterrupt

    monkeypatch.setattr(st, "_sync_one", in_step_with_the_interrupt)
    with pytest.raises(KeyboardInterrupt):
        st.stage(str(index), local, workers=1, progress=killed_after_three)
    monkeypatch.setattr(st, "_sync_one", sync_one)
    assert st.read_marker(local) is None  # no decode task trusts a copy in progress
    finished = {p: p.stat().st_mtime_ns for p in local.rglob("*") if p.is_file()}
    assert len(finished) == 4  # the file in flight when it stopped is finished whole
    (local / st.DATA_DIR / "train" / f".half.mp4.0000{st.PART_SUFFIX}").write_bytes(b"left by a kill")
    resumed = st.stage(str(index), local, workers=1)
    assert (resumed.kept, resumed.copied) == (len(finished), 10 - len(finished))
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # not written again
    assert not list(local.rglob(f"*{st.PART_SUFFIX}"))
    assert st.read_marker(local) is not None


def test_a_corrupted_local_file_is_caught_by_its_checksum_and_copied_again(prepared, tmp_path):
    root, index = prepared
    local = tmp_path / "k400"
    st.stage(str(index), local)
    victim = local / st.DATA_DIR / "train" / "vid00_000000_000010.mp4"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(data))
    repaired = st.stage(str(index), local)
    assert (repaired.replaced, repaired.copied, repaired.failed) == (1, 1, [])
    assert victim.read_bytes() == (root / "train" / victim.name).read_bytes()


def test_a_source_that_differs_from_the_list_is_reported_not_staged(prepared, tmp_path):
    root, index = prepared
    annotation = root / "annotations" / "train.csv"
    annotation.write_text(annotation.read_text().replace("label", "LABEL"))  # same size, other bytes
    result = st.stage(str(index), tmp_path / "k400")
    assert [f["path"] for f in result.failed] == ["data/annotations/train.csv"]
    assert "differ from prepare-files.parquet" in result.failed[0]["reason"]
    assert not (tmp_path / "k400" / st.DATA_DIR / "annotations" / "train.csv").exists()
    assert result.copied == 9  # everything else


def test_stage_from_another_copy_of_the_same_data(prepared, tmp_path):
    """``--from``: a bucket (here a local folder) holding the same prepared copy; the marker still
    names the data root the index points at, which is what decode tasks look up."""
    import shutil

    root, index = prepared
    bucket = tmp_path / "bucket" / "prepared"
    shutil.copytree(root, bucket)
    result = st.stage(str(index), tmp_path / "k400", source=f"file://{bucket}")
    assert result.failed == [] and result.copied == 10
    assert st.read_marker(tmp_path / "k400")["data_root"] == str(root)


def test_refusals_name_what_is_wrong(prepared, tmp_path, monkeypatch):
    root, index = prepared
    with pytest.raises(st.NoIndex, match="index manifest"):
        st.stage(str(tmp_path / "nothing"), tmp_path / "k400")
    other = make_prepared(tmp_path / "other", videos=4)[0]  # another copy: sizes differ from the index
    with pytest.raises(st.StageError, match="does not hold the copy the index was built from"):
        st.stage(str(index), tmp_path / "k400", source=str(other))
    (root / st.FILES_LIST).unlink()
    with pytest.raises(st.StageError, match="prepare-files.parquet: missing"):
        st.stage(str(index), tmp_path / "k400")
    monkeypatch.delenv("K400RAY_NOT_SET", raising=False)
    with pytest.raises(st.StageError, match="not set on this node"):
        st.stage(str(index), "$K400RAY_NOT_SET/k400")


def test_the_local_copy_is_found_per_node_and_only_for_its_data_root(prepared, tmp_path, monkeypatch):
    root, index = prepared
    st.stage(str(index), tmp_path / "node-a" / "k400")
    monkeypatch.setenv("K400RAY_NODE", "node-a")
    cache = str(tmp_path / "$K400RAY_NODE" / "k400")
    assert st.staged_data_root(cache, str(root)) == str(tmp_path / "node-a" / "k400" / st.DATA_DIR)
    assert st.staged_data_root(cache, str(tmp_path / "another-root")) is None
    monkeypatch.setenv("K400RAY_NODE", "node-b")  # a node that has not staged
    assert st.staged_data_root(cache, str(root)) is None
    assert st.staged_data_root(None, str(root)) is None


def test_decode_tasks_read_the_local_copy_and_fall_back_per_video(prepared, tmp_path):
    from k400ray.data.pipeline import decode_batch, index_table
    from k400ray.presets import get_preset

    root, index = prepared
    local = tmp_path / "k400"
    st.stage(str(index), local)
    (local / st.DATA_DIR / "train" / "vid01_000000_000010.mp4").unlink()  # lost from the local disk
    batch = {k: np.asarray(v) for k, v in index_table(index, "train").to_pydict().items()}
    spec = get_preset("tsn_r50_1x1x8", scale="toy").clip_spec("train")
    out = decode_batch(batch, data_root=str(root), spec=spec, seed=0, local_cache=str(local))
    assert out["valid"].all()
    assert out["local"].tolist() == [True, False, True, True]
    without = decode_batch(batch, data_root=str(root), spec=spec, seed=0)
    assert not without["local"].any()
    np.testing.assert_array_equal(out["clips"], without["clips"])  # the same bytes, the same clips


def test_cli_stage(prepared, tmp_path):
    from typer.testing import CliRunner

    from k400ray.cli import app

    root, index = prepared
    runner = CliRunner()
    done = runner.invoke(app, ["stage", str(index), "--to", str(tmp_path / "k400")])
    assert done.exit_code == 0, done.output
    assert "10 files" in done.output and "10 copied" in done.output and "0 failed" in done.output
    missing = runner.invoke(app, ["stage", str(tmp_path / "later"), "--to", str(tmp_path / "k400"), "--if-present"])
    assert missing.exit_code == 0 and "nothing staged" in missing.output
    refused = runner.invoke(app, ["stage", str(tmp_path / "later"), "--to", str(tmp_path / "k400")])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    (root / "annotations" / "train.csv").unlink()  # listed, gone from the source: reported, exit 1
    broken = runner.invoke(app, ["stage", str(index), "--to", str(tmp_path / "k400-b")])
    assert broken.exit_code == 1 and "failed data/annotations/train.csv: copy failed" in broken.output


def test_a_killed_stage_process_resumes_where_it_stopped(prepared, tmp_path):
    """SIGKILL, not an exception: the copy of one file hangs (its source is a FIFO nobody writes:
    opening it blocks) while the others finish; the process is killed; the next run copies only
    that file and removes what the killed one left behind."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    root, index = prepared
    stuck = root / "val" / "vid05_000000_000010.mp4"
    kept = tmp_path / "kept.mp4"
    shutil.move(stuck, kept)
    os.mkfifo(stuck)
    local = tmp_path / "k400"
    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen([str(bin_dir / "k400ray"), "stage", str(index), "--to", str(local), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len([p for p in local.rglob("*") if p.is_file()]) < 9:  # all but the stuck one
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        before = {p: p.stat().st_mtime_ns for p in local.rglob("*") if p.is_file()}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert st.read_marker(local) is None
    stuck.unlink()
    shutil.move(kept, stuck)
    resumed = st.stage(str(index), local)
    assert (resumed.copied, resumed.kept, resumed.failed) == (1, 9, [])
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert (local / st.DATA_DIR / "val" / stuck.name).read_bytes() == stuck.read_bytes()

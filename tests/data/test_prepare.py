"""``k400ray prepare``: a raw copy re-encoded to a short side on Ray tasks, layout and annotations
kept, broken files in the manifest with their reason, a second run skipping what is done, the
keyframe interval and tuning asked for, every file listed with its SHA-256."""

from __future__ import annotations

import hashlib
import json

import av
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from k400ray.cli import app
from k400ray.data.encoding import Encoding, longest_keyframe_gap
from k400ray.data.prepare import FILES_LIST, PART_SUFFIX, PREPARE_MANIFEST, prepare_dataset, prepare_video, target_size
from k400ray.data.probe import probe_video
from tests.conftest import write_video

runner = CliRunner()


def _raw_copy(root):
    """The csv layout with 3 good 80x64 videos, one 1080p video of 3 frames, one broken file
    and one CSV row without a file."""
    rows = [("a", "v0", "train"), ("b", "v1", "train"), ("a", "big", "train"), ("b", "bad", "train"),
            ("a", "gone", "train"), ("b", "v2", "val")]
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        lines = ["label,youtube_id,time_start,time_end,split"]
        lines += [f"{label},{yid},0,10,{split}" for label, yid, s in rows if s == split]
        (root / "annotations" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    for label, yid, split in rows:
        path = root / split / f"{yid}_000000_000010.mp4"
        if yid in ("v0", "v1", "v2"):
            write_video(path, frames=12, size=(80, 64))
        elif yid == "big":
            write_video(path, frames=3, size=(1920, 1080), fps=30)
        elif yid == "bad":
            path.write_bytes(b"not a video " * 64)
    return root


def test_target_size_keeps_aspect_with_even_sides():
    assert target_size(1920, 1080, 256) == (456, 256)
    assert target_size(1280, 720, 256) == (456, 256)
    assert target_size(720, 1280, 256) == (256, 456)
    assert target_size(340, 256, 256) == (340, 256)


def _keyframes(path) -> list[int]:
    with av.open(str(path)) as container:
        return [i for i, p in enumerate(container.demux(container.streams.video[0])) if p.size and p.is_keyframe]


def _files_list(out) -> dict[str, tuple[int, str]]:
    rows = pq.read_table(out / FILES_LIST).to_pylist()
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    return {r["path"]: (r["bytes"], r["sha256"]) for r in rows}


def _on_disk(out, rel) -> tuple[int, str]:
    data = (out / rel).read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def test_encoding_names_round_trip_and_bad_names_are_refused():
    assert Encoding(16, True).name == "keyint16-fastdecode" and Encoding(250, False).name == "keyint250"
    assert Encoding.from_name("keyint8-fastdecode") == Encoding(8, True)
    for bad in ("keyint0", "keyint", "gop16", "keyint16-fast"):
        with pytest.raises(ValueError, match="keyint<N>"):
            Encoding.from_name(bad)


@pytest.mark.parametrize("encoding", [Encoding(8, True), Encoding(250, False)], ids=lambda e: e.name)
def test_prepared_video_has_the_keyframes_and_tuning_asked_for(tmp_path, encoding):
    src = write_video(tmp_path / "src.mp4", frames=48, size=(80, 64))
    outcome = prepare_video(src, tmp_path / "out.mp4", 32, encoding)
    assert outcome.status == "prepared"
    keys = _keyframes(tmp_path / "out.mp4")
    assert keys == list(range(0, 48, encoding.keyframe_interval))
    assert longest_keyframe_gap(tmp_path / "out.mp4") == min(48, encoding.keyframe_interval)
    settings = (tmp_path / "out.mp4").read_bytes()  # x264 writes its settings into the stream
    assert f"keyint={encoding.keyframe_interval} ".encode() in settings
    assert (b"cabac=0" in settings and b"deblock=0" in settings) == encoding.fast_decode


def test_a_small_video_is_copied_only_when_its_keyframes_are_dense_enough(tmp_path):
    src = write_video(tmp_path / "src.mp4", frames=40, size=(64, 48))  # x264 defaults: one keyframe
    assert longest_keyframe_gap(src) == 40
    dense = prepare_video(src, tmp_path / "dense.mp4", 64, Encoding(16, True))
    assert dense.status == "prepared" and longest_keyframe_gap(tmp_path / "dense.mp4") == 16
    assert (probe_video(tmp_path / "dense.mp4").width, probe_video(tmp_path / "dense.mp4").height) == (64, 48)
    again = prepare_video(tmp_path / "dense.mp4", tmp_path / "copy.mp4", 64, Encoding(16, True))
    assert again.status == "copied"
    assert (tmp_path / "copy.mp4").read_bytes() == (tmp_path / "dense.mp4").read_bytes()
    # within the tolerance: 40 frames from one keyframe are dense enough for an interval of 32
    assert prepare_video(src, tmp_path / "loose.mp4", 64, Encoding(32, True)).status == "copied"


def test_prepare_reencodes_keeps_layout_lists_failures_and_resumes(ray_local, tmp_path):
    raw, out = _raw_copy(tmp_path / "raw"), tmp_path / "prepared"
    seen = []
    manifest = prepare_dataset(raw, out, short_side=32, progress=lambda done, total, c: seen.append((done, total)))
    assert (manifest["videos"], manifest["prepared"], manifest["failed"], manifest["skipped"]) == (5, 4, 1, 0)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert manifest["failed_videos"] == [{"path": "train/bad_000000_000010.mp4",
                                          "reason": manifest["failed_videos"][0]["reason"]}]
    assert "cannot open" in manifest["failed_videos"][0]["reason"]
    assert [x["reason"] for x in manifest["not_found"]] == ["missing file"]
    on_disk = json.loads((out / PREPARE_MANIFEST).read_text())
    assert on_disk["failed_videos"] == manifest["failed_videos"] and on_disk["short_side"] == 32
    # layout and annotations kept; short side 32, aspect kept, every frame there
    assert (out / "annotations" / "train.csv").read_bytes() == (raw / "annotations" / "train.csv").read_bytes()
    small = probe_video(out / "train" / "v0_000000_000010.mp4")
    assert (small.width, small.height, small.num_frames) == (40, 32, 12)
    big = probe_video(out / "train" / "big_000000_000010.mp4")
    assert (big.width, big.height, big.num_frames, big.fps) == (56, 32, 3, 30.0)
    assert not list(out.rglob(f"*{PART_SUFFIX}"))
    assert manifest["encoding"] == {"codec": "libx264", "preset": "veryfast", "crf": 23,
                                    "keyframe_interval": Encoding().keyframe_interval,
                                    "fast_decode": Encoding().fast_decode}
    # every file of the copy with its size and hash (the failed video is not there)
    files = _files_list(out)
    videos = {p.relative_to(out).as_posix() for p in out.rglob("*.mp4")}
    assert set(files) == videos | {"annotations/train.csv", "annotations/val.csv"} and len(videos) == 4
    assert all(files[rel] == _on_disk(out, rel) for rel in files)
    assert manifest["files"] == {"list": FILES_LIST, "count": 6, "bytes": sum(b for b, _ in files.values())}

    # resume: outputs that exist are complete (written under a temporary name, then renamed)
    (out / "val" / "v2_000000_000010.mp4").unlink()
    (out / "train" / f".v1_000000_000010.mp4.dead{PART_SUFFIX}").write_bytes(b"left by a killed run")
    before = (out / "train" / "v0_000000_000010.mp4").stat().st_mtime_ns
    again = prepare_dataset(raw, out, short_side=32)
    assert (again["skipped"], again["prepared"], again["failed"]) == (3, 1, 1)
    assert (out / "train" / "v0_000000_000010.mp4").stat().st_mtime_ns == before
    assert (out / "val" / "v2_000000_000010.mp4").is_file()
    assert not list(out.rglob(f"*{PART_SUFFIX}"))
    again_files = _files_list(out)  # the skipped videos are listed too, hashed again
    assert set(again_files) == set(files) and again["files"]["count"] == 6
    assert all(again_files[rel] == _on_disk(out, rel) for rel in again_files)


def test_prepared_copy_indexes_like_the_raw_one(ray_local, tmp_path):
    from k400ray.data.index import build_index

    raw, out = _raw_copy(tmp_path / "raw"), tmp_path / "prepared"
    prepare_dataset(raw, out, short_side=32)
    manifest = build_index(out, tmp_path / "index", progress=False)
    assert manifest["layout"] == "csv" and manifest["classes"] == ["a", "b"]
    assert (manifest["splits"]["train"]["videos"], manifest["splits"]["val"]["videos"]) == (3, 1)


def test_cli_prepare_and_its_one_line_errors(ray_local, tmp_path):
    """The cluster's layout: the raw copy in a folder right below the prepared one (/mnt/k400/raw)."""
    raw = _raw_copy(tmp_path / "o" / "raw")
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(raw / "inside")])
    assert r.exit_code == 2 and "must be outside the raw root" in r.output
    r = runner.invoke(app, ["prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "raw root is not a directory" in r.output
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / "o"), "--short-side", "32"])
    assert r.exit_code == 0, r.output
    assert "4 re-encoded" in r.output and "1 failed" in r.output and "failed train/bad_000000_000010.mp4" in r.output
    assert "preparing: 5/5 videos" in r.output
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / "o"), "--short-side", "64"])
    assert r.exit_code == 2 and "prepared at short side 32, not 64" in r.output
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / "o"), "--short-side", "32",
                            "--keyframe-interval", "250", "--no-fast-decode"])
    assert r.exit_code == 2 and "not keyframe interval 250, fast decode off; pass the same" in r.output
    assert len(r.output.strip().splitlines()) == 1
    # a copy prepared before encodings were recorded was made with x264's defaults
    manifest = json.loads((tmp_path / "o" / PREPARE_MANIFEST).read_text())
    del manifest["encoding"]
    (tmp_path / "o" / PREPARE_MANIFEST).write_text(json.dumps(manifest))
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / "o"), "--short-side", "32"])
    assert r.exit_code == 2 and "prepared with keyframe interval 250, fast decode off" in r.output


def test_prepares_into_its_own_folder_beside_the_clusters_others(ray_local, tmp_path):
    """docs/cluster.md: /mnt/k400/{raw,prepared,mlflow,weights,index}; preparing into the shared
    parent itself stays refused (it holds other folders and no prepare manifest)."""
    k400 = tmp_path / "k400"
    raw = k400 / "raw"
    (raw / "annotations").mkdir(parents=True)
    (raw / "annotations" / "train.csv").write_text("label,youtube_id,time_start,time_end,split\na,v0,0,10,train\n")
    write_video(raw / "train" / "v0_000000_000010.mp4", frames=6, size=(80, 64))
    for sibling in ("mlflow", "weights", "index"):
        (k400 / sibling).mkdir()
        (k400 / sibling / "keep.txt").write_text(sibling)
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(k400 / "prepared"), "--short-side", "32"])
    assert r.exit_code == 0, r.output
    assert "1 re-encoded" in r.output and f"--out {k400 / 'index'}" in r.output
    assert set(_files_list(k400 / "prepared")) == {"annotations/train.csv", "train/v0_000000_000010.mp4"}
    assert all((k400 / s / "keep.txt").read_text() == s for s in ("mlflow", "weights", "index"))
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(k400), "--short-side", "32"])
    assert r.exit_code == 2 and "refusing to write into it" in r.output


@pytest.mark.parametrize("name", ["not-a-copy"])
def test_refuses_a_folder_that_is_not_a_prepared_copy(ray_local, tmp_path, name):
    raw = _raw_copy(tmp_path / "raw")
    (tmp_path / name).mkdir()
    (tmp_path / name / "notes.txt").write_text("mine")
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / name)])
    assert r.exit_code == 2 and "refusing to write into it" in r.output

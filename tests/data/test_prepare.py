"""``k400ray prepare``: a raw copy re-encoded to a short side on Ray tasks, layout and annotations
kept, broken files in the manifest with their reason, a second run skipping what is done."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from k400ray.cli import app
from k400ray.data.prepare import PART_SUFFIX, PREPARE_MANIFEST, prepare_dataset, target_size
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

    # resume: outputs that exist are complete (written under a temporary name, then renamed)
    (out / "val" / "v2_000000_000010.mp4").unlink()
    (out / "train" / f".v1_000000_000010.mp4.dead{PART_SUFFIX}").write_bytes(b"left by a killed run")
    before = (out / "train" / "v0_000000_000010.mp4").stat().st_mtime_ns
    again = prepare_dataset(raw, out, short_side=32)
    assert (again["skipped"], again["prepared"], again["failed"]) == (3, 1, 1)
    assert (out / "train" / "v0_000000_000010.mp4").stat().st_mtime_ns == before
    assert (out / "val" / "v2_000000_000010.mp4").is_file()
    assert not list(out.rglob(f"*{PART_SUFFIX}"))


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


@pytest.mark.parametrize("name", ["not-a-copy"])
def test_refuses_a_folder_that_is_not_a_prepared_copy(ray_local, tmp_path, name):
    raw = _raw_copy(tmp_path / "raw")
    (tmp_path / name).mkdir()
    (tmp_path / name / "notes.txt").write_text("mine")
    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / name)])
    assert r.exit_code == 2 and "refusing to write into it" in r.output

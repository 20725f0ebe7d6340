"""Bad data, injected for real (issue #8, "Bad data"): every broken input is built as a real file
or annotation row, indexed or loaded, and must come out as a per-file reason or a counted skip,
never as a crash. docs/reliability.md lists each fault, the test that injects it, and what the
user sees.

Partly covered elsewhere too: 0-byte files through the index (tests/data/test_index.py), random
bytes / truncated / absent files at probe level (tests/data/test_decode_probe.py), audio-only and
zeroed-tail files from `k400ray synth --corrupt` through the CLI (tests/test_cli_data.py),
train.csv missing columns (tests/test_cli_data.py), escaping list paths at discovery level
(tests/data/test_annotations.py), and the engine's skip counting with hand-made batches
(tests/engine/test_metrics_loops.py). Here every fault sits next to good files, and the tests
check the exact reasons and the exact set of indexed rows.
"""

from __future__ import annotations

import csv
import os
import shutil

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from k400ray.data.annotations import AnnotationError, discover
from k400ray.data.clip import load_clip
from k400ray.data.decode import DecodeError, read_frames
from k400ray.data.index import build_index, shard_paths
from k400ray.data.synth_faults import mdat_payload_offset
from k400ray.presets import get_preset
from tests.conftest import write_video

HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]


# ---------------------------------------------------------------------------------------------
# Writers for the broken files
# ---------------------------------------------------------------------------------------------


def _frame(i: int, w: int = 64, h: int = 48) -> av.VideoFrame:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 1] = (8 * i) % 256
    return av.VideoFrame.from_ndarray(img, format="rgb24")


def _faststart_h264(path, frames: int = 24) -> bytes:
    """An H.264 mp4 with its index (moov) before the frame data, as streaming copies are:
    cutting or zeroing its tail leaves a header that promises every frame."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(frames):
            for packet in stream.encode(_frame(i)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


def _apng_named_mp4(path, frames: int = 12) -> None:
    """Animated PNG frames under a .mp4 name: FFmpeg (PyAV) reads them, decord2 refuses them
    ("Failed to measure duration/frame-count due to broken metadata"). Of the ~40 codecs PyAV
    can write here, this is the one decord2 3.4 cannot read (it reads MPEG-4 part 2, VP8/9,
    AV1, HEVC, MJPEG, FFV1...)."""
    tmp = path.with_suffix(".apng")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("apng", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        for i in range(frames):
            for packet in stream.encode(_frame(i)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)


def _audio_only(path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        n = stream.codec_context.frame_size or 1024
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, n), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_csv(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def _vid(root, split, yid):
    return root / split / f"{yid}_000000_000010.mp4"


# ---------------------------------------------------------------------------------------------
# Official-CSV layout with every file-level and row-level fault at once
# ---------------------------------------------------------------------------------------------

GOOD_TRAIN = {  # youtube_id -> (label, frames, decoder the probe must pick)
    "good_a": ("abseiling", 24, "decord"),
    "good_b": ("zumba", 24, "decord"),
    "good_c": ("zumba", 24, "decord"),
    "one_frame": ("zumba", 1, "decord"),
    "five_frames": ("abseiling", 5, "decord"),
    "tiny16": ("zumba", 12, "pyav"),  # decord2 fails on some tiny widths (16, 24, 48 px) at native size
    "apng_codec": ("abseiling", 12, "pyav"),
}
BROKEN_TRAIN = {  # youtube_id -> (label, reason in the manifest; None: starts with "cannot open (")
    "empty": ("zumba", "empty file (0 bytes)"),
    "truncated": ("abseiling", None),
    "random_bytes": ("zumba", None),
    "audio_only": ("abseiling", "no video stream (audio only?)"),
    "no_frames": ("zumba", "no decodable video frames"),  # opens, but neither decoder gets a frame
}


@pytest.fixture(scope="module")
def csv_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("badcsv")
    train, val = [], []
    for yid, (label, frames, _) in GOOD_TRAIN.items():
        write_video(_vid(root, "train", yid), frames=frames, size=(16, 16) if yid == "tiny16" else (64, 48))
        train.append([label, yid, 0, 10, "train"])
    _apng_named_mp4(_vid(root, "train", "apng_codec"))
    # Header frame count larger than what decodes: a moov-first file cut at 60% (the download
    # stopped), and one whose second half of frame data is zeroed.
    data = _faststart_h264(_vid(root, "train", "cut_tail"))
    _vid(root, "train", "cut_tail").write_bytes(data[: len(data) * 6 // 10])
    data = bytearray(_faststart_h264(_vid(root, "train", "zero_tail")))
    cut = mdat_payload_offset(bytes(data)) + (len(data) - mdat_payload_offset(bytes(data))) // 2
    data[cut:] = bytes(len(data) - cut)
    _vid(root, "train", "zero_tail").write_bytes(bytes(data))
    train += [["zumba", "cut_tail", 0, 10, "train"], ["abseiling", "zero_tail", 0, 10, "train"]]

    good = write_video(root / "scratch.mp4", frames=24)  # moov last: a 30% cut loses the index
    _vid(root, "train", "empty").write_bytes(b"")
    _vid(root, "train", "truncated").write_bytes(good.read_bytes()[: good.stat().st_size * 3 // 10])
    _vid(root, "train", "random_bytes").write_bytes(np.random.default_rng(0).bytes(3000))
    _audio_only(_vid(root, "train", "audio_only"))
    data = bytearray(_faststart_h264(_vid(root, "train", "no_frames")))
    start = mdat_payload_offset(bytes(data))
    data[start:] = bytes(len(data) - start)  # a valid container whose every frame is zeros
    _vid(root, "train", "no_frames").write_bytes(bytes(data))
    good.unlink()
    train += [[label, yid, 0, 10, "train"] for yid, (label, _) in BROKEN_TRAIN.items()]

    write_video(_vid(root, "train", "no_label"), frames=12)
    train += [
        ["zumba", "ghost", 0, 10, "train"],  # no such file
        ["abseiling", "good_a", 0, 10, "train"],  # duplicate row
        ["", "no_label", 0, 10, "train"],  # empty label: must not become a class ""
        ["zumba", "bad_time", "abc", 10, "train"],
    ]
    write_video(_vid(root, "val", "val_good"), frames=24)
    write_video(_vid(root, "val", "val_unknown"), frames=24)
    val += [["zumba", "val_good", 0, 10, "val"], ["yodelling", "val_unknown", 0, 10, "val"]]
    _write_csv(root / "annotations/train.csv", train)
    _write_csv(root / "annotations/val.csv", val)
    return root


@pytest.fixture(scope="module")
def csv_index(ray_local, csv_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("badcsv_index") / "index"
    manifest = build_index(csv_root, out, progress=False, chunk_size=64)  # one probe task: fewer processes
    rows = {split: pq.read_table(shard_paths(out, split)).to_pylist() for split in ("train", "val")}
    return out, manifest, rows


@pytest.mark.slow
def test_every_bad_file_has_a_reason_and_every_good_file_is_indexed(csv_index):
    _, manifest, rows = csv_index
    reasons = {x["path"]: x["reason"] for x in manifest["excluded"]}
    for yid, (_, reason) in BROKEN_TRAIN.items():
        got = reasons.pop(f"train/{yid}_000000_000010.mp4")
        if reason is None:  # the container cannot even be opened: FFmpeg's own words follow
            assert got.startswith("cannot open (InvalidDataError: "), (yid, got)
        else:
            assert got == reason, (yid, got)
    assert reasons == {
        "train/ghost_000000_000010.mp4": "missing file",
        "train/good_a_000000_000010.mp4": "duplicate row",
        "annotations/train.csv:18": "bad row: empty label",
        "annotations/train.csv:19": "bad time_start/time_end",
        "val/val_unknown_000000_000010.mp4": "label 'yodelling' not in the train class list",
    }
    assert manifest["classes"] == ["abseiling", "zumba"]  # the empty label did not add a class
    assert manifest["splits"]["train"] | {"shards": None} == {
        "videos": 9, "shards": None, "missing": 1, "corrupt": 5, "rejected": 3}
    assert manifest["splits"]["val"] | {"shards": None} == {
        "videos": 1, "shards": None, "missing": 0, "corrupt": 0, "rejected": 1}
    indexed = {r["video_id"]: r for r in rows["train"]}
    assert set(indexed) == {f"{y}_000000_000010" for y in [*GOOD_TRAIN, "cut_tail", "zero_tail"]}
    assert [r["video_id"] for r in rows["val"]] == ["val_good_000000_000010"]
    for yid, (label, frames, decoder) in GOOD_TRAIN.items():
        row = indexed[f"{yid}_000000_000010"]
        assert (row["label_name"], row["num_frames"], row["decoder"]) == (label, frames, decoder), yid
        assert row["label"] == manifest["classes"].index(label)
    tiny = indexed["tiny16_000000_000010"]
    assert (tiny["width"], tiny["height"]) == (16, 16)


@pytest.mark.slow
def test_header_frame_count_larger_than_what_decodes(csv_root, csv_index):
    _, _, rows = csv_index
    for yid in ("cut_tail", "zero_tail"):
        row = next(r for r in rows["train"] if r["video_id"] == f"{yid}_000000_000010")
        assert row["header_frames"] == 24 and 0 < row["num_frames"] < 24, row
        # The indexed count is a promise: its last frame really decodes.
        path = _vid(csv_root, "train", yid)
        decoder = "pyav" if row["decoder"] == "pyav" else "auto"
        assert read_frames(path, np.array([row["num_frames"] - 1]), decoder=decoder).shape == (1, 48, 64, 3)


def test_codec_decord_cannot_read_falls_back_to_pyav(csv_root):
    path = _vid(csv_root, "train", "apng_codec")
    with pytest.raises(DecodeError, match="decord"):
        read_frames(path, np.array([0]), decoder="decord")
    frames = read_frames(path, np.array([0, 11, 3]))  # auto: decord fails, PyAV reads
    assert frames.shape == (3, 48, 64, 3)
    assert np.allclose(frames[..., 1].mean(axis=(1, 2)), [0, 88, 24], atol=3)


def test_short_and_one_frame_videos_yield_full_length_clips(csv_root):
    """i3d 32x2 wants 64 frames: a 1-frame and a 5-frame video still give whole 32-frame clips
    (indices loop), in training and in both test modes."""
    full, toy = get_preset("i3d_r50_32x2x1"), get_preset("i3d_r50_32x2x1", scale="toy")
    rng = np.random.default_rng(0)
    for yid, frames in (("one_frame", 1), ("five_frames", 5)):
        path = _vid(csv_root, "train", yid)
        for spec in (full.clip_spec("train"), full.clip_spec("efficient"), toy.clip_spec("accurate")):
            clip = load_clip(path, num_frames=frames, width=64, height=48, spec=spec, rng=rng)
            assert clip.shape == spec.output_shape and clip.dtype == np.uint8
        # The same source frame decodes to the same pixels: the clip's T frames are exactly the
        # video's frames, looped (8 sampled frames of toy accurate view 0 cover all 5).
        per_frame = clip[0].transpose(1, 0, 2, 3).reshape(clip.shape[2], -1)
        assert len(np.unique(per_frame, axis=0)) == frames
    tiny = load_clip(_vid(csv_root, "train", "tiny16"), num_frames=12, width=16, height=16,
                     spec=full.clip_spec("efficient"), rng=rng, decoder="pyav")
    assert tiny.shape == (1, 3, 32, 224, 224)


# ---------------------------------------------------------------------------------------------
# MMAction2 list files: odd names, escaping paths, duplicates, unknown and malformed labels
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def list_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("badlist")
    root = base / "data"
    secret = write_video(base / "outside" / "secret.mp4", frames=8)
    for rel in ("train/clip ü 1.mp4", "train/with  two spaces.mp4", "train/a.mp4", "train/neg.mp4", "val/b ü.mp4", "val/c.mp4"):
        write_video(root / rel, frames=12)
    os.symlink(secret, root / "train" / "link.mp4")
    (root / "kinetics400_train_list_videos.txt").write_text("\n".join([
        "clip ü 1.mp4 0",
        "with  two spaces.mp4 1",
        "a.mp4 1",
        "a.mp4 1",  # duplicate
        "../outside/secret.mp4 0",  # 5: escapes with ..
        f"{secret} 0",  # absolute
        "link.mp4 0",  # a symlink inside train/ that points outside
        "gone ü.mp4 1",  # missing
        "no label here",  # 9: malformed
        "neg.mp4 -1",  # 10: a negative index (it would sort first and shift every class)
    ]) + "\n", encoding="utf-8")
    (root / "kinetics400_val_list_videos.txt").write_text("b ü.mp4 0\nc.mp4 7\n", encoding="utf-8")
    return root, secret


def test_list_file_faults_are_rejected_with_reasons(list_root):
    root, secret = list_root
    found = discover(root)
    assert found.layout == "list" and found.classes == ["0", "1"]
    assert [(e.path, e.label_name, e.video_id) for e in found.entries] == [
        ("train/a.mp4", "1", "a"), ("train/clip ü 1.mp4", "0", "clip ü 1"),
        ("train/with  two spaces.mp4", "1", "with  two spaces"), ("val/b ü.mp4", "0", "b ü"),
    ]
    assert {x["path"]: x["reason"] for x in found.excluded} == {
        "train/a.mp4": "duplicate row",
        "../outside/secret.mp4": "path escapes the data root",
        str(secret): "path escapes the data root",
        "link.mp4": "path escapes the data root",
        "gone ü.mp4": "missing file",
        "kinetics400_train_list_videos.txt:9": "malformed line (want 'path label_index')",
        "kinetics400_train_list_videos.txt:10": "malformed line (want 'path label_index')",
        "val/c.mp4": "label '7' not in the train class list",
    }


@pytest.mark.slow
def test_odd_file_names_are_indexed(ray_local, list_root, tmp_path):
    root, _ = list_root
    manifest = build_index(root, tmp_path / "index", progress=False, chunk_size=64)
    rows = [r for s in ("train", "val") for r in pq.read_table(shard_paths(tmp_path / "index", s)).to_pylist()]
    assert [(r["path"], r["label"], r["num_frames"], r["decoder"]) for r in rows] == [
        ("train/a.mp4", 1, 12, "decord"), ("train/clip ü 1.mp4", 0, 12, "decord"),
        ("train/with  two spaces.mp4", 1, 12, "decord"), ("val/b ü.mp4", 0, 12, "decord"),
    ]
    assert manifest["splits"]["train"]["rejected"] == 6 and manifest["splits"]["train"]["missing"] == 1
    assert "gone ü.mp4" in (tmp_path / "index/manifest.json").read_text(encoding="utf-8")  # readable, not \u-escaped


# ---------------------------------------------------------------------------------------------
# Unusable annotation files: one line, exit 2
# ---------------------------------------------------------------------------------------------


def test_csv_with_bom_and_undecodable_csv(tmp_path):
    write_video(_vid(tmp_path, "train", "x"), frames=4)
    (tmp_path / "annotations").mkdir()
    train = tmp_path / "annotations/train.csv"
    train.write_bytes("\ufefflabel,youtube_id,time_start,time_end,split\nzumba,x,0,10,train\n".encode("utf-8"))
    assert [e.video_id for e in discover(tmp_path).entries] == ["x_000000_000010"]  # BOM: still a `label` column
    train.write_bytes(b"label,youtube_id,time_start,time_end,split\n\xe9t\xe9,x,0,10,train\n")  # Latin-1
    with pytest.raises(AnnotationError, match=r"train.csv: unreadable CSV \('utf-8' codec can't decode"):
        discover(tmp_path)


@pytest.mark.slow
def test_cli_csv_missing_column_is_one_line_exit_2(ray_local, tmp_path):
    from k400ray.cli import app

    data = tmp_path / "data"
    write_video(_vid(data, "train", "x"), frames=4)
    _write_csv(data / "annotations/train.csv", [["zumba", "x", 0, 10, "train"]])
    (data / "annotations/val.csv").write_text("youtube_id,time_start,time_end,split\nx,0,10,val\n")
    r = CliRunner().invoke(app, ["index", str(data), "--out", str(tmp_path / "index")])
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert r.stderr.startswith("error: ") and "annotations/val.csv: missing column(s) label" in r.stderr
    assert not (tmp_path / "index").exists()
    (data / "annotations/val.csv").write_bytes(b"label,youtube_id,time_start,time_end,split\n\xe9t\xe9,x,0,10,val\n")
    r = CliRunner().invoke(app, ["index", str(data), "--out", str(tmp_path / "index")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "val.csv: unreadable CSV ('utf-8' codec" in r.stderr


# ---------------------------------------------------------------------------------------------
# Through the Ray Data pipeline: every indexed odd file decodes; files broken after indexing are
# skipped and counted, and the run goes on
# ---------------------------------------------------------------------------------------------


def _collect(ds) -> dict[str, np.ndarray]:
    batches = list(ds.iter_batches(batch_size=3, batch_format="numpy"))
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


@pytest.mark.slow
def test_pipeline_decodes_odd_files_and_skips_files_broken_after_indexing(csv_root, csv_index, tmp_path):
    from k400ray.data.pipeline import clip_dataset
    from k400ray.engine.augment import BatchMix
    from k400ray.engine.loops import evaluate, train_one_epoch
    from k400ray.models.build import build_model

    out, _, rows = csv_index
    copy = tmp_path / "data"  # the same videos on another mount point (clip_dataset's data_root)
    shutil.copytree(csv_root / "train", copy / "train")
    _vid(copy, "train", "good_b").unlink()  # deleted after indexing
    _vid(copy, "train", "good_a").write_bytes(np.random.default_rng(1).bytes(5000))  # overwritten with garbage
    write_video(_vid(copy, "train", "good_c"), frames=2)  # re-encoded: 2 frames where the index says 24
    broken = {"good_a_000000_000010", "good_b_000000_000010", "good_c_000000_000010"}

    preset = get_preset("tsn_r50_1x1x8", scale="toy")
    spec = preset.clip_spec("efficient")  # test mode: no randomness, so clips can be checked one by one
    got = _collect(clip_dataset(out, "train", spec, data_root=str(copy), batch_size=3, decode_tasks=1))
    assert sorted(got["video_id"]) == sorted(r["video_id"] for r in rows["train"])  # nothing lost, nothing raised
    assert {v for v, ok in zip(got["video_id"], got["valid"]) if not ok} == broken
    assert got["clips"].shape == (9, *spec.output_shape) and not got["clips"][~got["valid"]].any()
    for row in rows["train"]:  # 1 frame, 5 frames, 16x16, APNG via PyAV, damaged tails: the real pixels
        if row["video_id"] in broken:
            continue
        want = load_clip(copy / row["path"], num_frames=row["num_frames"], width=row["width"], height=row["height"],
                         spec=spec, rng=np.random.default_rng(0), decoder="pyav" if row["decoder"] == "pyav" else "auto")
        assert np.array_equal(got["clips"][list(got["video_id"]).index(row["video_id"])], want), row["video_id"]

    # What the engine makes of these rows: Ray Train's worker sums exactly these counts into the
    # trial's `skipped_videos` metric (k400ray/engine/worker.py).
    batches = [{k: v[i:i + 3] for k, v in got.items()} for i in range(0, len(got["valid"]), 3)]
    torch.manual_seed(0)
    model = build_model(preset.arch, 2)
    stats = train_one_epoch(model, iter(batches), torch.optim.SGD(model.parameters(), lr=0.01),
                            device=torch.device("cpu"), mix=BatchMix(None, alpha=0.0, num_classes=2),
                            clip_grad_norm=None)
    assert (stats.clips, stats.skipped_videos) == (6, 3) and np.isfinite(stats.loss)
    preds, skipped = evaluate(model, iter(batches), device=torch.device("cpu"), average=preset.views("efficient").average)
    assert skipped == 3 and sorted(preds.video_id) == sorted(set(got["video_id"]) - broken)

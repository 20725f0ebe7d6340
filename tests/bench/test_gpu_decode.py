"""`k400ray bench decode`: the video list that carries an index to a machine without pyarrow, the
backends measured side by side, and a backend the machine cannot use reported, never measured
under its name. No Ray: the index is written by hand."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from k400ray.bench.gpu_decode import load_video_list, save_video_list, train_rates
from k400ray.cli import app
from k400ray.data.index import INDEX_SCHEMA
from tests.conftest import write_video

runner = CliRunner()


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode-bench")
    rows = []
    for i in range(2):
        write_video(root / "data" / "train" / f"v{i}.mp4", frames=40, size=(64, 48))
        rows.append({"video_id": f"v{i}", "path": f"train/v{i}.mp4", "label": i, "label_name": f"c{i}",
                     "split": "train", "num_frames": 40, "header_frames": 40, "fps": 12.0, "width": 64,
                     "height": 48, "duration_s": 3.3, "bytes": 1, "decoder": "auto"})
    index = root / "index"
    (index / "train").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema([f for f in INDEX_SCHEMA if f.name in rows[0]]))
    pq.write_table(table, index / "train" / "part-00000.parquet")
    (index / "manifest.json").write_text(json.dumps({
        "data_root": str(root / "data"), "classes": ["c0", "c1"],
        "splits": {"train": {"videos": 2, "shards": ["train/part-00000.parquet"]}}}))
    return root, index


def test_the_video_list_travels_with_its_data(index):
    root, idx = index
    saved = save_video_list(idx, "train", root / "list.json")
    assert json.loads(saved.read_text())["data_root"] == "data"  # relative: list and videos move together
    data_root, rows = load_video_list(saved)
    assert data_root == str(root / "data") and [r["path"] for r in rows] == ["train/v0.mp4", "train/v1.mp4"]
    bad = root / "bad.json"
    bad.write_text(json.dumps({"data_root": ".", "rows": [{"path": "x.mp4"}]}))
    with pytest.raises(ValueError, match=r"bad.json: not a video list \(a row has no 'video_id'\)"):
        load_video_list(bad)


def test_bench_decode_measures_cpu_and_reports_nvdec_unavailable_here(index, tmp_path):
    root, idx = index
    listed = save_video_list(idx, "train", root / "list2.json")
    out = tmp_path / "rec.md"
    r = runner.invoke(app, ["bench", "decode", "--video-list", str(listed), "--presets", "tsn_r50_1x1x8",
                            "--backends", "cpu,nvdec", "--clips", "4", "--processes", "1", "--repeats", "1",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    cpu = re.search(r"tsn_r50_1x1x8\s+cpu\s+1\s+4\s+0\s+([\d.]+)\s+([\d.]+)", r.output)
    assert cpu and float(cpu.group(1)) > 0 and float(cpu.group(2)) > 0, r.output
    if not torch.cuda.is_available():
        assert re.search(r"tsn_r50_1x1x8\s+nvdec \(not available\)\s+1\s+0", r.output), r.output
        assert "nvdec: not measured: no CUDA device visible to this process" in r.output
    assert "| preset | backend | processes | clips |" in out.read_text()


def test_train_rates_come_from_the_last_bench_train_record(tmp_path):
    rec = tmp_path / "gpu.md"
    row = "| {p} | compute only | 32 | 0.003 | 55.0 | {r} | - | - |\n"
    rec.write_text("### bench train\n\n" + row.format(p="tsn_r50_1x1x8", r="100.0")
                   + "\n### bench decode\n\n### bench train\n\n" + row.format(p="tsn_r50_1x1x8", r="579.6")
                   + "| tsn_r50_1x1x8 | host input path | 32 | 0.003 | 55.1 | 569.8 | - | - |\n")
    assert train_rates(rec) == {"tsn_r50_1x1x8": 579.6}


@pytest.mark.parametrize("args, words", [
    (["--backends", "vaapi"], "--backends: unknown backend(s) vaapi"),
    ([], "give one input: --video-list FILE, --index DIR or --textured N"),
    (["--video-list", "a.json", "--save-list", "b.json"], "--save-list writes the rows of --index or --textured"),
    (["--video-list", "nowhere.json"], "nowhere.json: not a video list"),
])
def test_bench_decode_refuses_bad_input_in_one_line(args, words):
    r = runner.invoke(app, ["bench", "decode", *args])
    assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output


def test_textured_videos_are_prepared_and_listed_beside_the_list(tmp_path):
    from k400ray.bench.gpu_decode import save_textured_list

    listed = save_textured_list(tmp_path / "work", tmp_path / "carry" / "video-list.json", videos=1, seconds=0.5, fps=8,
                                size=(96, 64), short_side=48)
    root, rows = load_video_list(listed)
    assert root == str(tmp_path / "carry" / "videos") and len(rows) == 1
    assert (rows[0]["width"], rows[0]["height"], rows[0]["num_frames"]) == (72, 48, 4)  # short side 48, every frame
    assert (tmp_path / "carry" / "videos" / rows[0]["path"]).is_file()

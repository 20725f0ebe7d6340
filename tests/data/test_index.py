"""`build_index`: Ray-probed, sharded, deterministic, broken files excluded with reasons."""

import csv
import json

import pyarrow.parquet as pq
import pytest

from k400ray.data.index import build_index, load_manifest, shard_paths
from tests.conftest import write_video


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("k400")
    rows = {"train": [], "val": []}
    for split, n in (("train", 6), ("val", 2)):
        for i in range(n):
            label = ["riding a bike", "passing American football (in game)"][i % 2]
            yid = f"{split[:2]}{i:09d}"
            write_video(root / split / f"{yid}_000000_000002.mp4", frames=10 + i)
            rows[split].append([label, yid, 0, 2, split])
    (root / "train/zz000000000_000000_000002.mp4").write_bytes(b"")  # 0 bytes
    rows["train"].append(["riding a bike", "zz000000000", 0, 2, "train"])
    rows["val"].append(["riding a bike", "missingfile", 0, 2, "val"])
    (root / "annotations").mkdir()
    for split, r in rows.items():
        with (root / f"annotations/{split}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            w.writerows(r)
    return root


def test_index_counts_shards_and_reasons(ray_local, dataset, tmp_path):
    out = tmp_path / "index"
    manifest = build_index(dataset, out, shards=2, progress=False)
    assert manifest == load_manifest(out)
    assert manifest["classes"] == ["passing American football (in game)", "riding a bike"]
    assert manifest["splits"]["train"]["videos"] == 6 and manifest["splits"]["train"]["corrupt"] == 1
    assert manifest["splits"]["val"]["videos"] == 2 and manifest["splits"]["val"]["missing"] == 1
    assert len(shard_paths(out, "train")) == 2
    reasons = {x["path"]: x["reason"] for x in manifest["excluded"]}
    assert reasons["train/zz000000000_000000_000002.mp4"] == "empty file (0 bytes)"
    assert reasons["val/missingfile_000000_000002.mp4"] == "missing file"
    table = pq.read_table(shard_paths(out, "train")).to_pylist()
    assert [r["num_frames"] for r in table] == [10, 11, 12, 13, 14, 15]
    assert {r["label"] for r in table} == {0, 1}
    first = table[0]
    assert (first["width"], first["height"], first["decoder"]) == (64, 48, "decord")
    assert first["label_name"] == "riding a bike" and first["label"] == 1
    assert first["path"] == "train/tr000000000_000000_000002.mp4" and first["bytes"] > 0


def test_reindex_gives_the_same_index(ray_local, dataset, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_index(dataset, a, progress=False)
    build_index(dataset, b, progress=False)
    assert json.loads((a / "manifest.json").read_text()) == json.loads((b / "manifest.json").read_text())
    for rel in load_manifest(a)["splits"]["train"]["shards"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    build_index(dataset, a, progress=False)  # rebuilding in place replaces it whole
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()


def test_refuses_to_overwrite_a_foreign_directory(ray_local, dataset, tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_index(dataset, precious, progress=False)
    assert (precious / "thesis.txt").read_text() == "keep me"

"""Bench inputs: the generated set is a real index; a sized index holds exactly N rows of it."""

import json

import pytest

from k400ray.bench.inputs import BENCH_SPLIT, generated_index, index_rows, replicated_tree, sized_index
from k400ray.data.index import load_manifest


@pytest.mark.slow  # indexing the generated set starts Ray
def test_generated_set_is_indexed_with_kinetics_like_rows(bench_work):
    work, index = bench_work
    rows = index_rows(index, "train")
    assert len(rows) == 2
    assert {(r["width"], r["height"], r["num_frames"], r["decoder"]) for r in rows} == {(64, 48, 8, "decord")}
    # reused, not regenerated, while the parameters match
    assert generated_index(work, videos=2, seconds=1, fps=8, size=(64, 48), x264_preset="ultrafast") == index


@pytest.mark.slow
def test_sized_index_cycles_rows_with_distinct_ids(bench_work):
    work, index = bench_work
    sized = sized_index(index, "train", 5, work)
    rows = index_rows(sized, BENCH_SPLIT)
    source = index_rows(index, "train")
    assert len(rows) == 5 and len({r["video_id"] for r in rows}) == 5
    assert [r["path"] for r in rows] == [source[i % 2]["path"] for i in range(5)]
    manifest = load_manifest(sized)
    assert manifest["data_root"] == load_manifest(index)["data_root"]
    assert manifest["splits"][BENCH_SPLIT]["videos"] == 5 and manifest["bench_source"]["distinct_videos"] == 2
    assert sized_index(index, "train", 5, work) == sized  # cached
    cut = index_rows(sized_index(index, "train", 1, work), BENCH_SPLIT)
    assert len(cut) == 1 and json.dumps(cut[0], default=str)


@pytest.mark.slow
def test_replicated_tree_links_every_video_under_its_class(bench_work):
    from k400ray.data.annotations import discover

    work, index = bench_work
    tree = replicated_tree(index, "train", 5, work)
    found = discover(tree)
    assert found.layout == "tree" and len(found.entries) == 5 and len(found.classes) == 2
    sizes = {(tree / e.path).stat().st_size for e in found.entries}
    assert sizes == {r["bytes"] for r in index_rows(index, "train")}

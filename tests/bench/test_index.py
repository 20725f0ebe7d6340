"""`k400ray bench index`: probe rate per core and the memory of a synthetic-row index build."""

import re

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from k400ray.bench.index import index_memory, synthetic_discovery
from k400ray.cli import app
from k400ray.data.index import INDEX_SCHEMA

runner = CliRunner()


def test_synthetic_discovery_is_sorted_and_balanced():
    found = synthetic_discovery(1000, classes=10)
    assert len(found.entries) == 1000 and len(found.classes) == 10
    assert [e.path for e in found.entries] == sorted(e.path for e in found.entries)
    assert len({e.video_id for e in found.entries}) == 1000


@pytest.mark.slow
def test_index_memory_runs_the_real_builder(ray_local, tmp_path):
    m = index_memory(300, tmp_path)
    index = tmp_path / "memory-index-300"
    table = pq.read_table(index / "train" / "part-00000.parquet")
    assert table.schema.equals(INDEX_SCHEMA) and table.num_rows == 300
    assert m.rows == 300 and m.shards == 1 and m.peak_driver_gib >= m.baseline_gib > 0
    assert m.peak_tree_gib >= m.peak_driver_gib


@pytest.mark.slow
def test_bench_index_cli_prints_rates_and_memory(bench_work):
    work, _ = bench_work
    # generated videos, hard-linked 5 times over (the path without --data-root)
    r = runner.invoke(app, ["bench", "index", "--videos", "2", "--files", "5", "--seconds", "1", "--size", "64x48",
                            "--fps", "8", "--rows", "200", "--repeats", "1", "--processes", "1", "--work-dir", str(work)])
    assert r.exit_code == 0, r.output
    limit = re.search(r"probe limit \(processes\)\s+5\s+1\s+([\d.]+)\s+([\d.]+)\s+1\.0", r.output)
    ray = re.search(r"k400ray index \(ray tasks\)\s+5\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", r.output)
    assert limit and ray, r.output
    assert float(limit.group(1)) > 0 and float(ray.group(1)) > 0
    assert re.search(r"^\s*200\s+1\s+", r.output, re.M)  # rows, shards
    assert "driver PSS" in r.output


def test_bench_index_rejects_missing_root(tmp_path):
    r = runner.invoke(app, ["bench", "index", "--data-root", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "data root is not a directory" in r.output

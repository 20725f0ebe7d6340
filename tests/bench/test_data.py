"""`k400ray bench data` on a tiny input: all three methods measured, ratios and targets printed."""

import re

import pytest
from typer.testing import CliRunner

from k400ray.bench.data import DataBench, MethodResult
from k400ray.cli import app

runner = CliRunner()


def _bench(rates: dict[str, float]) -> DataBench:
    results = [MethodResult("tsn_r50_1x1x8", m, 100, seconds=[100 / r], cpu_s=[200 / rates["decode limit"]])
               for m, r in rates.items()]
    return DataBench(processes=2, ray_tasks=2, clips=100, repeats=1, batch_sizes={"tsn_r50_1x1x8": 32}, distinct_videos=10,
                     results=results, gflops={"tsn_r50_1x1x8": 32.7})


def test_ratios_targets_and_cores_per_gpu():
    b = _bench({"decode limit": 20.0, "ray data": 19.0, "dataloader": 18.0})
    assert b.ratios("tsn_r50_1x1x8") == pytest.approx({"ray/limit": 0.95, "ray/dataloader": 19 / 18, "dataloader/limit": 0.9})
    assert "met" in b.targets()[0] and "MISSED" not in b.targets()[0]
    assert b.per_core("tsn_r50_1x1x8") == 10.0
    row = next(r for r in b.table().rows if r[1] == "ray data")
    assert row[2:5] == [19.0, 0.95, round(19 / 18, 3)] and row[5] == 100.0 and row[6] == 1.0  # CPU ms/clip, efficiency
    assert b.cluster_table().rows[0][-1] == 100.0  # 1000 clips/s per H100 / 10 clips/s per core
    slow = _bench({"decode limit": 20.0, "ray data": 15.0, "dataloader": 18.0})
    assert slow.targets()[0].count("MISSED") == 2


@pytest.mark.slow
def test_bench_data_cli_prints_every_method(bench_work, tmp_path):
    work, index = bench_work
    out = tmp_path / "record.md"
    r = runner.invoke(app, ["bench", "data", "--index", str(index), "--presets", "tsn_r50_1x1x8", "--clips", "4",
                            "--repeats", "1", "--processes", "1", "--batch-size", "2", "--work-dir", str(work),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {}
    for line in r.output.splitlines():
        m = re.match(r"tsn_r50_1x1x8\s+(decode limit|ray data|dataloader)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            rows[m.group(1)] = [float(v) for v in m.groups()[1:]]
    assert set(rows) == {"decode limit", "ray data", "dataloader"}
    assert all(v[0] > 0 for v in rows.values())
    assert rows["decode limit"][1] == 1.0 and rows["dataloader"][2] == 1.0
    assert "target tsn_r50_1x1x8: ray data" in r.output and "decode cores per H100" in r.output
    assert "ray start-up" in r.output and "4 clips per pass (2 distinct videos), 1 processes" in r.output
    assert "### bench data" in out.read_text()


def test_bench_data_rejects_unknown_preset_and_missing_index(tmp_path):
    r = runner.invoke(app, ["bench", "data", "--presets", "nope"])
    assert r.exit_code == 2 and "unknown preset(s) nope" in r.output
    r = runner.invoke(app, ["bench", "data", "--index", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no index here" in r.output


def test_partial_methods_have_no_ratio_to_what_was_not_measured():
    b = _bench({"decode limit": 20.0, "dataloader": 18.0})
    assert [r[1] for r in b.table().rows] == ["decode limit", "dataloader"]
    assert b.ratios("tsn_r50_1x1x8")["ray/limit"] is None
    assert b.ratios("tsn_r50_1x1x8")["dataloader/limit"] == pytest.approx(0.9)
    assert "not checked" in b.targets()[0]
    assert b.cluster_table().rows[0][-1] == 100.0  # the decode limit alone sizes the cluster
    only_loader = _bench({"decode limit": 20.0, "dataloader": 18.0})
    only_loader.results = [r for r in only_loader.results if r.method == "dataloader"]
    assert only_loader.cluster_table() is None and only_loader.per_core("tsn_r50_1x1x8") is None


def test_bench_data_without_ray_measures_decoder_and_dataloader(bench_work):
    work, index = bench_work
    r = runner.invoke(app, ["bench", "data", "--index", str(index), "--presets", "tsn_r50_1x1x8", "--clips", "4",
                            "--repeats", "1", "--processes", "1", "--batch-size", "2", "--methods", "dataloader,limit-glibc",
                            "--work-dir", str(work)])
    assert r.exit_code == 0, r.output
    methods = re.findall(r"^tsn_r50_1x1x8\s+(decode limit \(glibc malloc\)|decode limit|ray data|dataloader)\s+[\d.]+",
                         r.output, flags=re.M)
    assert methods == ["dataloader", "decode limit (glibc malloc)"]
    assert "ray start-up" not in r.output and "not checked" in r.output


def test_bench_data_rejects_unknown_methods_and_epoch_rows_without_ray():
    r = runner.invoke(app, ["bench", "data", "--methods", "limit,gpu"])
    assert r.exit_code == 2 and "--methods: unknown method(s) gpu" in r.output
    r = runner.invoke(app, ["bench", "data", "--methods", "limit", "--epoch-rows", "100"])
    assert r.exit_code == 2 and "keep 'ray' in --methods" in r.output


@pytest.mark.slow
def test_bench_data_raw_sizes_prints_the_ratio(tmp_path):
    """`--raw-sizes`: generated videos at a size against their `k400ray prepare` copies (no Ray)."""
    out = tmp_path / "record.md"
    r = runner.invoke(app, ["bench", "data", "--raw-sizes", "160x120", "--short-side", "32", "--presets",
                            "tsn_r50_1x1x8", "--videos", "1", "--seconds", "1", "--fps", "8", "--clips", "2",
                            "--repeats", "1", "--processes", "1", "--work-dir", str(tmp_path / "w"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = re.search(r"ratio tsn_r50_1x1x8 160x120: decoding a training clip costs ([\d.]+)x the CPU", r.output)
    assert m and float(m.group(1)) > 0
    assert "### bench data (raw vs prepared)" in out.read_text()
    r = runner.invoke(app, ["bench", "data", "--raw-sizes", "161x120"])
    assert r.exit_code == 2 and "--size" in r.output

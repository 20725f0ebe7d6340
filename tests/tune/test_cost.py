"""The --dry-run cost model against numbers worked out by hand from a fixed bench record.

The record below stands in for ``k400ray/tune/records/measured.json`` so that the expectations
do not move when new measurements are shipped. One preset (tsn_r50_1x1x8, default config),
8 GPUs, 10 epochs, efficient eval every 5, 24,000 train / 2,000 val videos.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from k400ray.tune import cost
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import cluster_shape
from k400ray.tune.spec import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]

FIXED = {
    "gpu_train": {"H100": {"peak_bf16_tflops": 989, "record": "fixed",
                           "presets": {"tsn_r50_1x1x8": {"clips_per_s": 400.0, "batch": 32}}}},
    "peak_bf16_tflops": {"A100": 312, "H100": 989},
    "decode": {
        "per_core_clips_per_s": {"tsn_r50_1x1x8": {"clips_per_s": 25.0, "frames": 8},
                                 "i3d_r50_32x2x1": {"clips_per_s": 20.0, "frames": 32}},
        "ray_data_x_limit": {"tsn_r50_1x1x8": 0.8, "i3d_r50_32x2x1": 0.65},
        "epoch_start_s": {"shuffled": 24.0, "in_order": 12.0, "rows": 240000},
    },
    "raw_over_prepared": {"720p": {"tsn_r50_1x1x8": 5.0, "i3d_r50_32x2x1": 5.0},
                          "1080p": {"tsn_r50_1x1x8": 15.0, "i3d_r50_32x2x1": 14.0}},
}
PRICES = {"instances": {"p5.48xlarge": {"gpu": "H100", "gpus": 8, "cores": 192, "usd_per_hour": 80.0},
                        "p4d.24xlarge": {"gpu": "A100", "gpus": 8, "cores": 96, "usd_per_hour": 20.0},
                        "c7i.24xlarge": {"gpus": 0, "cores": 96, "usd_per_hour": 4.0},
                        "m7i.2xlarge": {"gpus": 0, "cores": 8, "usd_per_hour": 1.0}},
          "efs_usd_per_gb_read": 0.02}
COUNTS = cost.VideoCounts(train=24_000, val=2_000, source="test")


SHIPPED = tp.records


@pytest.fixture(scope="module")
def gmacs_cache(tmp_path_factory):
    """One multiply-add cache for the module: counting the full models is the slow part."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def fixed_records(monkeypatch, gmacs_cache):
    monkeypatch.setattr(tp, "records", lambda name="measured.json": PRICES if name == "prices.json" else FIXED)
    monkeypatch.setenv("XDG_CACHE_HOME", str(gmacs_cache))


def _spec(tmp_path, **cost_section):
    raw = {
        "experiment": "hand", "scale": "full", "data": {"train_index": str(tmp_path / "no-index")},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0, 1]},
        "training": {"epochs": 10, "eval_interval": 5},
        "resources": {"workers_per_trial": 8, "cpus_per_worker": 4, "gpus_per_worker": 1, "max_concurrent_trials": 1},
        "cost": {"gpu": "H100", "decode_cores_per_gpu": 10, "decode_efficiency": 0.5, "startup_minutes": 6,
                 "dataset_gb": 100, **cost_section},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path), path


def test_one_preset_by_hand(tmp_path):
    spec, path = _spec(tmp_path)
    shape = cluster_shape(spec, path)
    rows = cost.estimate(spec, COUNTS, shape=shape)
    row = rows[0]
    # GPU side: measured on H100, 400 clips/s x 8 GPUs = 3,200. Data side: 10 cores per GPU x 8 =
    # 80 decode tasks x 25 clips/s x 0.5 = 1,000 clips/s: decode-bound; 400 / 12.5 = 32 cores balance.
    assert row.gpu_rate.clips_per_s == 400.0 and row.gpu_rate.how == "measured on H100"
    assert row.decode_rate == pytest.approx(1000.0)
    assert row.bottleneck == "decode" and row.balance_cores_per_gpu == pytest.approx(32.0)
    # training: 10 x (24,000 / 1,000 s + 24 s x 24,000 / 240,000 epoch start) = 264 s
    assert row.train_h * 3600 == pytest.approx(264.0)
    # efficient eval after epochs 5 and 10: 16 eval tasks (2 per worker) x 25 x 0.5 = 200 videos/s
    # (the GPUs would do 8 x 400 x 3 = 9,600): 2 x (2,000 / 200 + 0.1 s start) = 20.2 s
    assert row.evaluations == 2 and row.efficient_h * 3600 == pytest.approx(20.2)
    # accurate: 25 frames per video -> 16 x 25 x 8/25 x 0.5 = 64 videos/s: 2,000 / 64 + 0.1 = 31.35 s
    assert row.accurate_h * 3600 == pytest.approx(31.35)
    assert row.startup_h * 3600 == pytest.approx(360.0)
    wall_s = 264 + 20.2 + 31.35 + 360
    assert row.wall_h * 3600 == pytest.approx(wall_s) and row.gpu_hours == pytest.approx(8 * wall_s / 3600)
    grid_h = cost.grid_wall_hours(rows, cost.concurrency(spec, len(rows)))
    assert grid_h * 3600 == pytest.approx(2 * wall_s)  # one at a time
    d = cost.dollars(spec, shape, rows, grid_h)
    assert d.gpu_nodes == pytest.approx(80.0 * 2 * wall_s / 3600)  # one p5 per trial
    assert d.decode_nodes == 0.0  # 80 cores fit in the p5's 192 - 33 spare
    assert d.head == pytest.approx(1.0 * 2 * wall_s / 3600)
    assert (d.storage_gb, d.storage) == (2000.0, pytest.approx(40.0))  # 100 GB x 10 epochs x 2 trials x $0.02


def test_another_gpu_kind_goes_through_the_flop_model(tmp_path):
    spec, path = _spec(tmp_path, gpu="A100", decode_cores_per_gpu=100)
    row = cost.estimate(spec, COUNTS, shape=cluster_shape(spec, path))[0]
    # the same fraction of peak as on H100: 400 x 312 / 989
    assert row.gpu_rate.clips_per_s == pytest.approx(400 * 312 / 989)
    assert "FLOP model" in row.gpu_rate.how and "H100" in row.gpu_rate.how
    assert row.bottleneck == "GPU"
    out = cost.format_dry_run(spec, path)
    assert "A100 (not measured: FLOP model calibrated on H100" in out
    assert "GPU-bound at 100.0 decode cores per GPU, 10.1 would balance it" in out  # 126.2 / 12.5


def test_a_raw_copy_decodes_at_the_measured_ratio(tmp_path):
    spec, path = _spec(tmp_path, resolution="1080p")
    row = cost.estimate(spec, COUNTS, shape=cluster_shape(spec, path))[0]
    assert row.decode_rate == pytest.approx(80 * 25 / 15 * 0.5)
    assert row.balance_cores_per_gpu == pytest.approx(400 / (25 / 15 * 0.5))
    assert "a raw 1080p copy" in cost.format_dry_run(spec, path) and "15.00x the CPU" in cost.format_dry_run(spec, path)


def test_aug_grid_reads_cluster_yaml(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(tp, "records", SHIPPED)  # the shipped records
    spec = load_spec(REPO / "search_spaces/aug_grid.yaml")
    shape = cluster_shape(spec, "aug_grid.yaml")
    cluster = yaml.safe_load((REPO / "cluster.yaml").read_text())["available_node_types"]
    assert shape.gpu == "A100" and shape.gpu_instance.name == cluster["ray.worker.gpu"]["node_config"]["InstanceType"]
    assert shape.gpu_node_decode_cores == cluster["ray.worker.gpu"]["resources"]["decode_cpu"]
    assert shape.decode_nodes == cluster["ray.worker.cpu"]["max_workers"]
    cores = cost.decode_cores(spec, shape, 12)
    assert cores.train == 63 + 6 * 96 / 2 and cores.eval == 16
    out = cost.format_dry_run(spec, "search_spaces/aug_grid.yaml")
    assert "-bound at 43.9 decode cores per GPU" in out and "dollars: ~$" in out and "storage reads" in out


def test_bad_cost_cluster_is_one_line(tmp_path):
    spec, path = _spec(tmp_path, cluster=str(tmp_path / "nope.yaml"))
    with pytest.raises(SpecError, match=r"cost.cluster: .*nope.yaml: no such file"):
        cluster_shape(spec, path)


def test_shipped_records_are_the_documented_ones():
    """measured.json holds the H100/H200 rates and the decode ratios that docs/benchmarks.md shows."""
    shipped = json.loads((REPO / "k400ray/tune/records/measured.json").read_text())
    docs = (REPO / "docs/benchmarks.md").read_text()
    for kind in ("H100", "H200"):
        for preset, rec in shipped["gpu_train"][kind]["presets"].items():
            assert f"| {preset} |" in docs and f"{rec['clips_per_s']:.1f}" in docs, (kind, preset)
    for res in ("720p", "1080p"):
        for preset, ratio in shipped["raw_over_prepared"][res].items():
            if preset != "record":
                assert f"{ratio:.2f}" in docs, (res, preset)

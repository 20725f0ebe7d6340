"""The --dry-run cost model against numbers worked out by hand from a fixed bench record.

The records below stand in for ``k400ray/tune/records/measured.json`` and ``prices.json`` so
that the expectations do not move when new measurements are shipped. One preset
(tsn_r50_1x1x8, default config), 8 GPUs, 10 epochs, efficient eval every 5, 24,000 train /
2,000 val videos of 1 MB each (cost.dataset_gb 26).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import yaml

from k400ray.tune import cost, storage
from k400ray.tune import throughput as tp
from k400ray.tune.cluster_shape import cluster_shape
from k400ray.tune.dry_run import format_dry_run
from k400ray.tune.spec import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]

FIXED = {
    "gpu_train": {"H100": {"peak_bf16_tflops": 989, "record": "fixed",
                           "presets": {"tsn_r50_1x1x8": {"clips_per_s": 400.0, "batch": 32}}}},
    "peak_bf16_tflops": {"A100": 312, "H100": 989},
    "decode": {
        "ray_data_x_limit": {"tsn_r50_1x1x8": 0.8, "i3d_r50_32x2x1": 0.65},
        "epoch_start_s": {"shuffled": 24.0, "in_order": 12.0, "rows": 240000},
    },
    "decode_by_encoding": {
        "record": "fixed", "source": "fixed", "default": "keyint16-fastdecode",
        "encodings": {
            "keyint250": {"keyframe_interval": 250, "fast_decode": False, "bytes_per_video": 500_000,
                          "cpu_ms_per_clip": {"tsn_r50_1x1x8": 80.0, "i3d_r50_32x2x1": 100.0}},
            "keyint16-fastdecode": {"keyframe_interval": 16, "fast_decode": True, "bytes_per_video": 700_000,
                                    "cpu_ms_per_clip": {"tsn_r50_1x1x8": 40.0, "i3d_r50_32x2x1": 50.0}},
        },
    },
    "raw_over_prepared": {"720p": {"tsn_r50_1x1x8": 5.0, "i3d_r50_32x2x1": 5.0},
                          "1080p": {"tsn_r50_1x1x8": 15.0, "i3d_r50_32x2x1": 14.0}},
}
PRICES = {"instances": {
    "p5.48xlarge": {"gpu": "H100", "gpus": 8, "cores": 192, "usd_per_hour": 80.0, "local_disk_gb": 30000,
                    "local_disk_gb_per_s": 20.0, "network_gbps": 800},
    "p4d.24xlarge": {"gpu": "A100", "gpus": 8, "cores": 96, "usd_per_hour": 20.0, "local_disk_gb": 8000,
                     "local_disk_gb_per_s": 16.0, "network_gbps": 400, "spot_usd_per_hour": 8.0},
    "c6id.24xlarge": {"gpus": 0, "cores": 96, "usd_per_hour": 4.0, "local_disk_gb": 5000, "local_disk_gb_per_s": 8.0,
                      "network_gbps": 40, "spot_usd_per_hour": 1.5},
    "m7i.2xlarge": {"gpus": 0, "cores": 8, "usd_per_hour": 1.0}},
    "efs": {"usd_per_gb_read": 0.02, "client_gb_per_s": 2.0, "file_system_gb_per_s": 10.0}}
COUNTS = cost.VideoCounts(train=24_000, val=2_000)
CLUSTER = {  # p4d trials, 2 decode nodes, a 6-minute idle timeout
    "cluster_name": "t", "max_workers": 4, "idle_timeout_minutes": 6, "provider": {"type": "aws", "region": "x"},
    "head_node_type": "head",
    "available_node_types": {
        "head": {"resources": {"CPU": 0}, "node_config": {"InstanceType": "m7i.2xlarge"}},
        "gpu": {"resources": {"CPU": 33, "GPU": 8, "decode_cpu": 63}, "max_workers": 2,
                "node_config": {"InstanceType": "p4d.24xlarge"}},
        "cpu": {"resources": {"CPU": 96, "decode_cpu": 96}, "max_workers": 2,
                "node_config": {"InstanceType": "c6id.24xlarge"}},
    },
}

SHIPPED = tp.records


@pytest.fixture(scope="module")
def gmacs_cache(tmp_path_factory):
    """One multiply-add cache for the module: counting the full models is the slow part."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def fixed_records(monkeypatch, gmacs_cache):
    monkeypatch.setattr(tp, "records", lambda name="measured.json": PRICES if name == "prices.json" else FIXED)
    monkeypatch.setenv("XDG_CACHE_HOME", str(gmacs_cache))


def _spec(tmp_path, data=None, **cost_section):
    raw = {
        "experiment": "hand", "scale": "full", "data": {"train_index": str(tmp_path / "no-index"), **(data or {})},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0, 1]},
        "training": {"epochs": 10, "eval_interval": 5},
        "resources": {"workers_per_trial": 8, "cpus_per_worker": 4, "gpus_per_worker": 1, "max_concurrent_trials": 1},
        "cost": {"gpu": "H100", "decode_cores_per_gpu": 10, "decode_efficiency": 0.5, "startup_minutes": 6,
                 "dataset_gb": 26, **cost_section},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path), path


def _cluster_spec(tmp_path, *, config=CLUSTER, **cost_section):
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(config))
    section = {"cluster": str(tmp_path / "cluster.yaml"), "gpu": None, "decode_cores_per_gpu": None,
               "decode_efficiency": None, **cost_section}
    return _spec(tmp_path, data={"local_cache": "/mnt/local/k400"}, **section)


def test_shared_reads_by_hand(tmp_path):
    """No local copy: decode-bound at 10 cores per GPU; every epoch reads EFS."""
    spec, path = _spec(tmp_path)
    grid = cost.price_grid(spec, path, counts=COUNTS)
    row = grid.rows[0]
    # GPU: measured on H100, 400 clips/s x 8 = 3,200. Decode: the default encoding's 40 ms per TSN
    # clip = 25 clips/s per core; 10 cores x 8 GPUs x 25 x 0.5 = 1,000. Storage: one node reading
    # EFS at its 2 GB/s client limit (the file system's 10 GB/s shared by 1 trial), 1 MB per
    # video: 2,000. Network: every clip decoded on the GPU node: no bound. Decode binds.
    assert row.gpu_rate.clips_per_s == 400.0 and row.gpu_rate.how == "measured on H100"
    assert row.bounds == {"GPU": 3200.0, "decode": pytest.approx(1000.0), "storage": pytest.approx(2000.0),
                          "network": math.inf}
    assert row.bottleneck == "decode" and row.balance_cores_per_gpu == pytest.approx(32.0)  # 400 / 12.5
    assert grid.size.train_video_bytes == pytest.approx(1e6) and grid.encoding == "keyint16-fastdecode"
    # training: 10 x (24,000 / 1,000 s + 24 s x 24,000 / 240,000 epoch start) = 264 s
    assert row.train_h * 3600 == pytest.approx(264.0)
    # efficient eval after epochs 5 and 10: 16 eval tasks (2 per worker) x 25 x 0.5 = 200 videos/s
    # (the GPUs would do 8 x 400 x 3 = 9,600, EFS 2,000): 2 x (2,000 / 200 + 0.1 s start) = 20.2 s
    assert row.evaluations == 2 and row.efficient_h * 3600 == pytest.approx(20.2)
    # accurate: 25 frames per video -> 16 x 25 x 8/25 x 0.5 = 64 videos/s: 2,000 / 64 + 0.1 = 31.35 s
    assert row.accurate_h * 3600 == pytest.approx(31.35)
    assert row.startup_h * 3600 == pytest.approx(360.0)
    wall_s = 264 + 20.2 + 31.35 + 360
    assert row.wall_h * 3600 == pytest.approx(wall_s) and row.gpu_hours == pytest.approx(8 * wall_s / 3600)
    assert grid.grid_h * 3600 == pytest.approx(2 * wall_s)  # one at a time
    d = grid.dollars
    # one p5 started once, up for both trials and its 10-minute idle timeout (no cluster file)
    assert d.gpu_node_hours == pytest.approx((2 * wall_s + 600) / 3600)
    assert d.gpu_nodes == pytest.approx(80.0 * d.gpu_node_hours)
    assert d.decode_nodes == 0.0  # 80 cores fit in the p5's 192 - 33 spare
    assert d.head == pytest.approx(1.0 * 2 * wall_s / 3600)
    # per trial: 10 epochs x 24,000 videos + 3 evaluations x 2,000 videos, 1 MB each = 246 GB
    assert d.reads.gb == pytest.approx(2 * 246.0) and d.storage == pytest.approx(2 * 246.0 * 0.02)


def test_staged_copies_on_a_cluster_by_hand(tmp_path):
    """data.local_cache on a cluster whose nodes have NVMe: GPU-bound; EFS read once per node start."""
    spec, path = _cluster_spec(tmp_path)
    grid = cost.price_grid(spec, path, counts=COUNTS)
    row = grid.rows[0]
    gpu = 8 * 400 * 312 / 989  # the H100's fraction of peak on the A100 of p4d
    # decode: 63 decode_cpu + 2 decode nodes x 96 (1 trial at once) = 255 tasks x 25 x 0.8 = 5,100;
    # storage: the p4d's NVMe, 16 GB/s / 1 MB = 16,000; the GPU binds, balanced at 50.5 cores
    # (all on the GPU node: no decode node busy, no clip sent over the network)
    assert row.bounds == {"GPU": pytest.approx(gpu), "decode": pytest.approx(5100.0),
                          "storage": pytest.approx(16000.0), "network": math.inf}
    assert row.bottleneck == "GPU" and row.decode_nodes == 0
    d = grid.dollars
    stage_s = 26 / 2.0  # the whole copy at one EFS client's 2 GB/s
    assert d.staging_h * 3600 == pytest.approx(stage_s)
    assert d.gpu_node_hours == pytest.approx(2 * row.wall_h + (stage_s + 360) / 3600)
    assert d.decode_node_hours == 0
    assert d.reads.gb == pytest.approx(26.0) and d.storage == pytest.approx(0.52)  # one node start x 26 GB
    assert d.gpu_nodes / d.total > 0.9  # the GPU nodes are the cost


def test_a_decode_bound_raw_copy_keeps_decode_nodes_busy_by_hand(tmp_path):
    spec, path = _cluster_spec(tmp_path, resolution="1080p")
    grid = cost.price_grid(spec, path, counts=COUNTS)
    row = grid.rows[0]
    per_core = 1000 / 80 / 15 * 0.8  # x264 defaults' TSN clip, 15x at source resolution, Ray Data's share
    # decode 255 x 0.667 = 170 clips/s; both decode nodes busy: storage 16 + 2 x 8 GB/s = 32,000;
    # 192 of 255 cores decode off the GPU node: its 50 GB/s / 1.2 MB per TSN clip / (192 / 255)
    clip = 8 * 3 * 224 * 224
    assert row.bounds["decode"] == pytest.approx(255 * per_core)
    assert row.decode_nodes == 2 and row.bounds["storage"] == pytest.approx(32000.0)
    assert row.bounds["network"] == pytest.approx(50e9 / clip / (192 / 255))
    assert row.bottleneck == "decode"
    d = grid.dollars
    # each trial's 2 decode nodes for its wall clock; started once (1 trial at once), staging + idle
    assert d.decode_node_hours == pytest.approx(2 * 2 * row.wall_h + 2 * (13 + 360) / 3600)
    assert d.reads.gb == pytest.approx(3 * 26.0)  # the GPU node and the 2 decode nodes stage it once


def _on_spot(*node_types):
    config = copy.deepcopy(CLUSTER)
    for name in node_types:
        config["available_node_types"][name]["node_config"]["InstanceMarketOptions"] = {"MarketType": "spot"}
    return config


def test_spot_decode_nodes_by_hand(tmp_path):
    """The raw copy's decode-bound trials keep both decode nodes busy; on spot (the cluster file's
    InstanceMarketOptions) they are billed at $1.50 instead of $4.00 an hour, the GPU nodes stay
    on demand, and the dry run prints both markets for both."""
    spec, path = _cluster_spec(tmp_path, config=_on_spot("cpu"), resolution="1080p")
    grid = cost.price_grid(spec, path)  # Kinetics-400's sizes, as the dry run's text below
    row, d = grid.rows[0], grid.dollars
    assert grid.shape.decode_spot and not grid.shape.gpu_spot
    decode_h = 2 * 2 * row.wall_h + 2 * (13 + 360) / 3600  # as in the on-demand case above
    gpu_h = 2 * row.wall_h + (13 + 360) / 3600
    assert d.decode.hours == pytest.approx(decode_h) and d.gpu.hours == pytest.approx(gpu_h)
    assert (d.decode.spot, d.decode.on_demand) == (pytest.approx(1.5 * decode_h), pytest.approx(4.0 * decode_h))
    assert d.decode_nodes == d.decode.spot  # billed as the cluster buys them
    assert (d.gpu.spot, d.gpu.on_demand) == (pytest.approx(8.0 * gpu_h), pytest.approx(20.0 * gpu_h))
    assert d.gpu_nodes == d.gpu.on_demand
    # 2 trials one at a time: the head for the grid; EFS: 3 node starts x 26 GB at $0.02
    assert d.total == pytest.approx(20.0 * gpu_h + 1.5 * decode_h + 1.0 * grid.grid_h + 3 * 26 * 0.02)
    out = format_dry_run(spec, path)
    assert f"dollars: ~${d.total:,.0f} with decode nodes on spot = ${20 * gpu_h:,.0f} GPU nodes" in out
    assert f"${1.5 * decode_h:,.0f} decode nodes ({decode_h:,.1f} c6id.24xlarge node-hours, spot)" in out
    where = tmp_path / "cluster.yaml"
    assert (f"  spot vs on demand: decode nodes ${1.5 * decode_h:,.0f} / ${4 * decode_h:,.0f} ({where} buys them "
            f"on spot); GPU nodes ${8 * gpu_h:,.0f} / ${20 * gpu_h:,.0f} ({where} buys them on demand)") in out

    both, both_path = _cluster_spec(tmp_path, config=_on_spot("cpu", "gpu"), resolution="1080p")
    d2 = cost.price_grid(both, both_path).dollars
    assert d2.gpu_nodes == pytest.approx(8.0 * gpu_h) and d2.total == pytest.approx(d.total - 12.0 * gpu_h)
    assert "with GPU and decode nodes on spot" in format_dry_run(both, both_path)


def test_a_spot_price_set_in_the_spec_and_a_bad_market(tmp_path):
    spec, path = _cluster_spec(tmp_path, config=_on_spot("cpu"), resolution="1080p", instances={
        "c6id.24xlarge": {"usd_per_hour": 4.0, "cores": 96, "local_disk_gb": 5000, "local_disk_gb_per_s": 8.0,
                          "network_gbps": 40, "spot_usd_per_hour": 1.0}})
    d = cost.price_grid(spec, path, counts=COUNTS).dollars
    assert d.decode_nodes == pytest.approx(1.0 * d.decode.hours)
    bad = _on_spot()
    bad["available_node_types"]["cpu"]["node_config"]["InstanceMarketOptions"] = "spot"
    spec, path = _cluster_spec(tmp_path, config=bad)
    with pytest.raises(SpecError, match=r"cost.cluster: .*cluster.yaml: available_node_types.cpu.node_config."
                                        r"InstanceMarketOptions: expected MarketType spot or capacity-block, got 'spot'"):
        cluster_shape(spec, path)


def test_another_gpu_kind_goes_through_the_flop_model(tmp_path):
    spec, path = _spec(tmp_path, gpu="A100", decode_cores_per_gpu=100)
    row = cost.price_grid(spec, path, counts=COUNTS).rows[0]
    # the same fraction of peak as on H100: 400 x 312 / 989
    assert row.gpu_rate.clips_per_s == pytest.approx(400 * 312 / 989)
    assert "FLOP model" in row.gpu_rate.how and "H100" in row.gpu_rate.how
    assert row.bottleneck == "GPU"
    out = format_dry_run(spec, path)
    assert "A100 (not measured: FLOP model calibrated on H100" in out
    assert "100.0 decode cores per GPU, 10.1 would balance it" in out  # 126.2 / 12.5
    assert "-> GPU-bound" in out


def test_encoding_picks_the_decode_rate(tmp_path):
    """The old x264-defaults copy costs twice the CPU per TSN clip in this record."""
    spec, path = _spec(tmp_path, encoding="keyint250")
    row = cost.price_grid(spec, path, counts=COUNTS).rows[0]
    assert row.bounds["decode"] == pytest.approx(80 * 1000 / 80 * 0.5)
    bad, bad_path = _spec(tmp_path, encoding="keyint7")
    with pytest.raises(SpecError, match="cost.encoding: unknown encoding 'keyint7'"):
        cost.price_grid(bad, bad_path, counts=COUNTS)


def test_the_prepare_manifest_names_encoding_and_size(tmp_path):
    """Without cost.dataset_gb: the prepared copy's own manifest says how it was encoded and how big it is."""
    root, index = tmp_path / "prepared", tmp_path / "index"
    root.mkdir()
    index.mkdir()
    (index / "manifest.json").write_text(json.dumps({"data_root": str(root), "classes": ["a"], "splits": {}}))
    (root / "prepare-manifest.json").write_text(json.dumps({
        "encoding": {"codec": "libx264", "keyframe_interval": 250, "fast_decode": False},
        "files": {"list": "prepare-files.parquet", "count": 26_000, "bytes": 13e9}}))
    spec, path = _spec(tmp_path, dataset_gb=None)
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"train_index": str(index)})})
    assert storage.prepared_encoding(spec, path) == ("keyint250", "the prepare manifest of the indexed copy")
    size = storage.data_size(spec, 24_000, 2_000, "keyint250")
    assert size.total_gb == pytest.approx(13.0) and size.source == "the prepare manifest's list of files"
    assert size.train_video_bytes == pytest.approx(5e5)
    (tmp_path / "x").mkdir()
    nothing, _ = _spec(tmp_path / "x", dataset_gb=None)  # no index, no manifest: the record's bytes per video
    assert storage.data_size(nothing, 24_000, 2_000, "keyint16-fastdecode").total_gb == pytest.approx(26_000 * 0.7e-3)


def test_a_raw_copy_decodes_at_the_measured_ratio(tmp_path):
    spec, path = _spec(tmp_path, resolution="1080p")
    row = cost.price_grid(spec, path, counts=COUNTS).rows[0]
    assert row.decode_rate == pytest.approx(80 * 1000 / 80 / 15 * 0.5)
    assert "a raw 1080p copy" in format_dry_run(spec, path) and "15.00x the CPU" in format_dry_run(spec, path)


def test_shipped_specs_priced_on_cluster_yaml(monkeypatch):
    """aug_grid.yaml and seed_sheet.yaml on the same cluster, with staged copies: GPU nodes are
    most of the dollars, storage a small share, and each preset's line names its bounds."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(tp, "records", SHIPPED)  # the shipped records
    cluster = yaml.safe_load((REPO / "cluster.yaml").read_text())["available_node_types"]
    for name in ("aug_grid.yaml", "seed_sheet.yaml"):
        spec = load_spec(REPO / "search_spaces" / name)
        assert spec.cost.cluster == "cluster.yaml" and spec.data.local_cache
        grid = cost.price_grid(spec, name)
        shape = grid.shape
        assert shape.gpu_instance.name == cluster["ray.worker.gpu"]["node_config"]["InstanceType"]
        assert shape.gpu_node_decode_cores == cluster["ray.worker.gpu"]["resources"]["decode_cpu"]
        assert shape.decode_nodes == cluster["ray.worker.cpu"]["max_workers"]
        assert storage.reads_staged(spec, shape)
        d = grid.dollars
        assert d.gpu_nodes > 0.5 * d.total and d.storage < 0.05 * d.total, (name, d)
        out = format_dry_run(spec, f"search_spaces/{name}")
        for preset in dict.fromkeys(r.preset for r in grid.rows):
            assert any(ln.startswith(f"  {preset}") and "GPU " in ln and "decode " in ln and "storage " in ln
                       and "-bound" in ln for ln in out.splitlines()), (name, preset)


def test_bad_cost_cluster_is_one_line(tmp_path):
    spec, path = _spec(tmp_path, cluster=str(tmp_path / "nope.yaml"))
    with pytest.raises(SpecError, match=r"cost.cluster: .*nope.yaml: no such file"):
        cluster_shape(spec, path)


def test_shipped_records_are_the_documented_ones():
    """measured.json holds the H100/H200 rates, the encoding table and the raw ratios that
    docs/benchmarks.md shows."""
    shipped = json.loads((REPO / "k400ray/tune/records/measured.json").read_text())
    docs = (REPO / "docs/benchmarks.md").read_text()
    for kind in ("H100", "H200"):
        for preset, rec in shipped["gpu_train"][kind]["presets"].items():
            assert f"| {preset} |" in docs and f"{rec['clips_per_s']:.1f}" in docs, (kind, preset)
    for res in ("720p", "1080p"):
        for preset, ratio in shipped["raw_over_prepared"][res].items():
            if preset != "record":
                assert f"{ratio:.2f}" in docs, (res, preset)
    table = shipped["decode_by_encoding"]
    assert table["default"] in table["encodings"]
    for row in table["encodings"].values():
        for ms in row["cpu_ms_per_clip"].values():
            assert f"{ms:.1f}" in docs, row

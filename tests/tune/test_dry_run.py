"""``k400ray tune SPEC --dry-run``: trial table, resources and a GPU-hours estimate, nothing started."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k400ray.tune import cost
from k400ray.tune.dry_run import format_dry_run, schedule_text
from k400ray.tune.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def test_aug_grid_dry_run(cli_app, no_ray, monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli_app, ["tune", "search_spaces/aug_grid.yaml", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    rows = [ln for ln in out.splitlines() if re.match(r"^(tsn|tsm|i3d)_\S+\s+\S+\s+\d+\s+100\s", ln)]
    assert len(rows) == 12
    assert "12 trials" in out
    assert "8 workers x (4 CPU + 1 GPU)" in out
    assert "Kinetics-400 sizes: no index at /mnt/k400/index" in out and "240,000 train / 19,800 val" in out
    total = float(re.search(r"estimated cost: ([\d,.]+) A100 GPU-hours", out).group(1).replace(",", ""))
    assert 10 < total < 10_000
    # the cluster's GPU was never benchmarked: said so; every preset's bottleneck named; dollars
    assert "A100 (not measured: FLOP model calibrated on H100 and H200; p4d.24xlarge" in out
    assert all(re.search(rf"  {p}: training clips/s GPU [\d,]+, decode [\d,]+, storage [\d,]+, network \S+ -> "
                         rf"(GPU|decode|storage|network)-bound; .* [\d.]+ decode cores per GPU, [\d.]+ would balance it",
                         out) for p in ("tsn_r50_1x1x8", "tsm_r50_1x1x8", "i3d_r50_32x2x1"))
    assert re.search(r"wall clock: ~[\d.]+ h per trial .* ~[\d.]+ h for the grid at 2 trial\(s\) at once", out)
    assert re.search(r"dollars: ~\$[\d,]+ on demand = \$[\d,]+ GPU nodes .* storage reads .* staged to each", out)
    # both markets: cluster.yaml buys the decode nodes on spot (none busy here), the GPU nodes on demand
    assert re.search(r"spot vs on demand: decode nodes \$0 / \$0 \(none busy; cluster.yaml buys them on spot\); "
                     r"GPU nodes \$[\d,]+ / \$[\d,]+ \(cluster.yaml buys them on demand\)", out)
    # docs/cluster.md shows this very output
    shown = re.search(r"```text\n(search_spaces/aug_grid.yaml: .*?)```", (REPO / "docs" / "cluster.md").read_text(), re.S)
    assert shown and shown.group(1).strip() == out.strip()
    assert not (REPO / "k400_aug_grid").exists()


# The sheet's rows (docs/reference.md section 1): preset, config, seed, then what the trial
# trains with on 8 GPUs: lr after linear scaling, total batch, schedule. GluonCV's recipes are
# 8 x 8 at 0.01 (TSN cosine, I3D steps 40/80), MMAction2's TSN 32 x 8 at 0.01.
SHEET_ROWS = [
    ("tsn_r50_1x1x7", "gluoncv", 0, "0.01", "64 (8x8)", "cosine to 0, no warmup"),
    ("tsn_r50_1x1x8", "default", 0, "0.01", "256 (8x32)", "step x0.1 at 40,80, no warmup"),
    ("tsn_r50_1x1x8", "randaugment", 0, "0.01", "256 (8x32)", "step x0.1 at 40,80, no warmup"),
    ("tsn_r50_1x1x8", "cutmix", 0, "0.01", "256 (8x32)", "step x0.1 at 40,80, no warmup"),
    ("tsn_r50_1x1x8", "mixup", 0, "0.01", "256 (8x32)", "step x0.1 at 40,80, no warmup"),
    ("tsm_r50_1x1x8", "default", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("tsm_r50_1x1x8", "randaugment", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("tsm_r50_1x1x8", "randaugment", 1, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("tsm_r50_1x1x8", "mixup", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("tsm_mobilenetv2_dense_1x1x8", "default", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "gluoncv", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "default", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "default", 1, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "randaugment", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "mixup", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
    ("i3d_r50_32x2x1", "cutmix", 0, "0.01", "64 (8x8)", "step x0.1 at 40,80, no warmup"),
]


def test_seed_sheet_dry_run_lists_every_sheet_row_with_its_recipe(cli_app, no_ray, monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli_app, ["tune", "search_spaces/seed_sheet.yaml", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "16 trials (14 rows of grid.rows)" in out
    rows = [re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines() if re.match(r"^(tsn|tsm|i3d)_", ln)]
    assert [(r[0], r[1], int(r[2]), r[4], r[5], r[6]) for r in rows] == SHEET_ROWS
    assert all(r[3] == "100" for r in rows)
    # GluonCV's views: TSN 25 frames x TenCrop; I3D 10 clips x ThreeCrop 224, a view as costly as
    # a training clip (MMAction2's ThreeCrop 256 costs more)
    views = {(r[0], r[1]): r[8] for r in rows}
    gmacs = {(r[0], r[1]): r[7].split(" / ") for r in rows}
    assert views[("tsn_r50_1x1x7", "gluoncv")] == "1 / 10" and views[("i3d_r50_32x2x1", "gluoncv")] == "1 / 30"
    train, _, accurate = gmacs[("i3d_r50_32x2x1", "gluoncv")]
    assert accurate == train and gmacs[("i3d_r50_32x2x1", "default")][2] != train


def test_dry_run_lr_is_the_trials_own(tmp_path, monkeypatch):
    """Scaled to the spec's workers x batch per worker by the recipe the trial resolves."""
    from k400ray.engine.recipe import resolve_recipe
    from k400ray.tune.spec import trial_config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = load_spec(REPO / "search_spaces/seed_sheet.yaml")
    spec = spec.model_copy(update={
        "training": spec.training.model_copy(update={"batch_per_worker": 4}),
        "resources": spec.resources.model_copy(update={"workers_per_trial": 2}),
    })
    rows = cost.estimate(spec, cost.VideoCounts(train=10, val=10))
    for row in rows:
        assert row.recipe == resolve_recipe(trial_config(spec, row.preset, row.aug, row.seed, num_classes=400))
        assert row.recipe.total_batch == 8
    gluoncv_tsn = rows[0]
    assert (gluoncv_tsn.aug, gluoncv_tsn.recipe.lr) == ("gluoncv", pytest.approx(0.01 * 8 / 64))
    assert schedule_text(gluoncv_tsn.recipe) == "cosine to 0, no warmup"


def test_schedule_text_with_a_warmup_and_a_spec_lr(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = load_spec(REPO / "search_spaces/demo.yaml")  # training.lr 0.005, batch 4, 4 epochs, milestone 3
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"warmup_epochs": 1})})
    out = format_dry_run(spec, "demo.yaml")
    row = next(ln for ln in out.splitlines() if ln.startswith("tsm_r50_1x1x8"))
    assert "0.005*" in row and "4 (1x4)" in row and "step x0.1 at 3, warmup 1" in row


def test_estimate_caches_gmacs(tmp_path, monkeypatch):
    """The model (hand-computed expectations) is tests/tune/test_cost.py; here: the second dry run
    skips model building."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(REPO)
    spec = load_spec(REPO / "search_spaces/aug_grid.yaml")
    row = cost.estimate(spec, cost.VideoCounts(train=1000, val=100))[0]
    assert row.gpu_hours > 0 and row.bottleneck in ("GPU", "decode")
    assert (tmp_path / "cache" / "k400ray" / "gmacs.json").is_file()


def test_video_counts_from_an_index(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    manifest = {"classes": ["a", "b"], "splits": {"train": {"videos": 30}, "val": {"videos": 7}}}
    (index / "manifest.json").write_text(json.dumps(manifest))
    spec = load_spec(REPO / "search_spaces/demo.yaml").model_copy(
        update={"data": load_spec(REPO / "search_spaces/demo.yaml").data.model_copy(update={"train_index": str(index)})}
    )
    counts = cost.video_counts(spec)
    assert (counts.train, counts.val) == (30, 7) and counts.index == str(index)

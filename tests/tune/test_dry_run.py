"""``k400ray tune SPEC --dry-run``: trial table, resources and a GPU-hours estimate, nothing started."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k400ray.tune import cost
from k400ray.tune.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def no_ray(monkeypatch, tmp_path):
    """A dry run must not start Ray: any init fails the test. The GMAC cache goes to tmp."""
    import k400ray.runtime

    def refuse(*args, **kwargs):
        raise AssertionError("dry run started Ray")

    monkeypatch.setattr(k400ray.runtime, "init_ray", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


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
    total = float(re.search(r"estimated cost: ([\d,.]+) GPU-hours", out).group(1).replace(",", ""))
    assert 10 < total < 10_000
    assert "TFLOP/s" in out and "utilisation" in out
    assert not (REPO / "k400_aug_grid").exists()


def test_estimate_follows_the_formula(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = load_spec(REPO / "search_spaces/aug_grid.yaml")
    counts = cost.VideoCounts(train=1000, val=100, source="test")
    row = cost.estimate(spec, counts)[0]
    flops = 2e9 * (row.epochs * (1000 * 3 * row.train_gmacs + 100 * row.efficient_views * row.efficient_gmacs)
                   + 100 * row.accurate_views * row.accurate_gmacs)
    assert row.gpu_hours == pytest.approx(flops / (cost.PEAK_TFLOPS * 1e12 * cost.UTILISATION) / 3600)
    assert (tmp_path / "cache" / "k400ray" / "gmacs.json").is_file()  # second dry run skips model building


def test_video_counts_from_an_index(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    manifest = {"classes": ["a", "b"], "splits": {"train": {"videos": 30}, "val": {"videos": 7}}}
    (index / "manifest.json").write_text(json.dumps(manifest))
    spec = load_spec(REPO / "search_spaces/demo.yaml").model_copy(
        update={"data": load_spec(REPO / "search_spaces/demo.yaml").data.model_copy(update={"train_index": str(index)})}
    )
    counts = cost.video_counts(spec)
    assert (counts.train, counts.val) == (30, 7) and str(index) in counts.source

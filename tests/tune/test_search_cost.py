"""Pricing a search (``k400ray tune SPEC --dry-run`` with a ``search`` section): trials are grid
points x list-axis values x samples, and ASHA's range runs from most stopped to none stopped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.tune.search_cost import expected_epochs, rungs

REPO = Path(__file__).resolve().parents[2]


def _money(text: str) -> float:
    return float(text.replace(",", ""))


def test_mixup_alpha_dry_run_prices_both_alphas_for_every_mixup_row(cli_app, no_ray, monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli_app, ["tune", "search_spaces/mixup_alpha.yaml", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "6 trials (3 rows of grid.rows x 2 values of augmentation.mixup_alpha)" in out
    rows = re.findall(r"^(tsn|tsm|i3d)_\S+\s+mixup\s+0\s+(0\.2|1\.0)\s+1\s+100\s", out, re.M)
    assert sorted(a for _, a in rows) == ["0.2"] * 3 + ["1.0"] * 3
    total = _money(re.search(r"estimated cost: ([\d,.]+) A100 GPU-hours for 6 trials", out).group(1))
    assert 100 < total < 10_000
    full = re.search(r"ASHA: not used \(scheduler.kind fifo\): .* full cost ~\$([\d,]+)", out)
    assert full and _money(full.group(1)) == _money(re.search(r"dollars: ~\$([\d,]+)", out).group(1))


def _search_spec(tmp_path: Path, **search) -> Path:
    spec = yaml.safe_load((REPO / "search_spaces" / "mixup_alpha.yaml").read_text())
    spec["cost"]["cluster"] = str(REPO / "cluster.yaml")
    spec["search"] = search
    spec["scheduler"] = {"kind": "asha", "grace_period": 10, "reduction_factor": 3}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sampled_search_with_asha_prints_the_range(cli_app, no_ray, tmp_path):
    path = _search_spec(tmp_path, space={"augmentation.mixup_alpha": [0.2, 1.0],
                                         "training.lr": {"loguniform": [0.001, 0.1]}},
                        num_samples=4, searcher="random")
    result = CliRunner().invoke(cli_app, ["tune", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "24 trials (3 rows of grid.rows x 2 values of augmentation.mixup_alpha x 4 samples), searcher random" in out
    assert "sampled axes (training.lr) are priced at the spec's own value" in out
    low, high = map(_money, re.search(r"ASHA: between \$([\d,]+) \(most stopped at their rungs\) and "
                                      r"\$([\d,]+) \(none stopped\)", out).groups())
    assert low < high and high == _money(re.search(r"dollars: ~\$([\d,]+)", out).group(1))
    assert "tsn_r50_1x1x8: rungs at epochs 10, 30, 90; 1/3 go on past each, 3.7% reach the last epoch" in out


def test_rungs_and_the_most_stopped_epochs():
    assert rungs(100, 10, 3) == [10, 30, 90]
    assert rungs(8, 1, 2) == [1, 2, 4]  # a trial at its last epoch is never stopped
    assert rungs(5, 10, 2) == []  # grace at the last epoch: nothing to stop
    trained, share = expected_epochs(100, [10, 30, 90], 3)
    assert trained == pytest.approx(10 + 20 / 3 + 60 / 9 + 10 / 27) and share == pytest.approx(1 / 27)
    assert expected_epochs(100, [], 3) == (100, 1.0)

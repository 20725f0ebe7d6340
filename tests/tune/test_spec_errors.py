"""A spec that cannot run is refused before anything starts: one line naming the field, exit 2,
no file written (no storage, no MLflow database)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

GOOD = {
    "experiment": "bad",
    "scale": "toy",
    "data": {"train_index": "index"},
    "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default"]},
    "mlflow": {"tracking_uri": "sqlite:///mlflow.db"},
    "storage_path": "runs",
}


def _with(path: str, value):
    spec = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, leaf = path.split(".")
    node = spec
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return spec


CASES = {
    "unknown field": (_with("resources.workerz", 2), "resources.workerz"),
    "unknown preset": (_with("grid.presets", ["tsn_r101_1x1x8"]), "grid.presets"),
    "unknown augmentation": (_with("grid.augmentations", ["autoaugment"]), "grid.augmentations"),
    "config without meaning": (_with("grid.augmentations", ["gluoncv"]), "grid.augmentations"),
    "negative alpha": (_with("augmentation.mixup_alpha", -1.0), "augmentation.mixup_alpha"),
    "randaugment level above 10": (_with("augmentation.randaugment_magnitude", 30), "augmentation.randaugment_magnitude"),
    "zero workers": (_with("resources.workers_per_trial", 0), "resources.workers_per_trial"),
    "wrong type": (_with("training.epochs", "ten"), "training.epochs"),
    "unknown compile mode": (_with("training.compile", "fast"), "training.compile"),
    # a search's axes and the spec's named configs
    "bad distribution": (_with("search.space", {"training.lr": {"gaussian": [0, 1]}}), "search.space.training.lr"),
    "unknown searched field": (_with("search.space", {"training.lrate": [0.1]}), "space.training.lrate"),
    "range low > high": (_with("search.space", {"training.lr": {"uniform": [0.1, 0.01]}}), "search.space.training.lr"),
    "unknown base config": (_with("configs", {"mixup_a02": {"base": "mixupp"}}), "configs.mixup_a02.base"),
    "named config shadows a built-in": (_with("configs", {"mixup": {"base": "default"}}), "configs.mixup"),
    "grid names an undefined config": (_with("grid.augmentations", ["mixup_a02"]), "grid.augmentations"),
    "named config overrides an unknown field": (
        _with("configs", {"m": {"base": "mixup", "augmentation": {"mixup_alfa": 0.2}}}), "augmentation.mixup_alfa"),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_spec_is_one_line_exit_2_and_writes_nothing(cli_app, tmp_path, monkeypatch, case, dry_run):
    spec, field = CASES[case]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", "spec.yaml", *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_missing_index_is_refused_but_dry_run_needs_none(cli_app, tmp_path, monkeypatch):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(GOOD))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", "spec.yaml"])
    assert result.exit_code == 2
    assert "data.train_index" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    dry = CliRunner().invoke(cli_app, ["tune", "spec.yaml", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]

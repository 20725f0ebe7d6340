"""``tune --smoke``: the grid's trials, 1 epoch on the first videos of each class, both eval
modes, under ``-smoke`` names that never meet the real grid's; no Ray needed here."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from k400ray.tune.smoke import first_per_class, smoke_spec, write_smoke_indexes
from k400ray.tune.spec import SearchSpec, check_indexes


def _index(root, per_split: dict[str, list[int]]):
    """A hand-made index: one shard per split, rows labelled as given."""
    splits = {}
    for split, labels in per_split.items():
        (root / split).mkdir(parents=True)
        rows = {"video_id": [f"{split}{i}" for i in range(len(labels))],
                "path": [f"{split}/{i}.mp4" for i in range(len(labels))], "label": labels,
                "num_frames": [24] * len(labels), "width": [64] * len(labels), "height": [48] * len(labels),
                "decoder": ["decord"] * len(labels)}
        pq.write_table(pa.table(rows), root / split / "part-00000.parquet")
        splits[split] = {"videos": len(labels), "shards": [f"{split}/part-00000.parquet"],
                         "missing": 0, "corrupt": 1, "rejected": 0}
    manifest = {"format_version": 1, "data_root": "/videos", "layout": "csv", "rows_per_shard": 1000,
                "classes": ["a", "b", "c"], "num_classes": 3, "splits": splits,
                "excluded": [{"split": "train", "path": "x.mp4", "reason": "empty file (0 bytes)"}]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_first_per_class_keeps_index_order():
    labels = np.array([2, 0, 0, 1, 0, 2, 2, 1])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 5, 7]
    assert first_per_class(np.array([], int), 2).tolist() == []


def test_smoke_spec_names_epochs_and_small_index(tmp_path):
    index = _index(tmp_path / "index", {"train": [0, 1, 2] * 5, "val": [2, 1, 0, 0, 1, 2, 0]})
    real = SearchSpec.model_validate({
        "experiment": "grid", "scale": "toy", "data": {"train_index": str(index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default", "mixup"], "seeds": [0]},
        "training": {"epochs": 50, "limit_videos": 100, "milestones": [20, 40], "eval_interval": 5},
        "scheduler": {"kind": "asha"}, "mlflow": {"experiment": "lab"}, "storage_path": str(tmp_path / "runs"),
    })
    smoke = smoke_spec(real)
    assert (smoke.experiment, smoke.mlflow_experiment) == ("grid-smoke", "lab-smoke")
    assert smoke.storage_path == real.storage_path  # a sibling experiment directory, not the grid's
    assert smoke.grid_points() == real.grid_points()
    t = smoke.training
    assert (t.epochs, t.eval_interval, t.limit_videos, t.milestones) == (1, 1, None, None)
    assert smoke.scheduler.kind == "fifo"
    assert not (tmp_path / "index-smoke").exists()  # smoke_spec writes nothing

    assert write_smoke_indexes(real) == [tmp_path / "index-smoke"]
    assert check_indexes(smoke, "spec.yaml") == 3
    small = json.loads((tmp_path / "index-smoke" / "manifest.json").read_text())
    assert small["classes"] == ["a", "b", "c"] and small["data_root"] == "/videos" and small["excluded"] == []
    assert {s: v["videos"] for s, v in small["splits"].items()} == {"train": 6, "val": 6}
    train = pq.read_table(tmp_path / "index-smoke" / "train" / "part-00000.parquet")
    assert train["video_id"].to_pylist() == ["train0", "train1", "train2", "train3", "train4", "train5"]
    write_smoke_indexes(real)  # a second smoke run rewrites it
    assert json.loads((tmp_path / "index-smoke" / "manifest.json").read_text()) == small


def test_smoke_and_dry_run_together_is_one_line_error(cli_app):
    result = CliRunner().invoke(cli_app, ["tune", "search_spaces/aug_grid.yaml", "--smoke", "--dry-run"])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0 and "--smoke" in result.stderr


def test_tune_retries_a_trial_whose_node_was_lost(tmp_path):
    """A lost node takes the trial's own process with it: Tune must retry the trial (Train's
    FailureConfig only covers its workers), as often as ``resources.max_failures`` says."""
    from k400ray.ray_private import tuner_run_config
    from k400ray.tune import runner

    spec = SearchSpec.model_validate({
        "experiment": "x", "data": {"train_index": "idx"}, "storage_path": str(tmp_path / "runs"),
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["default"], "seeds": [0]},
        "resources": {"max_failures": 3}})
    tuner = runner._new_tuner(spec, lambda config: None)
    assert tuner_run_config(tuner).failure_config.max_failures == 3

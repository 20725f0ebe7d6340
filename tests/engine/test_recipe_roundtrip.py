"""A trial's configuration is one object from the spec file to evaluation: spec -> TrialConfig ->
TrialRecipe -> the Train worker's config -> a checkpoint -> what ``k400ray eval`` and a resume
load back, unchanged. Checkpoints and specs of the older layouts (a flat config with ``aug``, a
recipe whose preset is a name beside a ``preset_spec`` dict; ``augmentations:`` in the grid)
still load, and an old checkpoint still evaluates. Toy scale; the one Ray use is the evaluation
of two tiny checkpoints on the session's synthetic set."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from k400ray import presets
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.recipe import TrialRecipe, for_world, resolve_recipe
from k400ray.models.build import build_model
from k400ray.tune.spec import load_spec, trial_config

SPEC = {
    "experiment": "roundtrip", "scale": "toy", "data": {"train_index": "IDX"},
    "grid": {"presets": ["tsm_r50_1x1x8"], "configs": ["randaugment", "cutmix"], "seeds": [3]},
    "augmentation": {"cutmix_alpha": 0.5, "randaugment_num_ops": 3},
    "training": {"epochs": 2, "batch_per_worker": 4, "milestones": [1], "eval_interval": 1},
    "resources": {"workers_per_trial": 2, "decode_tasks": 2, "eval_batch_videos": 2, "max_failures": 0},
    "storage_path": "runs",
}


def _spec_file(tmp_path: Path, index, **changes) -> Path:
    spec = json.loads(json.dumps(SPEC))
    spec["data"]["train_index"] = str(index)
    for section, value in changes.items():
        spec[section] = value
    path = tmp_path / f"spec-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _save(directory: Path, cfg: TrialConfig, recipe_record: dict, config_record: dict | None = None, seed: int = 0):
    """A checkpoint as the worker writes it (engine/worker.py ``WorkerRun.report``), of a freshly
    initialised model of the recipe's preset."""
    recipe = TrialRecipe.model_validate(recipe_record)
    torch.manual_seed(seed)
    model = build_model(recipe.preset.arch, cfg.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    ckpt.save(directory, model=model, optimizer=optimizer, scheduler=scheduler, epoch=recipe.epochs,
              config=config_record or cfg.model_dump(mode="json"), metrics={"epoch": recipe.epochs, "done": 1},
              predictions={}, world_size=recipe.world_size, base_lr=recipe.lr, recipe=recipe_record)
    return directory


def _old_recipe_record(recipe: TrialRecipe) -> dict:
    """The recipe record as written before the preset was typed: its name, and its data beside."""
    record = recipe.model_dump(mode="json")
    record["preset"] = recipe.preset.name
    record["preset_spec"] = json.loads(json.dumps(dataclasses.asdict(recipe.preset)))
    return record


def _old_config_record(cfg: TrialConfig) -> dict:
    """The config record as written before the sections: every field at the top level, by the
    names of then (written out, not derived from today's code)."""
    return {
        "preset": cfg.preset, "scale": cfg.scale, "aug": cfg.config, "seed": cfg.seed,
        "mixup_alpha": 1.0, "cutmix_alpha": 0.5, "randaugment_ops": 3, "randaugment_magnitude": 9,
        "train_index": cfg.data.train_index, "val_index": cfg.data.val_index, "train_split": "train",
        "val_split": "val", "data_root": None, "local_cache": None, "decode_backend": "cpu",
        "num_classes": cfg.num_classes, "epochs": 2, "batch_per_worker": 4, "lr": None, "milestones": [1],
        "warmup_epochs": None, "weight_decay": None, "eval_interval": 1, "accurate_checkpoint": "best",
        "num_workers": 2, "use_gpu": False, "cpus_per_worker": 1.0, "decode_cpus": 1.0, "decode_tasks": 2,
        "eval_batch_videos": 2, "eval_decode_tasks": None, "amp": None, "compile": None, "name": cfg.name,
        "storage_path": cfg.storage_path, "max_failures": 0, "limit_videos": None, "init_checkpoint": None,
        "pretrained": None,
    }


def test_the_recipe_round_trips_from_the_spec_to_what_eval_and_resume_load(tmp_path):
    spec = load_spec(_spec_file(tmp_path, tmp_path / "index"))
    cfg = trial_config(spec, "tsm_r50_1x1x8", "randaugment", 3, num_classes=4)
    # The spec's sections are the trial's, as they are (declared once, engine/params.py).
    assert (cfg.augmentation, cfg.training) == (spec.augmentation, spec.training)
    assert cfg.resources.model_dump().items() <= spec.resources.model_dump().items()
    assert cfg.randaugment == (3, 9) and cfg.config == "randaugment"
    recipe = resolve_recipe(cfg)
    assert recipe.preset == presets.get_preset("tsm_r50_1x1x8", scale="toy")
    assert (recipe.world_size, recipe.total_batch, recipe.epochs, recipe.milestones) == (2, 8, 2, (1,))
    # What Ray Train hands each worker (engine/trial.py), through JSON, as the worker reads it.
    loop_config = json.loads(json.dumps({"trial": cfg.model_dump(mode="json"), "recipe": recipe.model_dump(mode="json")}))
    assert TrialConfig.model_validate(loop_config["trial"]) == cfg
    assert TrialRecipe.model_validate(loop_config["recipe"]) == recipe
    # The checkpoint, as `k400ray eval` (engine/offline_eval.py) and a resume read it back.
    d = _save(tmp_path / "ckpt", cfg, loop_config["recipe"], loop_config["trial"])
    assert ckpt.load_trial(ckpt.load_state(d)) == (cfg, recipe)
    assert TrialRecipe.model_validate_json((d / ckpt.RECIPE).read_text()) == recipe
    assert TrialConfig.model_validate_json((d / ckpt.CONFIG).read_text()) == cfg


def test_an_old_spec_loads_to_the_same_trial(tmp_path):
    """``augmentations:``, the configs column's old name, gives the same trials; and the flat
    record an older k400ray logged for the same trial loads equal to the new one."""
    new = load_spec(_spec_file(tmp_path, tmp_path / "index"))
    grid = {k: v for k, v in SPEC["grid"].items() if k != "configs"} | {"augmentations": SPEC["grid"]["configs"]}
    old = load_spec(_spec_file(tmp_path, tmp_path / "index", grid=grid))
    assert old.grid_points() == new.grid_points()
    for point in new.grid_points():
        cfg = trial_config(new, *point, num_classes=4)
        assert trial_config(old, *point, num_classes=4) == cfg
        assert TrialConfig.model_validate(_old_config_record(cfg)) == cfg
        assert TrialConfig.model_validate(cfg.flat_params()) == cfg  # MLflow's params, read back


def test_resume_on_another_world_size_derives_from_the_saved_recipe(tmp_path, monkeypatch):
    """presets.py changes after the checkpoint (the recipe's lr doubles): a resume on 4 workers
    rescales the saved lr by the total batch, an lr the spec set stays, and nothing re-resolves."""
    spec = load_spec(_spec_file(tmp_path, tmp_path / "index"))
    scaled = resolve_recipe(trial_config(spec, "tsm_r50_1x1x8", "cutmix", 3, num_classes=4))
    fixed = resolve_recipe(trial_config(spec.model_copy(update={"training": spec.training.model_copy(
        update={"lr": 0.05})}), "tsm_r50_1x1x8", "cutmix", 3, num_classes=4))
    old = presets.PRESETS["tsm_r50_1x1x8"]
    monkeypatch.setitem(presets.PRESETS, "tsm_r50_1x1x8", dataclasses.replace(
        old, recipe=dataclasses.replace(old.recipe, lr=2 * old.recipe.lr)))
    on_four = for_world(scaled, 4)
    assert (on_four.world_size, on_four.total_batch) == (4, 16)
    assert on_four.lr == pytest.approx(2 * scaled.lr) and "-> 16 clips" in on_four.lr_rule
    assert on_four.model_copy(update={"world_size": 2, "total_batch": 8, "lr": scaled.lr,
                                      "lr_rule": scaled.lr_rule}) == scaled
    assert for_world(fixed, 4).lr == 0.05 and for_world(fixed, 4).total_batch == 16
    assert for_world(scaled, 2) is scaled


def test_an_old_checkpoint_still_evaluates(tiny_index, tmp_path):
    """A checkpoint of the older layout (flat config with ``aug``; recipe with ``preset`` a name
    and ``preset_spec`` its data) evaluates as the same weights saved in today's layout do."""
    from k400ray.engine.offline_eval import evaluate_checkpoint

    spec = load_spec(_spec_file(tmp_path, tiny_index))
    cfg = trial_config(spec, "tsm_r50_1x1x8", "cutmix", 3, num_classes=4)
    recipe = resolve_recipe(cfg)
    old = _save(tmp_path / "old", cfg, _old_recipe_record(recipe), _old_config_record(cfg))
    new = _save(tmp_path / "new", cfg, recipe.model_dump(mode="json"))
    assert ckpt.load_trial(ckpt.load_state(old)) == (cfg, recipe)
    old_metrics, old_preds = evaluate_checkpoint(old, tiny_index, mode="efficient", batch_videos=2, decode_tasks=2)
    new_metrics, new_preds = evaluate_checkpoint(new, tiny_index, mode="efficient", batch_videos=2, decode_tasks=2)
    assert old_metrics["videos"] == 8 and old_metrics["skipped_videos"] == 0
    assert old_metrics == new_metrics
    assert old_preds.video_id == new_preds.video_id
    np.testing.assert_array_equal(old_preds.topk, new_preds.topk)
    np.testing.assert_allclose(old_preds.topk_scores, new_preds.topk_scores)  # NaN past the 4 classes in both

"""One trial end to end under Ray Train on CPU (gloo): a run resumed from a checkpoint on 2
workers continues from its epoch, with the lr of its own world size, and its distributed eval
counts every video once and scores it with the model its checkpoint holds (`k400ray eval` of
it reproduces the logged figures); accurate mode evaluates the best efficient-mode epoch's weights; the
recipe saved in a checkpoint keeps its meaning when presets.py changes. On the session's
synthetic set and its ``k400ray train`` fit of one epoch (tests/conftest.py), three fits here."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from k400ray import presets
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.offline_eval import evaluate_checkpoint
from k400ray.engine.optim import lr_factor, scaled_milestones
from k400ray.engine.recipe import TrialRecipe
from k400ray.engine.trial import TrialOutcome, run_trial
from k400ray.presets import EVAL_MODES, get_preset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(tiny_index):
    """The session's set: 4 classes x (4 train, 2 val) videos, indexed."""
    return tiny_index


def _cfg(index, tmp_path, **kw):
    base = dict(preset="tsm_r50_1x1x8", scale="toy", train_index=str(index), val_index=str(index), num_classes=4,
                epochs=1, batch_per_worker=4, lr=0.01, decode_tasks=2, storage_path=str(tmp_path / "runs"),
                name="t", max_failures=0)
    base.update(kw)
    return TrialConfig(**base)


@pytest.fixture(scope="module")
def one_epoch(trained):
    """The session's ``k400ray train`` fit (tests/conftest.py: one worker, one epoch, the recipe's
    lr scaled to 1 worker x 4 clips, default config, seed 0), as ``run_trial`` returned it."""
    import ray.train

    d = trained.checkpoint
    predictions = {m: p for m in EVAL_MODES if (p := ckpt.load_predictions(d, m)) is not None}
    return TrialOutcome(ckpt.load_metrics(d), str(d), predictions, checkpoint=ray.train.Checkpoint(str(d)))


def test_the_checkpoint_records_the_resolved_recipe(one_epoch):
    with one_epoch.checkpoint.as_directory() as d:
        recipe = json.loads((Path(d) / ckpt.RECIPE).read_text())
    toy = get_preset("tsm_r50_1x1x8", scale="toy")
    assert recipe["world_size"] == 1 and recipe["batch_per_worker"] == 4 and recipe["total_batch"] == 4
    assert recipe["lr"] == pytest.approx(toy.recipe.scaled_lr(4)) and "linear scaling" in recipe["lr_rule"]
    assert recipe["eval_interval"] == 1 and recipe["accurate_checkpoint"] == "best"
    mults = sorted({g["lr_mult"] for g in recipe["param_groups"]})
    assert mults == [1.0, 2.0, 5.0, 10.0] or mults == [1.0, 5.0, 10.0]  # TSM groups (conv biases: x2 if any)
    assert recipe["preset"]["efficient"]["crop"] == "center"


@pytest.fixture(scope="module")
def two_workers(index, tmp_path_factory, one_epoch):
    """``one_epoch`` resumed for a second epoch on 2 workers (cutmix): twice the total batch, so
    twice the lr at the same schedule point; each worker evaluates its half of val."""
    second = run_trial(_cfg(index, tmp_path_factory.mktemp("two"), epochs=2, name="resume-b", aug="cutmix", lr=None,
                            num_workers=2), resume_from=one_epoch.checkpoint)
    assert second.error is None
    return second


def test_resume_continues_from_the_checkpoint_epoch_and_rescales_the_lr(one_epoch, two_workers):
    """Also the distributed eval: 2 workers, each val video counted once in both modes."""
    second = two_workers
    m = second.metrics
    assert m["start_epoch"] == 1 and m["epoch"] == 2
    recipe = get_preset("tsm_r50_1x1x8", scale="toy").recipe
    assert m["resumed_world_size_from"] == 1
    assert m["lr_rescaled_from"] == pytest.approx(recipe.scaled_lr(4))
    # Epoch 2 of a 2-epoch schedule (milestones stretched to it), on 2 workers x 4 clips.
    factor = lr_factor(1, milestones=scaled_milestones(recipe, 2), gamma=recipe.gamma, warmup_epochs=0,
                       warmup_start=recipe.warmup_start_factor)
    assert m["lr"] == pytest.approx(recipe.scaled_lr(8) * factor)
    # Each worker evaluates its share of val; the gathered predictions hold every video once.
    for mode in ("efficient", "accurate"):
        preds = second.predictions[mode]
        assert len(preds) == 8 and len(set(preds.video_id)) == 8  # 4 classes x 2 val videos, no duplicates
    assert m["val_videos"] == 8 and m["tested"] == 1
    for key in ("efficient_acc1", "efficient_acc5", "accurate_acc1", "accurate_acc5"):
        assert 0.0 <= m[key] <= 100.0
    assert np.isfinite(m["train_loss"]) and m["clips_per_s"] > 0
    # Epoch 1's record came with the checkpoint, epoch 2 was evaluated here: the better of the two
    # (a tie keeps epoch 1) is the best epoch, and accurate mode ran on its weights.
    first_acc1 = one_epoch.metrics["efficient_acc1"]
    best_epoch = 2 if m["efficient_acc1"] > first_acc1 else 1
    assert m["best_epoch"] == best_epoch and m["accurate_epoch"] == best_epoch
    assert m["efficient_acc1_best"] == pytest.approx(max(first_acc1, m["efficient_acc1"]))


def test_eval_of_the_checkpoint_reproduces_what_the_trial_logged(index, two_workers):
    """The 2 workers evaluated one model each time (rank 0's BatchNorm statistics on both), the
    one the checkpoint holds: `k400ray eval` of it gives the logged per-video scores in both
    modes, on the weights each mode ran on."""
    m = two_workers.metrics
    with two_workers.checkpoint.as_directory() as d:
        for mode, weights in (("efficient", "last"), ("accurate", "last" if m["accurate_epoch"] == m["epoch"] else "best")):
            metrics, preds = evaluate_checkpoint(d, index, mode=mode, weights=weights, decode_tasks=2)
            logged = two_workers.predictions[mode]
            assert preds.video_id == logged.video_id and np.array_equal(preds.topk[:, 0], logged.topk[:, 0]), mode
            np.testing.assert_allclose(preds.topk_scores, logged.topk_scores, rtol=1e-4, atol=1e-6, err_msg=mode)
            assert metrics["acc1"] == pytest.approx(m[f"{mode}_acc1"]), mode


@pytest.fixture(scope="module")
def resumed_best(index, tmp_path_factory, one_epoch):
    """``one_epoch`` resumed for a second epoch (2 decode tasks), its epoch 1 made the best: its
    record claims 100% efficient acc1, which a later epoch cannot beat (a tie keeps the earlier)."""
    tmp = tmp_path_factory.mktemp("best")
    start = tmp / "start"
    with one_epoch.checkpoint.as_directory() as d:
        shutil.copytree(d, start)
    metrics = json.loads((start / ckpt.METRICS).read_text())
    metrics.update(best_epoch=1, efficient_acc1_best=100.0, efficient_acc5_best=100.0)
    (start / ckpt.METRICS).write_text(json.dumps(metrics))
    import ray.train

    outcome = run_trial(_cfg(index, tmp, epochs=2, name="best-b", lr=None), resume_from=ray.train.Checkpoint(str(start)))
    assert outcome.error is None
    return outcome


def test_accurate_mode_evaluates_the_best_epoch_when_it_is_not_the_last(one_epoch, resumed_best):
    """Accurate mode must evaluate epoch 1's weights, i.e. reproduce the first run's accurate
    predictions exactly, while the run's last epoch is 2."""
    m = resumed_best.metrics
    assert m["epoch"] == 2 and m["best_epoch"] == 1 and m["accurate_epoch"] == 1
    assert m["efficient_acc1_best"] == 100.0 and m["efficient_acc1"] <= 100.0
    first, again = one_epoch.predictions["accurate"], resumed_best.predictions["accurate"]
    assert again.video_id == first.video_id and np.array_equal(again.topk[:, 0], first.topk[:, 0])
    np.testing.assert_allclose(again.topk_scores, first.topk_scores, rtol=1e-4, atol=1e-5)
    # The last epoch's weights stay in the final checkpoint (for any resume); the best ones beside them.
    with resumed_best.checkpoint.as_directory() as d:
        assert ckpt.load_state(Path(d))["epoch"] == 2 and ckpt.load_best(Path(d)) is not None


def test_a_seed_fixes_the_data_for_any_number_of_decode_tasks_and_across_a_resume(index, tmp_path, resumed_best):
    """Common random numbers: an uninterrupted 2-epoch run decoded by one task ends exactly where
    the run interrupted after epoch 1 and resumed (both decoded by two tasks) ends: same videos,
    order, frames and crops in both epochs, same dropout draws, same schedule."""
    whole = run_trial(_cfg(index, tmp_path, epochs=2, name="whole", lr=None, decode_tasks=1))
    assert whole.error is None
    for key in ("train_loss", "efficient_acc1", "efficient_acc5", "efficient_mean_class_acc", "lr"):
        assert whole.metrics[key] == pytest.approx(resumed_best.metrics[key], rel=1e-6), key


def test_eval_of_a_checkpoint_keeps_its_meaning_after_a_preset_change(index, one_epoch, monkeypatch):
    """presets.py changes after training (here: the efficient view becomes 4 segments of a 40 px
    crop); `k400ray eval` rebuilds the model and the views from the checkpoint's recipe."""
    old = presets.PRESETS["tsm_r50_1x1x8"]
    changed = dataclasses.replace(old, efficient=dataclasses.replace(
        old.efficient, sampling=dataclasses.replace(old.efficient.sampling, num_clips=4), crop_size=160))
    monkeypatch.setitem(presets.PRESETS, "tsm_r50_1x1x8", changed)
    assert get_preset("tsm_r50_1x1x8", scale="toy").efficient != one_epoch_efficient_views(one_epoch)
    with one_epoch.checkpoint.as_directory() as d:
        metrics, preds = evaluate_checkpoint(d, index, mode="efficient")
    assert metrics["acc1"] == pytest.approx(one_epoch.metrics["efficient_acc1"])
    assert metrics["acc5"] == pytest.approx(one_epoch.metrics["efficient_acc5"])
    assert np.array_equal(preds.topk[:, 0], one_epoch.predictions["efficient"].topk[:, 0])


def one_epoch_efficient_views(outcome):
    with outcome.checkpoint.as_directory() as d:
        return TrialRecipe.model_validate_json((Path(d) / ckpt.RECIPE).read_text()).preset.efficient

"""View averaging, accuracies from per-video predictions, and the plain train/eval loops."""

import numpy as np
import pytest
import torch

from k400ray.engine.augment import BatchMix
from k400ray.engine.loops import evaluate, train_one_epoch
from k400ray.engine.metrics import Predictions, combine_views, confusion_matrix, summarize
from k400ray.models.build import build_model
from k400ray.presets import get_preset


def test_combine_views_score_vs_prob():
    logits = torch.tensor([[[9.0, 0.0], [0.0, 3.0], [0.0, 3.0]]])
    assert combine_views(logits, "score").argmax().item() == 0  # raw scores: one confident view wins
    assert combine_views(logits, "prob").argmax().item() == 1  # probabilities: two views out-vote it
    assert torch.allclose(combine_views(logits, "prob").sum(), torch.tensor(1.0))


def test_summarize_top1_top5_mean_class():
    scores = torch.arange(6, dtype=torch.float32).repeat(4, 1) / 10  # class 5 best ... class 0 worst
    scores[0, 0] = scores[2, 2] = 1.0  # videos a and c right; b (label 1) 5th; d (label 0) last
    scores[3, 0] = -1.0
    preds = Predictions.from_scores(["a", "b", "c", "d"], np.array([0, 1, 2, 0]), scores)
    m = summarize(preds, 6)
    assert m["acc1"] == pytest.approx(50.0)  # a and c
    assert m["acc5"] == pytest.approx(75.0)  # d's label is ranked 6th
    assert m["mean_class_acc"] == pytest.approx((50.0 + 0.0 + 100.0) / 3)  # classes 0, 1, 2 have videos
    assert confusion_matrix(preds, 6)[1, 5] == 1


def test_predictions_round_trip_through_arrow():
    preds = Predictions.from_scores(["x", "y"], np.array([1, 0]), torch.randn(2, 7))
    back = Predictions.from_table(preds.to_table())
    assert back.video_id == ["x", "y"] and np.array_equal(back.topk, preds.topk)


def _batches(n_batches=3, b=4, v=1, t=8, s=56, classes=4):
    rng = np.random.default_rng(0)
    for i in range(n_batches):
        valid = np.ones(b, bool)
        valid[0] = i != 1  # one broken video in the second batch
        yield {
            "clips": rng.integers(0, 255, (b, v, 3, t, s, s), dtype=np.uint8),
            "label": np.arange(b) % classes,
            "video_id": np.array([f"v{i}_{j}" for j in range(b)]),
            "valid": valid,
        }


def test_train_one_epoch_counts_clips_and_skips():
    preset = get_preset("tsm_r50_1x1x8", scale="toy")
    model = build_model(preset.arch, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stats = train_one_epoch(model, _batches(), opt, device=torch.device("cpu"),
                            mix=BatchMix("mixup", alpha=1.0, num_classes=4), clip_grad_norm=20.0)
    assert stats.clips == 11 and stats.skipped_videos == 1
    assert np.isfinite(stats.loss) and 0 <= stats.data_wait_fraction <= 1


def test_evaluate_combines_views_and_skips_broken():
    preset = get_preset("i3d_r50_32x2x1", scale="toy")
    model = build_model(preset.arch, 4)
    preds, skipped = evaluate(model, _batches(v=3, s=64), device=torch.device("cpu"), average="prob")
    assert len(preds) == 11 and skipped == 1
    assert len(set(preds.video_id)) == 11
    assert (np.nansum(preds.topk_scores, axis=1) <= 1.0 + 1e-5).all()  # 4 classes: 5th slot is NaN

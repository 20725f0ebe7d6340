"""One trial end to end under Ray Train on CPU (gloo): distributed eval counts every video
once, and a run resumed from a checkpoint continues from its epoch."""

from pathlib import Path

import numpy as np
import pytest

from k400ray.data.index import build_index
from k400ray.data.synth import generate_synthetic
from k400ray.engine import checkpoint as ckpt
from k400ray.engine.config import TrialConfig
from k400ray.engine.trial import run_trial
from k400ray.presets import get_preset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, num_classes=4, videos_per_class=(4, 3), frames=24, size=(80, 64), seed=1)
    out = root / "index"
    build_index(root, out, progress=False)
    return out


def _cfg(index, tmp_path, **kw):
    base = dict(preset="tsm_r50_1x1x8", scale="toy", train_index=str(index), val_index=str(index), num_classes=4,
                epochs=1, batch_per_worker=4, lr=0.01, decode_tasks=2, storage_path=str(tmp_path / "runs"),
                name="t", max_failures=0)
    base.update(kw)
    return TrialConfig(**base)


def test_two_workers_count_each_val_video_once(index, tmp_path):
    outcome = run_trial(_cfg(index, tmp_path, num_workers=2, aug="cutmix", name="two-workers"))
    assert outcome.error is None
    for mode in ("efficient", "accurate"):
        preds = outcome.predictions[mode]
        assert len(preds) == 12 and len(set(preds.video_id)) == 12  # 4 classes x 3 val videos, no duplicates
    m = outcome.metrics
    assert m["val_videos"] == 12 and m["done"] == 1
    for key in ("efficient_acc1", "efficient_acc5", "accurate_acc1", "accurate_acc5"):
        assert 0.0 <= m[key] <= 100.0
    assert np.isfinite(m["train_loss"]) and m["clips_per_s"] > 0


def test_resume_continues_from_the_checkpoint_epoch_and_rescales_the_lr(index, tmp_path):
    # The recipe's lr (no override), scaled to 1 worker x 4 clips, then resumed on 2 workers.
    first = run_trial(_cfg(index, tmp_path, epochs=1, name="resume-a", lr=None))
    assert first.metrics["epoch"] == 1 and "lr_rescaled_from" not in first.metrics
    second = run_trial(_cfg(index, tmp_path, epochs=2, name="resume-b", aug="randaugment", lr=None, num_workers=2),
                       resume_from=first.checkpoint)
    assert second.error is None
    assert second.metrics["start_epoch"] == 1 and second.metrics["epoch"] == 2
    recipe = get_preset("tsm_r50_1x1x8", scale="toy").recipe
    assert second.metrics["resumed_world_size_from"] == 1
    assert second.metrics["lr_rescaled_from"] == pytest.approx(recipe.scaled_lr(4))
    with first.checkpoint.as_directory() as d:
        group = ckpt.load_state(Path(d))["optimizer"]["param_groups"][0]
    saved_lr = group["lr"] / group["lr_mult"]  # where the schedule stood for epoch 2
    assert second.metrics["lr"] == pytest.approx(2 * saved_lr)  # same schedule point, twice the batch

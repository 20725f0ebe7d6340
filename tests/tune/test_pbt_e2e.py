"""Population based training end to end on the tiny synthetic set, as small as it shows it: two
toy TSN trials (seeds 0 and 1, RandAugment), 2 epochs, one perturbation after epoch 1. It is
synchronous: both trials' first epochs are in before PBT ranks them, so the bottom half (the
worse trial) exploits the top half (the better) every time; without it the first trial to
report would be ranked alone and nothing would happen. The exploiting trial restores exactly
the donor's checkpoint weights (the worker reports their digest, compared with the donor's
checkpoint read here), continues training to the end, and trains with the explored lr (the
donor's lr scaled by Tune's 0.8 or 1.2, held inside the axis' bounds), not the lr the checkpoint
carries. MLflow keeps one child run per trial, with the exploit tagged and every epoch's mutated
values logged once, although synchronous PBT stops both trials at the perturbation.

The population is also a random search (the default searcher, Ray Tune's samplers): one drawn
weight decay, run with both seeds (common random numbers), a param of each run and the value it
trained with; the parent run names the searcher. (TPE: tests/tune/test_tune_e2e.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from k400ray.contracts import (
    LR, LR_FROM_CHECKPOINT, NUM_SAMPLES_PARAM, PBT_DONOR_TAG, PBT_EXPLOIT_TAG_PREFIX, PBT_VALUE_PREFIX,
    RESTORED_WEIGHTS_DIGEST, SEARCHER_PARAM, START_EPOCH, TRAIN_LOSS, TRIAL_TAG, search_param,
)
from k400ray.engine import checkpoint as ckpt
from k400ray.tracking import mlflow_log as ml
from k400ray.tune.pbt import trial_of

pytestmark = pytest.mark.slow
LR_KEY = f"{PBT_VALUE_PREFIX}training.lr"
LR_RANGE = (0.001, 0.1)
WD_RANGE = (1.0e-5, 1.0e-3)
EPOCHS = 2


def _spec(tmp_path: Path, index) -> str:
    spec = {
        "experiment": "pbt", "scale": "toy",
        "data": {"train_index": str(index)},
        "grid": {"presets": ["tsn_r50_1x1x8"], "configs": ["randaugment"], "seeds": [0, 1]},
        "training": {"epochs": EPOCHS, "batch_per_worker": 4, "limit_videos": 4, "milestones": [10]},
        "resources": {"max_concurrent_trials": 2, "decode_tasks": 1, "max_failures": 0, "cpus_per_worker": 0.5,
                      "decode_cpus": 0.25},
        # A random search's one drawn point, run with both seeds (common random numbers).
        "search": {"space": {"training.weight_decay": {"uniform": list(WD_RANGE)}}, "num_samples": 1},
        "scheduler": {"kind": "pbt", "perturbation_interval": 1, "quantile_fraction": 0.5, "synch": True,
                      "resample_probability": 0.0,
                      "mutations": {"training.lr": {"loguniform": list(LR_RANGE)},
                                    "augmentation.randaugment_magnitude": [3, 5, 7, 9]}},
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "pbt-mlflow"},
        "storage_path": "runs",
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def _checkpoints(root: Path) -> list[Path]:
    return [p.parent for p in root.rglob(ckpt.STATE)]


def _results(root: Path) -> list[dict]:
    rows = []
    for path in root.rglob("result.json"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_an_exploit_restores_the_donors_weights_and_trains_with_the_explored_values(
        cli_app, tiny_index, tmp_path, monkeypatch):
    spec = _spec(tmp_path, tiny_index)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["tune", spec])
    assert result.exit_code == 0, result.output[-3000:]

    client = ml.client_for(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("pbt-mlflow")
    runs = list(client.search_runs([exp.experiment_id], f"tags.`{ml.ROLE_TAG}` = 'trial'"))
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)  # one child run per trial
    # The search: Ray Tune's random sampler drew one weight decay, which both seeds ran with (a
    # sampled value is a param of each run, and the value the trial trained with).
    drawn = {r.data.params[search_param("training.weight_decay")] for r in runs}
    assert len(drawn) == 1 and WD_RANGE[0] <= float(drawn.pop()) <= WD_RANGE[1]
    assert all(r.data.params["weight_decay"] == r.data.params[search_param("training.weight_decay")] for r in runs)
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1"]
    parent = client.get_run(runs[0].data.tags[ml.PARENT_TAG])
    assert parent.data.params[SEARCHER_PARAM] == "random" and parent.data.params[NUM_SAMPLES_PARAM] == "1"
    exploiters = [r for r in runs if PBT_DONOR_TAG in r.data.tags]
    assert exploiters, "no exploit happened"
    run = exploiters[0]
    name = run.data.tags[TRIAL_TAG]
    donor_name = run.data.tags[PBT_DONOR_TAG]
    epoch = max(int(k.removeprefix(PBT_EXPLOIT_TAG_PREFIX)) for k in run.data.tags if k.startswith(PBT_EXPLOIT_TAG_PREFIX))
    donor = next(r for r in runs if r.data.tags[TRIAL_TAG] == donor_name)
    assert donor_name != name

    # The restart after the exploit: the weights it loaded are the donor's checkpoint after `epoch`.
    rows = [r for r in _results(tmp_path / "runs" / "pbt") if RESTORED_WEIGHTS_DIGEST in r and r.get(START_EPOCH) == epoch
            and r.get(LR_FROM_CHECKPOINT) is not None]
    donor_digests = set()
    for directory in _checkpoints(tmp_path / "runs"):
        state = ckpt.load_state(directory)
        if trial_of(state["config"]["name"]) == donor_name and state["epoch"] == epoch:
            donor_digests.add(ckpt.weights_digest(state["model"]))
    assert rows and donor_digests
    assert {int(r[RESTORED_WEIGHTS_DIGEST]) for r in rows} <= donor_digests

    # It continued to the end, with the explored lr: the donor's, scaled by 0.8 or 1.2 (in bounds).
    mine = {m.step: m.value for m in client.get_metric_history(run.info.run_id, LR_KEY)}
    theirs = {m.step: m.value for m in client.get_metric_history(donor.info.run_id, LR_KEY)}
    assert epoch == 1 and set(mine) == {1, 2}
    explored, carried = mine[epoch + 1], theirs[epoch]
    assert explored != pytest.approx(carried)
    assert explored in [pytest.approx(min(max(carried * f, LR_RANGE[0]), LR_RANGE[1])) for f in (0.8, 1.2)]
    assert rows[0][LR_FROM_CHECKPOINT] == pytest.approx(carried)
    lr_logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, LR)}
    assert lr_logged[epoch + 1] == pytest.approx(explored)  # the optimizer's lr (no milestone before 10)
    every_epoch = [1, 2]  # each once: a stop at the perturbation neither loses nor repeats an epoch
    for r in runs:
        for key in (LR_KEY, f"{PBT_VALUE_PREFIX}augmentation.randaugment_magnitude", TRAIN_LOSS):
            assert sorted(m.step for m in client.get_metric_history(r.info.run_id, key)) == every_epoch, key

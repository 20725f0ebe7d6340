"""The Tuner's glue without Ray: spec resolution, how trials are classified from Tune's saved
state, the summary table, SIGTERM as Ctrl+C."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from k400ray.tune import runner
from k400ray.tune.spec import SearchSpec
from k400ray.contracts import FINISHED

BASE = {"experiment": "x", "data": {"train_index": "idx"}, "storage_path": "runs",
        "grid": {"presets": ["tsn_r50_1x1x8"], "augmentations": ["default", "mixup", "cutmix", "randaugment"],
                 "seeds": [0, 1]},
        "mlflow": {"tracking_uri": "sqlite:///sub/m.db"}}


def test_resolve_spec_makes_local_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = runner.resolve_spec(SearchSpec.model_validate(BASE))
    assert spec.data.train_index == str(tmp_path / "idx") and spec.storage_path == str(tmp_path / "runs")
    assert spec.mlflow.tracking_uri == f"sqlite:///{tmp_path}/sub/m.db"
    assert runner.experiment_path(spec) == f"{tmp_path}/runs/x"
    remote = SearchSpec.model_validate({**BASE, "storage_path": "s3://bucket/k"})
    assert runner.experiment_path(runner.resolve_spec(remote)) == "s3://bucket/k/x"


def _trial(aug, seed, status, result=None, error=None, trial_id=None):
    return SimpleNamespace(config={"preset": "tsn_r50_1x1x8", "aug": aug, "seed": seed}, status=status,
                           last_result=result or {}, trial_id=trial_id or f"{aug}{seed}",
                           get_pickled_error=lambda: error, get_error=lambda: None)


def test_trials_are_classified_from_the_saved_state():
    final = {"efficient_acc1": 70.0, "efficient_acc5": 90.0, "accurate_acc1": 72.0, "accurate_acc5": 91.0}
    analysis = SimpleNamespace(trials=[
        _trial("default", 0, "TERMINATED", {**final, FINISHED: 1}),
        _trial("mixup", 0, "TERMINATED", {"efficient_acc1": 10.0, "epoch": 2}),  # ASHA stopped it
        _trial("cutmix", 0, "RUNNING", {"efficient_acc1": 50.0, "epoch": 1}),  # interrupted
        _trial("randaugment", 0, "ERROR", error=RuntimeError("trial\nTrialFailed: x: no checkpoint")),
        _trial("default", 1, "PENDING"),
    ])
    spec = SearchSpec.model_validate(BASE)
    trials, stopped = runner._summaries(spec, analysis)
    status = {(t.aug, t.seed): t.status for t in trials}
    assert status == {("default", 0): "finished", ("mixup", 0): "stopped early", ("cutmix", 0): "interrupted",
                      ("randaugment", 0): "error", ("default", 1): "not started", ("mixup", 1): "not started",
                      ("cutmix", 1): "not started", ("randaugment", 1): "not started"}
    assert stopped == ["mixup0"]
    outcome = runner.GridOutcome("p", "u", "r", trials)
    assert outcome.interrupted and outcome.failed
    table = runner.format_summary(trials)
    first = next(ln.split() for ln in table.splitlines() if ln.split()[:3] == ["tsn_r50_1x1x8", "default", "0"])
    assert first[3:] == ["70.00", "/", "90.00", "72.00", "/", "91.00", "finished"]
    assert "tsn_r50_1x1x8-randaugment-s0: TrialFailed: x: no checkpoint" in table
    assert table.splitlines()[0].split() == ["preset", "config", "seed", "efficient", "acc1/acc5", "accurate",
                                             "acc1/acc5", "status"]


def test_sigterm_becomes_ctrl_c():
    before = signal.getsignal(signal.SIGTERM)
    # Python's own Ctrl+C handler: an earlier test's Ray/Tune may have left its own installed.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with runner._sigterm_as_ctrl_c():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10_000_000):  # the handler runs between bytecodes
                    pass
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_reaches_the_ctrl_c_handler_in_place():
    """During ``tuner.fit()`` Tune's own SIGINT handler (a graceful stop) is in place: SIGTERM
    must end in that handler, as Ctrl+C does, so one e2e interruption covers both signals
    (tests/tune/test_tune_e2e.py sends SIGTERM)."""
    received = []
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        with runner._sigterm_as_ctrl_c():
            signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))  # as Tune's fit does
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000_000):  # the handler runs between bytecodes
                if received:
                    break
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C itself: the same handler
            for _ in range(10_000_000):
                if len(received) == 2:
                    break
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert received == [signal.SIGINT, signal.SIGINT]

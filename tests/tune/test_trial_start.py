"""A trial's start (open its MLflow run, tag its node, send what was held, log the recipe) waits
for a tracking server that stops answering between those calls, instead of failing the trial."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from k400ray.tune import trainable


class _Run:
    def __init__(self, failures: int) -> None:
        self.failures, self.recipes, self.tags = failures, 0, []
        self.run_id = "r1"
        self.client = SimpleNamespace(set_tag=lambda run_id, key, value: self.tags.append(key))

    def log_recipe(self, recipe) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Connection refused")
        self.recipes += 1


@pytest.fixture
def fake_start(monkeypatch):
    import ray
    import ray.tune

    opened, said, answers = [], [], []
    monkeypatch.setattr(ray.tune, "get_context", lambda: SimpleNamespace(get_trial_id=lambda: "t1"))
    monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "n1"))
    monkeypatch.setattr(trainable, "wait_until_answering", lambda uri, **kw: True)
    monkeypatch.setattr(trainable, "server_answers", lambda uri: answers.pop(0))
    monkeypatch.setattr(trainable, "_say", said.append)

    def start(run: _Run, answering: list[bool]):
        answers[:] = answering
        monkeypatch.setattr(trainable.TrialRun, "open", classmethod(lambda cls, *a, **kw: opened.append(1) or run))
        cfg = SimpleNamespace(name="g-tsn-default-s0", resolved_preset=lambda: SimpleNamespace(
            arch=SimpleNamespace(family="tsn")))
        grid = SimpleNamespace(tracking_uri="http://127.0.0.1:1")
        outbox = SimpleNamespace(flush=lambda client: None)
        return trainable._start_run(grid, cfg, object(), outbox, run_name="tsn·default·s0", start_wait_minutes=1)

    return start, opened, said


def test_an_outage_between_the_start_calls_is_waited_for_and_the_run_opened_once(fake_start):
    start, opened, said = fake_start
    run = _Run(failures=2)
    assert start(run, answering=[False, False]) is run
    assert opened == [1]  # reopened once: the attempt count stays right
    assert run.recipes == 1 and len(run.tags) == 1  # the node tag, set last, once the start went through
    assert len(said) == 2 and all("stopped answering while the trial started" in s for s in said)


def test_a_failure_while_the_server_answers_is_raised(fake_start):
    start, opened, _ = fake_start
    with pytest.raises(ConnectionError):
        start(_Run(failures=1), answering=[True])

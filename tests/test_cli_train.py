"""`k400ray train` and `k400ray eval` from the command line, on the session's tiny synthetic set.
The fit is the session's (``trained`` in tests/conftest.py: tests/engine/test_trial.py resumes
its checkpoint); here, what the command printed, its refusal to train the same trial again, and
`k400ray eval` of its checkpoint."""

import re

import pytest
from typer.testing import CliRunner

from k400ray.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_train_then_eval(trained, tiny_index, tmp_path):
    r = trained.result
    assert "clitest-tsm_r50_1x1x8-default-s0" in r.output
    # one line per epoch (1 here): loss, efficient acc1/acc5 (evaluated at the last epoch), clips/s, data wait
    epochs = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 1 and re.fullmatch(
        r"epoch 1/1: loss [\d.]+, efficient acc1/acc5 [\d.]+/[\d.]+, [\d.]+ clips/s, data wait \d+%", epochs[0]), r.stdout
    # The same trial again in the same place: refused in one line, never the old run's figures.
    again = runner.invoke(app, trained.argv)
    assert again.exit_code == 2 and len(again.output.strip().splitlines()) == 1, again.output
    assert "already exists" in again.stderr and "finished, 1 epochs" in again.stderr and "--resume" in again.stderr
    assert "acc1/acc5" not in again.output
    eff = re.search(r"efficient acc1/acc5: ([\d.]+) / ([\d.]+)", r.output)
    acc = re.search(r"accurate  acc1/acc5: ([\d.]+) / ([\d.]+)", r.output)
    assert eff and acc and all(0 <= float(v) <= 100 for v in eff.groups() + acc.groups())
    r = runner.invoke(app, ["eval", str(trained.checkpoint), "--index", str(tiny_index), "--mode", "accurate",
                            "--out", str(tmp_path / "p.parquet")])
    assert r.exit_code == 0, r.output
    assert "tsm_r50_1x1x8 accurate" in r.output and "(8 videos, 0 skipped, cpu, last weights, epoch 1)" in r.output
    assert (tmp_path / "p.parquet").is_file()


def test_train_rejects_unknown_preset_and_aug(spec_file):
    r = runner.invoke(app, ["train", str(spec_file), "--model", "resnet9000"])
    assert r.exit_code == 2 and "--model: unknown preset 'resnet9000'" in r.output
    r = runner.invoke(app, ["train", str(spec_file), "--model", "tsn_r50_1x1x8", "--aug", "autoaugment"])
    assert r.exit_code == 2 and "--config: unknown config 'autoaugment'" in r.output
    r = runner.invoke(app, ["train", str(spec_file), "--model", "tsm_r50_1x1x8", "--config", "gluoncv"])
    assert r.exit_code == 2 and "--config: config 'gluoncv' has no meaning for tsm_r50_1x1x8" in r.output


def test_eval_rejects_a_non_checkpoint(tiny_index, tmp_path):
    r = runner.invoke(app, ["eval", str(tmp_path), "--index", str(tiny_index)])
    assert r.exit_code == 2 and "not a k400ray checkpoint" in r.output


def test_spec_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: x\ndata: {train_index: /nowhere}\ngrid: {presets: [tsm_r50_1x1x8]}\nresources: {workers_per_trial: 0}\n")
    r = runner.invoke(app, ["train", str(bad), "--model", "tsm_r50_1x1x8"])
    assert r.exit_code == 2
    assert "resources.workers_per_trial" in r.output and len(r.output.strip().splitlines()) == 1
    bad.write_text("experiment: x\ndata: {train_index: /nowhere}\ngrid: {presets: [tsm_r50_1x1x8]}\n")
    r = runner.invoke(app, ["train", str(bad), "--model", "tsm_r50_1x1x8"])
    assert r.exit_code == 2 and "data.train_index: no index at /nowhere" in r.output
